"""``openshelf import``: bring a catalog (MARC21, CSV) or patrons (CSV) into the site's database.

    openshelf import marc FILE [--format auto|binary|xml] [--holdings-map koha|vietbiblio|libol|MAP.yaml]
    openshelf import csv FILE --kind items|patrons
    common: [--site site.yaml] [--dry-run] [--json] [--max-problems N]

Exit code: 0 everything imported, 1 some records skipped (the rest imported),
2 nothing imported (unreadable file, no database, or applying failed and was rolled back).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from functools import partial
from pathlib import Path
from typing import Callable

from backend.catalog_import.errors import CatalogImportError, SinkUnavailableError
from backend.catalog_import.parsed import ParseResult
from backend.catalog_import.report import ImportReport, RecordProblem
from backend.catalog_import.sinks import CatalogSink, SinkFactory

FATAL = 2


def register(parser: argparse.ArgumentParser, *, sink_factory: SinkFactory | None = None) -> None:
    """Add ``marc`` and ``csv`` under ``parser``; ``sink_factory`` defaults to
    :func:`backend.catalog_import.sinks.default_sink_factory`, looked up when a command runs."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("file", type=Path, help="the file to import")
    common.add_argument("--site", type=Path, help="the site file (site.yaml) naming the database")
    common.add_argument("--dry-run", action="store_true",
                        help="read, check and count everything, store nothing / chạy thử, không lưu")
    common.add_argument("--json", action="store_true", help="print the report as JSON")
    common.add_argument("--max-problems", type=int, default=50, metavar="N",
                        help="list at most N skipped records and N warnings (default 50)")
    actions = parser.add_subparsers(dest="import_format", metavar="FORMAT", required=True)

    marc = actions.add_parser("marc", parents=[common], help="MARC21 records: binary (.mrc) or MARCXML",
                              description="Import items from MARC21 bibliographic records with holdings.")
    marc.add_argument("--format", choices=("auto", "binary", "xml"), default="auto")
    marc.add_argument("--holdings-map", default="koha", metavar="koha|vietbiblio|libol|MAP.yaml",
                      help="where the export keeps its items (default koha: 952 $p barcode)")
    marc.add_argument("--encoding", choices=("auto", "leader", "utf8"), default="auto",
                      help="auto (default): leader/09, but records that are really UTF-8 are read as UTF-8; "
                           "leader: trust leader/09; utf8: every record is UTF-8")
    marc.set_defaults(func=partial(_run, _read_marc, sink_factory))

    csv = actions.add_parser("csv", parents=[common], help="items or patrons from a CSV file",
                             description="Import items or patrons from CSV (UTF-8, ',' or ';', "
                                         "English or Vietnamese column names).")
    csv.add_argument("--kind", choices=("items", "patrons"), required=True)
    csv.set_defaults(func=partial(_run, _read_csv, sink_factory))


def _read_marc(args: argparse.Namespace) -> ParseResult:
    from backend.catalog_import.holdings import load_holdings_map
    from backend.catalog_import.marc import read_marc

    return read_marc(args.file, format=args.format, holdings=load_holdings_map(args.holdings_map),
                     encoding=args.encoding)


def _read_csv(args: argparse.Namespace) -> ParseResult:
    if args.kind == "items":
        from backend.catalog_import.csv_items import read_items_csv

        return read_items_csv(args.file)
    from backend.catalog_import.csv_patrons import read_patrons_csv

    return read_patrons_csv(args.file)


def _run(read: Callable[[argparse.Namespace], ParseResult], sink_factory: SinkFactory | None,
         args: argparse.Namespace) -> int:
    from backend.catalog_import.importer import apply

    try:
        sink = _sink(sink_factory, args)
        parsed = read(args)
    except CatalogImportError as exc:
        print(f"Lỗi / Error: {exc}", file=sys.stderr)
        return FATAL
    report = apply(parsed, sink, dry_run=args.dry_run)
    if args.json:
        print(report.model_dump_json(indent=2))
    else:
        print_summary(report, max_problems=args.max_problems)
    return report.exit_code


def _sink(sink_factory: SinkFactory | None, args: argparse.Namespace) -> CatalogSink:
    factory = sink_factory or importlib.import_module("backend.catalog_import.sinks").default_sink_factory
    try:
        return factory(args.site)
    except SinkUnavailableError:
        if not args.dry_run:
            raise
        from backend.catalog_import.sinks import MemoryCatalogSink

        print("Chạy thử với danh mục trống (chưa có cơ sở dữ liệu) / "
              "Dry run against an empty catalog (no database yet)", file=sys.stderr)
        return MemoryCatalogSink()


def print_summary(report: ImportReport, *, max_problems: int = 50) -> None:
    kind = {"marc": "MARC", "items": "tài liệu / items", "patrons": "bạn đọc / patrons"}[report.kind]
    print(f"Nhập / Import: {report.source} ({kind})")
    if report.dry_run:
        print("  Chạy thử — không lưu gì / Dry run — nothing stored")
    rows = (("Đã đọc / Read", report.records_read), ("Tạo mới / Created", report.created),
            ("Cập nhật / Updated", report.updated), ("Không đổi / Unchanged", report.unchanged),
            ("Bỏ qua / Skipped", len(report.skipped)), ("Cảnh báo / Warnings", len(report.warnings)))
    for label, count in rows:
        print(f"  {label + ':':<26}{count:>7}")
    _print_problems("Bản ghi bị bỏ qua / Skipped records", report.skipped, max_problems)
    _print_problems("Cảnh báo / Warnings", report.warnings, max_problems)
    if report.failure:
        print(f"THẤT BẠI, không lưu gì (đã hoàn tác) / FAILED, nothing stored (rolled back): {report.failure}")
    elif not report.dry_run:
        print("Xong / Done" + (" — một số bản ghi bị bỏ qua / some records skipped" if report.skipped else ""))


def _print_problems(title: str, problems: tuple[RecordProblem, ...], limit: int) -> None:
    if not problems:
        return
    print(f"{title}:")
    for problem in problems[:limit]:
        print(f"  - {problem.describe('vi')}")
        print(f"    {problem.describe('en')}")
    if len(problems) > limit:
        print(f"  … và {len(problems) - limit} nữa / and {len(problems) - limit} more (--json lists all)")
