"""ISO 28560-2 (ISO 15962 element encoding, DSFID 0x06): decode and encode.

The primary item ID (OID 1) comes first, the content parameter (OID 2, a bitmap
of the optional OIDs present, MSB of the first byte = OID 3) second, then the
optional elements.  Values:

* set information (OID 4): digits, total parts then part number, equal widths
  ("1203" = part 3 of 12);
* type of usage (OID 5): two hex digits, main type then subtype ("10" = circulating);
* ISILs (OIDs 3, 11): the ISIL code (scheme 0) of :mod:`.isil_code`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .blocks import pad_to_block, reverse_blocks
from .compaction import compact_text, decompact_text
from .elements import RawElement, build_element, parse_elements
from .errors import CorruptTagError, EncodeError
from .isil import country_of_isil, full_isil
from .isil_code import decode_isil_code, encode_isil_code, fits_isil_code
from .model import (
    BlockOrder,
    CompactionScheme,
    DecodeStatus,
    Element,
    TagData,
    TagModel,
    UsageType,
    code_for_usage,
    usage_from_code,
)
from .oids import (
    CONTENT_PARAMETER,
    FIRST_OPTIONAL_OID,
    ISIL_OIDS,
    MAX_OID,
    OWNER_INSTITUTION,
    PRIMARY_ITEM_ID,
    SET_INFORMATION,
    TAGDATA_FIELD_OF_OID,
    TITLE,
    TYPE_OF_USAGE,
    oid_name,
)

DSFID_ISO28560_2 = 0x06
FIRST_EXTRA_OID = 6  # OIDs 1-5 have parameters of their own

# Elements whose octet-string form is shown as hex digits rather than text.
_HEX_TEXT_OIDS = frozenset({CONTENT_PARAMETER, TYPE_OF_USAGE})


# --------------------------------------------------------------------------- decode


def decode_iso28560_2(memory: bytes, dsfid: int | None = DSFID_ISO28560_2) -> TagData:
    """Decode element-encoded memory; faults give a CORRUPT result listing what was read.

    If the memory does not decode cleanly in memory order but does with every
    block reversed, the reversed reading is used (``block_order=reversed``).
    There is no CRC, so a memory that decodes cleanly both ways is read in
    memory order.
    """
    elements, error = parse_elements(memory)
    tag = _tagdata_from_elements(elements, error, BlockOrder.NORMAL, dsfid)
    if tag.ok:
        return tag
    elements, error = parse_elements(reverse_blocks(memory))
    swapped = _tagdata_from_elements(elements, error, BlockOrder.REVERSED, dsfid)
    return swapped if swapped.ok else tag


def probe_iso28560_2(memory: bytes, dsfid: int | None) -> TagData | None:
    """The decoded tag if the memory parses cleanly as ISO 28560-2 elements; else ``None``.

    Used when the reader gave no DSFID: only a fully consistent structure counts.
    """
    if not memory or memory[0] & 0x0F != PRIMARY_ITEM_ID:
        return None
    elements, error = parse_elements(memory)
    if error is not None or not elements:
        return None
    tag = _tagdata_from_elements(elements, None, BlockOrder.NORMAL, dsfid)
    return tag if tag.ok else None


def _tagdata_from_elements(
    raw_elements: list[RawElement], error: str | None, order: BlockOrder, dsfid: int | None
) -> TagData:
    fields: dict[str, Any] = {}
    elements: list[Element] = []
    notes: list[str] = []
    problem = error
    for index, raw in enumerate(raw_elements):
        try:
            text = _element_text(raw)
            elements.append(
                Element(
                    oid=raw.oid,
                    name=oid_name(raw.oid),
                    compaction=raw.scheme,
                    text=text,
                    data_hex=raw.data.hex().upper(),
                )
            )
            _apply_element(raw, text, fields)
            if raw.oid == CONTENT_PARAMETER and index != 1:
                notes.append("content parameter (OID 2) is not the second element")
        except CorruptTagError as exc:
            problem = problem or str(exc)
            break
    if problem is None and not fields.get("primary_item_id"):
        problem = "primary item ID is missing or empty"
    announced = fields.get("content_parameter")
    if announced is not None:
        present = {element.oid for element in elements if element.oid >= FIRST_OPTIONAL_OID}
        if set(announced) != present:
            notes.append(
                f"content parameter announces OIDs {sorted(announced)} but the tag holds {sorted(present)}"
            )
    return TagData(
        model=TagModel.ISO28560_2,
        status=DecodeStatus.OK if problem is None else DecodeStatus.CORRUPT,
        problem=problem,
        notes=tuple(notes),
        block_order=order,
        dsfid=dsfid,
        elements=tuple(elements),
        **fields,
    )


def _element_text(raw: RawElement) -> str | None:
    if raw.oid == CONTENT_PARAMETER or raw.scheme is CompactionScheme.OCTET_STRING and raw.oid in _HEX_TEXT_OIDS:
        return raw.data.hex().upper()
    if raw.scheme is CompactionScheme.APPLICATION_DEFINED:
        return decode_isil_code(raw.data) if raw.oid in ISIL_OIDS else None
    if raw.scheme is CompactionScheme.OCTET_STRING:
        try:
            return raw.data.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return decompact_text(raw.scheme, raw.data)


def _apply_element(raw: RawElement, text: str | None, fields: dict[str, Any]) -> None:
    """Copy one element into the TagData fields it feeds."""
    if raw.oid == PRIMARY_ITEM_ID:
        fields["primary_item_id"] = text
    elif raw.oid == CONTENT_PARAMETER:
        fields["content_parameter"] = _oids_in_bitmap(raw.data)
    elif raw.oid == OWNER_INSTITUTION:
        fields["owner_isil"] = text
        fields["country"] = country_of_isil(text) if text else None
    elif raw.oid == SET_INFORMATION:
        fields["parts_in_set"], fields["part_number"] = _parse_set_information(text)
    elif raw.oid == TYPE_OF_USAGE:
        code = _parse_usage_code(text)
        fields["usage_code"] = code
        fields["usage_type"] = usage_from_code(code)
    elif raw.oid in TAGDATA_FIELD_OF_OID:
        fields[TAGDATA_FIELD_OF_OID[raw.oid]] = text


def _oids_in_bitmap(bitmap: bytes) -> tuple[int, ...]:
    return tuple(
        FIRST_OPTIONAL_OID + byte_index * 8 + bit
        for byte_index, byte in enumerate(bitmap)
        for bit in range(8)
        if byte & (0x80 >> bit)
    )


def _parse_set_information(text: str | None) -> tuple[int, int]:
    if not text or not (text.isascii() and text.isdigit()):
        raise CorruptTagError(f"set information {text!r} is not a string of digits")
    if len(text) % 2:
        text = "0" + text  # an integer-compacted value loses its leading zero
    half = len(text) // 2
    parts, part = int(text[:half]), int(text[half:])
    if not 1 <= part <= parts:
        raise CorruptTagError(f"impossible set information {text!r}: part {part} of {parts}")
    return parts, part


def _parse_usage_code(text: str | None) -> int:
    if not text or text[0] not in "0123456789ABCDEFabcdef":
        raise CorruptTagError(f"type of usage {text!r} does not start with a hex digit")
    return int(text[0], 16)


# --------------------------------------------------------------------------- encode


def encode_iso28560_2(
    primary_item_id: str,
    *,
    owner_isil: str | None = None,
    country: str | None = None,
    usage: UsageType | int | None = None,
    parts_in_set: int | None = None,
    part_number: int | None = None,
    shelf_location: str | None = None,
    media_format: str | None = None,
    marc_media_format: str | None = None,
    title: str | None = None,
    extra_elements: Mapping[int, str | bytes] | None = None,
    align_pii: bool = False,
    memory_size: int | None = None,
    block_order: BlockOrder = BlockOrder.NORMAL,
) -> bytes:
    """User memory holding the given elements (write it with DSFID 0x06).

    Each text value gets the shortest compaction that round-trips; ISILs use the
    ISIL code; ``bytes`` values in ``extra_elements`` (OID -> value, OIDs 6-270)
    are written as octet strings.  ``align_pii`` pads the PII element to a block
    boundary so its blocks can be locked.  Without ``memory_size`` the result
    ends with a 0x00 terminator and is padded to whole blocks; with it, the result
    is exactly that long.
    """
    values = _element_values(
        owner_isil=full_isil(owner_isil, country),
        usage=usage,
        set_info=_set_information_text(parts_in_set, part_number),
        named={6: shelf_location, 7: media_format, 8: marc_media_format, TITLE: title},
        extra=extra_elements or {},
    )
    if not primary_item_id:
        raise EncodeError("primary item ID must not be empty")
    encoded = [build_element(PRIMARY_ITEM_ID, *compact_text(primary_item_id), align_at=0 if align_pii else None)]
    if values:
        bitmap = _bitmap_of(values.keys())
        # Scheme 0 as in the ISO 28560-2 example tag (dp2 writes it the same way).
        encoded.append(build_element(CONTENT_PARAMETER, CompactionScheme.APPLICATION_DEFINED, bitmap))
    for oid in sorted(values):
        encoded.append(build_element(oid, *_compact_value(oid, values[oid])))
    memory = _fit_memory(b"".join(encoded), memory_size)
    return reverse_blocks(memory) if block_order is BlockOrder.REVERSED else memory


def _element_values(
    *,
    owner_isil: str | None,
    usage: UsageType | int | None,
    set_info: str | None,
    named: Mapping[int, str | None],
    extra: Mapping[int, str | bytes],
) -> dict[int, str | bytes]:
    values: dict[int, str | bytes] = {}
    for oid, value in extra.items():
        if not isinstance(oid, int) or not FIRST_EXTRA_OID <= oid <= MAX_OID:
            raise EncodeError(f"extra element OID must be {FIRST_EXTRA_OID}-{MAX_OID}, got {oid!r}")
        if not isinstance(value, (str, bytes)) or not value:
            raise EncodeError(f"extra element OID {oid} must be a non-empty str or bytes, got {value!r}")
        values[oid] = value
    generated: dict[int, str | None] = {
        OWNER_INSTITUTION: owner_isil,
        SET_INFORMATION: set_info,
        TYPE_OF_USAGE: None if usage is None else f"{_usage_code(usage):X}0",
        **named,
    }
    for oid, value in generated.items():
        if value is None:
            continue
        if oid in values:
            raise EncodeError(f"OID {oid} ({oid_name(oid)}) is given twice")
        if not value:
            raise EncodeError(f"{oid_name(oid)} must not be empty")
        values[oid] = value
    return values


def _usage_code(usage: UsageType | int) -> int:
    if isinstance(usage, UsageType):
        code = code_for_usage(usage)
        if code is None:
            raise EncodeError("usage 'other' has no code of its own: pass the numeric code (0-15)")
        return code
    if isinstance(usage, int) and not isinstance(usage, bool) and 0 <= usage <= 0x0F:
        return usage
    raise EncodeError(f"type of usage must be a UsageType or a code 0-15, got {usage!r}")


def _set_information_text(parts_in_set: int | None, part_number: int | None) -> str | None:
    if parts_in_set is None and part_number is None:
        return None
    if parts_in_set is None or part_number is None:
        raise EncodeError("parts in set and part number must be given together")
    if not 1 <= part_number <= parts_in_set:
        raise EncodeError(f"part number must be 1-{parts_in_set}, got {part_number}")
    width = max(2, len(str(parts_in_set)))
    return f"{parts_in_set:0{width}d}{part_number:0{width}d}"


def _bitmap_of(oids: Any) -> bytes:
    highest = max(oids)
    bitmap = bytearray((highest - FIRST_OPTIONAL_OID) // 8 + 1)
    for oid in oids:
        index = oid - FIRST_OPTIONAL_OID
        bitmap[index // 8] |= 0x80 >> (index % 8)
    return bytes(bitmap)


def _compact_value(oid: int, value: str | bytes) -> tuple[CompactionScheme, bytes]:
    if isinstance(value, bytes):
        return CompactionScheme.OCTET_STRING, value
    if oid in ISIL_OIDS and fits_isil_code(value):
        return CompactionScheme.APPLICATION_DEFINED, encode_isil_code(value)
    return compact_text(value)


def _fit_memory(elements: bytes, memory_size: int | None) -> bytes:
    if memory_size is None:
        return pad_to_block(elements + b"\x00")
    if len(elements) > memory_size:
        raise EncodeError(f"the elements need {len(elements)} bytes but the tag has {memory_size}")
    return elements.ljust(memory_size, b"\x00")
