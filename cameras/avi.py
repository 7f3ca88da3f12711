"""Motion-JPEG AVI written straight from JPEG frames: no decoding, no re-encoding.

The ring buffer already holds every frame as a JPEG, and an MJPEG AVI is just
those JPEGs in RIFF chunks with a small header and an index, so a 10 s clip is
written in milliseconds instead of the ~100 decode + encode rounds OpenCV's
``VideoWriter`` would need (which would also lose quality a second time).
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO, Sequence

_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_STANDALONE_MARKERS = {0x01, 0xD8, *range(0xD0, 0xD8)}
_AVIF_HASINDEX = 0x10
_AVIIF_KEYFRAME = 0x10
_FPS_SCALE = 1000


class AviError(Exception):
    """A frame is not a usable JPEG, or the AVI cannot be written."""


def jpeg_size(jpeg: bytes) -> tuple[int, int]:
    """(width, height) from a JPEG's frame header; AviError if it is not a complete JPEG."""
    if not jpeg.startswith(b"\xff\xd8"):
        raise AviError("not a JPEG (no start-of-image marker)")
    if b"\xff\xd9" not in jpeg[-16:]:
        raise AviError("truncated JPEG (no end-of-image marker)")
    position, end = 2, len(jpeg)
    while position + 4 <= end:
        if jpeg[position] != 0xFF:
            raise AviError(f"corrupt JPEG: expected a marker at byte {position}")
        marker = jpeg[position + 1]
        if marker == 0xFF:  # fill byte before a marker
            position += 1
            continue
        if marker in _STANDALONE_MARKERS:
            position += 2
            continue
        (length,) = struct.unpack_from(">H", jpeg, position + 2)
        if marker in _SOF_MARKERS:
            if position + 9 > end:
                break
            height, width = struct.unpack_from(">HH", jpeg, position + 5)
            if width == 0 or height == 0:
                raise AviError("JPEG frame header has a zero size")
            return width, height
        if marker == 0xDA:  # start of scan before any frame header
            break
        position += 2 + length
    raise AviError("JPEG has no frame header")


def write_mjpeg_avi(path: Path, jpegs: Sequence[bytes], fps: float, size: tuple[int, int]) -> None:
    """Write ``jpegs`` (all of ``size``) as an MJPEG AVI at nominal ``fps``."""
    if not jpegs:
        raise AviError("an AVI needs at least one frame")
    if fps <= 0:
        raise AviError(f"frame rate must be positive, got {fps}")
    chunk_sizes = [8 + len(jpeg) + len(jpeg) % 2 for jpeg in jpegs]
    movi_size = 4 + sum(chunk_sizes)
    header_list = _header_list(len(jpegs), fps, size, max(len(jpeg) for jpeg in jpegs))
    index = _index(jpegs, chunk_sizes)
    riff_size = 4 + len(header_list) + 8 + movi_size + len(index)
    try:
        with path.open("wb") as out:
            out.write(b"RIFF" + struct.pack("<I", riff_size) + b"AVI ")
            out.write(header_list)
            out.write(b"LIST" + struct.pack("<I", movi_size) + b"movi")
            for jpeg in jpegs:
                _write_chunk(out, b"00dc", jpeg)
            out.write(index)
    except OSError as exc:
        raise AviError(f"cannot write {path}: {exc.strerror or exc}") from exc


def _write_chunk(out: BinaryIO, fourcc: bytes, payload: bytes) -> None:
    out.write(fourcc + struct.pack("<I", len(payload)))
    out.write(payload)
    if len(payload) % 2:
        out.write(b"\0")


def _riff_list(kind: bytes, payload: bytes) -> bytes:
    return b"LIST" + struct.pack("<I", 4 + len(payload)) + kind + payload


def _riff_chunk(fourcc: bytes, payload: bytes) -> bytes:
    return fourcc + struct.pack("<I", len(payload)) + payload + (b"\0" if len(payload) % 2 else b"")


def _header_list(frames: int, fps: float, size: tuple[int, int], largest: int) -> bytes:
    width, height = size
    rate = max(1, round(fps * _FPS_SCALE))
    avih = struct.pack("<14I", round(1_000_000 / fps), int(largest * fps), 0, _AVIF_HASINDEX, frames, 0, 1,
                       largest, width, height, 0, 0, 0, 0)
    strh = struct.pack("<4s4sIHHIIIIIIiI4h", b"vids", b"MJPG", 0, 0, 0, 0, _FPS_SCALE, rate, 0, frames,
                       largest, -1, 0, 0, 0, width, height)
    strf = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, int.from_bytes(b"MJPG", "little"),
                       width * height * 3, 0, 0, 0, 0)
    stream = _riff_list(b"strl", _riff_chunk(b"strh", strh) + _riff_chunk(b"strf", strf))
    return _riff_list(b"hdrl", _riff_chunk(b"avih", avih) + stream)


def _index(jpegs: Sequence[bytes], chunk_sizes: Sequence[int]) -> bytes:
    # Offsets count from the "movi" fourcc, the convention every reader follows.
    entries = bytearray()
    offset = 4
    for jpeg, chunk_size in zip(jpegs, chunk_sizes):
        entries += struct.pack("<4sIII", b"00dc", _AVIIF_KEYFRAME, offset, len(jpeg))
        offset += chunk_size
    return _riff_chunk(b"idx1", bytes(entries))
