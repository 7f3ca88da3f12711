"""Test kit for the catalog import: build MARC21 (UTF-8 or MARC-8), MARCXML and CSV files by hand.

The writers here are independent of the importer (and of pymarc's writer, which
always re-labels records as UTF-8), so a test can produce exactly the bytes a
foreign exporter would: MARC-8 with combining diacritics before the letter,
decomposed UTF-8, wrong record lengths, mislabelled leaders.  The tests at the
bottom check the kit itself against pymarc.

The sample files in firmware_configs/samples/ are written by :func:`write_samples`:
    python -m tests.circulation.test_import_kit firmware_configs/samples
"""

from __future__ import annotations

import csv
import io
import sys
import unicodedata
from pathlib import Path
from typing import Callable, Sequence
from xml.sax.saxutils import escape, quoteattr

import pymarc
from argon2 import PasswordHasher
from pymarc import marc8_mapping

FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
SAMPLES = Path(__file__).resolve().parents[2] / "firmware_configs" / "samples"

Subfields = list[tuple[str, str]]
DataField = tuple[str, Subfields]  # (indicators, subfields)
MarcField = tuple[str, str | DataField]  # control field text, or a data field
Encoder = Callable[[str], bytes]

# ---------------------------------------------------------------------------------------------- MARC-8

_ANSEL = marc8_mapping.CODESETS[0x45]
_SPACING = {chr(code): bytes([byte]) for byte, (code, combining) in _ANSEL.items() if not combining}
_COMBINING = {chr(code): bytes([byte]) for byte, (code, combining) in _ANSEL.items() if combining}
_HORN = "\u031b"


def marc8(text: str) -> bytes:
    """Vietnamese (and other Latin) text in MARC-8: ANSEL letters ơ ư đ, combining marks before the base."""
    out = bytearray()
    for char in unicodedata.normalize("NFC", text):
        if char.isascii():
            out += char.encode("ascii")
        elif char in _SPACING:
            out += _SPACING[char]
        else:
            base, *marks = unicodedata.normalize("NFD", char)
            if _HORN in marks:  # ANSEL has ơ/ư as letters, not a combining horn
                base = unicodedata.normalize("NFC", base + _HORN)
                marks.remove(_HORN)
            out += b"".join(_COMBINING[mark] for mark in marks)
            out += base.encode("ascii") if base.isascii() else _SPACING[base]
    return bytes(out)


def utf8(text: str) -> bytes:
    return text.encode("utf-8")


def utf8_nfd(text: str) -> bytes:
    return unicodedata.normalize("NFD", text).encode("utf-8")


# ---------------------------------------------------------------------------------------------- ISO 2709


def iso2709(fields: Sequence[MarcField], *, encode: Encoder = utf8, leader9: str = "a",
            claimed_length: int | None = None) -> bytes:
    """One binary MARC21 record; ``claimed_length`` writes a wrong length into the leader."""
    directory, body = b"", b""
    for tag, content in fields:
        if isinstance(content, str):
            data = encode(content) + b"\x1e"
        else:
            indicators, subfields = content
            data = indicators.encode("ascii") + b"".join(
                b"\x1f" + code.encode("ascii") + encode(value) for code, value in subfields) + b"\x1e"
        directory += f"{tag}{len(data):04d}{len(body):05d}".encode("ascii")
        body += data
    base = 24 + len(directory) + 1
    length = base + len(body) + 1
    leader = f"{claimed_length or length:05d}nam {leader9}22{base:05d} a 4500".encode("ascii")
    assert len(leader) == 24
    return leader + directory + b"\x1e" + body + b"\x1d"


# ---------------------------------------------------------------------------------------------- MARCXML


def marcxml(records: Sequence[Sequence[MarcField]], *, normalise: Callable[[str], str] = lambda text: text) -> bytes:
    """A MARCXML collection, one field per line (so line numbers in reports are meaningful)."""
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             '<collection xmlns="http://www.loc.gov/MARC21/slim">']
    for fields in records:
        lines += ["  <record>", "    <leader>00000nam a2200000 a 4500</leader>"]
        for tag, content in fields:
            if isinstance(content, str):
                lines.append(f'    <controlfield tag="{tag}">{escape(normalise(content))}</controlfield>')
                continue
            indicators, subfields = content
            lines.append(f'    <datafield tag="{tag}" ind1={quoteattr(indicators[0])} ind2={quoteattr(indicators[1])}>')
            lines += [f'      <subfield code="{code}">{escape(normalise(value))}</subfield>' for code, value in subfields]
            lines.append("    </datafield>")
        lines.append("  </record>")
    lines.append("</collection>")
    return ("\n".join(lines) + "\n").encode("utf-8")


# ---------------------------------------------------------------------------------------------- CSV


def csv_bytes(rows: Sequence[Sequence[str]], *, delimiter: str = ",", bom: bool = False,
              encoding: str = "utf-8") -> bytes:
    buffer = io.StringIO(newline="")
    csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    data = buffer.getvalue().encode(encoding)
    return (b"\xef\xbb\xbf" if bom else b"") + data


# ---------------------------------------------------------------------------------------------- records


def book(control: str, title: str, author: str, items: Sequence[Subfields], *, subtitle: str = "",
         isbn: str = "", publisher: str = "Nxb. Văn học", year: str = "2019", call_number: str = "",
         item_type: str = "BK", extra: Sequence[MarcField] = ()) -> list[MarcField]:
    """A Koha-style bibliographic record with one 952 per item."""
    title_subfields: Subfields = [("a", f"{title} :" if subtitle else f"{title} /")]
    if subtitle:
        title_subfields.append(("b", f"{subtitle} /"))
    title_subfields.append(("c", f"{author}."))
    fields: list[MarcField] = [("001", control), ("008", f"200101s{year}    vm            000 0 vie d")]
    if isbn:
        fields.append(("020", ("  ", [("a", isbn)])))
    if call_number:
        fields.append(("090", ("  ", [("a", call_number)])))
    fields += [("100", ("0 ", [("a", f"{author},")])), ("245", ("10", title_subfields)),
               ("264", (" 1", [("a", "Hà Nội :"), ("b", f"{publisher},"), ("c", f"{year}.")])),
               *extra, ("942", ("  ", [("c", item_type)]))]
    fields += [("952", ("  ", item)) for item in items]
    return fields


def koha_item(barcode: str, *, branch: str = "TVTINH", location: str = "KHO-MUON", call_number: str = "",
              item_type: str = "", not_for_loan: str = "0", lost: str = "0") -> Subfields:
    subfields = [("0", "0"), ("1", lost), ("7", not_for_loan), ("a", branch), ("b", branch), ("c", location),
                 ("p", barcode)]
    if call_number:
        subfields.append(("o", call_number))
    if item_type:
        subfields.append(("y", item_type))
    return subfields


SAMPLE_RECORDS: list[list[MarcField]] = [
    book("VN-000101", "Truyện Kiều", "Nguyễn Du", [koha_item("VV.000101", call_number="895.9221 NG-D"),
                                                   koha_item("VV.000102", location="PHONG-DOC", not_for_loan="1")],
         isbn="978-604-69-9631-6", call_number="895.9221 NG-D"),
    book("VN-000102", "Số đỏ", "Vũ Trọng Phụng", [koha_item("VV.000103")], subtitle="tiểu thuyết",
         isbn="9786049696101 (bìa mềm)"),
    book("VN-000103", "Dế Mèn phiêu lưu ký", "Tô Hoài", [koha_item("TN.000104", branch="TVTHIEUNHI")],
         publisher="Kim Đồng", year="2020"),
    book("VN-000104", "Từ điển tiếng Việt", "Viện Ngôn ngữ học",
         [koha_item("VV.000105", location="PHONG-DOC", item_type="REF", not_for_loan="1")],
         publisher="Đà Nẵng", year="2018", item_type="REF"),
    book("VN-000105", "Việt Nam sử lược", "Trần Trọng Kim",
         [koha_item("VV.000106"), koha_item("VV.000107", lost="1")], publisher="Nxb. Hồng Đức", year="2021"),
    book("VN-000106", "Nỗi buồn chiến tranh", "Bảo Ninh", [koha_item("VV.000108")], publisher="Nxb. Trẻ",
         year="2011"),
]
SAMPLE_ITEM_COUNT = 8
SAMPLE_TITLES = {"VV.000101": "Truyện Kiều", "VV.000103": "Số đỏ : tiểu thuyết", "TN.000104": "Dế Mèn phiêu lưu ký",
                 "VV.000105": "Từ điển tiếng Việt", "VV.000108": "Nỗi buồn chiến tranh"}

SAMPLE_ITEMS_CSV: list[list[str]] = [
    ["Mã vạch", "Nhan đề", "Tác giả", "Loại tài liệu", "Số phần", "Vị trí", "Chỉ đọc tại chỗ", "Mã thẻ RFID"],
    ["TN.000201", "Mắt biếc", "Nguyễn Nhật Ánh", "Sách", "1", "Kho mượn", "không", "E00401000000A201"],
    ["TN.000202", "Tôi thấy hoa vàng trên cỏ xanh", "Nguyễn Nhật Ánh", "Sách", "1", "Kho mượn", "", ""],
    ["TN.000203", "Đất rừng phương Nam", "Đoàn Giỏi", "Sách", "2", "Kho thiếu nhi", "không",
     "E00401000000A203 E00401000000A204"],
    ["TN.000205", "Tiếng Việt lớp 5; tập 1", "Bộ Giáo dục và Đào tạo", "Tham khảo", "1", "Phòng đọc", "có", ""],
    ["TN.000206", "Những ngôi sao xa xôi", "Lê Minh Khuê", "DVD", "1", "Kho nghe nhìn", "0", ""],
]
SAMPLE_PATRONS_CSV: list[list[str]] = [
    ["barcode", "name", "category", "email", "expires_on", "pin"],
    ["21000101", "Nguyễn Thị Hương", "Sinh viên", "huong.nt@example.edu.vn", "31/12/2026", "2468"],
    ["21000102", "Trần Văn Đức", "adult", "", "2026-06-30", "1357"],
    ["21000103", "Lê Hoàng Yến", "Thiếu nhi", "", "01/09/2027", ""],
    ["21000104", "Phạm Quốc Bảo", "staff", "bao.pq@example.gov.vn", "", "8080"],
]
SAMPLE_ITEMS_WITH_ERRORS_CSV: list[list[str]] = [
    ["barcode", "title", "author", "parts", "in_library_only"],
    ["TN.000301", "Vợ nhặt", "Kim Lân", "1", "no"],
    ["", "Chí Phèo", "Nam Cao", "1", "no"],
    ["TN.000303", "", "Thạch Lam", "1", "no"],
    ["TN.000304", "Gió lạnh đầu mùa", "Thạch Lam", "hai", "no"],
    ["TN.000301", "Vợ nhặt (bản trùng)", "Kim Lân", "1", "no"],
    ["TN.000306", "Bỉ vỏ", "Nguyên Hồng", "1", "có"],
]


def write_samples(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "catalog-vi.xml").write_bytes(marcxml(SAMPLE_RECORDS))
    (directory / "catalog-vi.mrc").write_bytes(b"".join(iso2709(fields) for fields in SAMPLE_RECORDS))
    (directory / "catalog-vi-marc8.mrc").write_bytes(
        b"".join(iso2709(fields, encode=marc8, leader9=" ") for fields in SAMPLE_RECORDS))
    # As Excel writes "CSV UTF-8" in a Vietnamese locale: BOM, semicolons.
    (directory / "items.csv").write_bytes(csv_bytes(SAMPLE_ITEMS_CSV, delimiter=";", bom=True))
    (directory / "patrons.csv").write_bytes(csv_bytes(SAMPLE_PATRONS_CSV))
    (directory / "items-with-errors.csv").write_bytes(csv_bytes(SAMPLE_ITEMS_WITH_ERRORS_CSV))


# ---------------------------------------------------------------------------------------------- the kit's own tests

VIETNAMESE = "Nguyễn Thị Hương đọc \"Truyện Kiều\" ở Đà Nẵng: ưởng ợ ậ ễ ỹ Ỷ Ữ Ơ"


def test_marc8_writer_round_trips_vietnamese_through_pymarc() -> None:
    record = pymarc.Record(data=iso2709([("245", ("10", [("a", VIETNAMESE)]))], encode=marc8, leader9=" "))
    assert record["245"]["a"] == VIETNAMESE


def test_marc8_writer_puts_combining_marks_before_the_letter() -> None:
    assert marc8("ế") == b"\xe3\xe2e"  # circumflex, acute, then the letter
    assert marc8("ữ") == b"\xe4\xbd"  # tilde, then ANSEL's ư


def test_iso2709_writer_is_read_by_pymarc_with_the_right_length() -> None:
    data = iso2709(SAMPLE_RECORDS[0])
    assert int(data[:5]) == len(data)
    assert pymarc.Record(data=data)["245"]["a"] == "Truyện Kiều /"


if __name__ == "__main__":
    write_samples(Path(sys.argv[1]) if len(sys.argv) > 1 else SAMPLES)
