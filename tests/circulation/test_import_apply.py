"""Applying an import: re-import updates instead of duplicating, atomic apply, dry runs, the circulation store."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime
from typing import Iterator
from zoneinfo import ZoneInfo

import pytest

from backend.catalog_import.csv_items import read_items_csv
from backend.catalog_import.errors import SinkUsageError
from backend.catalog_import.importer import apply, import_items_csv, import_marc, import_patrons_csv
from backend.catalog_import.records import ItemRecord, PatronRecord
from backend.catalog_import.report import ProblemCode
from backend.catalog_import.sinks import CatalogSink, MemoryCatalogSink, Outcome
from backend.catalog_import.store_sink import MemoryStoreCatalog, StoreCatalogSink
from backend.circulation.memory import MemoryCirculation
from backend.circulation.model import ItemStatus
from backend.circulation.service import Argon2PinHasher
from tests.circulation.test_import_kit import (
    FAST_HASHER,
    SAMPLE_ITEM_COUNT,
    SAMPLE_RECORDS,
    SAMPLES,
    book,
    csv_bytes,
    iso2709,
    koha_item,
    marcxml,
)

NOW = datetime(2025, 3, 3, 9, 0, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh"))
HEADER = ["Mã vạch", "Nhan đề", "Tác giả", "Chỉ đọc tại chỗ"]


class FailingSink(MemoryCatalogSink):
    """Fails on the n-th upsert, like a database constraint in the middle of a file."""

    def __init__(self, fail_at: int) -> None:
        super().__init__()
        self.fail_at, self.calls = fail_at, 0

    def upsert_item(self, item: ItemRecord) -> Outcome:
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("disk full")
        return super().upsert_item(item)


def test_reimport_updates_instead_of_duplicating() -> None:
    sink = MemoryCatalogSink()
    first = import_marc(SAMPLES / "catalog-vi.mrc", sink)
    assert (first.created, first.updated, first.total, first.applied) == (SAMPLE_ITEM_COUNT, 0, SAMPLE_ITEM_COUNT, True)
    again = import_marc(SAMPLES / "catalog-vi.xml", sink)  # the same catalog, other format
    assert (again.created, again.updated, again.unchanged) == (0, 0, SAMPLE_ITEM_COUNT)
    changed = [list(fields) for fields in SAMPLE_RECORDS]
    changed[1] = book("VN-000102", "Số đỏ", "Vũ Trọng Phụng", [koha_item("VV.000103")], subtitle="tái bản")
    third = import_marc(marcxml(changed), sink)
    assert (third.created, third.updated, third.unchanged) == (0, 1, SAMPLE_ITEM_COUNT - 1)
    assert len(sink.items) == SAMPLE_ITEM_COUNT
    assert sink.items["VV.000103"].title == "Số đỏ : tái bản"


def test_csv_reimport_keeps_what_the_file_does_not_state() -> None:
    sink = MemoryCatalogSink()
    import_items_csv(csv_bytes([HEADER + ["Mã thẻ RFID"], ["VV.1", "Tắt đèn", "Ngô Tất Tố", "có",
                                                            "E004010000000001"]]), sink)
    report = import_items_csv(csv_bytes([["barcode", "title"], ["VV.1", "Tắt đèn (tái bản)"]]), sink)
    assert (report.created, report.updated) == (0, 1)
    item = sink.items["VV.1"]
    assert (item.title, item.author, item.in_library_only, item.tag_uids) == (
        "Tắt đèn (tái bản)", "Ngô Tất Tố", True, ("E004010000000001",))


def test_bad_records_are_skipped_and_reported_good_ones_applied() -> None:
    sink = MemoryCatalogSink()
    report = import_items_csv(SAMPLES / "items-with-errors.csv", sink)
    assert set(sink.items) == {"TN.000301", "TN.000306"}
    assert sink.items["TN.000301"].title == "Vợ nhặt"  # the first of two rows with the same barcode
    assert [(p.position.line, p.code) for p in report.skipped] == [
        (3, ProblemCode.MISSING_BARCODE), (4, ProblemCode.MISSING_TITLE), (5, ProblemCode.BAD_VALUE),
        (6, ProblemCode.DUPLICATE_KEY)]
    assert (report.total, report.created, report.exit_code) == (6, 2, 1)
    assert "dòng 6" in report.skipped[3].describe("vi") and "line 2" in report.skipped[3].describe("en")


def test_duplicate_barcodes_across_marc_records_keep_the_first() -> None:
    data = iso2709(book("A", "Tắt đèn", "Ngô Tất Tố", [koha_item("VV.1")])) + \
        iso2709(book("B", "Bỉ vỏ", "Nguyên Hồng", [koha_item("VV.1")]))
    sink = MemoryCatalogSink()
    report = import_marc(data, sink)
    assert sink.items["VV.1"].title == "Tắt đèn"
    assert [(p.code, p.position.record, p.detail) for p in report.skipped] == [
        (ProblemCode.DUPLICATE_KEY, 2, "first at record 1, byte 0, field 952 #1")]


@pytest.mark.parametrize("fail_at", [1, 3, SAMPLE_ITEM_COUNT])
def test_a_failure_midway_leaves_nothing_from_the_file(fail_at: int) -> None:
    sink = FailingSink(fail_at)
    sink.items["OLD.1"] = ItemRecord(barcode="OLD.1", title="Đã có từ trước")
    report = import_marc(SAMPLES / "catalog-vi.mrc", sink)
    assert set(sink.items) == {"OLD.1"}
    assert (report.applied, report.created, report.exit_code) == (False, 0, 2)
    assert report.failure is not None and "disk full" in report.failure and "952" in report.failure


def test_dry_run_counts_exactly_and_stores_nothing() -> None:
    sink = MemoryCatalogSink()
    import_items_csv(csv_bytes([HEADER, ["VV.1", "Tắt đèn", "Ngô Tất Tố", "không"]]), sink)
    before = dict(sink.items)
    report = import_items_csv(csv_bytes([HEADER, ["VV.1", "Tắt đèn", "Ngô Tất Tố", "có"],
                                         ["VV.2", "Lão Hạc", "Nam Cao", ""]]), sink, dry_run=True)
    assert (report.created, report.updated, report.applied, report.dry_run) == (1, 1, False, True)
    assert sink.items == before


def test_memory_sink_refuses_upserts_outside_a_transaction() -> None:
    with pytest.raises(SinkUsageError):
        MemoryCatalogSink().upsert_item(ItemRecord(barcode="VV.1", title="x"))
    assert isinstance(MemoryCatalogSink(), CatalogSink)


def test_patron_reimport_keeps_the_pin_when_the_cell_is_blank() -> None:
    sink = MemoryCatalogSink()
    import_patrons_csv(csv_bytes([["barcode", "name", "pin"], ["21000001", "Nguyễn Văn An", "1234"]]), sink,
                       pin_hasher=FAST_HASHER)
    pin_hash = sink.patrons["21000001"].pin_hash
    report = import_patrons_csv(csv_bytes([["barcode", "name", "pin"], ["21000001", "Nguyễn Văn Ân", ""]]), sink,
                                pin_hasher=FAST_HASHER)
    assert report.updated == 1 and len(sink.patrons) == 1
    assert (sink.patrons["21000001"].name, sink.patrons["21000001"].pin_hash) == ("Nguyễn Văn Ân", pin_hash)


# ---------------------------------------------------------------------------------------------- circulation store


def test_an_import_fills_the_circulation_store_and_patrons_can_borrow() -> None:
    circulation = MemoryCirculation(clock=lambda: NOW, pin_hasher=Argon2PinHasher(FAST_HASHER))
    sink = StoreCatalogSink(MemoryStoreCatalog(circulation.store))
    assert import_marc(SAMPLES / "catalog-vi.xml", sink).created == SAMPLE_ITEM_COUNT
    patrons = import_patrons_csv(SAMPLES / "patrons.csv", sink, pin_hasher=FAST_HASHER)
    assert (patrons.created, patrons.skipped) == (4, ())

    assert circulation.patron_status("21000101", pin="2468").pin_valid is True
    assert circulation.patron_status("21000101", pin="0000").pin_valid is False
    assert circulation.item_info("TN.000104").title == "Dế Mèn phiêu lưu ký"
    assert circulation.item_info("VV.000107").status is ItemStatus.LOST
    result = circulation.checkout("21000101", "VV.000101", idempotency_key="k1")
    assert result.ok and result.title == "Truyện Kiều"

    # Re-importing the catalog neither duplicates nor returns the borrowed item to the shelf.
    again = import_marc(SAMPLES / "catalog-vi.mrc", sink)
    assert (again.created, again.updated, again.unchanged) == (0, 0, SAMPLE_ITEM_COUNT)
    assert circulation.item_info("VV.000101").status is ItemStatus.ON_LOAN
    assert len(circulation.store.items) == SAMPLE_ITEM_COUNT


def test_store_sink_update_keeps_circulation_state() -> None:
    circulation = MemoryCirculation(clock=lambda: NOW, pin_hasher=Argon2PinHasher(FAST_HASHER))
    sink = StoreCatalogSink(MemoryStoreCatalog(circulation.store))
    import_patrons_csv(csv_bytes([["barcode", "name", "category", "pin"], ["21000001", "Lê Thị Hoa", "adult", "1111"]]),
                       sink, pin_hasher=FAST_HASHER)
    stored = circulation.store.patrons["21000001"]
    circulation.store.put_patron(stored.model_copy(update={"blocked": True, "card_ids": ("21000001", "C2")}))
    report = import_patrons_csv(csv_bytes([["barcode", "name"], ["21000001", "Lê Thị Hoa"]]), sink)
    assert report.unchanged == 1
    report = import_patrons_csv(csv_bytes([["barcode", "name", "category"], ["21000001", "Lê Thị Hoa", "Sinh viên"]]),
                                sink)
    patron = circulation.store.patrons["21000001"]
    assert (report.updated, patron.category, patron.blocked, patron.card_ids) == (
        1, "student", True, ("21000001", "C2"))
    assert circulation.patron_status("C2", pin="1111").pin_valid is True


def test_store_sink_failure_midway_rolls_the_store_back() -> None:
    circulation = MemoryCirculation(clock=lambda: NOW)
    inner = StoreCatalogSink(MemoryStoreCatalog(circulation.store))

    class Exploding:
        def __init__(self) -> None:
            self.calls = 0

        @contextmanager
        def transaction(self) -> Iterator[None]:
            with inner.transaction():
                yield

        def upsert_item(self, item: ItemRecord) -> Outcome:
            self.calls += 1
            if self.calls == 4:
                raise RuntimeError("constraint violated")
            return inner.upsert_item(item)

        def upsert_patron(self, patron: PatronRecord) -> Outcome:
            return inner.upsert_patron(patron)

    import_items_csv(csv_bytes([["barcode", "title"], ["VV.000101", "Tên cũ"]]), inner)
    report = import_marc(SAMPLES / "catalog-vi.mrc", Exploding())
    assert report.failure is not None and report.exit_code == 2
    assert set(circulation.store.items) == {"VV.000101"}
    assert circulation.store.items["VV.000101"].title == "Tên cũ"


def test_apply_of_a_parse_result_reports_totals() -> None:
    parsed = read_items_csv(csv_bytes([["barcode", "title"], ["VV.1", "Tắt đèn"], ["", "Lão Hạc"]]))
    report = apply(parsed, MemoryCatalogSink())
    assert (report.total, report.created, len(report.skipped), report.records_read) == (2, 1, 1, 2)
    assert report.total == report.created + report.updated + report.unchanged + len(report.skipped)
