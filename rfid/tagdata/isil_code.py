"""The ISIL code: ISO 28560-2 compaction scheme 0 for ISIL elements (OIDs 3 and 11).

Three character sets, as in dp2 and the ISO 28560-2 example tag:

======  =====  ============================================  ==================================
Set     Width  Characters                                    Controls
======  =====  ============================================  ==================================
upper   5      0 ``-``, 1-26 ``A``-``Z``, 27 ``:``            28 latch lower, 29 shift lower,
                                                             30 latch digit, 31 shift digit
lower   5      0 ``-``, 1-26 ``a``-``z``, 27 ``/``            28 latch upper, 29 shift upper,
                                                             30 latch digit, 31 shift digit
digit   4      0-9 ``0``-``9``, 10 ``-``, 11 ``:``            12 latch upper, 13 shift upper,
                                                             14 latch lower, 15 shift lower
======  =====  ============================================  ==================================

Decoding starts in upper; a shift applies to one character; the tail is padded
with 1-bits (which can only form a dangling shift, never a character).
"""

from __future__ import annotations

import string
from enum import Enum, auto

from .errors import CorruptTagError, EncodeError


class _Set(Enum):
    UPPER = auto()
    LOWER = auto()
    DIGIT = auto()


_WIDTH = {_Set.UPPER: 5, _Set.LOWER: 5, _Set.DIGIT: 4}
_CHARS = {
    _Set.UPPER: "-" + string.ascii_uppercase + ":",
    _Set.LOWER: "-" + string.ascii_lowercase + "/",
    _Set.DIGIT: string.digits + "-:",
}
_CODE_OF = {charset: {ch: code for code, ch in enumerate(chars)} for charset, chars in _CHARS.items()}
# (latch code, shift code) from a set to another
_CONTROL_TO: dict[_Set, dict[_Set, tuple[int, int]]] = {
    _Set.UPPER: {_Set.LOWER: (28, 29), _Set.DIGIT: (30, 31)},
    _Set.LOWER: {_Set.UPPER: (28, 29), _Set.DIGIT: (30, 31)},
    _Set.DIGIT: {_Set.UPPER: (12, 13), _Set.LOWER: (14, 15)},
}
# code -> (target set, is_shift)
_CONTROL_OF: dict[_Set, dict[int, tuple[_Set, bool]]] = {
    source: {code: (target, code == shift) for target, (latch, shift) in targets.items() for code in (latch, shift)}
    for source, targets in _CONTROL_TO.items()
}
ISIL_CHARACTERS = frozenset("".join(_CHARS.values()))


def fits_isil_code(text: str) -> bool:
    return bool(text) and all(ch in ISIL_CHARACTERS for ch in text)


def decode_isil_code(data: bytes) -> str:
    value = int.from_bytes(data, "big")
    remaining = len(data) * 8
    latched, shifted = _Set.UPPER, None
    chars = []
    while True:
        current = shifted or latched
        width = _WIDTH[current]
        if remaining < width:
            break
        remaining -= width
        code = (value >> remaining) & ((1 << width) - 1)
        control = _CONTROL_OF[current].get(code)
        if control is None:
            chars.append(_CHARS[current][code])
            shifted = None
            continue
        if shifted is not None:
            raise CorruptTagError(f"ISIL code {data.hex()}: a control code follows a shift")
        target, is_shift = control
        if is_shift:
            shifted = target
        else:
            latched = target
    return "".join(chars)


_Codes = tuple[tuple[int, int], ...]  # (code, width) pairs


def encode_isil_code(text: str) -> bytes:
    """The shortest ISIL-code bytes for ``text`` (dynamic programming over latch/shift choices)."""
    if not fits_isil_code(text):
        raise EncodeError(f"ISIL code allows only A-Z a-z 0-9 - : /, got {text!r}")
    # For every set we could be latched in: the cheapest (bit count, codes) so far.
    best: dict[_Set, tuple[int, _Codes]] = {_Set.UPPER: (0, ())}
    for ch in text:
        following: dict[_Set, tuple[int, _Codes]] = {}
        for state, (bits, codes) in best.items():
            for next_state, cost, added in _ways_to_emit(state, ch):
                candidate = (bits + cost, codes + added)
                if next_state not in following or candidate[0] < following[next_state][0]:
                    following[next_state] = candidate
        best = following
    bits, codes = min(best.values(), key=lambda entry: entry[0])
    value = 0
    for code, width in codes:
        value = value << width | code
    pad_bits = -bits % 8
    value = value << pad_bits | ((1 << pad_bits) - 1)
    return value.to_bytes((bits + pad_bits) // 8, "big")


def _ways_to_emit(state: _Set, ch: str) -> list[tuple[_Set, int, _Codes]]:
    """(state afterwards, bits, codes) for each way to emit ``ch`` while latched in ``state``."""
    width = _WIDTH[state]
    if ch in _CODE_OF[state]:
        return [(state, width, ((_CODE_OF[state][ch], width),))]
    ways = []
    for target, (latch, shift) in _CONTROL_TO[state].items():
        if ch in _CODE_OF[target]:
            char_code = (_CODE_OF[target][ch], _WIDTH[target])
            cost = width + _WIDTH[target]
            ways.append((state, cost, ((shift, width), char_code)))
            ways.append((target, cost, ((latch, width), char_code)))
    return ways
