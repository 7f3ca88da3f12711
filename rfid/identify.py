"""Read one tag that answered an inventory and turn it into what the reader service publishes.

Reads are kept short because every one of them delays the next poll: the fixed
32-byte layouts (ISO 28560-3, 3M) are decoded from the first blocks alone, and
only a tag that needs it (ISO 28560-2, anything unrecognised) has the rest of
its memory read.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from openshelf.contract import TagDecodeStatus, TagEvent
from openshelf.site import ReaderSettings

from rfid.drivers.base import InventoryTag, ReaderDriver, SystemInfo
from rfid.tagdata import DSFID_ISO28560_2, TagData, TagDataError, TagModel, UsageType, decode
from rfid.tagdata.model import DecodeStatus

log = logging.getLogger(__name__)

FIXED_LAYOUT_BYTES = 32  # ISO 28560-3 and the 3M layout: blocks 0-7 of 4 bytes
MAX_ITEM_ID_LENGTH = 64  # the contract's limit on TagEvent.item_id
MAX_BLOCKS_READ = 128  # ISO 15693 allows 256; the largest library tags (ICODE SLIX2) have 80

_DECODE_STATUS = {
    DecodeStatus.OK: TagDecodeStatus.DECODED,
    DecodeStatus.BLANK: TagDecodeStatus.BLANK,
    DecodeStatus.UNKNOWN: TagDecodeStatus.UNKNOWN_MODEL,
    DecodeStatus.UNSUPPORTED: TagDecodeStatus.UNKNOWN_MODEL,
    DecodeStatus.CRC_ERROR: TagDecodeStatus.CORRUPT,
    DecodeStatus.CORRUPT: TagDecodeStatus.CORRUPT,
}


@dataclass(frozen=True)
class TagReading:
    """What was learned about one tag: the event to publish and the decoded data, if any."""

    event: TagEvent
    data: TagData | None

    @property
    def is_patron_card(self) -> bool:
        return self.data is not None and self.data.ok and self.data.usage_type is UsageType.PATRON_CARD

    @property
    def set_part(self) -> tuple[str, int, int] | None:
        """(item id, parts in set, part number) for a part of a multi-part item."""
        event = self.event
        if event.item_id is None or event.parts_in_set is None or event.part_number is None:
            return None
        if event.parts_in_set < 2 or not 1 <= event.part_number <= event.parts_in_set:
            return None
        return event.item_id, event.parts_in_set, event.part_number


def tag_event_from(reader: ReaderSettings, uid: str, afi: int | None, data: TagData | None,
                   problem: str | None) -> TagEvent:
    """The event for one tag, from whatever could be learned about it."""
    if data is None:
        return TagEvent(reader_id=reader.id, gate_id=reader.gate, uid=uid, afi=afi,
                        decode=TagDecodeStatus.UNREAD, problem=problem)
    status = _DECODE_STATUS[data.status]
    decoded = status is TagDecodeStatus.DECODED
    if decoded and len(data.primary_item_id or "") > MAX_ITEM_ID_LENGTH:
        return TagEvent(reader_id=reader.id, gate_id=reader.gate, uid=uid, afi=afi, decode=TagDecodeStatus.CORRUPT,
                        problem=f"primary item ID of {len(data.primary_item_id or '')} characters: longer than "
                                f"the {MAX_ITEM_ID_LENGTH} a library item ID may have")
    return TagEvent(
        reader_id=reader.id, gate_id=reader.gate, uid=uid, afi=afi, decode=status,
        item_id=(data.primary_item_id or None) if decoded else None,
        part_number=data.part_number if decoded else None,
        parts_in_set=data.parts_in_set if decoded else None,
        owner_isil=data.owner_isil if decoded else None,
        problem=data.problem or problem,
    )


def read_tag(driver: ReaderDriver, reader: ReaderSettings, tag: InventoryTag) -> TagReading:
    """System information, then as much memory as the data model needs, then decode.

    Raises ReaderError when the tag could not be read (the caller retries on a later poll).
    """
    info = driver.system_info(tag.uid)
    try:
        data = _read_and_decode(driver, tag, info)
    except TagDataError as exc:  # decode reports bad data in its result; this is a defensive net
        log.info("tag %s on %s cannot be decoded: %s", tag.uid_hex, reader.id, exc)
        event = tag_event_from(reader, tag.uid_hex, info.afi, None, f"cannot be decoded: {exc}")
        return TagReading(event.model_copy(update={"decode": TagDecodeStatus.CORRUPT}), None)
    if not data.ok:
        log.info("tag %s on %s: %s (%s)", tag.uid_hex, reader.id, data.status.value, data.problem)
    return TagReading(tag_event_from(reader, tag.uid_hex, info.afi, data, None), data)


def unreadable(reader: ReaderSettings, tag: InventoryTag, problem: str) -> TagReading:
    """A tag that answers inventories but cannot be read: still published, so a gate can alarm on it."""
    return TagReading(tag_event_from(reader, tag.uid_hex, None, None, problem), None)


def _read_and_decode(driver: ReaderDriver, tag: InventoryTag, info: SystemInfo) -> TagData:
    count = min(info.block_count, MAX_BLOCKS_READ)
    head_blocks = min(count, -(-FIXED_LAYOUT_BYTES // max(1, info.block_size)))
    head = driver.read_blocks(tag.uid, 0, head_blocks)
    if head_blocks == count:
        return decode(head, info.dsfid)
    if info.dsfid != DSFID_ISO28560_2:
        data = decode(head, info.dsfid)
        if data.ok and data.model in (TagModel.ISO28560_3, TagModel.THREEM):
            return data
    return decode(head + driver.read_blocks(tag.uid, head_blocks, count - head_blocks), info.dsfid)
