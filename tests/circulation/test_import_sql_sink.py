"""``openshelf import`` into the backend database: the SQL sink, and a running backend seeing the new tags."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select

from backend.catalog_import.cli import register
from backend.catalog_import.errors import SinkUnavailableError
from backend.catalog_import.records import ItemRecord
from backend.catalog_import.sql_sink import sql_sink_factory
from backend.catalog_watch import CatalogWatcher
from backend.db import Item, Patron, PatronCard, Tag, make_engine, session_factory
from backend.db.circulation_store import SqlCirculation, SqlCirculationStore
from backend.gate_view import GateView
from tests.circulation.test_import_kit import SAMPLE_ITEM_COUNT, SAMPLES


@pytest.fixture
def site(tmp_path: Path) -> Path:
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump({"site": "lib1", "demo": True, "data_dir": "data",
                                    "broker": {"url": "mqtt://127.0.0.1:1883"}}), encoding="utf-8")
    return path


def run(args: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="openshelf import")
    register(parser, sink_factory=sql_sink_factory)
    parsed = parser.parse_args(args)
    return parsed.func(parsed)


def _sessions(site: Path):  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{site.parent / 'data' / 'openshelf.db'}")
    return engine, session_factory(engine)


def test_marc_and_csv_imports_fill_the_database_once(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["marc", str(SAMPLES / "catalog-vi.mrc"), "--site", str(site)]) == 0
    assert run(["csv", str(SAMPLES / "items.csv"), "--kind", "items", "--site", str(site)]) == 0
    assert run(["csv", str(SAMPLES / "patrons.csv"), "--kind", "patrons", "--site", str(site)]) == 0
    capsys.readouterr()
    assert run(["marc", str(SAMPLES / "catalog-vi.mrc"), "--site", str(site), "--json"]) == 0
    assert '"unchanged": ' + str(SAMPLE_ITEM_COUNT) in capsys.readouterr().out  # a re-import duplicates nothing
    engine, sessions = _sessions(site)
    try:
        with sessions() as session:
            dem = session.scalars(select(Item).where(Item.item_id == "TN.000104")).one()
            assert dem.title == "Dế Mèn phiêu lưu ký" and dem.status == "available" and dem.updated_at is not None
            pair = session.scalars(select(Item).where(Item.item_id == "TN.000203")).one()
            assert [tag.uid for tag in sorted(pair.tags, key=lambda tag: tag.part)] == [
                "E00401000000A203", "E00401000000A204"] and pair.parts == 2
            huong = session.scalars(select(Patron).join(PatronCard).where(PatronCard.card_id == "21000101")).one()
            assert huong.email == "huong.nt@example.edu.vn" and huong.pin_hash.startswith("$argon2")
        # The imported patron and items circulate at once, PIN included.
        store = SqlCirculationStore(engine)
        circulation = SqlCirculation(store)
        try:
            assert circulation.patron_status("21000101", "2468").pin_valid is True
            assert circulation.checkout("21000103", "TN.000104", idempotency_key="after-import-1").ok
        finally:
            store.close()
        # Importing again never takes an item off its loan.
        assert run(["marc", str(SAMPLES / "catalog-vi.mrc"), "--site", str(site)]) == 0
        with sessions() as session:
            assert session.scalars(select(Item.status).where(Item.item_id == "TN.000104")).one() == "on_loan"
    finally:
        engine.dispose()


def test_a_failing_record_rolls_the_whole_file_back(site: Path) -> None:
    sink = sql_sink_factory(site)
    try:
        sessions = sink._sessions  # noqa: SLF001 - look at what the sink wrote
        with sink.transaction():
            sink.upsert_item(ItemRecord(barcode="X1", title="Một", tag_uids=("E004010000000A01",)))
        with pytest.raises(ValueError, match="belongs to item X1"):
            with sink.transaction():
                sink.upsert_item(ItemRecord(barcode="X2", title="Hai"))
                sink.upsert_item(ItemRecord(barcode="X3", title="Ba", tag_uids=("E004010000000A01",)))
        with sessions() as session:
            assert session.scalar(select(func.count()).select_from(Item)) == 1
            assert session.scalar(select(Tag.item_id).where(Tag.uid == "E004010000000A01")) == "X1"
    finally:
        sink.close()


def test_without_a_site_file_there_is_no_database(tmp_path: Path) -> None:
    with pytest.raises(SinkUnavailableError, match="--site"):
        sql_sink_factory(None)
    with pytest.raises(SinkUnavailableError):
        sql_sink_factory(tmp_path / "missing.yaml")


def test_a_running_backend_learns_imported_tags(site: Path) -> None:
    sink = sql_sink_factory(site)
    engine, sessions = _sessions(site)
    view = GateView()
    try:
        with sessions() as session:
            view.load(session)
        watcher = CatalogWatcher(sessions, view, interval_s=3600)
        watcher.start()
        try:
            with sink.transaction():
                sink.upsert_item(ItemRecord(barcode="N1", title="Mới nhập", tag_uids=("E004010000000B01",)))
            assert view.lookup("E004010000000B01") is None
            assert watcher.poll() == 1
            assert view.lookup("E004010000000B01").item_id == "N1"
            assert view.lookup("E004010000000B01").on_loan is False
        finally:
            watcher.stop()
    finally:
        sink.close()
        engine.dispose()
