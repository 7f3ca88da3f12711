"""``openshelf import``: bilingual summary, exit codes 0/1/2, dry runs without a database."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pytest

from backend.catalog_import import sinks
from backend.catalog_import.cli import register
from backend.catalog_import.sinks import MemoryCatalogSink
from tests.circulation.test_import_kit import SAMPLE_ITEM_COUNT, SAMPLES, csv_bytes


def run(args: list[str], sink: MemoryCatalogSink | None = None, seen_sites: list | None = None) -> int:
    def factory(site: Path | None) -> MemoryCatalogSink:
        if seen_sites is not None:
            seen_sites.append(site)
        assert sink is not None
        return sink

    parser = argparse.ArgumentParser(prog="openshelf import")
    register(parser, sink_factory=factory if sink is not None else None)
    parsed = parser.parse_args(args)
    return parsed.func(parsed)


def test_marc_import_prints_a_bilingual_summary_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    sink, sites = MemoryCatalogSink(), []
    code = run(["marc", str(SAMPLES / "catalog-vi.mrc"), "--site", "site.yaml"], sink, sites)
    out = capsys.readouterr().out
    assert code == 0 and len(sink.items) == SAMPLE_ITEM_COUNT and sites == [Path("site.yaml")]
    assert re.search(rf"Tạo mới / Created:\s+{SAMPLE_ITEM_COUNT}\n", out)
    assert "Xong / Done" in out
    assert sink.items["TN.000104"].title == "Dế Mèn phiêu lưu ký"


def test_some_records_skipped_exits_1_and_lists_them_in_both_languages(capsys: pytest.CaptureFixture[str]) -> None:
    sink = MemoryCatalogSink()
    code = run(["csv", str(SAMPLES / "items-with-errors.csv"), "--kind", "items"], sink)
    out = capsys.readouterr().out
    assert code == 1 and set(sink.items) == {"TN.000301", "TN.000306"}
    assert "dòng 3, trường barcode: thiếu mã vạch" in out
    assert "line 3, field barcode: barcode missing" in out


def test_patrons_csv(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from argon2 import PasswordHasher

    from backend.catalog_import import csv_patrons

    monkeypatch.setattr(csv_patrons, "default_pin_hasher",
                        lambda: PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    sink = MemoryCatalogSink()
    assert run(["csv", str(SAMPLES / "patrons.csv"), "--kind", "patrons", "--json"], sink) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["created"], report["kind"]) == (4, "patrons")
    assert sink.patrons["21000102"].name == "Trần Văn Đức"
    assert all(p.pin_hash is None or p.pin_hash.startswith("$argon2") for p in sink.patrons.values())


def test_without_a_site_only_a_dry_run_works(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["marc", str(SAMPLES / "catalog-vi.xml")]) == 2
    assert "--site site.yaml" in capsys.readouterr().err
    assert run(["marc", str(SAMPLES / "catalog-vi.xml"), "--dry-run"]) == 0
    captured = capsys.readouterr()
    assert "Dry run" in captured.out and "empty catalog" in captured.err


def test_the_default_factory_is_looked_up_when_the_command_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    sink = MemoryCatalogSink()
    monkeypatch.setattr(sinks, "default_sink_factory", lambda site: sink)
    assert run(["csv", str(SAMPLES / "items.csv"), "--kind", "items"]) == 0
    assert len(sink.items) == 5


def test_unreadable_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(csv_bytes([["barcode", "title"], ["VV.1", "Đèn"]], encoding="cp1258"))
    assert run(["csv", str(path), "--kind", "items"], MemoryCatalogSink()) == 2
    assert "Lỗi / Error" in capsys.readouterr().err
    assert run(["marc", str(tmp_path / "missing.mrc")], MemoryCatalogSink()) == 2


def test_failed_apply_exits_2_and_says_nothing_was_stored(capsys: pytest.CaptureFixture[str]) -> None:
    class Broken(MemoryCatalogSink):
        def upsert_item(self, item):  # type: ignore[no-untyped-def]
            raise RuntimeError("database went away")

    assert run(["marc", str(SAMPLES / "catalog-vi.mrc")], Broken()) == 2
    assert "FAILED, nothing stored (rolled back)" in capsys.readouterr().out
