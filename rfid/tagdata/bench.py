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


def _rates(tags: list[bytes], n: int) -> tuple[float, float]:
    """(tags per CPU-second, tags per wall-clock second) for ``n`` decodes."""
    count = len(tags)
    cpu_started, wall_started = time.process_time(), time.perf_counter()
    for index in range(n):
        decode(tags[index % count])
    cpu, wall = time.process_time() - cpu_started, time.perf_counter() - wall_started
    return (n / cpu if cpu > 0 else float("inf")), (n / wall if wall > 0 else float("inf"))


def bench_decode(n: int) -> dict[str, float | int]:
    """Decode ``n`` ISO 28560-3 tags in each block order.

    ``tags_per_second`` is per core (CPU time of this process, so other load on
    the machine does not distort it); ``wall_tags_per_second`` is wall-clock.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    per_core, wall = _rates(_sample_tags(BlockOrder.NORMAL), n)
    reversed_per_core, _ = _rates(_sample_tags(BlockOrder.REVERSED), n)
    return {
        "n": n,
        "tags_per_second": per_core,
        "wall_tags_per_second": wall,
        "reversed_tags_per_second": reversed_per_core,
    }


if __name__ == "__main__":
    print(bench_decode(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000))
