"""Per-block byte reversal.

Some reader/vendor combinations (FEIG readers as used by go-feig) deliver each
4-byte block with its bytes reversed.  The transformation is its own inverse.
"""

from __future__ import annotations

import struct
from functools import cache

BLOCK_SIZE = 4


@cache
def _block_codecs(blocks: int) -> tuple[struct.Struct, struct.Struct]:
    return struct.Struct(f">{blocks}I"), struct.Struct(f"<{blocks}I")


def reverse_blocks(memory: bytes) -> bytes:
    """Reverse the bytes inside every full 4-byte block; a trailing partial block is kept."""
    blocks = len(memory) // BLOCK_SIZE
    big_endian, little_endian = _block_codecs(blocks)
    # Reading each block as a big-endian word and writing it little-endian reverses it, in C.
    reversed_part = little_endian.pack(*big_endian.unpack_from(memory))
    return reversed_part + memory[blocks * BLOCK_SIZE :] if len(memory) % BLOCK_SIZE else reversed_part


def pad_to_block(data: bytes, block_size: int = BLOCK_SIZE) -> bytes:
    """``data`` followed by 0x00 up to the next block boundary."""
    return data + bytes(-len(data) % block_size)
