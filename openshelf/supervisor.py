"""Start OpenShelf processes the way a service manager would, and keep them running."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

RESTART_BACKOFF_S = (1.0, 2.0, 5.0)


class ChildFailed(RuntimeError):
    pass


@dataclass
class Child:
    """One ``openshelf …`` subprocess; its stderr goes to a log file, its stdout is watched."""

    name: str
    args: list[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    restart: bool = True
    ready: dict[str, Any] | None = None
    restarts: int = 0
    _popen: subprocess.Popen[str] | None = None
    _ready_event: threading.Event = field(default_factory=threading.Event)
    _reader: threading.Thread | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log_file = self.log_path.open("a", encoding="utf-8")
        self._ready_event.clear()
        self._popen = subprocess.Popen(
            [sys.executable, "-m", "openshelf", *self.args],
            stdout=subprocess.PIPE, stderr=log_file, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env},
            start_new_session=True,  # Ctrl-C reaches the supervisor only; it stops children in order
        )
        log_file.close()
        self._reader = threading.Thread(target=self._watch_stdout, name=f"watch-{self.name}", daemon=True)
        self._reader.start()

    def _watch_stdout(self) -> None:
        popen = self._popen
        assert popen is not None and popen.stdout is not None
        for line in popen.stdout:
            try:
                data = json.loads(line)
            except ValueError:
                continue
            if isinstance(data, dict) and data.get("event") == "ready":
                self.ready = data
                self._ready_event.set()

    def wait_ready(self, timeout_s: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while not self._ready_event.wait(0.1):
            if self._popen is not None and self._popen.poll() is not None:
                raise ChildFailed(f"{self.name} exited with {self._popen.returncode}; see {self.log_path}")
            if time.monotonic() > deadline:
                raise ChildFailed(f"{self.name} not ready after {timeout_s:.0f} s; see {self.log_path}")
        assert self.ready is not None
        return self.ready

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen is not None else None

    def exited(self) -> int | None:
        return None if self._popen is None else self._popen.poll()

    def stop(self, timeout_s: float = 15.0) -> int | None:
        popen = self._popen
        if popen is None:
            return None
        if popen.poll() is None:
            popen.send_signal(signal.SIGTERM)
            try:
                popen.wait(timeout_s)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in %.0f s; killing it", self.name, timeout_s)
                popen.kill()
                popen.wait(5)
        if self._reader is not None:
            self._reader.join(5)
        self._popen = None
        return popen.returncode


class Supervisor:
    """Starts children in order, restarts the ones that die, stops them in reverse order."""

    def __init__(self) -> None:
        self.children: list[Child] = []
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, child: Child, timeout_s: float = 60.0) -> dict[str, Any]:
        self.children.append(child)
        child.start()
        return child.wait_ready(timeout_s)

    def watch(self) -> None:
        self._thread = threading.Thread(target=self._watch, name="supervisor", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stopping.wait(0.5):
            for child in self.children:
                code = child.exited()
                if code is None or not child.restart or self._stopping.is_set():
                    continue
                delay = RESTART_BACKOFF_S[min(child.restarts, len(RESTART_BACKOFF_S) - 1)]
                log.warning("%s exited with %s; restarting in %.0f s (log: %s)", child.name, code, delay, child.log_path)
                if self._stopping.wait(delay):
                    return
                child.restarts += 1
                child.stop()
                child.start()

    def stop(self) -> dict[str, int | None]:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(5)
        return {child.name: child.stop() for child in reversed(self.children)}
