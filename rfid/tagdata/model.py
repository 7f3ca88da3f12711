"""The decoded view of a tag: :class:`TagData` and its enums.

One model for every data model, so that the kiosk, the gate and the staff tools
handle a tag the same way whatever was written on it.  Fields a data model does
not have stay ``None``.

Outcome of a decode, in :attr:`TagData.status`:

* ``ok``: the data decoded and is consistent; :attr:`TagData.problem` is ``None``.
* ``blank``: nothing written (all 0x00, all 0xFF, a 3M factory blank, an empty
  ISO 28560-2 memory).  ``model`` is ``blank``.
* ``unknown``: not blank, but no supported data model matches. ``model`` is ``unknown``.
* ``unsupported``: a known model in a version this decoder does not implement.
* ``crc_error``: laid out like ISO 28560-3 but the CRC holds in neither block order.
* ``corrupt``: a known model with inconsistent content (truncated element, bad
  compaction, impossible set information, ...).

Everything but ``ok`` carries an explanation in ``problem``.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum
from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict


class TagModel(StrEnum):
    ISO28560_3 = "iso28560_3"
    ISO28560_2 = "iso28560_2"
    THREEM = "threem"
    BLANK = "blank"
    UNKNOWN = "unknown"


class UsageType(StrEnum):
    """Type of usage (ISO 28560-1 main type); OTHER keeps the raw code in ``usage_code``."""

    ACQUISITION = "acquisition"
    CIRCULATING = "circulating"
    NOT_FOR_CIRCULATION = "not_for_circulation"
    DISCARDED = "discarded"
    PATRON_CARD = "patron_card"
    OTHER = "other"


class BlockOrder(StrEnum):
    """Byte order inside each 4-byte block as the memory was delivered."""

    NORMAL = "normal"
    REVERSED = "reversed"


class DecodeStatus(StrEnum):
    OK = "ok"
    BLANK = "blank"
    UNKNOWN = "unknown"
    UNSUPPORTED = "unsupported"
    CRC_ERROR = "crc_error"
    CORRUPT = "corrupt"


class CompactionScheme(IntEnum):
    """ISO 15962 compaction schemes (bits 6-4 of an ISO 28560-2 precursor)."""

    APPLICATION_DEFINED = 0
    INTEGER = 1
    NUMERIC = 2
    FIVE_BIT = 3
    SIX_BIT = 4
    SEVEN_BIT = 5
    OCTET_STRING = 6
    UTF8 = 7


_USAGE_BY_CODE: dict[int, UsageType] = {
    0: UsageType.ACQUISITION,
    1: UsageType.CIRCULATING,
    2: UsageType.NOT_FOR_CIRCULATION,
    7: UsageType.DISCARDED,
    8: UsageType.PATRON_CARD,
}
_CODE_BY_USAGE: dict[UsageType, int] = {usage: code for code, usage in _USAGE_BY_CODE.items()}


def usage_from_code(code: int) -> UsageType:
    """Main type-of-usage code (0-15) to :class:`UsageType`; unlisted codes are OTHER."""
    return _USAGE_BY_CODE.get(code, UsageType.OTHER)


def code_for_usage(usage: UsageType) -> int | None:
    """The main type-of-usage code of ``usage``; ``None`` for OTHER (no single code)."""
    return _CODE_BY_USAGE.get(usage)


class Element(BaseModel):
    """One ISO 28560-2 data element as found on the tag."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    oid: int
    name: str
    compaction: CompactionScheme
    text: str | None = None  # None when the bytes have no text form (e.g. undecodable octets)
    data_hex: str  # the compacted bytes exactly as stored


class TagData(BaseModel):
    """A decoded tag. Check :attr:`ok` (or decode with ``strict=True``) before trusting fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: TagModel
    status: DecodeStatus = DecodeStatus.OK
    problem: str | None = None
    notes: tuple[str, ...] = ()  # non-fatal observations, e.g. a vendor quirk that was accepted
    block_order: BlockOrder = BlockOrder.NORMAL
    crc_valid: bool | None = None  # None: the data model has no CRC (or none was found)
    version: int | None = None  # ISO 28560-3 data model version

    primary_item_id: str | None = None
    usage_type: UsageType | None = None
    usage_code: int | None = None  # main type-of-usage code as stored (0-15)
    part_number: int | None = None
    parts_in_set: int | None = None
    owner_isil: str | None = None  # full ISIL, e.g. "DK-710100"
    country: str | None = None  # ISO 3166 alpha-2 prefix of the ISIL

    # ISO 28560-2 only
    dsfid: int | None = None  # the DSFID the elements were decoded under, if the reader gave one
    content_parameter: tuple[int, ...] | None = None  # OIDs the tag announces
    shelf_location: str | None = None
    media_format: str | None = None  # ONIX media format (OID 7)
    marc_media_format: str | None = None  # OID 8
    supplier_id: str | None = None
    order_number: str | None = None
    ill_borrowing_isil: str | None = None
    ill_borrowing_transaction: str | None = None
    gs1_product_id: str | None = None
    alternative_item_id: str | None = None
    title: str | None = None
    elements: tuple[Element, ...] = ()

    # 3M proprietary layout only
    item_type: str | None = None
    item_type_code: int | None = None
    branch: int | None = None
    library_number: int | None = None
    custom_value: int | None = None

    @property
    def ok(self) -> bool:
        """True only for consistent item data (not blank, unknown or corrupt)."""
        return self.status is DecodeStatus.OK


_new_tagdata = object.__new__
_set_attr = object.__setattr__


@cache
def _tagdata_defaults() -> dict[str, Any]:
    return {name: info.default for name, info in TagData.model_fields.items()}


def build_tagdata_unchecked(fields: dict[str, Any]) -> TagData:
    """Create a :class:`TagData` from ``fields`` without pydantic validation (decode hot path).

    ``model_construct`` is slower than validation for a model this wide, so this
    fills the instance the way it does, from a prebuilt default dict.  Only call
    it with values of the declared types (the decoders check them first); tests
    compare its result with the validating constructor.
    """
    values = _tagdata_defaults().copy()
    values.update(fields)
    instance = _new_tagdata(TagData)
    _set_attr(instance, "__dict__", values)
    _set_attr(instance, "__pydantic_fields_set__", set(fields))
    _set_attr(instance, "__pydantic_extra__", None)
    _set_attr(instance, "__pydantic_private__", None)
    return instance
