"""Barcode scanners that type: a keyboard wedge sends the card number as keystrokes, then Enter.

Scanners type far faster than people. Characters more than ``gap_s`` apart
start a new code, so a patron poking at a hardware keyboard does not produce a
card number; a code needs at least ``min_length`` characters.
"""

from __future__ import annotations

import time
from typing import Callable

MAX_LENGTH = 64


class BarcodeWedge:
    def __init__(self, on_code: Callable[[str], None], *, gap_s: float = 0.1, min_length: int = 4,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._on_code = on_code
        self._gap_s = gap_s
        self._min_length = min_length
        self._clock = clock
        self._buffer = ""
        self._last = 0.0

    def text(self, characters: str) -> None:
        now = self._clock()
        if now - self._last > self._gap_s:
            self._buffer = ""
        self._last = now
        printable = "".join(char for char in characters if char.isprintable() and not char.isspace())
        self._buffer = (self._buffer + printable)[-MAX_LENGTH:]

    def enter(self) -> None:
        code, self._buffer = self._buffer, ""
        if len(code) >= self._min_length and self._clock() - self._last <= self._gap_s:
            self._on_code(code)
