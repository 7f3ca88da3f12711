"""3M proprietary layout ("RFID 501", as documented by Biblio-RFID): decode only.

====== ================ ====================================================
Block  Bytes            Meaning
====== ================ ====================================================
0      04 is 00 tt      fixed 0x04; part number i (high nibble), set size s
                        (low nibble); 0x00; item type tt
1-4    16               barcode, ASCII, NUL-padded
5      4, big-endian    top 12 bits branch, low 20 bits library
6      4                custom signed 32-bit value (read big-endian)
7      4                zero
====== ================ ====================================================

The layout has no CRC, so it is recognised by its fixed bytes and a plausible
barcode and set; writing it is deliberately not supported.
"""

from __future__ import annotations

from .model import TagData, TagModel

THREEM_MIN_SIZE = 28  # blocks 0-6
_FACTORY_BLANK_HEAD = b"\x55" * 24 + b"\x00" * 4  # blocks 0-5 = 0x55, block 6 = 0x00

ITEM_TYPES: dict[int, str] = {
    0: "other",
    1: "book",
    2: "magazine",
    3: "bound journal",
    4: "audio tape",
    5: "video",
    6: "CD/CD-ROM",
    7: "diskette",
    8: "book with diskette",
    9: "book with CD",
    13: "book with audio tape",
}


def is_threem_factory_blank(memory: bytes) -> bool:
    return memory[:THREEM_MIN_SIZE] == _FACTORY_BLANK_HEAD


def _barcode(raw: bytes) -> str | None:
    """The NUL-padded ASCII barcode, or ``None`` if the field is not one."""
    value, _, padding = raw.partition(b"\x00")
    if not value or padding.strip(b"\x00") or not value.isascii():
        return None
    text = value.decode("ascii")
    return text if text.isprintable() else None


def decode_threem(memory: bytes) -> TagData | None:
    """The tag if the memory matches the 3M layout; ``None`` otherwise."""
    if len(memory) < THREEM_MIN_SIZE or memory[0] != 0x04 or memory[2] != 0x00:
        return None
    part, parts = memory[1] >> 4, memory[1] & 0x0F
    barcode = _barcode(memory[4:20])
    if barcode is None or not 1 <= part <= parts:
        return None
    owner = int.from_bytes(memory[20:24], "big")
    notes = ("block 7 is not zero",) if memory[28:32].strip(b"\x00") else ()
    return TagData(
        model=TagModel.THREEM,
        notes=notes,
        primary_item_id=barcode,
        part_number=part,
        parts_in_set=parts,
        item_type_code=memory[3],
        item_type=ITEM_TYPES.get(memory[3], "unknown"),
        branch=owner >> 20,
        library_number=owner & 0xFFFFF,
        custom_value=int.from_bytes(memory[24:28], "big", signed=True),
    )
