"""MARC21 import: binary (UTF-8 and MARC-8) and MARCXML, Vietnamese intact, bad records positioned and skipped."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest

from backend.catalog_import.errors import ImportFileError
from backend.catalog_import.holdings import LIBOL, PRESETS, load_holdings_map
from backend.catalog_import.marc import detect_format, read_marc
from backend.catalog_import.records import ItemRecord
from backend.catalog_import.report import ProblemCode
from backend.circulation.model import ItemStatus
from tests.circulation.test_import_kit import (
    SAMPLE_ITEM_COUNT,
    SAMPLE_RECORDS,
    SAMPLE_TITLES,
    SAMPLES,
    book,
    iso2709,
    koha_item,
    marc8,
    marcxml,
    utf8_nfd,
)

TITLE = "Tuyển tập thơ Hồ Xuân Hương"
SUBTITLE = "bản dịch, chú giải của Nguyễn Lộc"
AUTHOR = "Hồ Xuân Hương"
PUBLISHER = "Nxb. Đà Nẵng"


def vietnamese_record(barcode: str = "VV.900001", **kwargs: object) -> list:
    return book("VN-900001", TITLE, AUTHOR, [koha_item(barcode, call_number="895.9221 H-H")], subtitle=SUBTITLE,
                publisher=PUBLISHER, year="2022", isbn="978-604-84-1234-5", **kwargs)  # type: ignore[arg-type]


def items_of(result) -> dict[str, ItemRecord]:  # type: ignore[no-untyped-def]
    return {entry.record.barcode: entry.record for entry in result.entries}


def assert_vietnamese_intact(item: ItemRecord) -> None:
    assert item.title == f"{TITLE} : {SUBTITLE}"
    assert item.author == AUTHOR
    assert item.publisher == PUBLISHER
    for text in (item.title, item.author, item.publisher):
        assert unicodedata.is_normalized("NFC", text)


@pytest.mark.parametrize("encode, leader9", [(lambda s: s.encode(), "a"), (marc8, " "), (utf8_nfd, "a")],
                         ids=["utf8", "marc8", "utf8-decomposed"])
def test_binary_marc_keeps_vietnamese_intact(encode, leader9) -> None:  # type: ignore[no-untyped-def]
    data = iso2709(vietnamese_record(), encode=encode, leader9=leader9)
    result = read_marc(data)
    assert not result.skipped and not result.warnings
    item = items_of(result)["VV.900001"]
    assert_vietnamese_intact(item)
    assert (item.year, item.isbn, item.call_number) == (2022, "9786048412345", "895.9221 H-H")


@pytest.mark.parametrize("nfd", [False, True], ids=["nfc", "nfd"])
def test_marcxml_keeps_vietnamese_intact_and_normalises_to_nfc(nfd: bool) -> None:
    normalise = (lambda text: unicodedata.normalize("NFD", text)) if nfd else (lambda text: text)
    result = read_marc(marcxml([vietnamese_record()], normalise=normalise))
    assert not result.skipped
    assert_vietnamese_intact(items_of(result)["VV.900001"])


def test_record_labelled_marc8_but_written_in_utf8_is_read_as_utf8_with_a_warning() -> None:
    result = read_marc(iso2709(vietnamese_record(), leader9=" "))
    assert_vietnamese_intact(items_of(result)["VV.900001"])
    assert [w.code for w in result.warnings] == [ProblemCode.ENCODING_MISLABELLED]
    trusting = read_marc(iso2709(vietnamese_record(), leader9=" "), encoding="leader")
    assert items_of(trusting)["VV.900001"].title != f"{TITLE} : {SUBTITLE}"  # mojibake, as the leader asked


def test_leader_length_counted_in_characters_is_tolerated_with_a_warning() -> None:
    good = iso2709(vietnamese_record())
    characters = len(good.decode("utf-8"))  # the exporter bug: characters, not bytes
    data = iso2709(vietnamese_record(), claimed_length=characters) + iso2709(vietnamese_record("VV.900002"))
    result = read_marc(data)
    assert set(items_of(result)) == {"VV.900001", "VV.900002"}
    assert [w.code for w in result.warnings] == [ProblemCode.LENGTH_MISMATCH]
    assert result.warnings[0].position.record == 1


def test_damaged_record_is_skipped_with_its_number_and_byte_offset() -> None:
    first = iso2709(vietnamese_record("VV.900001"))
    damaged = bytearray(iso2709(vietnamese_record("VV.900002")))
    damaged[12:17] = b"99999"  # base address beyond the record
    third = iso2709(vietnamese_record("VV.900003"))
    result = read_marc(first + bytes(damaged) + third)
    assert set(items_of(result)) == {"VV.900001", "VV.900003"}
    [problem] = result.skipped
    assert (problem.code, problem.position.record, problem.position.byte_offset) == (
        ProblemCode.UNREADABLE_RECORD, 2, len(first))
    assert result.records_read == 3


def test_invalid_utf8_in_a_record_is_reported_as_an_encoding_problem() -> None:
    bad = iso2709(vietnamese_record("VV.900002")).replace("ồ".encode(), b"o\xffo", 1)  # same length
    result = read_marc(iso2709(vietnamese_record()) + bad, encoding="utf8")
    assert set(items_of(result)) == {"VV.900001"}
    assert [(p.code, p.position.record) for p in result.skipped] == [(ProblemCode.BAD_ENCODING, 2)]


def test_truncated_last_record_is_skipped() -> None:
    whole = iso2709(vietnamese_record())
    result = read_marc(whole + iso2709(vietnamese_record("VV.900002"))[:-40])
    assert set(items_of(result)) == {"VV.900001"}
    assert [(p.code, p.position.byte_offset) for p in result.skipped] == [
        (ProblemCode.UNREADABLE_RECORD, len(whole))]


def test_newlines_between_records_are_ignored() -> None:
    data = iso2709(vietnamese_record()) + b"\r\n" + iso2709(vietnamese_record("VV.900002")) + b"\n\x1a"
    assert set(items_of(read_marc(data))) == {"VV.900001", "VV.900002"}


def test_bad_items_are_skipped_individually_and_the_good_ones_kept() -> None:
    fields = book("VN-1", "Chí Phèo", "Nam Cao", [
        koha_item("VV.1"), [("a", "TVTINH")], koha_item("VV 3"), koha_item("VV.4", not_for_loan="abc")])
    result = read_marc(iso2709(fields))
    assert set(items_of(result)) == {"VV.1"}
    assert [(p.code, p.position.field) for p in result.skipped] == [
        (ProblemCode.MISSING_BARCODE, "952 #2"), (ProblemCode.BAD_BARCODE, "952 #3"), (ProblemCode.BAD_VALUE, "952 #4")]


def test_record_without_title_or_without_items_is_skipped() -> None:
    no_title = [(tag, value) for tag, value in vietnamese_record("VV.1") if tag != "245"]
    no_items = [(tag, value) for tag, value in vietnamese_record("VV.2") if tag != "952"]
    result = read_marc(iso2709(no_title) + iso2709(no_items) + iso2709(vietnamese_record("VV.3")))
    assert set(items_of(result)) == {"VV.3"}
    assert [(p.code, p.position.record) for p in result.skipped] == [
        (ProblemCode.MISSING_TITLE, 1), (ProblemCode.NO_ITEMS, 2)]


def test_broken_marcxml_record_is_skipped_with_its_line() -> None:
    xml = marcxml([vietnamese_record("VV.1"), vietnamese_record("VV.2")]).decode()
    second = xml.index("<record>", xml.index("<record>") + 1)
    xml = xml[:second] + xml[second:].replace('<subfield code="p">', "<subfield>", 1)
    result = read_marc(xml.encode())
    assert set(items_of(result)) == {"VV.1"}
    [problem] = result.skipped
    assert problem.position.record == 2
    assert problem.position.line == xml[:second].count("\n") + 1


def test_malformed_xml_is_a_fatal_error_with_line() -> None:
    with pytest.raises(ImportFileError, match="line 3"):
        read_marc(b'<?xml version="1.0"?>\n<collection>\n<record><leader>x</record>\n')


def test_koha_status_subfields_become_circulation_facts() -> None:
    result = read_marc(marcxml(SAMPLE_RECORDS))
    items = items_of(result)
    assert items["VV.000102"].in_library_only and items["VV.000102"].status is None
    assert items["VV.000107"].status is ItemStatus.LOST
    assert items["VV.000105"].item_type == "reference" and items["VV.000101"].item_type == "book"
    assert items["VV.000102"].call_number == "895.9221 NG-D"  # from 090 when the item has no $o


def test_libol_preset_reads_852_holdings() -> None:
    fields = [("001", "LB-1"), ("245", ("10", [("a", "Tắt đèn /")])), ("100", ("0 ", [("a", "Ngô Tất Tố")])),
              ("852", ("  ", [("a", "TVTINH"), ("b", "KHO-MUON"), ("h", "895.9223"), ("i", "NG-T"),
                              ("p", "DKCB.00042")]))]
    item = items_of(read_marc(iso2709(fields), holdings=LIBOL))["DKCB.00042"]
    assert (item.title, item.call_number, item.home_branch, item.location) == (
        "Tắt đèn", "895.9223 NG-T", "TVTINH", "KHO-MUON")


def test_custom_holdings_map_from_yaml(tmp_path: Path) -> None:
    path = tmp_path / "thuvien.yaml"
    path.write_text("tag: '995'\nbarcode: f\ncall_number: [k]\nitem_type: r\nnot_for_loan: null\n"
                    "item_types: {SACH: book}\n", encoding="utf-8")
    holdings = load_holdings_map(path)
    fields = [("245", ("10", [("a", "Lão Hạc")])), ("995", ("  ", [("f", "X1"), ("k", "895 NC"), ("r", "SACH")]))]
    item = items_of(read_marc(iso2709(fields), holdings=holdings))["X1"]
    assert (item.call_number, item.item_type) == ("895 NC", "book")
    assert set(PRESETS) == {"koha", "vietbiblio", "libol"}
    with pytest.raises(ImportFileError):
        load_holdings_map(tmp_path / "missing.yaml")


def test_format_detection() -> None:
    assert detect_format(b"\xef\xbb\xbf  <?xml") == "xml"
    assert detect_format(iso2709(vietnamese_record())) == "binary"
    with pytest.raises(ImportFileError):
        detect_format(b"barcode,title\n")


@pytest.mark.parametrize("name", ["catalog-vi.xml", "catalog-vi.mrc", "catalog-vi-marc8.mrc"])
def test_sample_files_import_cleanly(name: str) -> None:
    result = read_marc(SAMPLES / name)
    assert (len(result.entries), result.skipped, result.warnings) == (SAMPLE_ITEM_COUNT, [], [])
    titles = {barcode: item.title for barcode, item in items_of(result).items() if barcode in SAMPLE_TITLES}
    assert titles == SAMPLE_TITLES


def test_forced_binary_format_on_a_non_marc_file_is_fatal() -> None:
    with pytest.raises(ImportFileError, match="5-digit length"):
        read_marc(marcxml([vietnamese_record()]), format="binary")
