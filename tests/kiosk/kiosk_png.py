"""Small PNGs of kiosk screens: an 8-bit palette of the screen's most used colours (flat UI, anti-aliased text).

A kiosk screen has a few flat colours plus the anti-aliasing ramps of its text;
its 256 most frequent colours cover it with no visible change, and an indexed
PNG is about half the size of an RGB one. Written with zlib, no imaging library.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

PALETTE_SIZE = 256
_CHUNK = 4096  # colours compared at once when mapping onto the palette (bounds the memory used)


def write_palette_png(path: Path, rgb: np.ndarray) -> int:
    """Write ``rgb`` (height × width × 3, uint8) as an indexed PNG; returns the file's size in bytes."""
    height, width, _ = rgb.shape
    palette, indices = _quantize(rgb.reshape(-1, 3))
    rows = indices.reshape(height, width).astype(np.uint8)
    raw = np.hstack([np.zeros((height, 1), np.uint8), rows]).tobytes()  # filter byte 0 before every row
    header = struct.pack(">IIBBBBB", width, height, 8, 3, 0, 0, 0)
    data = (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"PLTE", palette.astype(np.uint8).tobytes())
            + _chunk(b"IDAT", zlib.compress(raw, 9)) + _chunk(b"IEND", b""))
    path.write_bytes(data)
    return len(data)


def _quantize(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    packed = (pixels[:, 0].astype(np.uint32) << 16) | (pixels[:, 1].astype(np.uint32) << 8) | pixels[:, 2]
    colours, inverse, counts = np.unique(packed, return_inverse=True, return_counts=True)
    unpacked = np.stack([(colours >> 16) & 255, (colours >> 8) & 255, colours & 255], axis=1).astype(np.int32)
    if len(colours) <= PALETTE_SIZE:
        return unpacked, inverse
    palette = unpacked[np.argsort(counts)[::-1][:PALETTE_SIZE]]
    nearest = np.empty(len(colours), np.int64)
    for start in range(0, len(colours), _CHUNK):
        distance = ((unpacked[start:start + _CHUNK, None, :] - palette[None, :, :]) ** 2).sum(axis=2)
        nearest[start:start + _CHUNK] = distance.argmin(axis=1)
    return palette, nearest[inverse]


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
