"""Test helpers: free ports, a private Mosquitto, real processes started as a user would."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate: Callable[[], Any], timeout_s: float = 10.0, interval_s: float = 0.02, what: str = "") -> Any:
    """Poll until ``predicate`` returns something truthy; fail with ``what`` after the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what or predicate}")
        time.sleep(interval_s)


def wait_port(port: int, timeout_s: float = 10.0) -> None:
    def is_open() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            return False

    wait_for(is_open, timeout_s, 0.05, f"port {port}")


MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
# Mosquitto started as root drops to its own user, which cannot read pytest's private temp dirs.
MOSQUITTO_RUN_AS = "root" if os.geteuid() == 0 else None


class Mosquitto:
    """A private Mosquitto on a free loopback port; restartable on the same port."""

    def __init__(self, workdir: Path, conf: Path | None = None, port: int | None = None) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.conf = conf or self._anonymous_conf()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / f"mosquitto-{self.port}.log"

    def _anonymous_conf(self) -> Path:
        conf = self.workdir / f"mosquitto-{self.port}.conf"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\n"
            "max_queued_messages 100000\nmax_inflight_messages 0\npersistence false\n"
            "log_dest stderr\nlog_type error\nlog_type warning\n",
            encoding="utf-8",
        )
        return conf

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> "Mosquitto":
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=log, stderr=log)
        wait_port(self.port)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(5)
            self.proc = None


@dataclass
class Proc:
    """A real OpenShelf process started through the ``openshelf`` command line."""

    name: str
    args: list[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    popen: subprocess.Popen[str] | None = None
    ready_line: dict[str, Any] | None = None
    _lines: list[str] = field(default_factory=list)
    _reader: threading.Thread | None = None

    def start(self, wait_ready: bool = True, timeout_s: float = 30.0) -> "Proc":
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        self._stderr = self.log_path.open("a", encoding="utf-8")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "openshelf", *self.args],
            stdout=subprocess.PIPE, stderr=self._stderr, text=True, env=env, cwd=REPO,
        )
        self._lines = []
        self._reader = threading.Thread(target=self._read_stdout, name=f"stdout-{self.name}", daemon=True)
        self._reader.start()
        if wait_ready:
            self.ready_line = wait_for(self._ready, timeout_s, 0.05, f"{self.name} ready (log: {self.log_path})")
        return self

    def _read_stdout(self) -> None:
        assert self.popen is not None and self.popen.stdout is not None
        for line in self.popen.stdout:
            self._lines.append(line)

    def _ready(self) -> dict[str, Any] | None:
        if self.popen is not None and self.popen.poll() is not None:
            raise AssertionError(f"{self.name} exited with {self.popen.returncode}; log:\n{self.log_text()[-4000:]}")
        for line in list(self._lines):
            try:
                data = json.loads(line)
            except ValueError:
                continue
            if isinstance(data, dict) and data.get("event") == "ready":
                return data
        return None

    @property
    def stdout(self) -> str:
        return "".join(self._lines)

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, timeout_s: float = 15.0) -> int:
        """SIGTERM, as a service manager would; returns the exit code."""
        if self.popen is None:
            return 0
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
                raise AssertionError(f"{self.name} did not stop on SIGTERM; log:\n{self.log_text()[-4000:]}")
        code = self.popen.returncode
        if self._reader is not None:
            self._reader.join(5)
        self._close_pipes()
        return code

    def _close_pipes(self) -> None:
        if self.popen is not None and self.popen.stdout is not None:
            self.popen.stdout.close()
        self._stderr.close()
        self.popen = None

    def kill(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(5)
        if self._reader is not None:
            self._reader.join(5)
        self._stderr.close()
        self.popen = None
