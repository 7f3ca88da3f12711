"""HF reader drivers behind the ``ReaderDriver`` protocol."""

from rfid.drivers.base import (
    AfiLockedError,
    InvalidRequestError,
    InventoryTag,
    ReaderDriver,
    ReaderError,
    ReaderLinkDown,
    ReaderProtocolError,
    ReaderStatusError,
    ReaderTimeout,
    SystemInfo,
    TagNotFound,
    TagWriteError,
    parse_uid_hex,
)

__all__ = [
    "AfiLockedError",
    "InvalidRequestError",
    "InventoryTag",
    "ReaderDriver",
    "ReaderError",
    "ReaderLinkDown",
    "ReaderProtocolError",
    "ReaderStatusError",
    "ReaderTimeout",
    "SystemInfo",
    "TagNotFound",
    "TagWriteError",
    "parse_uid_hex",
]
