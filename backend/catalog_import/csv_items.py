"""Items from a CSV file: one row per item (copy).

Columns (English or Vietnamese names; see docs/import.md): barcode (required),
title (required), author, item_type, parts, location, in_library_only, tag_uid,
home_branch, call_number, record_id, isbn, publisher, year.  Only the columns
present in the file are stated, so a file with just barcode and title updates
titles and leaves everything else as it was.
"""

from __future__ import annotations

from typing import Any

from backend.catalog_import.csv_rows import RowProblem, barcode_of, build_records, parsed
from backend.catalog_import.csv_table import Column, CsvRow, read_csv_table
from backend.catalog_import.parsed import ParseResult, Source, load_source
from backend.catalog_import.records import AUTHOR_MAX, TITLE_MAX, ItemRecord
from backend.catalog_import.report import ProblemCode, RecordProblem
from backend.catalog_import.text import truncate
from backend.catalog_import.values import (
    normalise_item_type,
    parse_flag,
    parse_isbn,
    parse_parts,
    parse_tag_uids,
)

ITEM_COLUMNS: tuple[Column, ...] = (
    Column("barcode", ("item_id", "item barcode", "mã vạch", "mã cá biệt", "số ĐKCB", "ĐKCB",
                       "số đăng ký cá biệt", "mã tài liệu", "mã bản sao"), required=True),
    Column("title", ("nhan đề", "tên sách", "tên tài liệu", "nhan đề chính"), required=True),
    Column("author", ("tác giả", "creator")),
    Column("item_type", ("type", "itype", "loại tài liệu", "loại", "dạng tài liệu", "kiểu tài liệu")),
    Column("parts", ("pieces", "số phần", "số mảnh", "số bộ phận")),
    Column("location", ("shelf", "shelving location", "vị trí", "kho", "kho sách", "vị trí xếp giá")),
    Column("in_library_only", ("reference_only", "not_for_loan", "chỉ đọc tại chỗ", "đọc tại chỗ",
                               "không cho mượn")),
    Column("tag_uid", ("tag_uids", "uid", "rfid", "rfid_uid", "mã thẻ RFID", "UID thẻ", "thẻ RFID", "mã chip")),
    Column("home_branch", ("branch", "library", "chi nhánh", "thư viện", "cơ sở")),
    Column("call_number", ("callnumber", "ký hiệu xếp giá", "số định danh", "ký hiệu phân loại", "ký hiệu kho")),
    Column("record_id", ("biblionumber", "mã biểu ghi")),
    Column("isbn", ()),
    Column("publisher", ("nhà xuất bản", "NXB")),
    Column("year", ("năm xuất bản", "năm", "publication year")),
)


def read_items_csv(source: Source) -> ParseResult:
    data, name = load_source(source)
    table = read_csv_table(data, ITEM_COLUMNS)
    return build_records(table, _item, source=name, kind="items")


def _item(row: CsvRow, notes: list[RecordProblem]) -> ItemRecord:
    barcode = barcode_of(row)
    title = row.values["title"]
    if not title:
        raise RowProblem(ProblemCode.MISSING_TITLE, "title")
    stated: dict[str, Any] = {"barcode": barcode, "title": _fit(row, "title", TITLE_MAX, notes)}
    present = row.values.keys()
    if "author" in present:
        stated["author"] = _fit(row, "author", AUTHOR_MAX, notes)
    for name in ("location", "home_branch", "call_number", "publisher"):
        if name in present:
            stated[name] = row.values[name]
    if "home_branch" in present:
        stated["holding_branch"] = row.values["home_branch"]
    if "record_id" in present:
        stated["record_id"] = row.values["record_id"] or None
    if "item_type" in present:
        stated["item_type"] = normalise_item_type(row.values["item_type"])
    if "parts" in present:
        stated["parts"] = parsed(row, "parts", parse_parts)
    if "in_library_only" in present:
        stated["in_library_only"] = parsed(row, "in_library_only", parse_flag)
    if "tag_uid" in present:
        stated["tag_uids"] = parsed(row, "tag_uid", parse_tag_uids)
        if len(stated["tag_uids"]) > stated.get("parts", 1):
            raise RowProblem(ProblemCode.BAD_VALUE, "tag_uid",
                             f"{len(stated['tag_uids'])} tag UIDs for {stated.get('parts', 1)} part(s)")
    if "isbn" in present:
        stated["isbn"] = _optional(row, "isbn", parse_isbn, notes)
    if "year" in present:
        stated["year"] = _optional(row, "year", _year, notes)
    return ItemRecord(**stated)


def _fit(row: CsvRow, field: str, limit: int, notes: list[RecordProblem]) -> str:
    value = row.values[field]
    if len(value) > limit:
        notes.append(RecordProblem(position=row.position(field), code=ProblemCode.VALUE_TRUNCATED,
                                   detail=f"{len(value)} characters, kept {limit}", key=row.values["barcode"]))
    return truncate(value, limit)


def _optional(row: CsvRow, field: str, parse: Any, notes: list[RecordProblem]) -> Any:
    """A value that is nice to have: an unreadable one is left out with a warning, the row still imports."""
    text = row.values[field]
    value = parse(text) if text else None
    if text and value is None:
        notes.append(RecordProblem(position=row.position(field), code=ProblemCode.VALUE_DROPPED,
                                   detail=repr(text), key=row.values["barcode"]))
    return value


def _year(text: str) -> int | None:
    return int(text) if text.isdigit() and 1000 <= int(text) <= 2999 else None
