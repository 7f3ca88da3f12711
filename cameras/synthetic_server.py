"""The camera simulator on the wire: a synthetic camera served as HTTP MJPEG on loopback.

``GET /stream.mjpg`` is a ``multipart/x-mixed-replace`` stream like most IP
cameras offer; ``GET /snapshot.jpg`` is a single frame. Pointing a camera's
``source`` at it runs the real OpenCV/FFmpeg path without a camera.
"""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cameras.ringbuffer import encode_jpeg
from cameras.source import SyntheticSource

log = logging.getLogger(__name__)

_BOUNDARY = "openshelfframe"


class _Server(ThreadingHTTPServer):
    # Handler threads are joined on close, so a stopped server leaves no thread behind.
    daemon_threads = False
    block_on_close = True

    def __init__(self, address: tuple[str, int], owner: "MjpegServer") -> None:
        self.owner = owner
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches to
        path = self.path.split("?", 1)[0]
        if path in ("/", "/stream.mjpg"):
            self._stream()
        elif path == "/snapshot.jpg":
            self._snapshot()
        else:
            self.send_error(404, "try /stream.mjpg or /snapshot.jpg")

    def _new_source(self) -> SyntheticSource:
        owner = self.server.owner
        source = SyntheticSource(owner.width, owner.height, owner.fps)
        source.open()
        return source

    def _snapshot(self) -> None:
        frame = self._new_source().read()
        assert frame is not None
        body = encode_jpeg(frame.image)
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _stream(self) -> None:
        owner = self.server.owner
        source = self._new_source()
        self.send_response(200)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={_BOUNDARY}")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        try:
            while not owner.stopping.is_set():
                frame = source.read()
                if frame is None or owner.stalled.is_set():
                    continue
                body = encode_jpeg(frame.image)
                head = (f"--{_BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(body)}\r\n\r\n").encode()
                self.wfile.write(head + body + b"\r\n")
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            log.debug("MJPEG client %s went away", self.client_address)
        finally:
            source.close()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature fixed by http.server
        log.debug("mjpeg %s: " + format, self.client_address[0], *args)


class MjpegServer:
    """Serves synthetic frames; ``stall()`` keeps connections open but sends nothing until ``resume()``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, width: int = 640, height: int = 360,
                 fps: float = 10.0) -> None:
        if host not in {"127.0.0.1", "localhost", "::1"}:
            raise ValueError("the camera simulator only listens on loopback")
        self.host = host
        self.port = port
        self.width = width
        self.height = height
        self.fps = fps
        self.stopping = threading.Event()
        self.stalled = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/stream.mjpg"

    def start(self) -> "MjpegServer":
        self.stopping.clear()
        self._server = _Server((self.host, self.port), self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="mjpeg-server", daemon=True)
        self._thread.start()
        log.info("synthetic camera streaming on %s", self.url)
        return self

    def stall(self) -> None:
        self.stalled.set()

    def resume(self) -> None:
        self.stalled.clear()

    def stop(self) -> None:
        self.stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None


def run_mjpeg_server(port: int = 8081, width: int = 1280, height: int = 720, fps: float = 10.0) -> int:
    """``openshelf sim camera``: serve until SIGINT/SIGTERM."""
    from openshelf.runtime import announce_ready, stop_event_on_signals

    stop = stop_event_on_signals()
    server = MjpegServer(port=port, width=width, height=height, fps=fps).start()
    announce_ready(camera_sim=server.url)
    try:
        stop.wait()
    finally:
        server.stop()
    return 0
