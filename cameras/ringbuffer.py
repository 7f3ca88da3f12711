"""The pre-event ring buffer: the last few seconds of frames, compressed.

Frames are compressed on the way in (or kept as the camera's own JPEG when it
sends MJPEG, or as its own H.264 packets) so a few seconds of 720p fit in tens
of megabytes, and old frames fall out by age, by count and by total size, so
the memory used is bounded whatever the camera delivers.

H.264 packets only decode from the keyframe that starts their group of
pictures, so they fall out by age a whole group at a time, and only once the
next group's keyframe is itself older than the ring's span: the ring then
always covers its span starting at a keyframe.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime

import cv2
import numpy as np

from cameras.source import EncodedPacket, Frame

DEFAULT_SECONDS = 5.0
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_FRAMES = 1200
DEFAULT_JPEG_QUALITY = 85


class RingBufferError(Exception):
    """A frame could not be stored."""


@dataclass(frozen=True)
class BufferedFrame:
    """A frame as the ring keeps it: JPEG bytes (or an H.264 packet) plus when it was captured.

    For a packet, ``captured_at`` is when it arrived, in decode order; the time
    each picture is *shown* comes from ``cameras.h264.presentation_order``.
    """

    data: bytes
    captured_at: datetime
    monotonic: float
    sequence: int
    packet: EncodedPacket | None = None

    @property
    def jpeg(self) -> bytes:
        if self.packet is not None:
            raise RingBufferError(f"frame {self.sequence} is an H.264 packet, not a JPEG")
        return self.data

    @property
    def keyframe(self) -> bool:
        """True if decoding can start at this frame (every JPEG; an H.264 keyframe)."""
        return self.packet is None or self.packet.keyframe

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
        """Store a frame: the camera's own JPEG or H.264 packet as it is, or the pixels JPEG-encoded."""
        if frame.packet is not None:
            return self.push_packet(frame.packet, frame.captured_at, frame.monotonic)
        if frame.jpeg is not None:
            jpeg = frame.jpeg
        else:
            assert frame.image is not None
            jpeg = encode_jpeg(frame.image, self.jpeg_quality)
        return self.push_jpeg(jpeg, frame.captured_at, frame.monotonic)

    def push_jpeg(self, jpeg: bytes, captured_at: datetime, monotonic: float) -> BufferedFrame:
        return self._store(jpeg, None, captured_at, monotonic)

    def push_packet(self, packet: EncodedPacket, captured_at: datetime, monotonic: float) -> BufferedFrame:
        return self._store(packet.data, packet, captured_at, monotonic)

    def _store(self, data: bytes, packet: EncodedPacket | None, captured_at: datetime,
               monotonic: float) -> BufferedFrame:
        if captured_at.tzinfo is None:
            raise RingBufferError("frame timestamps must carry a timezone")
        if len(data) > self.max_bytes:
            raise RingBufferError(f"a {len(data)} byte frame does not fit a {self.max_bytes} byte buffer")
        with self._changed:
            self._sequence += 1
            stored = BufferedFrame(data, captured_at, monotonic, self._sequence, packet)
            self._frames.append(stored)
            self._bytes += len(data)
            self._evict(newest_monotonic=monotonic)
            self._changed.notify_all()
        return stored

    def _evict(self, newest_monotonic: float) -> None:
        # Age uses monotonic time so a wall-clock step cannot empty or overfill the buffer.
        oldest_allowed = newest_monotonic - self.seconds
        frames = self._frames
        while frames and (self._bytes > self.max_bytes or len(frames) > self.max_frames):
            self._drop_oldest()
        while frames and frames[0].monotonic < oldest_allowed and self._next_start_is_old(oldest_allowed):
            self._drop_oldest()
        # Packets that lost their keyframe (to the size or count limits) can never be decoded.
        while frames and not frames[0].keyframe:
            self._drop_oldest()

    def _next_start_is_old(self, oldest_allowed: float) -> bool:
        """True if the oldest frame may go: a JPEG, or a packet whose group's successor already covers the span."""
        frames = self._frames
        if frames[0].packet is None:
            return True
        for frame in itertools.islice(frames, 1, None):
            if frame.keyframe:
                return frame.monotonic <= oldest_allowed
        return False

    def _drop_oldest(self) -> None:
        self._bytes -= len(self._frames.popleft().data)

    def clear(self) -> None:
        with self._changed:
            self._frames.clear()
            self._bytes = 0

    # ------------------------------------------------------------------ reading

    def frames_between(self, t0: datetime, t1: datetime, *, from_keyframe: bool = False) -> list[BufferedFrame]:
        """Frames captured in ``[t0, t1]``, oldest first.

        ``from_keyframe``: if the first of them is an H.264 packet that is not a keyframe, start at
        the keyframe before it instead, so that everything returned can be decoded.
        """
        with self._changed:
            frames = list(self._frames)
        selected = [index for index, frame in enumerate(frames) if t0 <= frame.captured_at <= t1]
        if not selected:
            return []
        start = selected[0]
        if from_keyframe:
            while start > 0 and not frames[start].keyframe:
                start -= 1
        return frames[start:selected[0]] + [frames[index] for index in selected]

    def snapshot(self) -> list[BufferedFrame]:
        with self._changed:
            return list(self._frames)

    def latest(self) -> BufferedFrame | None:
        with self._changed:
            return self._frames[-1] if self._frames else None

    def latest_keyframe(self) -> BufferedFrame | None:
        """The newest frame decodable on its own (the newest frame of a JPEG ring)."""
        with self._changed:
            return next((frame for frame in reversed(self._frames) if frame.keyframe), None)

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
