"""ISO 28560-3 fixed layout (the "Danish data model"): decode and encode.

32 bytes = blocks 0-7:

====== === ==================================================================
Offset Len Field
====== === ==================================================================
0      1   high nibble version (1), low nibble type of usage
1      1   number of parts in the set
2      1   part number (1-based)
3      16  primary item ID, ASCII, left-aligned, NUL-padded
19     2   CRC-16/CCITT, low byte first
21     2   country, ISO 3166 alpha-2
23     9   library code (ISIL without the country part), NUL-padded
====== === ==================================================================

The CRC covers bytes 0-18 and 21-31 followed by two 0x00 bytes.  A tag is
accepted in memory order or with every 4-byte block reversed, whichever the CRC
confirms; a CRC is never "repaired" on read.
"""

from __future__ import annotations

from functools import lru_cache

from .blocks import reverse_blocks
from .crc import crc16_ccitt
from .errors import EncodeError
from .isil import join_isil, split_isil
from .model import (
    BlockOrder,
    DecodeStatus,
    TagData,
    TagModel,
    UsageType,
    build_tagdata_unchecked,
    code_for_usage,
    usage_from_code,
)

LAYOUT_SIZE = 32
PII_SIZE = 16
LIBRARY_SIZE = 9
SUPPORTED_VERSION = 1

_PII = slice(3, 19)
_COUNTRY = slice(21, 23)
_LIBRARY = slice(23, 32)
_NO_COUNTRY = b"\x00\x00"
_SWAPPED_NOTE = "usage code in the high nibble and version in the low nibble (Bibliotheca order)"


def layout_crc(layout: bytes) -> int:
    """CRC of a 32-byte layout: bytes 0-18, 21-31, then two zero bytes."""
    return crc16_ccitt(layout[0:19] + layout[21:32] + b"\x00\x00")


def stored_crc(layout: bytes) -> int:
    return layout[19] | layout[20] << 8


def _crc_holds(layout: bytes) -> bool:
    return layout_crc(layout) == stored_crc(layout)


def decode_iso28560_3(memory: bytes) -> TagData | None:
    """The tag, if its CRC holds in memory order or block-reversed order; else ``None``.

    ``None`` means "not this model" (see :func:`diagnose_crc_failure` for tags that
    look like this model but fail the CRC).
    """
    if len(memory) < LAYOUT_SIZE:
        return None
    layout = memory[:LAYOUT_SIZE]
    if _crc_holds(layout):
        return _decode_layout(layout, BlockOrder.NORMAL)
    layout = reverse_blocks(layout)
    if _crc_holds(layout):
        return _decode_layout(layout, BlockOrder.REVERSED)
    return None


def diagnose_crc_failure(memory: bytes) -> TagData | None:
    """A CRC-error result if the memory is laid out like ISO 28560-3 in either order.

    A foreign tag fails the CRC too, so only a plausible layout (version/usage
    byte, set numbers, ASCII item ID and codes) counts as corrupt; anything else
    returns ``None`` ("not this model").
    """
    if len(memory) < LAYOUT_SIZE:
        return None
    normal = memory[:LAYOUT_SIZE]
    reversed_ = reverse_blocks(normal)
    for layout, order in ((normal, BlockOrder.NORMAL), (reversed_, BlockOrder.REVERSED)):
        if _looks_like_layout(layout):
            problem = (
                f"ISO 28560-3 layout but CRC mismatch: stored 0x{stored_crc(layout):04X}, computed "
                f"0x{layout_crc(normal):04X} (memory order) / 0x{layout_crc(reversed_):04X} (blocks reversed)"
            )
            decoded = _decode_layout(layout, order)
            return decoded.model_copy(
                update={"status": DecodeStatus.CRC_ERROR, "crc_valid": False, "problem": problem}
            )
    return None


def _text_field(raw: bytes) -> str | None:
    """ASCII text up to the first NUL; ``None`` if it is not printable ASCII."""
    value = raw.split(b"\x00", 1)[0]
    if not value.isascii():
        return None
    text = value.decode("ascii")
    return text if text.isprintable() else None


def _is_nul_padded_text(raw: bytes) -> bool:
    value, _, padding = raw.partition(b"\x00")
    return _text_field(value) is not None and not padding.strip(b"\x00")


def _looks_like_layout(layout: bytes) -> bool:
    high, low = layout[0] >> 4, layout[0] & 0x0F
    parts, part = layout[1], layout[2]
    country = layout[_COUNTRY]
    return (
        (high == SUPPORTED_VERSION or low == SUPPORTED_VERSION)
        and 1 <= part <= parts
        and layout[3] != 0
        and _is_nul_padded_text(layout[_PII])
        and (country == _NO_COUNTRY or country.isalpha() and country.isupper())
        and _is_nul_padded_text(layout[_LIBRARY])
    )


@lru_cache(maxsize=256)
def _owner_fields(country_raw: bytes, library_raw: bytes) -> tuple[str | None, str | None, str | None, bool]:
    """(country, library code, full ISIL, all printable); cached: a library's tags share their owner."""
    country = None if country_raw == _NO_COUNTRY else _text_field(country_raw)
    library = _text_field(library_raw)
    printable = library is not None and (country_raw == _NO_COUNTRY or country is not None)
    return country, library, join_isil(country, library), printable


def _decode_layout(layout: bytes, order: BlockOrder) -> TagData:
    # Hot path: a kiosk decodes every tag in the field several times a second.
    high, low = layout[0] >> 4, layout[0] & 0x0F
    notes: tuple[str, ...] = ()
    if high == SUPPORTED_VERSION:
        version, usage_code = high, low
    elif low == SUPPORTED_VERSION:
        version, usage_code, notes = low, high, (_SWAPPED_NOTE,)
    else:
        version, usage_code = high, low
    parts, part = layout[1], layout[2]
    pii = _text_field(layout[_PII])
    country, library, owner_isil, owner_ok = _owner_fields(layout[_COUNTRY], layout[_LIBRARY])

    status, problem = DecodeStatus.OK, None
    if version != SUPPORTED_VERSION:
        status, problem = DecodeStatus.UNSUPPORTED, f"ISO 28560-3 data model version {version} is not supported"
    elif not pii:
        status, problem = DecodeStatus.CORRUPT, "primary item ID is empty or not printable ASCII"
    elif not 1 <= part <= parts:
        status, problem = DecodeStatus.CORRUPT, f"impossible set information: part {part} of {parts}"
    elif not owner_ok:
        status, problem = DecodeStatus.CORRUPT, "country or library code is not printable ASCII"

    return build_tagdata_unchecked(
        {
            "model": TagModel.ISO28560_3,
            "status": status,
            "problem": problem,
            "notes": notes,
            "block_order": order,
            "crc_valid": True,
            "version": version,
            "primary_item_id": pii,
            "usage_type": usage_from_code(usage_code),
            "usage_code": usage_code,
            "part_number": part,
            "parts_in_set": parts,
            "owner_isil": owner_isil,
            "country": country,
        }
    )


def encode_iso28560_3(
    primary_item_id: str,
    *,
    usage: UsageType | int = UsageType.CIRCULATING,
    parts_in_set: int = 1,
    part_number: int = 1,
    country: str | None = None,
    owner_isil: str | None = None,
    block_order: BlockOrder = BlockOrder.NORMAL,
) -> bytes:
    """The 32 bytes of an ISO 28560-3 tag, CRC included.

    ``owner_isil`` may be a full ISIL ("VN-HN0001") or the library code alone
    together with ``country``.  ``block_order=REVERSED`` produces the bytes a
    block-reversing reader expects to be given.
    """
    layout = bytearray(LAYOUT_SIZE)
    layout[0] = SUPPORTED_VERSION << 4 | _usage_code_for_encoding(usage)
    layout[1], layout[2] = _set_bytes(parts_in_set, part_number)
    layout[_PII] = _ascii_field(primary_item_id, PII_SIZE, "primary item ID", allow_empty=False)
    isil_country, library = split_isil(owner_isil, country)
    if isil_country is not None:
        layout[_COUNTRY] = isil_country.encode("ascii")
    layout[_LIBRARY] = _ascii_field(library or "", LIBRARY_SIZE, "library code (ISIL without country)")
    crc = layout_crc(layout)
    layout[19], layout[20] = crc & 0xFF, crc >> 8
    encoded = bytes(layout)
    return reverse_blocks(encoded) if block_order is BlockOrder.REVERSED else encoded


def _usage_code_for_encoding(usage: UsageType | int) -> int:
    if isinstance(usage, UsageType):
        code = code_for_usage(usage)
        if code is None:
            raise EncodeError("usage 'other' has no code of its own: pass the numeric code (0-15)")
        return code
    if isinstance(usage, int) and not isinstance(usage, bool) and 0 <= usage <= 0x0F:
        return usage
    raise EncodeError(f"type of usage must be a UsageType or a code 0-15, got {usage!r}")


def _set_bytes(parts_in_set: int, part_number: int) -> tuple[int, int]:
    if not 1 <= parts_in_set <= 255:
        raise EncodeError(f"parts in set must be 1-255, got {parts_in_set}")
    if not 1 <= part_number <= parts_in_set:
        raise EncodeError(f"part number must be 1-{parts_in_set}, got {part_number}")
    return parts_in_set, part_number


def _ascii_field(value: str, size: int, what: str, *, allow_empty: bool = True) -> bytes:
    if not value and not allow_empty:
        raise EncodeError(f"{what} must not be empty")
    if not (value.isascii() and value.isprintable()):
        raise EncodeError(f"{what} must be printable ASCII, got {value!r}")
    if len(value) > size:
        raise EncodeError(f"{what} {value!r} is longer than {size} characters")
    return value.encode("ascii").ljust(size, b"\x00")
