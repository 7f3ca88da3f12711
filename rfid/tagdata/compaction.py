"""ISO 15962 compaction schemes 1-7 for ISO 28560-2 element values.

Rules follow dp2 (DigitalPlatform.RFID), the most complete public implementation:

==  ==========  ==========================================================
1   integer     ASCII digits, no leading 0, 2-19 digits; big-endian, no leading zero bytes
2   numeric     ASCII digits, >= 2; 4 bits per digit, odd count padded with nibble 0xF
3   5-bit       chars 0x41-0x5F, >= 3; tail padded with 0-bits
4   6-bit       chars 0x20-0x5F, >= 4, no trailing space; tail padded with the bits of 100000
5   7-bit       chars <= 0x7E, >= 8; tail padded with 1-bits
6   octet       raw bytes
7   UTF-8       any text
==  ==========  ==========================================================

Scheme 0 (application-defined) is used for ISILs; see :mod:`.isil_code`.
"""

from __future__ import annotations

from collections.abc import Callable

from .errors import CorruptTagError, EncodeError
from .model import CompactionScheme

INTEGER_MAX_DIGITS = 19


def _is_ascii_digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def fits_integer(text: str) -> bool:
    return 2 <= len(text) <= INTEGER_MAX_DIGITS and _is_ascii_digits(text) and text[0] != "0"


def fits_numeric(text: str) -> bool:
    return len(text) >= 2 and _is_ascii_digits(text)


def fits_five_bit(text: str) -> bool:
    return len(text) >= 3 and all(0x41 <= ord(ch) <= 0x5F for ch in text)


def fits_six_bit(text: str) -> bool:
    # A trailing space could not be told apart from the 100000 tail padding.
    return len(text) >= 4 and not text.endswith(" ") and all(0x20 <= ord(ch) <= 0x5F for ch in text)


def fits_seven_bit(text: str) -> bool:
    return len(text) >= 8 and all(ord(ch) <= 0x7E for ch in text)


def _pack(codes: list[int], width: int, pad: Callable[[int], int]) -> bytes:
    """Codes of ``width`` bits, MSB first, then ``pad(n)`` filling the n bits to a byte boundary."""
    value = 0
    for code in codes:
        value = value << width | code
    total_bits = width * len(codes)
    pad_bits = -total_bits % 8
    value = value << pad_bits | pad(pad_bits)
    return value.to_bytes((total_bits + pad_bits) // 8, "big")


def _unpack(data: bytes, width: int) -> list[int]:
    """Every complete ``width``-bit group of ``data``, MSB first."""
    value = int.from_bytes(data, "big")
    total_bits = len(data) * 8
    mask = (1 << width) - 1
    return [(value >> (total_bits - width * (i + 1))) & mask for i in range(total_bits // width)]


def _zero_pad(_bits: int) -> int:
    return 0


def _six_bit_pad(bits: int) -> int:
    return 0b100000 >> (6 - bits) if bits else 0


def _one_pad(bits: int) -> int:
    return (1 << bits) - 1


def encode_integer(text: str) -> bytes:
    if not fits_integer(text):
        raise EncodeError(f"integer compaction needs 2-19 digits without a leading 0, got {text!r}")
    number = int(text)
    return number.to_bytes((number.bit_length() + 7) // 8, "big")


def decode_integer(data: bytes) -> str:
    if not data:
        raise CorruptTagError("integer-compacted element has no data")
    return str(int.from_bytes(data, "big"))


def encode_numeric(text: str) -> bytes:
    if not fits_numeric(text):
        raise EncodeError(f"numeric compaction needs at least 2 ASCII digits, got {text!r}")
    digits = text if len(text) % 2 == 0 else text + "F"
    return bytes.fromhex(digits)


def decode_numeric(data: bytes) -> str:
    digits = data.hex().upper()
    if digits.endswith("F"):
        digits = digits[:-1]
    if digits and not digits.isdigit():
        raise CorruptTagError(f"numeric-compacted element {data.hex()} has non-digit nibbles")
    return digits


def encode_five_bit(text: str) -> bytes:
    if not fits_five_bit(text):
        raise EncodeError(f"5-bit compaction needs >= 3 characters in 0x41-0x5F, got {text!r}")
    return _pack([ord(ch) & 0x1F for ch in text], 5, _zero_pad)


def decode_five_bit(data: bytes) -> str:
    chars = []
    for code in _unpack(data, 5):
        if code == 0:  # 0x40 is outside the alphabet, so a zero group is tail padding
            break
        chars.append(chr(code | 0x40))
    return "".join(chars)


def encode_six_bit(text: str) -> bytes:
    if not fits_six_bit(text):
        raise EncodeError(
            f"6-bit compaction needs >= 4 characters in 0x20-0x5F without a trailing space, got {text!r}"
        )
    return _pack([ord(ch) & 0x3F for ch in text], 6, _six_bit_pad)


def decode_six_bit(data: bytes) -> str:
    text = "".join(chr(code if code & 0x20 else code | 0x40) for code in _unpack(data, 6))
    # A whole 100000 padding group reads as a space; real text never ends in one.
    return text[:-1] if text.endswith(" ") else text


def encode_seven_bit(text: str) -> bytes:
    if not fits_seven_bit(text):
        raise EncodeError(f"7-bit compaction needs >= 8 characters <= 0x7E, got {text!r}")
    return _pack([ord(ch) for ch in text], 7, _one_pad)


def decode_seven_bit(data: bytes) -> str:
    chars = []
    for code in _unpack(data, 7):
        if code == 0x7F:  # DEL is outside the alphabet, so it is tail padding
            break
        chars.append(chr(code))
    return "".join(chars)


def encode_utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:  # lone surrogates
        raise EncodeError(f"text {text!r} cannot be encoded as UTF-8") from exc


def decode_utf8(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorruptTagError(f"UTF-8 element {data.hex()} is not valid UTF-8") from exc


_TEXT_ENCODERS: tuple[tuple[CompactionScheme, Callable[[str], bool], Callable[[str], bytes]], ...] = (
    (CompactionScheme.INTEGER, fits_integer, encode_integer),
    (CompactionScheme.NUMERIC, fits_numeric, encode_numeric),
    (CompactionScheme.FIVE_BIT, fits_five_bit, encode_five_bit),
    (CompactionScheme.SIX_BIT, fits_six_bit, encode_six_bit),
    (CompactionScheme.SEVEN_BIT, fits_seven_bit, encode_seven_bit),
    (CompactionScheme.UTF8, lambda _text: True, encode_utf8),
)

_TEXT_DECODERS: dict[CompactionScheme, Callable[[bytes], str]] = {
    CompactionScheme.INTEGER: decode_integer,
    CompactionScheme.NUMERIC: decode_numeric,
    CompactionScheme.FIVE_BIT: decode_five_bit,
    CompactionScheme.SIX_BIT: decode_six_bit,
    CompactionScheme.SEVEN_BIT: decode_seven_bit,
    CompactionScheme.UTF8: decode_utf8,
}


def compact_text(text: str) -> tuple[CompactionScheme, bytes]:
    """The shortest encoding of ``text`` that round-trips exactly.

    Ties go to the earlier scheme in dp2's order (integer, numeric, 5-, 6-, 7-bit,
    then UTF-8), so that other readers see the encoding they would have chosen.
    """
    if not text:
        raise EncodeError("an element value must not be empty")
    best: tuple[CompactionScheme, bytes] | None = None
    for scheme, fits, encode in _TEXT_ENCODERS:
        if fits(text):
            data = encode(text)
            if best is None or len(data) < len(best[1]):
                best = (scheme, data)
    assert best is not None  # UTF-8 always fits
    return best


def compact_with(scheme: CompactionScheme, text: str) -> bytes:
    """``text`` in the given text scheme (1-5 or 7); raises :class:`EncodeError` if it does not fit."""
    for candidate, _fits, encode in _TEXT_ENCODERS:
        if candidate is scheme:
            return encode(text)
    raise EncodeError(f"compaction scheme {scheme.name} does not encode text")


def decompact_text(scheme: CompactionScheme, data: bytes) -> str:
    """Text of a scheme 1-5 or 7 element; raises :class:`CorruptTagError` on malformed data."""
    decoder = _TEXT_DECODERS.get(scheme)
    if decoder is None:
        raise CorruptTagError(f"compaction scheme {scheme.name} has no text form")
    return decoder(data)
