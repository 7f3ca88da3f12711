"""Streaming frame parser that resynchronises on garbage and CRC errors.

Serial links deliver frames split, glued together, or with noise in between. The
reader keeps a buffer and, on every ``feed``, returns the earliest complete frames
whose CRC checks out. Bytes that cannot belong to a valid frame are dropped and
counted. A garbage byte that looks like a long length field does not stall a valid
frame behind it: complete, CRC-valid frames later in the buffer win over an
incomplete candidate in front of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from rfid.feig.crc import crc16
from rfid.feig.frames import ADVANCED_MAX_LENGTH, Frame, declared_length, decode_frame


@dataclass
class FrameReaderStats:
    """Counters since construction (never reset by ``clear``)."""

    frames: int = 0
    crc_errors: int = 0  # complete, plausible frames whose CRC failed
    resyncs: int = 0  # times bytes were dropped to find the next frame start
    garbage_bytes: int = 0  # bytes dropped in total

    def as_dict(self) -> dict[str, int]:
        return {
            "frames": self.frames,
            "crc_errors": self.crc_errors,
            "resyncs": self.resyncs,
            "garbage_bytes": self.garbage_bytes,
        }


class FrameReader:
    """Incremental parser: ``feed(bytes) -> list[Frame]``."""

    def __init__(self, max_frame_length: int = ADVANCED_MAX_LENGTH) -> None:
        self._buffer = bytearray()
        self._max_length = max_frame_length
        self.stats = FrameReaderStats()

    @property
    def pending(self) -> int:
        """Bytes buffered that do not form a complete frame yet."""
        return len(self._buffer)

    def clear(self) -> None:
        """Drop buffered bytes, e.g. a half answer left over from an earlier request."""
        if self._buffer:
            self._discard(len(self._buffer), crc_error=False)

    def feed(self, data: bytes | bytearray) -> list[Frame]:
        self._buffer.extend(data)
        frames: list[Frame] = []
        while self._buffer:
            start, length, waiting_at = self._find_valid_frame()
            if start is None:
                self._discard(waiting_at, crc_error=self._is_crc_error_at(0))
                break
            if start:
                self._discard(start, crc_error=self._is_crc_error_at(0))
            frames.append(decode_frame(self._buffer[:length]))
            del self._buffer[:length]
            self.stats.frames += 1
        return frames

    def _find_valid_frame(self) -> tuple[int | None, int, int]:
        """(start, length, first_incomplete): the earliest complete CRC-valid frame, or start None.

        ``first_incomplete`` is where the earliest candidate still waiting for bytes begins
        (buffer length if none): everything before it can never start a valid frame.
        """
        first_incomplete = len(self._buffer)
        for start in range(len(self._buffer)):
            length = self._candidate_length(start)
            if length is None:
                first_incomplete = min(first_incomplete, start)
                continue
            if length and self._crc_ok(start, length):
                return start, length, first_incomplete
        return None, 0, first_incomplete

    def _candidate_length(self, start: int) -> int | None:
        """Announced length if complete, None if more bytes are needed, 0 if impossible."""
        length = declared_length(self._buffer, start)
        if length is None:
            return None
        if length == 0 or length > self._max_length:
            return 0
        if start + length > len(self._buffer):
            return None
        return length

    def _crc_ok(self, start: int, length: int) -> bool:
        return crc16(self._buffer[start : start + length]) == 0

    def _is_crc_error_at(self, start: int) -> bool:
        length = self._candidate_length(start)
        return bool(length) and not self._crc_ok(start, length)

    def _discard(self, count: int, *, crc_error: bool) -> None:
        if count <= 0:
            return
        del self._buffer[:count]
        self.stats.resyncs += 1
        self.stats.garbage_bytes += count
        if crc_error:
            self.stats.crc_errors += 1
