"""``decode``: find the data model of a tag's memory and decode it.

Order of the checks, cheapest and most common first:

1. ISO 28560-3 whose CRC holds (memory order, then blocks reversed);
2. blank: all 0x00, all 0xFF, a 3M factory blank, or DSFID 0x06 with no elements;
3. DSFID 0x06: ISO 28560-2 (faults give a ``corrupt`` result);
4. the 3M layout;
5. an ISO 28560-3 layout whose CRC fails: ``crc_error`` (checked before the
   next step so that a damaged ISO 28560-3 tag is never read as something else);
6. no DSFID (or 0x00): ISO 28560-2 if the whole structure decodes cleanly;
7. otherwise ``unknown``.

Outcomes (see :class:`~.model.DecodeStatus`): non-strict, every outcome is
returned as :class:`TagData`, and only :attr:`TagData.ok` results are item data.
With ``strict=True`` a ``crc_error`` raises :class:`CrcError`, ``corrupt``
:class:`CorruptTagError`, ``unknown`` :class:`UnknownModelError` and
``unsupported`` :class:`UnsupportedTagError`; a blank tag is still returned
(model ``blank``), because blank tags are an expected, harmless reading.
"""

from __future__ import annotations

import logging

from .errors import CorruptTagError, CrcError, InvalidInputError, TagDataError, UnknownModelError, UnsupportedTagError
from .iso28560_2 import DSFID_ISO28560_2, decode_iso28560_2, probe_iso28560_2
from .iso28560_3 import decode_iso28560_3, diagnose_crc_failure
from .model import DecodeStatus, TagData, TagModel
from .threem import decode_threem, is_threem_factory_blank

logger = logging.getLogger(__name__)

_ERROR_FOR_STATUS: dict[DecodeStatus, type[TagDataError]] = {
    DecodeStatus.CRC_ERROR: CrcError,
    DecodeStatus.CORRUPT: CorruptTagError,
    DecodeStatus.UNKNOWN: UnknownModelError,
    DecodeStatus.UNSUPPORTED: UnsupportedTagError,
}


def decode(memory: bytes | bytearray | memoryview, dsfid: int | None = None, *, strict: bool = False) -> TagData:
    """Decode a tag's user memory (``dsfid``: the tag's DSFID register, if the reader gave it).

    Never raises on arbitrary bytes unless ``strict``; only :class:`TagDataError`
    subclasses are ever raised.
    """
    if not isinstance(memory, bytes):
        memory = _as_bytes(memory)
    if dsfid is not None and (not isinstance(dsfid, int) or isinstance(dsfid, bool) or not 0 <= dsfid <= 0xFF):
        raise InvalidInputError(f"DSFID must be an integer 0-255 or None, got {dsfid!r}")
    tag = _detect(memory, dsfid)
    if tag.status is not DecodeStatus.OK:
        logger.debug("tag %s (%d bytes, dsfid=%s): %s", tag.status.value, len(memory), dsfid, tag.problem)
        if strict and tag.status in _ERROR_FOR_STATUS:
            raise _ERROR_FOR_STATUS[tag.status](tag.problem)
    return tag


def _as_bytes(memory: object) -> bytes:
    if isinstance(memory, (bytearray, memoryview)):
        return bytes(memory)
    raise InvalidInputError(f"tag memory must be bytes, bytearray or memoryview, got {type(memory).__name__}")


def _detect(memory: bytes, dsfid: int | None) -> TagData:
    if dsfid != DSFID_ISO28560_2:
        tag = decode_iso28560_3(memory)
        if tag is not None:
            return tag
    if not memory:
        return _unknown("the memory dump is empty")
    blank_reason = _blank_reason(memory, dsfid)
    if blank_reason is not None:
        return TagData(model=TagModel.BLANK, status=DecodeStatus.BLANK, problem=blank_reason)
    if dsfid == DSFID_ISO28560_2:
        return decode_iso28560_2(memory, dsfid)
    tag = decode_threem(memory)
    if tag is None:
        tag = diagnose_crc_failure(memory)
    if tag is None and dsfid in (None, 0):
        tag = probe_iso28560_2(memory, dsfid)
    if tag is not None:
        return tag
    dsfid_text = "no DSFID given" if dsfid is None else f"DSFID 0x{dsfid:02X}"
    return _unknown(
        f"not blank and no supported data model matches ({dsfid_text}; ISO 28560-3 CRC fails in both "
        "block orders and the bytes are not laid out as ISO 28560-3, 3M or ISO 28560-2)"
    )


def _blank_reason(memory: bytes, dsfid: int | None) -> str | None:
    if not memory.strip(b"\x00"):
        return "blank tag: every byte is 0x00"
    if not memory.strip(b"\xff"):
        return "blank tag: every byte is 0xFF"
    if is_threem_factory_blank(memory):
        return "blank tag: 3M factory blank (blocks 0-5 = 0x55, block 6 = 0x00)"
    # memory[3] is where the first precursor sits if the blocks arrive reversed
    if dsfid == DSFID_ISO28560_2 and memory[0] == 0x00 and (len(memory) < 4 or memory[3] == 0x00):
        return "blank tag: DSFID 0x06 (ISO 28560-2) but no data elements"
    return None


def _unknown(problem: str) -> TagData:
    return TagData(model=TagModel.UNKNOWN, status=DecodeStatus.UNKNOWN, problem=problem)
