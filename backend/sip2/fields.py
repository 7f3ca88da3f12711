"""How each kind of SIP2 field is written and read.

Fixed fields sit at fixed positions after the two-digit code; variable fields
are ``XXvalue|``.  Readers are tolerant where the reference says real servers
differ (flags, empty dates, counts given as spaces) and strict where a wrong
value would change the meaning (numbers that are not digits).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone, tzinfo
from enum import Enum

from backend.sip2.errors import Sip2EncodeError, Sip2FrameError

DATE_LENGTH = 18
EMPTY_DATE = " " * DATE_LENGTH
_LOCAL_ZONE = "    "
_UTC_ZONES = {"   Z", "UTC ", " UTC", "000Z", "0000"}


class FixedKind(Enum):
    YN = "yn"  # bool: Y / N
    TRI = "tri"  # Tristate: Y / N / U
    BIT = "bit"  # bool: 1 / 0
    DATE = "date"  # datetime | None: YYYYMMDDZZZZHHMMSS or 18 spaces
    COUNT = "count"  # int | None: 4 digits or 4 spaces
    DIGITS = "digits"  # int | None: n digits (spaces = None)
    TEXT = "text"  # str of exactly n characters
    STATUS = "status"  # PatronStatusFlags: 14 positions, Y or space
    SUMMARY = "summary"  # SummaryKind | None: 10 positions, one Y


class VarKind(Enum):
    TEXT = "text"
    YN = "yn"
    INT = "int"  # int | None: digits; anything else reads as None
    REPEAT = "repeat"  # tuple[str, ...]: the field may occur many times


@dataclass(frozen=True)
class Fixed:
    length: int
    kind: FixedKind


@dataclass(frozen=True)
class Var:
    code: str
    kind: VarKind = VarKind.TEXT
    required: bool = False


# --------------------------------------------------------------------------- flags


def write_yn(value: bool) -> str:
    return "Y" if value else "N"


def read_yn(text: str) -> bool:
    return text.upper() == "Y"


def write_bit(value: bool) -> str:
    return "1" if value else "0"


def read_bit(text: str) -> bool:
    return text in ("1", "Y", "y")


# --------------------------------------------------------------------------- numbers


def write_digits(value: int | None, length: int) -> str:
    if value is None:
        return " " * length
    if value < 0 or value >= 10**length:
        raise Sip2EncodeError(f"{value} does not fit in {length} digits")
    return f"{value:0{length}d}"


def read_digits(text: str, what: str) -> int | None:
    if text.strip() == "":
        return None
    if not text.isdigit() or not text.isascii():
        raise Sip2FrameError(f"{what}: expected digits, got {text!r}")
    return int(text)


def read_count(text: str) -> int | None:
    """Counts are 4 digits, or 4 spaces when the server does not support them; anything else is unknown."""
    stripped = text.strip()
    return int(stripped) if stripped.isdigit() and stripped.isascii() else None


# --------------------------------------------------------------------------- dates


def write_date(value: datetime | None, zone: tzinfo, *, utc: bool = False) -> str:
    """``YYYYMMDDZZZZHHMMSS``: local time with four spaces for the zone, or UTC marked ``   Z``."""
    if value is None:
        return EMPTY_DATE
    if value.tzinfo is None:
        raise Sip2EncodeError("SIP2 dates must be timezone-aware")
    if utc:
        return _stamp(value.astimezone(timezone.utc), "   Z")
    return _stamp(value.astimezone(zone), _LOCAL_ZONE)


def _stamp(value: datetime, zone_text: str) -> str:
    # By hand: strftime costs more than all the other fixed fields of an answer together.
    return f"{value.year:04d}{value.month:02d}{value.day:02d}{zone_text}{value.hour:02d}{value.minute:02d}" \
           f"{value.second:02d}"


def read_date(text: str, zone: tzinfo) -> datetime | None:
    """Parse an 18-character SIP2 date; blank or unparseable gives None (servers differ too much to insist)."""
    if len(text) != DATE_LENGTH or not text.strip():
        return None
    day, zone_text, clock = text[:8], text[8:12], text[12:]
    if not (day.isdigit() and clock.isdigit() and day.isascii() and clock.isascii()):
        return None
    try:
        naive = datetime(int(day[:4]), int(day[4:6]), int(day[6:]), int(clock[:2]), int(clock[2:4]), int(clock[4:]))
    except ValueError:
        return None
    if zone_text.upper() in _UTC_ZONES:
        return naive.replace(tzinfo=timezone.utc)
    return naive.replace(tzinfo=zone)


def read_any_date(text: str | None, zone: tzinfo) -> datetime | None:
    """A due date (AH) as servers write it: SIP2 18-character, ``YYYY-MM-DD[ HH:MM[:SS]]`` or ``YYYYMMDD``."""
    if not text:
        return None
    text = text.strip()
    parsed = read_date(text, zone) if len(text) == DATE_LENGTH else None
    if parsed is not None:
        return parsed
    for pattern in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d", "%Y%m%d"):
        try:
            naive = datetime.strptime(text, pattern)
        except ValueError:
            continue
        if pattern in ("%Y-%m-%d", "%Y%m%d"):
            naive = naive.replace(hour=23, minute=59)
        return naive.replace(tzinfo=zone)
    return None


# --------------------------------------------------------------------------- values


def escape_value(value: str) -> str:
    """Make a value safe inside a variable field: CR/LF become spaces, ``|`` becomes ``&#124;`` (as Koha does)."""
    if "|" not in value and "\r" not in value and "\n" not in value:
        return value
    return value.replace("\r", " ").replace("\n", " ").replace("|", "&#124;")


def unescape_value(value: str) -> str:
    return value.replace("&#124;", "|") if "&" in value else value
