"""The HF reader interface the reader service codes against, and its errors.

UID byte order: ``uid`` is 8 bytes MSB first (``E0`` marker first, then the IC
manufacturer code, e.g. 0x04 = NXP). Tags send their UID LSB first on the air;
readers (FEIG ISO Host included) reverse it and report it MSB first, and expect it
MSB first in addressed commands. ``uid_hex`` is the conventional upper-case hex
string of that order, e.g. ``"E004010012345678"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

UID_LENGTH = 8


def parse_uid_hex(text: str) -> bytes:
    """``"E0040100 12345678"`` / ``"e0:04:..."`` -> 8 UID bytes (MSB first)."""
    cleaned = text.replace(":", "").replace(" ", "").replace("-", "")
    try:
        uid = bytes.fromhex(cleaned)
    except ValueError as exc:
        raise InvalidRequestError(f"UID {text!r} is not hex") from exc
    check_uid(uid)
    return uid


def check_uid(uid: bytes) -> None:
    if not isinstance(uid, (bytes, bytearray)) or len(uid) != UID_LENGTH:
        raise InvalidRequestError(f"UID must be {UID_LENGTH} bytes, got {uid!r}")


@dataclass(frozen=True)
class InventoryTag:
    uid: bytes  # 8 bytes, MSB first as the reader reports it (see module docstring)
    dsfid: int
    tr_type: int

    def __post_init__(self) -> None:
        check_uid(self.uid)

    @property
    def uid_hex(self) -> str:
        return self.uid.hex().upper()


@dataclass(frozen=True)
class SystemInfo:
    uid: bytes
    dsfid: int
    afi: int
    block_size: int
    block_count: int
    ic_ref: int

    @property
    def uid_hex(self) -> str:
        return self.uid.hex().upper()


class ReaderError(Exception):
    """Base of every reader driver error."""


class ReaderTimeout(ReaderError):
    """The reader did not answer (after the configured retries)."""


class ReaderLinkDown(ReaderError):
    """The port is gone (USB unplugged, socket closed); the next call tries to reopen it."""


class TagNotFound(ReaderError):
    """No tag answered, or the addressed tag has left the field."""


class TagWriteError(ReaderError):
    """A write did not complete; ``block`` is the failing block when the reader reports it."""

    def __init__(self, message: str, *, block: int | None = None, iso_error: int | None = None) -> None:
        super().__init__(message)
        self.block = block
        self.iso_error = iso_error


class AfiLockedError(TagWriteError):
    """Write AFI refused because the tag's AFI is locked."""


class ReaderProtocolError(ReaderError):
    """The reader's answer does not follow the protocol (malformed or unexpected)."""


class ReaderStatusError(ReaderError):
    """The reader answered with an error STATUS that has no more specific exception."""

    def __init__(self, message: str, *, status: int, iso_error: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.iso_error = iso_error


class InvalidRequestError(ReaderError, ValueError):
    """The caller passed arguments the reader cannot carry out (bad UID, block range...)."""


@runtime_checkable
class ReaderDriver(Protocol):
    def open(self) -> None: ...

    def close(self) -> None: ...

    def inventory(self, afi: int | None = None) -> list[InventoryTag]:
        """Tags in the field; with ``afi`` only tags whose AFI equals it."""
        ...

    def read_blocks(self, uid: bytes, first: int, count: int) -> bytes: ...

    def write_blocks(self, uid: bytes, first: int, data: bytes) -> None: ...

    def system_info(self, uid: bytes) -> SystemInfo: ...

    def write_afi(self, uid: bytes, afi: int) -> None: ...

    def set_eas(self, uid: bytes, enabled: bool) -> None: ...

    def eas_state(self, uid: bytes) -> bool:
        """The EAS bit of one tag (NXP); a tag that does not answer counts as EAS off."""
        ...

    def eas_alarm(self) -> bool:
        """True if any tag with EAS set is in the field."""
        ...
