"""Which characters a TrueType font has a glyph for (its ``cmap``), to prove no text shows as boxes."""

from __future__ import annotations

import struct
from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=8)
def covered_codepoints(path: Path) -> frozenset[int]:
    data = path.read_bytes()
    (num_tables,) = struct.unpack_from(">H", data, 4)
    tables = {}
    for index in range(num_tables):
        tag, _, offset, _ = struct.unpack_from(">4sIII", data, 12 + 16 * index)
        tables[tag] = offset
    cmap = tables[b"cmap"]
    _, count = struct.unpack_from(">HH", data, cmap)
    covered: set[int] = set()
    for index in range(count):
        platform, encoding, offset = struct.unpack_from(">HHI", data, cmap + 4 + 8 * index)
        if (platform, encoding) not in ((3, 1), (3, 10), (0, 3), (0, 4)):
            continue
        covered |= _subtable(data, cmap + offset)
    return frozenset(covered)


def _subtable(data: bytes, start: int) -> set[int]:
    (fmt,) = struct.unpack_from(">H", data, start)
    if fmt == 4:
        return _format4(data, start)
    if fmt == 12:
        (groups,) = struct.unpack_from(">I", data, start + 12)
        covered: set[int] = set()
        for group in range(groups):
            first, last, glyph = struct.unpack_from(">III", data, start + 16 + 12 * group)
            if glyph:
                covered.update(range(first, last + 1))
        return covered
    return set()


def _format4(data: bytes, start: int) -> set[int]:
    (seg_x2,) = struct.unpack_from(">H", data, start + 6)
    segs = seg_x2 // 2
    ends = struct.unpack_from(f">{segs}H", data, start + 14)
    starts = struct.unpack_from(f">{segs}H", data, start + 16 + seg_x2)
    deltas = struct.unpack_from(f">{segs}h", data, start + 16 + 2 * seg_x2)
    range_offsets_at = start + 16 + 3 * seg_x2
    offsets = struct.unpack_from(f">{segs}H", data, range_offsets_at)
    covered = set()
    for seg in range(segs):
        for code in range(starts[seg], ends[seg] + 1):
            if code == 0xFFFF:
                continue
            if offsets[seg] == 0:
                glyph = (code + deltas[seg]) & 0xFFFF
            else:
                at = range_offsets_at + 2 * seg + offsets[seg] + 2 * (code - starts[seg])
                (glyph,) = struct.unpack_from(">H", data, at)
                glyph = (glyph + deltas[seg]) & 0xFFFF if glyph else 0
            if glyph:
                covered.add(code)
    return covered


def missing_glyphs(text: str, font: Path) -> set[str]:
    covered = covered_codepoints(font)
    return {char for char in text if not char.isspace() and ord(char) not in covered}
