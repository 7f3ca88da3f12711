"""Live view: the newest small JPEG of each camera, in memory only, and who is watching it.

Cameras push a frame every second or so (``PUT /api/cameras/{id}/live``); staff
fetch the newest one (``GET …/live.jpg``). Nothing is written to disk: a live
frame is not evidence. The camera is told how many staff watched in the last few
seconds, so it can slow down while nobody does. A *viewing session* is one staff
member fetching one camera's frames without a pause longer than
``session_gap_s``; each session is audited once, not every frame.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

MAX_FRAME_BYTES = 1024 * 1024
VIEWER_WINDOW_S = 10.0
SESSION_GAP_S = 30.0


class LiveViewError(Exception):
    """A live frame is not acceptable; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class LiveFrame:
    jpeg: bytes
    captured_at: datetime | None
    received_at: datetime


@dataclass(frozen=True)
class Viewing:
    """What one fetch of a live frame found: the frame (if any) and whether a new viewing session began."""

    frame: LiveFrame | None
    new_session: bool


def check_live_jpeg(content_type: str | None, body: bytes) -> None:
    """Refuse anything that is not a plausible JPEG of at most 1 MB."""
    if content_type != "image/jpeg":
        raise LiveViewError(415, "a live frame must be sent as image/jpeg")
    if len(body) > MAX_FRAME_BYTES:
        raise LiveViewError(413, f"a live frame may be at most {MAX_FRAME_BYTES} bytes")
    # Start-of-image marker, and an end-of-image marker (some encoders pad after it).
    if not body.startswith(b"\xff\xd8\xff") or b"\xff\xd9" not in body[-64:]:
        raise LiveViewError(422, "the body is not a valid image/jpeg file")


class LiveFrames:
    """Thread-safe: cameras put from request threads while staff fetch from others."""

    def __init__(self, *, viewer_window_s: float = VIEWER_WINDOW_S, session_gap_s: float = SESSION_GAP_S,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._viewer_window_s = viewer_window_s
        self._session_gap_s = max(session_gap_s, viewer_window_s)
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._frames: dict[str, LiveFrame] = {}
        self._last_request: dict[tuple[str, str], float] = {}  # (camera, username) → any fetch, frame or not
        self._last_served: dict[tuple[str, str], float] = {}  # (camera, username) → a fetch that got a frame

    def put(self, camera_id: str, frame: LiveFrame) -> int:
        """Replace the camera's frame; returns how many staff watched it in the last ``viewer_window_s``."""
        with self._lock:
            self._frames[camera_id] = frame
            return self._viewers_locked(camera_id, self._monotonic())

    def view(self, camera_id: str, username: str) -> Viewing:
        """A staff member fetches the camera's newest frame (also counts them as watching)."""
        now = self._monotonic()
        key = (camera_id, username)
        with self._lock:
            self._forget_old_locked(now)
            self._last_request[key] = now
            frame = self._frames.get(camera_id)
            if frame is None:
                return Viewing(None, False)
            previous = self._last_served.get(key)
            self._last_served[key] = now
            return Viewing(frame, previous is None or now - previous > self._session_gap_s)

    def viewers(self, camera_id: str) -> int:
        with self._lock:
            return self._viewers_locked(camera_id, self._monotonic())

    def _viewers_locked(self, camera_id: str, now: float) -> int:
        return sum(1 for (camera, _), at in self._last_request.items()
                   if camera == camera_id and now - at <= self._viewer_window_s)

    def _forget_old_locked(self, now: float) -> None:
        for table in (self._last_request, self._last_served):
            for key in [key for key, at in table.items() if now - at > self._session_gap_s]:
                del table[key]
