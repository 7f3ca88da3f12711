"""SIP2 frames: message models to bytes and back, with AY/AZ error detection.

A frame is ``code + fixed fields + XXvalue| … [AY<n>AZ<xxxx>] + terminator``.
The checksum is computed over the *encoded* bytes from the first character
through ``AZ`` (two's complement of the byte sum, 16 bits, 4 upper-case hex
digits), so the charset must be the same on both ends.

Reading is tolerant as real servers require: a leading LF or other
non-alphanumeric bytes before the code are dropped, CR, LF and CRLF all end a
frame (see :mod:`backend.sip2.framing`), blank dates and counts read as
``None``, unknown variable fields are kept.  What cannot be read safely (too
short for the fixed fields, a code that is not two digits, a wrong checksum)
raises :class:`~backend.sip2.errors.Sip2FrameError` or a subclass.
"""

from __future__ import annotations

import functools
import itertools
import logging
import unicodedata
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any, Literal

from pydantic import ValidationError

from backend.circulation.interface import Tristate
from backend.sip2 import fields as f
from backend.sip2.errors import Sip2ChecksumError, Sip2EncodeError, Sip2FrameError, Sip2UnsupportedMessage
from backend.sip2.fields import Fixed, FixedKind, VarKind
from backend.sip2.messages import REGISTRY, RESEND_CODES, PatronStatusFlags, Sip2Message, SummaryKind, fixed_length

log = logging.getLogger(__name__)

Charset = Literal["utf-8", "iso-8859-1"]
Terminator = Literal["CR", "CRLF"]
TERMINATOR_BYTES: dict[str, bytes] = {"CR": b"\r", "CRLF": b"\r\n"}
_TRAILING_JUNK = b"\r\n\x00"
_FOLDED = str.maketrans({"đ": "d", "Đ": "D"})
_TONE_MARKS = {"\u0300", "\u0301", "\u0303", "\u0309", "\u0323"}


def checksum(data: bytes) -> str:
    """The AZ value for ``data`` (every byte from the message's first character through ``AZ``)."""
    return f"{(-sum(data)) & 0xFFFF:04X}"


def checksum_ok(data: bytes, value: bytes) -> bool:
    try:
        number = int(value.decode("ascii"), 16)
    except (UnicodeDecodeError, ValueError):
        return False
    return len(value) == 4 and (sum(data) + number) & 0xFFFF == 0


def fold_to_latin1(text: str) -> str:
    """Vietnamese (and other) letters a Latin-1 link cannot carry, without their diacritics."""
    return "".join(_fold_char(char) for char in unicodedata.normalize("NFC", text))


def _fold_char(char: str) -> str:
    """The letter with as few diacritics dropped as Latin-1 needs: ệ → ê, ữ → u, đ → d; else ``?``."""
    if ord(char) < 256:
        return char
    parts = unicodedata.normalize("NFD", char.translate(_FOLDED))
    # Vietnamese tone marks go before the marks that change the vowel (â, ê, ô, ă, ơ, ư).
    marks = sorted((index for index, part in enumerate(parts) if unicodedata.combining(part)),
                   key=lambda index: parts[index] not in _TONE_MARKS)
    for count in range(len(marks) + 1):
        for dropped in itertools.combinations(marks, count):
            composed = unicodedata.normalize("NFC", "".join(
                part for index, part in enumerate(parts) if index not in dropped))
            if all(ord(part) < 256 for part in composed):
                return composed
    return "?"


@dataclass(frozen=True)
class DecodedFrame:
    message: Sip2Message
    sequence: int | None
    checksummed: bool


class Sip2Codec:
    """Encodes and decodes frames for one link (charset, terminator, error detection, time zone)."""

    def __init__(self, *, charset: Charset = "utf-8", terminator: Terminator = "CR", error_detection: bool = True,
                 timezone: tzinfo | None = None, utc_dates: bool = False, require_checksum: bool = False) -> None:
        if charset not in ("utf-8", "iso-8859-1"):
            raise ValueError(f"unsupported SIP2 charset {charset!r}")
        self.charset = charset
        self.terminator = TERMINATOR_BYTES[terminator]
        self.error_detection = error_detection
        self.timezone = timezone or _local_zone()
        self.utc_dates = utc_dates
        self.require_checksum = require_checksum

    # ------------------------------------------------------------------ encoding

    def encode(self, message: Sip2Message, sequence: int | None = None, *,
               error_detection: bool | None = None) -> bytes:
        """The complete frame, terminator included."""
        detect = self.error_detection if error_detection is None else error_detection
        text = self.encode_body(message)
        if detect:
            text += "AZ" if message.code in RESEND_CODES else f"AY{(sequence or 0) % 10}AZ"
        data = self._to_bytes(text)
        if detect:
            data += checksum(data).encode("ascii")
        return data + self.terminator

    def encode_body(self, message: Sip2Message) -> str:
        parts = [message.code]
        append = parts.append
        for name, layout in message.fixed_layout:
            append(self._write_fixed(name, layout, getattr(message, name)))
        # Inline rather than a helper per field: an answer has a dozen variable fields, most of them empty.
        for name, var in message.var_layout:
            value = getattr(message, name)
            kind = var.kind
            if kind is VarKind.REPEAT:
                for item in value:
                    append(f"{var.code}{f.escape_value(item)}|")
            elif value is None:
                if var.required:
                    append(f"{var.code}|")
            elif kind is VarKind.YN:
                append(f"{var.code}{f.write_yn(value)}|")
            else:
                append(f"{var.code}{f.escape_value(str(value))}|")
        for code, value in message.extra_fields:
            append(f"{code}{f.escape_value(value)}|")
        return "".join(parts)

    def _to_bytes(self, text: str) -> bytes:
        if self.charset == "iso-8859-1":
            try:
                return text.encode("iso-8859-1")
            except UnicodeEncodeError:
                return fold_to_latin1(text).encode("iso-8859-1")
        return text.encode("utf-8")

    def _write_fixed(self, name: str, layout: Fixed, value: Any) -> str:
        kind = layout.kind
        if kind is FixedKind.YN:
            return f.write_yn(bool(value))
        if kind is FixedKind.BIT:
            return f.write_bit(bool(value))
        if kind is FixedKind.TRI:
            return Tristate(value).value
        if kind is FixedKind.DATE:
            return f.write_date(value, self.timezone, utc=self.utc_dates)
        if kind in (FixedKind.COUNT, FixedKind.DIGITS):
            return f.write_digits(value, layout.length)
        if kind is FixedKind.STATUS:
            return value.to_wire()
        if kind is FixedKind.SUMMARY:
            return "".join("Y" if value is not None and index == value.value else " " for index in range(10))
        if len(value) != layout.length:
            raise Sip2EncodeError(f"{name} must be {layout.length} characters, got {value!r}")
        return str(value)

    # ------------------------------------------------------------------ decoding

    def decode(self, frame: bytes) -> DecodedFrame:
        """Read one frame (with or without its terminator)."""
        raw = _strip(frame)
        if len(raw) < 2:
            raise Sip2FrameError(f"not a SIP2 message: {frame[:40]!r}")
        raw, sequence, checksummed = self._split_trailer(raw)
        if self.require_checksum and not checksummed:
            raise Sip2ChecksumError("error detection is required but the message has no AZ checksum")
        text = raw.decode(self.charset, errors="replace")
        return DecodedFrame(self.decode_body(text), sequence, checksummed)

    def _split_trailer(self, raw: bytes) -> tuple[bytes, int | None, bool]:
        checksummed = len(raw) >= 6 and raw[-6:-4] == b"AZ"
        if checksummed:
            if not checksum_ok(raw[:-4], raw[-4:]):
                raise Sip2ChecksumError(f"bad checksum {raw[-4:]!r} on {raw[:2]!r} message")
            raw = raw[:-6]
        sequence = None
        if len(raw) >= 5 and raw[-3:-1] == b"AY" and raw[-1:].isdigit():
            sequence = int(raw[-1:])
            raw = raw[:-3]
        return raw, sequence, checksummed

    def decode_body(self, text: str) -> Sip2Message:
        code = text[:2]
        if not (code.isascii() and code.isdigit()):
            raise Sip2FrameError(f"a SIP2 message starts with a two-digit code, not {code!r}")
        cls = REGISTRY.get(code)
        if cls is None:
            raise Sip2UnsupportedMessage(code)
        needed = _fixed_length(cls)
        body = text[2:]
        if len(body) < needed:
            raise Sip2FrameError(f"message {code} needs {needed} characters of fixed fields, got {len(body)}")
        values: dict[str, Any] = {}
        position = 0
        for name, layout in cls.fixed_layout:
            chunk = body[position:position + layout.length]
            values[name] = self._read_fixed(f"{code}.{name}", layout, chunk)
            position += layout.length
        values.update(_read_vars(cls, body[position:]))
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise Sip2FrameError(f"message {code} has invalid fields: {exc.errors()[0]['msg']}") from None

    def _read_fixed(self, what: str, layout: Fixed, chunk: str) -> Any:
        kind = layout.kind
        if kind is FixedKind.YN:
            return f.read_yn(chunk)
        if kind is FixedKind.BIT:
            return f.read_bit(chunk)
        if kind is FixedKind.TRI:
            return Tristate(chunk.upper()) if chunk.upper() in ("Y", "N", "U") else Tristate.UNKNOWN
        if kind is FixedKind.DATE:
            return f.read_date(chunk, self.timezone)
        if kind is FixedKind.COUNT:
            return f.read_count(chunk)
        if kind is FixedKind.DIGITS:
            return f.read_digits(chunk, what)
        if kind is FixedKind.STATUS:
            return PatronStatusFlags.from_wire(chunk)
        if kind is FixedKind.SUMMARY:
            position = chunk.upper().find("Y")
            return SummaryKind(position) if 0 <= position <= 5 else None
        return chunk


@functools.lru_cache(maxsize=None)
def _vars_by_code(cls: type[Sip2Message]) -> dict[str, tuple[str, VarKind]]:
    return {var.code: (name, var.kind) for name, var in cls.var_layout}


_REPEAT, _YN, _INT = VarKind.REPEAT, VarKind.YN, VarKind.INT


def _read_vars(cls: type[Sip2Message], text: str) -> dict[str, Any]:
    by_code = _vars_by_code(cls)
    values: dict[str, Any] = {}
    extra: list[tuple[str, str]] = []
    repeated: dict[str, list[str]] = {}
    for piece in text.split("|"):
        if len(piece) < 2:
            if piece:
                log.debug("ignoring stray %r in a %s message", piece, cls.code)
            continue
        code, value = piece[:2], f.unescape_value(piece[2:])
        known = by_code.get(code)
        if known is None:
            extra.append((code, value))
            continue
        name, kind = known
        if kind is _REPEAT:
            repeated.setdefault(name, []).append(value)
        elif name in values:
            log.debug("%s message repeats field %s; keeping the first", cls.code, code)
        elif kind is _YN:
            values[name] = f.read_yn(value) if value else None
        elif kind is _INT:
            values[name] = int(value) if value.isdigit() and value.isascii() else None
        else:
            values[name] = value
    for name, items in repeated.items():
        values[name] = tuple(items)
    if extra:
        values["extra_fields"] = tuple(extra)
    return values


@functools.lru_cache(maxsize=None)
def _fixed_length(cls: type[Sip2Message]) -> int:
    return fixed_length(cls)


def _strip(frame: bytes) -> bytes:
    start = 0
    while start < len(frame) and not chr(frame[start]).isalnum():
        start += 1
    return frame[start:].rstrip(_TRAILING_JUNK)


def _local_zone() -> tzinfo:
    from datetime import datetime

    zone = datetime.now().astimezone().tzinfo
    assert zone is not None
    return zone
