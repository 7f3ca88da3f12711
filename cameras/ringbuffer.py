"""The pre-event ring buffer: the last few seconds of frames, JPEG-compressed.

Frames are compressed on the way in (or kept as the camera's own JPEG when it
sends MJPEG) so a few seconds of 720p fit in tens of megabytes, and old frames
fall out by age, by count and by total size, so the memory used is bounded
whatever the camera delivers.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime

import cv2
import numpy as np

from cameras.source import Frame

DEFAULT_SECONDS = 5.0
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_FRAMES = 1200
DEFAULT_JPEG_QUALITY = 85


class RingBufferError(Exception):
    """A frame could not be stored."""


@dataclass(frozen=True)
class BufferedFrame:
    """A frame as the ring keeps it: JPEG bytes plus when it was captured."""

    jpeg: bytes
    captured_at: datetime
    monotonic: float
    sequence: int

    def decode(self) -> np.ndarray:
        image = cv2.imdecode(np.frombuffer(self.jpeg, dtype=np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise RingBufferError(f"frame {self.sequence} is not a decodable JPEG")
        return image


def encode_jpeg(image: np.ndarray, quality: int = DEFAULT_JPEG_QUALITY) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RingBufferError("JPEG encoding failed")
    return data.tobytes()


class FrameRing:
    """Thread-safe: one grabber pushes, any thread reads."""

    def __init__(
        self,
        seconds: float = DEFAULT_SECONDS,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_frames: int = DEFAULT_MAX_FRAMES,
        jpeg_quality: int = DEFAULT_JPEG_QUALITY,
    ) -> None:
        if seconds <= 0 or max_bytes <= 0 or max_frames <= 0 or not 1 <= jpeg_quality <= 100:
            raise ValueError("ring buffer needs positive seconds/max_bytes/max_frames and quality 1..100")
        self.seconds = seconds
        self.max_bytes = max_bytes
        self.max_frames = max_frames
        self.jpeg_quality = jpeg_quality
        self._frames: deque[BufferedFrame] = deque()
        self._bytes = 0
        self._sequence = 0
        self._changed = threading.Condition()

    # ------------------------------------------------------------------ writing

    def push(self, frame: Frame) -> BufferedFrame:
        """Store a frame: the camera's own JPEG as it is, or the pixels JPEG-encoded."""
        if frame.jpeg is not None:
            jpeg = frame.jpeg
        else:
            assert frame.image is not None
            jpeg = encode_jpeg(frame.image, self.jpeg_quality)
        return self.push_jpeg(jpeg, frame.captured_at, frame.monotonic)

    def push_jpeg(self, jpeg: bytes, captured_at: datetime, monotonic: float) -> BufferedFrame:
        if captured_at.tzinfo is None:
            raise RingBufferError("frame timestamps must carry a timezone")
        if len(jpeg) > self.max_bytes:
            raise RingBufferError(f"a {len(jpeg)} byte frame does not fit a {self.max_bytes} byte buffer")
        with self._changed:
            self._sequence += 1
            stored = BufferedFrame(jpeg, captured_at, monotonic, self._sequence)
            self._frames.append(stored)
            self._bytes += len(jpeg)
            self._evict(newest_monotonic=monotonic)
            self._changed.notify_all()
        return stored

    def _evict(self, newest_monotonic: float) -> None:
        # Age uses monotonic time so a wall-clock step cannot empty or overfill the buffer.
        oldest_allowed = newest_monotonic - self.seconds
        frames = self._frames
        while frames and (
            frames[0].monotonic < oldest_allowed or self._bytes > self.max_bytes or len(frames) > self.max_frames
        ):
            self._bytes -= len(frames.popleft().jpeg)

    def clear(self) -> None:
        with self._changed:
            self._frames.clear()
            self._bytes = 0

    # ------------------------------------------------------------------ reading

    def frames_between(self, t0: datetime, t1: datetime) -> list[BufferedFrame]:
        """Frames captured in ``[t0, t1]``, oldest first."""
        with self._changed:
            return [frame for frame in self._frames if t0 <= frame.captured_at <= t1]

    def snapshot(self) -> list[BufferedFrame]:
        with self._changed:
            return list(self._frames)

    def latest(self) -> BufferedFrame | None:
        with self._changed:
            return self._frames[-1] if self._frames else None

    def wait_until_captured(self, moment: datetime, timeout_s: float) -> bool:
        """Block until a frame captured at or after ``moment`` is stored, or the timeout passes."""
        deadline = time.monotonic() + max(0.0, timeout_s)
        with self._changed:
            while not (self._frames and self._frames[-1].captured_at >= moment):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
            return True

    def __len__(self) -> int:
        with self._changed:
            return len(self._frames)

    @property
    def nbytes(self) -> int:
        with self._changed:
            return self._bytes
