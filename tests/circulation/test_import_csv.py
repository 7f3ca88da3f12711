"""CSV import of items and patrons: encodings, delimiters, Vietnamese headers, positioned problems, PIN hashing."""

from __future__ import annotations

import unicodedata
from datetime import date

import pytest
from argon2 import PasswordHasher
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backend.catalog_import.csv_items import read_items_csv
from backend.catalog_import.csv_patrons import read_patrons_csv
from backend.catalog_import.csv_table import detect_delimiter
from backend.catalog_import.errors import ImportFileError
from backend.catalog_import.importer import apply
from backend.catalog_import.report import ProblemCode
from backend.catalog_import.sinks import MemoryCatalogSink
from backend.catalog_import.text import clean_text
from tests.circulation.test_import_kit import (
    FAST_HASHER,
    SAMPLE_ITEMS_CSV,
    SAMPLES,
    csv_bytes,
)

VI_HEADER = ["Mã vạch", "Nhan đề", "Tác giả", "Loại tài liệu", "Số phần", "Vị trí", "Chỉ đọc tại chỗ"]
EN_HEADER = ["barcode", "title", "author", "item_type", "parts", "location", "in_library_only"]
ROW = ["VV.1", "Chuyện người con gái Nam Xương", "Nguyễn Dữ", "Sách", "1", "Kho mượn", "không"]


def items(result):  # type: ignore[no-untyped-def]
    return {entry.record.barcode: entry.record for entry in result.entries}


@pytest.mark.parametrize("header", [VI_HEADER, EN_HEADER, ["MA VACH", "nhan_de", "Tac gia", "loai", "so phan",
                                                          "kho", "doc tai cho"]], ids=["vi", "en", "ascii-folded"])
@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
@pytest.mark.parametrize("bom", [False, True])
def test_items_csv_in_every_spreadsheet_dialect(header: list[str], delimiter: str, bom: bool) -> None:
    result = read_items_csv(csv_bytes([header, ROW], delimiter=delimiter, bom=bom))
    assert not result.skipped and not result.warnings
    item = items(result)["VV.1"]
    assert (item.title, item.author, item.item_type, item.location, item.in_library_only) == (
        "Chuyện người con gái Nam Xương", "Nguyễn Dữ", "book", "Kho mượn", False)


def test_utf16_with_bom_from_excel_unicode_text() -> None:
    data = "\ufeff".encode("utf-16-le") + "\t".join(VI_HEADER).encode("utf-16-le") + b"\r\x00\n\x00" + \
        "\t".join(ROW).encode("utf-16-le")
    assert items(read_items_csv(data))["VV.1"].author == "Nguyễn Dữ"


def test_decomposed_vietnamese_is_normalised_to_nfc() -> None:
    decomposed = [unicodedata.normalize("NFD", cell) for cell in ROW]
    item = items(read_items_csv(csv_bytes([VI_HEADER, decomposed])))["VV.1"]
    assert item.title == "Chuyện người con gái Nam Xương" and unicodedata.is_normalized("NFC", item.title)


def test_legacy_encoding_is_refused_with_the_line_of_the_first_bad_byte() -> None:
    data = "barcode,title\nVV.1,Tat den\n".encode() + "VV.2,Đèn\n".encode("cp1258")
    with pytest.raises(ImportFileError, match=r"line 3.*CSV UTF-8"):
        read_items_csv(data)


def test_missing_required_column_is_fatal_and_names_the_aliases() -> None:
    with pytest.raises(ImportFileError, match="title"):
        read_items_csv(csv_bytes([["Mã vạch", "Tác giả"], ["VV.1", "Nam Cao"]]))
    with pytest.raises(ImportFileError, match="both mean 'barcode'"):
        read_items_csv(csv_bytes([["barcode", "Mã vạch", "title"], ["VV.1", "VV.1", "x"]]))


def test_bad_rows_are_skipped_with_line_and_column_and_good_rows_kept() -> None:
    data = csv_bytes([
        EN_HEADER + ["tag_uid"],
        ["VV.1", "Vợ chồng A Phủ", "Tô Hoài", "", "1", "", "", "e0:04:01:00:00:00:00:01"],
        ["VV.2", "Tắt đèn\ntập 1", "Ngô Tất Tố", "", "1", "", "", ""],  # a quoted cell spanning two lines
        ["", "Lão Hạc", "Nam Cao", "", "1", "", "", ""],
        ["VV.4", "Bỉ vỏ", "", "", "0", "", "", ""],
        ["VV.5", "Số đỏ", "", "", "1", "", "maybe", ""],
        ["VV.6", "Hai đứa trẻ", "", "", "1", "", "", "E004"],
        ["VV 7", "Giông tố", "", "", "1", "", "", ""],
        ["VV.8", "Vang bóng một thời", "", "", "1", "", "", "", "extra"],
        ["VV.9", "Chiếc thuyền ngoài xa", "", "", "1", "", "", "E004010000000001 E004010000000002"],
    ])
    result = read_items_csv(data)
    assert set(items(result)) == {"VV.1", "VV.2"}
    assert items(result)["VV.1"].tag_uids == ("E004010000000001",)
    assert items(result)["VV.2"].title == "Tắt đèn tập 1"
    assert [(p.position.line, p.position.field, p.code) for p in result.skipped] == [
        (5, "barcode", ProblemCode.MISSING_BARCODE),
        (6, "parts", ProblemCode.BAD_VALUE),
        (7, "in_library_only", ProblemCode.BAD_VALUE),
        (8, "tag_uid", ProblemCode.BAD_VALUE),
        (9, "barcode", ProblemCode.BAD_BARCODE),
        (10, None, ProblemCode.BAD_ROW),
        (11, "tag_uid", ProblemCode.BAD_VALUE),  # two tags, one part
    ]
    assert result.records_read == 9


def test_unknown_columns_are_ignored_with_a_warning() -> None:
    result = read_items_csv(csv_bytes([["barcode", "title", "Ghi chú"], ["VV.1", "Tắt đèn", "bìa rách"]]))
    assert set(items(result)) == {"VV.1"}
    assert [(w.code, w.position.field) for w in result.warnings] == [(ProblemCode.UNKNOWN_COLUMN, "Ghi chú")]


def test_only_the_columns_present_are_stated() -> None:
    item = items(read_items_csv(csv_bytes([["barcode", "title"], ["VV.1", "Tắt đèn"]])))["VV.1"]
    assert item.model_fields_set == {"barcode", "title"}


def test_sample_items_csv_imports_cleanly() -> None:
    result = read_items_csv(SAMPLES / "items.csv")
    assert (result.skipped, result.warnings) == ([], [])
    assert [entry.record.title for entry in result.entries] == [row[1] for row in SAMPLE_ITEMS_CSV[1:]]
    assert items(result)["TN.000205"].in_library_only and items(result)["TN.000205"].item_type == "reference"


# ---------------------------------------------------------------------------------------------- patrons


def test_patrons_with_vietnamese_headers_and_hashed_pins() -> None:
    data = csv_bytes([["Số thẻ", "Họ và tên", "Đối tượng", "Thư điện tử", "Ngày hết hạn", "Mã PIN"],
                      ["21000001", "Nguyễn Thị Hương", "Sinh viên", "huong@example.vn", "31/12/2026", "2468"],
                      ["21000002", "Trần Văn Đức", "", "", "2026-06-30", ""]], delimiter=";", bom=True)
    result = read_patrons_csv(data, pin_hasher=FAST_HASHER)
    assert not result.skipped
    huong, duc = (entry.record for entry in result.entries)
    assert (huong.name, huong.category, huong.email, huong.expires_on) == (
        "Nguyễn Thị Hương", "student", "huong@example.vn", date(2026, 12, 31))
    assert huong.pin_hash is not None and PasswordHasher().verify(huong.pin_hash, "2468")
    assert "2468" not in huong.model_dump_json()
    assert (duc.category, duc.pin_hash, duc.expires_on) == ("adult", None, date(2026, 6, 30))


def test_koha_style_surname_and_firstname_make_the_name() -> None:
    data = csv_bytes([["cardnumber", "surname", "firstname", "categorycode", "dateexpiry"],
                      ["21000003", "Lê", "Hoàng Yến", "CHILD", "2027-09-01"]])
    [entry] = read_patrons_csv(data, pin_hasher=FAST_HASHER).entries
    assert (entry.record.name, entry.record.category) == ("Lê Hoàng Yến", "child")


def test_bad_patron_rows_are_skipped_and_pins_never_echoed() -> None:
    data = csv_bytes([["barcode", "name", "expires_on", "pin", "email"],
                      ["21000001", "Nguyễn Văn An", "2026-02-30", "1234", ""],
                      ["21000002", "", "", "1234", ""],
                      ["21000003", "Phạm Thị Mai", "", "12", ""],
                      ["21000004", "Đỗ Minh Khôi", "", "9876", "not-an-email"]])
    result = read_patrons_csv(data, pin_hasher=FAST_HASHER)
    assert [(p.position.line, p.code) for p in result.skipped] == [
        (2, ProblemCode.BAD_VALUE), (3, ProblemCode.MISSING_NAME), (4, ProblemCode.BAD_PIN)]
    assert "12" not in result.skipped[2].detail
    [entry] = result.entries
    assert entry.record.email is None
    assert [(w.position.line, w.code) for w in result.warnings] == [(5, ProblemCode.VALUE_DROPPED)]


def test_patrons_csv_needs_a_name_column() -> None:
    with pytest.raises(ImportFileError, match="name"):
        read_patrons_csv(csv_bytes([["barcode", "email"], ["1", "a@b.vn"]]), pin_hasher=FAST_HASHER)


def test_sample_patrons_csv_imports_cleanly() -> None:
    result = read_patrons_csv(SAMPLES / "patrons.csv", pin_hasher=FAST_HASHER)
    assert (len(result.entries), result.skipped, result.warnings) == (4, [], [])
    assert result.entries[0].record.name == "Nguyễn Thị Hương"


def test_delimiter_detection_ignores_quoted_delimiters() -> None:
    assert detect_delimiter('"Nhan đề; phụ đề",Tác giả,Năm') == ","
    assert detect_delimiter('Mã vạch;"Tác giả, dịch giả";Năm') == ";"
    assert detect_delimiter("barcode") == ","


# ---------------------------------------------------------------------------------------------- round trip

VIETNAMESE_LETTERS = ("aăâbcdđeêghiklmnoôơpqrstuưvxyAĂÂĐÊÔƠƯ" "àáảãạằắẳẵặầấẩẫậèéẻẽẹềếểễệìíỉĩịòóỏõọồốổỗộờớởỡợ"
                      "ùúủũụừứửữựỳýỷỹỵÀÁẢÃẠỀẾỂỄỆỜỚỞỠỢỪỨỬỮỰ")
titles = st.text(alphabet=st.sampled_from(VIETNAMESE_LETTERS + " ,;\"'.:-–()?!0123456789\t"), min_size=1,
                 max_size=60).filter(lambda text: clean_text(text) != "")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(title_list=st.lists(titles, min_size=1, max_size=5), delimiter=st.sampled_from([",", ";"]),
       bom=st.booleans(), decomposed=st.booleans())
def test_csv_round_trip_of_arbitrary_vietnamese_titles(title_list: list[str], delimiter: str, bom: bool,
                                                       decomposed: bool) -> None:
    form = "NFD" if decomposed else "NFC"
    rows = [["Mã vạch", "Nhan đề"]] + [[f"VV.{n}", unicodedata.normalize(form, title)]
                                       for n, title in enumerate(title_list)]
    sink = MemoryCatalogSink()
    report = apply(read_items_csv(csv_bytes(rows, delimiter=delimiter, bom=bom)), sink)
    assert (report.created, report.skipped) == (len(title_list), ())
    assert [sink.items[f"VV.{n}"].title for n in range(len(title_list))] == [
        clean_text(title) for title in title_list]


def test_excel_sep_hint_line_names_the_delimiter_and_keeps_line_numbers() -> None:
    data = b"sep=;\r\n" + csv_bytes([["barcode", "title"], ["VV.1", "Tắt đèn, tập 1"], ["", "Lão Hạc"]], delimiter=";")
    result = read_items_csv(data)
    assert items(result)["VV.1"].title == "Tắt đèn, tập 1"
    assert [p.position.line for p in result.skipped] == [4]
