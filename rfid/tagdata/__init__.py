"""Library tag data models: ISO 28560-3, ISO 28560-2 and the 3M layout.

Pure code, no I/O.  ``decode(memory, dsfid)`` detects the model and returns a
:class:`TagData`; ``encode_iso28560_3`` / ``encode_iso28560_2`` produce the bytes
to write.  See docs/rfid-tagdata.md.
"""

from __future__ import annotations

from .crc import crc16_ccitt
from .detect import decode
from .errors import (
    CorruptTagError,
    CrcError,
    EncodeError,
    InvalidInputError,
    TagDataError,
    UnknownModelError,
    UnsupportedTagError,
)
from .iso28560_2 import DSFID_ISO28560_2, encode_iso28560_2
from .iso28560_3 import encode_iso28560_3
from .model import BlockOrder, CompactionScheme, DecodeStatus, Element, TagData, TagModel, UsageType
from .security import AfiPolicy, SecurityState, afi_for, afi_state, is_secured, security_state

__all__ = [
    "DSFID_ISO28560_2",
    "AfiPolicy",
    "BlockOrder",
    "CompactionScheme",
    "CorruptTagError",
    "CrcError",
    "DecodeStatus",
    "Element",
    "EncodeError",
    "InvalidInputError",
    "SecurityState",
    "TagData",
    "TagDataError",
    "TagModel",
    "UnknownModelError",
    "UnsupportedTagError",
    "UsageType",
    "afi_for",
    "afi_state",
    "crc16_ccitt",
    "decode",
    "encode_iso28560_2",
    "encode_iso28560_3",
    "is_secured",
    "security_state",
]
