"""A tiny real HTTP server standing in for the backend's evidence endpoints."""

from __future__ import annotations

import base64
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int

    @property
    def basic_auth(self) -> tuple[str, str] | None:
        value = self.headers.get("authorization", "")
        if not value.startswith("Basic "):
            return None
        user, _, password = base64.b64decode(value[6:]).decode().partition(":")
        return user, password


class _Server(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True
    owner: "FakeBackend"


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        owner = self.server.owner
        with owner.lock:
            status = owner.script.pop(0) if owner.script else owner.default_status
            owner.received.append(Received(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                                           body, status))
        if owner.hold is not None:
            owner.held += 1
            owner.hold.wait(10)
        self.send_response(status)
        for name, value in owner.response_headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    do_PUT = _handle  # noqa: N815 - http.server dispatch names
    do_POST = _handle  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


class FakeBackend:
    """Answers with the statuses in ``script`` first, then ``default_status``."""

    def __init__(self, script: list[int] | None = None, default_status: int = 201, port: int = 0) -> None:
        self.port = port
        self.script = list(script or [])
        self.default_status = default_status
        self.received: list[Received] = []
        self.lock = threading.Lock()
        # Set ``hold`` to an Event to keep every answer waiting until it is set (a slow backend).
        self.hold: threading.Event | None = None
        self.held = 0
        self.response_headers: dict[str, str] = {}
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> "FakeBackend":
        self._server = _Server(("127.0.0.1", self.port), _Handler)
        self._server.owner = self
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-backend", daemon=True)
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def accepted(self, path_suffix: str = "") -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.status in (200, 201) and r.path.endswith(path_suffix)]

    def of(self, path_suffix: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path.endswith(path_suffix)]

    def stop(self) -> None:
        if self.hold is not None:
            self.hold.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
