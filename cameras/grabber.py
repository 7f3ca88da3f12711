"""One grabber per camera: keeps the ring buffer fed and says whether the stream is live.

States: ``connecting`` until the first frame, ``live`` while frames arrive,
``stale`` once no frame has arrived for ``stale_after_s`` (whether the stream
stalled or dropped and is being reopened), ``live`` again when frames return.
A watchdog thread judges staleness, because the reading thread may be blocked
inside a read for up to the source's read timeout.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable

from cameras.ringbuffer import FrameRing, RingBufferError
from cameras.source import Frame, FrameSource, SourceError
from openshelf.contract import CameraState, StreamState

log = logging.getLogger(__name__)

StateCallback = Callable[[CameraState], None]
_FPS_WINDOW_S = 2.0


@dataclass(frozen=True)
class GrabberSettings:
    stale_after_s: float = 3.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 10.0
    watchdog_interval_s: float = 0.2
    # Re-report an unchanged state this often, so fps and frame counters stay current.
    refresh_s: float | None = 30.0


class Grabber:
    """Reads ``source`` on its own thread into ``ring``; reports state changes to ``on_state``."""

    def __init__(
        self,
        camera_id: str,
        source: FrameSource,
        ring: FrameRing,
        on_state: StateCallback,
        settings: GrabberSettings = GrabberSettings(),
    ) -> None:
        self.camera_id = camera_id
        self._source = source
        self._ring = ring
        self._on_state = on_state
        self._settings = settings
        self._stop = threading.Event()
        self._lock = threading.RLock()
        self._threads: list[threading.Thread] = []
        self._stream = StreamState.CONNECTING
        self._reason: str | None = "waiting for the first frame"
        self._reported: tuple[StreamState, str | None] | None = None
        self._reported_at = 0.0
        self._last_frame_at: float | None = None
        self._recent: deque[float] = deque()
        self._last_problem: str | None = None
        self.frames = 0
        self.reconnects = 0

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self._threads:
            raise RuntimeError(f"grabber {self.camera_id} already started")
        self._stop.clear()
        self._report()
        self._threads = [
            threading.Thread(target=self._read_loop, name=f"grabber-{self.camera_id}", daemon=True),
            threading.Thread(target=self._watch_loop, name=f"grabber-watch-{self.camera_id}", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout_s)
            if thread.is_alive():
                log.error("grabber thread %s did not stop within %.1f s", thread.name, timeout_s)
        self._threads = []

    # ------------------------------------------------------------------ state

    @property
    def stream(self) -> StreamState:
        with self._lock:
            return self._stream

    def state(self) -> CameraState:
        with self._lock:
            return CameraState(stream=self._stream, fps=round(self._fps(), 2), frames=self.frames, reason=self._reason)

    def _fps(self) -> float:
        recent = self._recent
        if len(recent) < 2 or recent[-1] <= recent[0]:
            return 0.0
        return (len(recent) - 1) / (recent[-1] - recent[0])

    def _report(self) -> None:
        """Call ``on_state`` if (stream, reason) changed since the last report, or the refresh is due."""
        with self._lock:
            current = (self._stream, self._reason)
            now = time.monotonic()
            refresh = self._settings.refresh_s
            if current == self._reported and (refresh is None or now - self._reported_at < refresh):
                return
            self._reported, self._reported_at = current, now
            state = self.state()
            try:
                self._on_state(state)
            except Exception:  # noqa: BLE001 - a failing listener must not stop the grabber
                log.exception("camera %s: state callback failed", self.camera_id)

    def _frame_arrived(self, frame: Frame) -> None:
        with self._lock:
            self.frames += 1
            self._last_frame_at = frame.monotonic
            self._last_problem = None
            self._recent.append(frame.monotonic)
            while self._recent and self._recent[0] < frame.monotonic - _FPS_WINDOW_S:
                self._recent.popleft()
            if self._stream is not StreamState.LIVE:
                self._stream, self._reason = StreamState.LIVE, None
                log.info("camera %s: stream live", self.camera_id)
        self._report()

    def _problem(self, reason: str) -> None:
        with self._lock:
            self._last_problem = reason
        self._judge()

    def _judge(self) -> None:
        """Turn the age of the last frame into connecting / stale."""
        with self._lock:
            now = time.monotonic()
            if self._last_frame_at is None:
                self._reason = self._last_problem or "waiting for the first frame"
            elif self._stream is StreamState.LIVE and now - self._last_frame_at >= self._settings.stale_after_s:
                self._stream = StreamState.STALE
                age = now - self._last_frame_at
                detail = f": {self._last_problem}" if self._last_problem else ""
                self._reason = f"no frame for {age:.1f} s{detail}"
                self._recent.clear()
                log.warning("camera %s: stream stale (%s)", self.camera_id, self._reason)
        self._report()

    # ------------------------------------------------------------------ threads

    def _watch_loop(self) -> None:
        while not self._stop.wait(self._settings.watchdog_interval_s):
            self._judge()

    def _read_loop(self) -> None:
        backoff = self._settings.backoff_initial_s
        while not self._stop.is_set():
            if self._open_source():
                if self._pump_frames():
                    backoff = self._settings.backoff_initial_s
                self._close_source()
            if self._stop.wait(backoff):
                break
            backoff = min(backoff * 2, self._settings.backoff_max_s)
            self.reconnects += 1

    def _open_source(self) -> bool:
        try:
            self._source.open()
        except SourceError as exc:
            log.warning("camera %s: cannot open source: %s", self.camera_id, exc)
            self._problem(f"cannot open stream: {exc}")
            return False
        except Exception as exc:  # noqa: BLE001 - a driver bug must not kill the grabber
            log.exception("camera %s: source open crashed", self.camera_id)
            self._problem(f"source open crashed: {exc}")
            return False
        return True

    def _pump_frames(self) -> bool:
        """Read until the source fails or we stop; True if at least one frame arrived."""
        got_frame = False
        while not self._stop.is_set():
            try:
                frame = self._source.read()
            except SourceError as exc:
                log.warning("camera %s: stream lost: %s", self.camera_id, exc)
                self._problem(f"stream lost: {exc}")
                return got_frame
            except Exception as exc:  # noqa: BLE001 - a driver bug must not kill the grabber
                log.exception("camera %s: source read crashed", self.camera_id)
                self._problem(f"source read crashed: {exc}")
                return got_frame
            if frame is None:
                continue
            try:
                self._ring.push(frame)
            except RingBufferError as exc:
                log.warning("camera %s: frame %d not buffered: %s", self.camera_id, frame.index, exc)
                continue
            got_frame = True
            self._frame_arrived(frame)
        return got_frame

    def _close_source(self) -> None:
        try:
            self._source.close()
        except Exception:  # noqa: BLE001 - closing a broken source may fail too
            log.debug("camera %s: source close failed", self.camera_id, exc_info=True)
