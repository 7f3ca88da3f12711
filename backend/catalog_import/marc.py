"""Read MARC21 files, binary (ISO 2709) or MARCXML, into records with their positions.

Binary files are split into records here rather than by ``pymarc.MARCReader``,
so every record keeps its byte offset and one damaged record costs only itself:
a record whose leader length is wrong is re-synchronised on the record
terminator (0x1D).  Some exporters count the length in characters instead of
bytes, which is wrong for every UTF-8 record with Vietnamese in it; such a
record is still read when pymarc can decode it, with a warning.

Character encoding per record: leader position 9 ``a`` means UTF-8, anything
else MARC-8 (decoded by pymarc, which also composes MARC-8's combining
diacritics).  With ``encoding="auto"`` a record that claims MARC-8 but is valid
UTF-8 with non-ASCII bytes is read as UTF-8 — Vietnamese exporters that forget
to set position 9 are common — and a warning says so.
"""

from __future__ import annotations

import io
import logging
import warnings
import xml.sax
from dataclasses import dataclass
from typing import Iterator, Literal

import pymarc
from pymarc.exceptions import PymarcException
from pymarc.marcxml import XmlHandler

from backend.catalog_import.errors import ImportFileError
from backend.catalog_import.holdings import KOHA, HoldingsMap
from backend.catalog_import.marc_mapping import map_record
from backend.catalog_import.parsed import ParseResult, Source, load_source
from backend.catalog_import.report import Position, ProblemCode, RecordProblem

log = logging.getLogger(__name__)

MarcFormat = Literal["auto", "binary", "xml"]
MarcEncoding = Literal["auto", "leader", "utf8"]

_RECORD_TERMINATOR = 0x1D
_LEADER_LENGTH = 24
_BETWEEN_RECORDS = b" \t\r\n\x00\x1a"  # newlines between records, DOS end-of-file padding


@dataclass(frozen=True)
class RawRecord:
    """A record as pymarc decoded it, or the problem that stopped it."""

    position: Position
    record: pymarc.Record | None
    problem: RecordProblem | None = None
    warnings: tuple[RecordProblem, ...] = ()


def read_marc(source: Source, *, format: MarcFormat = "auto", holdings: HoldingsMap = KOHA,
              encoding: MarcEncoding = "auto") -> ParseResult:
    """Read a MARC21 file into item entries (one per holdings field) and problems."""
    data, name = load_source(source)
    chosen = detect_format(data) if format == "auto" else format
    raw_records = iter_binary(data, encoding=encoding) if chosen == "binary" else iter_xml(data)
    result = ParseResult(source=name, kind="marc")
    for raw in raw_records:
        result.records_read += 1
        result.warnings.extend(raw.warnings)
        if raw.record is None:
            assert raw.problem is not None
            result.skipped.append(raw.problem)
            continue
        mapped = map_record(raw.record, raw.position, holdings)
        result.entries.extend(mapped.entries)
        result.skipped.extend(mapped.skipped)
        result.warnings.extend(mapped.warnings)
    log.info("read %s (%s MARC): %d records, %d items, %d skipped", name, chosen, result.records_read,
             len(result.entries), len(result.skipped))
    return result


def detect_format(data: bytes) -> Literal["binary", "xml"]:
    head = data.lstrip(b"\xef\xbb\xbf" + _BETWEEN_RECORDS)[:5]
    if head.startswith(b"<"):
        return "xml"
    if len(head) == 5 and head.isdigit():
        return "binary"
    raise ImportFileError("neither MARC21 (starts with a 5-digit record length) nor MARCXML (starts with '<')")


# ---------------------------------------------------------------------------------------------- binary


def iter_binary(data: bytes, *, encoding: MarcEncoding = "auto") -> Iterator[RawRecord]:
    number = 0
    offset = _skip_between(data, 0)
    if offset < len(data) and not data[offset:offset + 5].isdigit():
        raise ImportFileError("not binary MARC21: a record starts with its 5-digit length")
    while offset < len(data):
        number += 1
        position = Position(record=number, byte_offset=offset)
        chunk, next_offset, length_ok = _next_chunk(data, offset)
        yield _decode_binary(chunk, position, encoding, length_ok)
        offset = _skip_between(data, next_offset)


def _skip_between(data: bytes, offset: int) -> int:
    while offset < len(data) and data[offset] in _BETWEEN_RECORDS:
        offset += 1
    return offset


def _next_chunk(data: bytes, offset: int) -> tuple[bytes, int, bool]:
    """The record starting at ``offset``, where the next one starts, and whether its leader length was right."""
    claimed = data[offset:offset + 5]
    if claimed.isdigit():
        end = offset + int(claimed)
        if int(claimed) > _LEADER_LENGTH and end <= len(data) and data[end - 1] == _RECORD_TERMINATOR:
            return data[offset:end], end, True
    terminator = data.find(bytes([_RECORD_TERMINATOR]), offset)
    end = len(data) if terminator < 0 else terminator + 1
    return data[offset:end], end, False


def _decode_binary(chunk: bytes, position: Position, encoding: MarcEncoding, length_ok: bool) -> RawRecord:
    notes: list[RecordProblem] = []
    if not length_ok:
        if chunk[-1:] != bytes([_RECORD_TERMINATOR]) or len(chunk) <= _LEADER_LENGTH:
            return _broken(position, ProblemCode.UNREADABLE_RECORD, f"truncated record ({len(chunk)} bytes)")
        notes.append(RecordProblem(position=position, code=ProblemCode.LENGTH_MISMATCH,
                                   detail=f"leader says {chunk[:5].decode('ascii', 'replace')}, "
                                          f"record has {len(chunk)} bytes"))
    utf8 = encoding == "utf8" or chunk[9:10] == b"a"
    if not utf8 and encoding == "auto" and _is_unlabelled_utf8(chunk[_LEADER_LENGTH:]):
        utf8 = True
        notes.append(RecordProblem(position=position, code=ProblemCode.ENCODING_MISLABELLED))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pymarc warns about odd subfield codes; the mapping judges fields
            record = pymarc.Record(data=chunk, to_unicode=True, force_utf8=utf8, hide_utf8_warnings=True,
                                   utf8_handling="strict")
    except UnicodeDecodeError as exc:
        return _broken(position, ProblemCode.BAD_ENCODING, f"{exc.reason}: {exc.object[exc.start:exc.end]!r}",
                       tuple(notes))
    except (PymarcException, ValueError, IndexError) as exc:
        return _broken(position, ProblemCode.UNREADABLE_RECORD, f"{type(exc).__name__}: {exc}", tuple(notes))
    return RawRecord(position=position, record=record, warnings=tuple(notes))


def _is_unlabelled_utf8(body: bytes) -> bool:
    # MARC-8 switches character sets with ESC; UTF-8 never contains ESC in text.
    if body.isascii() or b"\x1b" in body:
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _broken(position: Position, code: ProblemCode, detail: str,
            notes: tuple[RecordProblem, ...] = ()) -> RawRecord:
    return RawRecord(position=position, record=None, problem=RecordProblem(position=position, code=code,
                                                                           detail=detail), warnings=notes)


# ---------------------------------------------------------------------------------------------- MARCXML


class _PositionedXmlHandler(XmlHandler):
    """pymarc's SAX handler, remembering each record's line and isolating records that break it."""

    def __init__(self) -> None:
        super().__init__(strict=False)
        self.raw: list[RawRecord] = []
        self._locator: xml.sax.xmlreader.Locator | None = None
        self._position = Position()
        self._error: str | None = None

    def setDocumentLocator(self, locator: xml.sax.xmlreader.Locator) -> None:
        self._locator = locator

    def startElementNS(self, name, qname, attrs):  # type: ignore[no-untyped-def]  # SAX signature
        if name[1] == "record":
            line = self._locator.getLineNumber() if self._locator else None
            self._position = Position(record=len(self.raw) + 1, line=line)
            self._error = None
        if self._error is None:
            try:
                super().startElementNS(name, qname, attrs)
            except (KeyError, ValueError, PymarcException) as exc:
                self._error = f"<{name[1]}> near line {self._line()}: {type(exc).__name__} {exc}"

    def endElementNS(self, name, qname):  # type: ignore[no-untyped-def]
        if name[1] == "record" and self._error is not None:
            problem = RecordProblem(position=self._position, code=ProblemCode.UNREADABLE_RECORD, detail=self._error)
            self.raw.append(RawRecord(position=self._position, record=None, problem=problem))
            self._record, self._field, self._error = None, None, None
            return
        if self._error is None:
            try:
                super().endElementNS(name, qname)
            except (KeyError, ValueError, PymarcException) as exc:
                self._error = f"</{name[1]}> near line {self._line()}: {type(exc).__name__} {exc}"

    def process_record(self, record: pymarc.Record) -> None:
        self.raw.append(RawRecord(position=self._position, record=record))

    def _line(self) -> int | None:
        return self._locator.getLineNumber() if self._locator else None


def iter_xml(data: bytes) -> list[RawRecord]:
    handler = _PositionedXmlHandler()
    parser = xml.sax.make_parser()
    parser.setContentHandler(handler)
    parser.setFeature(xml.sax.handler.feature_namespaces, True)
    parser.setFeature(xml.sax.handler.feature_external_ges, False)  # never fetch external entities
    try:
        parser.parse(io.BytesIO(data))
    except xml.sax.SAXParseException as exc:
        raise ImportFileError(f"not well-formed XML at line {exc.getLineNumber()}, column {exc.getColumnNumber()}: "
                              f"{exc.getMessage()}") from exc
    return handler.raw
