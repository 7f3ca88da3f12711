"""Cutting a TCP byte stream into SIP2 frames.

TCP keeps no message boundaries: one read may hold half a message, or one and
a half.  :class:`FrameReader` buffers bytes until a terminator (CR or LF; CRLF
gives an empty frame that is skipped) and keeps what follows for the next frame.
"""

from __future__ import annotations

import re

from backend.sip2.errors import Sip2FrameError

DEFAULT_MAX_FRAME = 64 * 1024
_SPLIT = re.compile(rb"[\r\n]")


class FrameReader:
    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self.max_frame = max_frame
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return the complete frames (without terminators) they finish."""
        self._buffer.extend(data)
        *complete, rest = _SPLIT.split(bytes(self._buffer))
        frames = [frame for frame in complete if frame.strip(b"\x00 ")]
        if complete:
            self._buffer = bytearray(rest)
        if len(self._buffer) > self.max_frame:
            size = len(self._buffer)
            self._buffer.clear()
            raise Sip2FrameError(f"no terminator within {size} bytes; the frame is too long")
        return frames

    def clear(self) -> None:
        self._buffer.clear()

    @property
    def pending(self) -> int:
        """Bytes received that do not yet form a complete frame."""
        return len(self._buffer)
