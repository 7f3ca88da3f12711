"""Micro benchmark of the decode hot path (ISO 28560-3, the common case in a kiosk loop).

Run: ``python -m rfid.tagdata.bench [n]``.
"""

from __future__ import annotations

import sys
import time

from .detect import decode
from .iso28560_3 import encode_iso28560_3
from .model import BlockOrder

_SAMPLE_COUNT = 64


def _sample_tags(order: BlockOrder) -> list[bytes]:
    return [
        encode_iso28560_3(f"{30000000 + index:016d}", country="DK", owner_isil="710100", block_order=order)
        for index in range(_SAMPLE_COUNT)
    ]


def _tags_per_second(tags: list[bytes], n: int) -> float:
    count = len(tags)
    started = time.perf_counter()
    for index in range(n):
        decode(tags[index % count])
    elapsed = time.perf_counter() - started
    return n / elapsed if elapsed > 0 else float("inf")


def bench_decode(n: int) -> dict[str, float | int]:
    """Decode ``n`` distinct-looking ISO 28560-3 tags in each block order; rates in tags/s."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    return {
        "n": n,
        "tags_per_second": _tags_per_second(_sample_tags(BlockOrder.NORMAL), n),
        "reversed_tags_per_second": _tags_per_second(_sample_tags(BlockOrder.REVERSED), n),
    }


if __name__ == "__main__":
    print(bench_decode(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000))
