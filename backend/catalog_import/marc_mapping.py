"""Map one decoded MARC21 record to item entries: the bibliographic facts plus one item per holdings field.

Fields used: title 245 ``$a`` ``$b`` (``$n`` ``$p``), author 100 / 110 / 700 /
710 ``$a``, ISBN 020 ``$a``, publisher and year 264 (or 260) ``$b`` ``$c``,
the record's call number from the first of the holdings map's call number tags
(local 090/099 before DDC 082 and UDC 080), control number 001 (Koha 999 ``$c``
without one).  Items come from the holdings field the
:class:`~backend.catalog_import.holdings.HoldingsMap` names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pymarc
from pydantic import ValidationError

from backend.catalog_import.holdings import HoldingsMap
from backend.catalog_import.parsed import Entry
from backend.catalog_import.records import AUTHOR_MAX, TITLE_MAX, BibRecord, ItemRecord, check_barcode
from backend.catalog_import.report import Position, ProblemCode, RecordProblem
from backend.catalog_import.text import clean_text, trim_isbd, truncate
from backend.catalog_import.values import normalise_item_type, parse_isbn, parse_parts, parse_tag_uids
from backend.circulation.model import ItemStatus

_YEAR = re.compile(r"(1[5-9]\d\d|20\d\d)")


@dataclass
class MappedRecord:
    bib: BibRecord | None = None
    entries: list[Entry] = field(default_factory=list)
    skipped: list[RecordProblem] = field(default_factory=list)
    warnings: list[RecordProblem] = field(default_factory=list)


def map_record(record: pymarc.Record, position: Position, holdings: HoldingsMap) -> MappedRecord:
    mapped = MappedRecord()
    holdings_fields = record.get_fields(holdings.tag)
    first_barcode = _first(holdings_fields[0], holdings.barcode) if holdings_fields else ""
    title = _title(record)
    if not title:
        mapped.skipped.append(RecordProblem(position=position.at("245"), code=ProblemCode.MISSING_TITLE,
                                            key=first_barcode or None))
        return mapped
    bib = _bib(record, title, position, mapped.warnings)
    items: list[ItemRecord] = []
    for number, holding in enumerate(holdings_fields, start=1):
        where = position.at(f"{holdings.tag} #{number}")
        item = _item(record, holding, bib, holdings, where, mapped)
        if item is not None:
            items.append(item)
            mapped.entries.append(Entry(position=where, record=item))
    if not holdings_fields:
        mapped.skipped.append(RecordProblem(position=position, code=ProblemCode.NO_ITEMS,
                                            detail=f"no {holdings.tag} field (holdings map {holdings.name!r})",
                                            key=bib.record_id))
    mapped.bib = bib.model_copy(update={"items": tuple(items),
                                        "call_number": _record_call_number(record, holdings)})
    return mapped


# ---------------------------------------------------------------------------------------------- record level


def _bib(record: pymarc.Record, title: str, position: Position, notes: list[RecordProblem]) -> BibRecord:
    if len(title) > TITLE_MAX:
        notes.append(RecordProblem(position=position.at("245"), code=ProblemCode.VALUE_TRUNCATED,
                                   detail=f"title of {len(title)} characters"))
    isbns = []
    for raw in _all(record, "020", "a"):
        isbn = parse_isbn(raw)
        if isbn is None:
            notes.append(RecordProblem(position=position.at("020"), code=ProblemCode.VALUE_DROPPED,
                                       detail=f"ISBN {raw!r}"))
        else:
            isbns.append(isbn)
    publisher, year_text = _publication(record)
    return BibRecord(
        record_id=_control_number(record),
        title=truncate(title, TITLE_MAX),
        author=truncate(_author(record), AUTHOR_MAX),
        isbns=tuple(dict.fromkeys(isbns)),
        publisher=publisher,
        year=_year(year_text, record),
    )


def _title(record: pymarc.Record) -> str:
    fields = record.get_fields("245")
    if not fields:
        return ""
    title_field = fields[0]
    title = trim_isbd(clean_text(title_field.get("a") or ""))
    if not title:
        return ""
    subtitle = trim_isbd(clean_text(" ".join(title_field.get_subfields("b"))))
    if subtitle:
        title = f"{title} : {subtitle}"
    for part in title_field.get_subfields("n", "p"):
        part = trim_isbd(clean_text(part))
        if part:
            title = f"{title}. {part}"
    return title


def _author(record: pymarc.Record) -> str:
    for tag in ("100", "110", "111", "700", "710"):
        for author_field in record.get_fields(tag):
            name = trim_isbd(clean_text(author_field.get("a") or ""))
            if name:
                return name
    return ""


def _publication(record: pymarc.Record) -> tuple[str, str]:
    # RDA's 264 with second indicator 1 is the publication statement; older records use 260.
    candidates = sorted(record.get_fields("264"), key=lambda f: f.indicator2 != "1") + record.get_fields("260")
    for publication in candidates:
        publisher = trim_isbd(clean_text(publication.get("b") or ""))
        date_text = clean_text(publication.get("c") or "")
        if publisher or date_text:
            return publisher, date_text
    return "", ""


def _year(text: str, record: pymarc.Record) -> int | None:
    match = _YEAR.search(text)
    if match:
        return int(match.group())
    fixed = record.get_fields("008")
    date1 = fixed[0].data[7:11] if fixed and fixed[0].data else ""
    return int(date1) if _YEAR.fullmatch(date1 or "") else None


def _control_number(record: pymarc.Record) -> str | None:
    control = record.get_fields("001")
    if control and clean_text(control[0].data):
        return clean_text(control[0].data)
    koha = _all(record, "999", "c")
    return koha[0] if koha else None


def _record_call_number(record: pymarc.Record, holdings: HoldingsMap) -> str:
    for tag in holdings.record_call_number_tags:
        for call_field in record.get_fields(tag):
            number = clean_text(" ".join(call_field.get_subfields("a", "b")))
            if number:
                return number
    return ""


def _record_item_type(record: pymarc.Record, holdings: HoldingsMap) -> str:
    if holdings.record_item_type is None:
        return ""
    tag, code = holdings.record_item_type
    values = _all(record, tag, code)
    return values[0] if values else ""


# ---------------------------------------------------------------------------------------------- item level


def _item(record: pymarc.Record, holding: pymarc.Field, bib: BibRecord, holdings: HoldingsMap,
          where: Position, mapped: MappedRecord) -> ItemRecord | None:
    barcode = _first(holding, holdings.barcode)
    if not barcode:
        mapped.skipped.append(RecordProblem(position=where, code=ProblemCode.MISSING_BARCODE,
                                            detail=f"${holdings.barcode} is empty", key=bib.record_id))
        return None
    try:
        check_barcode(barcode)
        status, in_library_only = _circulation_flags(holding, holdings)
        parts = parse_parts(_first(holding, holdings.parts))
        tag_uids = parse_tag_uids(_first(holding, holdings.tag_uid))
        call_number = clean_text(" ".join(v for code in holdings.call_number for v in holding.get_subfields(code)))
        return ItemRecord(
            barcode=barcode, title=bib.title, author=bib.author, record_id=bib.record_id,
            isbn=bib.isbns[0] if bib.isbns else None, publisher=bib.publisher, year=bib.year,
            call_number=call_number or _record_call_number(record, holdings),
            item_type=normalise_item_type(_first(holding, holdings.item_type) or _record_item_type(record, holdings),
                                          holdings.item_types),
            parts=parts, home_branch=_first(holding, holdings.home_branch),
            holding_branch=_first(holding, holdings.holding_branch) or _first(holding, holdings.home_branch),
            location=_first(holding, holdings.location), in_library_only=in_library_only, status=status,
            tag_uids=tag_uids,
        )
    except ValueError as exc:  # also pydantic's ValidationError
        code = ProblemCode.BAD_BARCODE if "barcode" in str(exc) else ProblemCode.BAD_VALUE
        detail = _validation_text(exc)
        mapped.skipped.append(RecordProblem(position=where, code=code, detail=detail, key=barcode))
        return None


def _circulation_flags(holding: pymarc.Field, holdings: HoldingsMap) -> tuple[ItemStatus | None, bool]:
    """Koha's status subfields: withdrawn and lost win over not-for-loan; negative not-for-loan = on order."""
    if _nonzero(holding, holdings.withdrawn):
        return ItemStatus.WITHDRAWN, False
    if _nonzero(holding, holdings.lost):
        return ItemStatus.LOST, False
    not_for_loan = _int(holding, holdings.not_for_loan)
    if not_for_loan < 0:
        return ItemStatus.IN_PROCESS, False
    return None, not_for_loan > 0


def _nonzero(holding: pymarc.Field, code: str | None) -> bool:
    return _int(holding, code) != 0


def _int(holding: pymarc.Field, code: str | None) -> int:
    text = _first(holding, code)
    if not text:
        return 0
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"${code} is {text!r}, expected a whole number") from None


def _first(holding: pymarc.Field, code: str | None) -> str:
    return clean_text(holding.get(code) or "") if code else ""


def _all(record: pymarc.Record, tag: str, code: str) -> list[str]:
    values = (clean_text(value) for found in record.get_fields(tag) for value in found.get_subfields(code))
    return [value for value in values if value]


def _validation_text(exc: ValueError) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, error['loc']))}: {error['msg']}" for error in exc.errors())
    return str(exc)
