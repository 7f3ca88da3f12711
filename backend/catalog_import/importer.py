"""Apply what a reader produced: drop in-file duplicates, then upsert every good entry in one transaction.

Atomicity (chosen deliberately): the good records of a file are applied as a
whole.  Bad records were already set aside by the reader with their positions;
if storing any good record then fails — a database error, a constraint — the
transaction rolls back and nothing from the file remains, and the report says
which entry failed.  Fix the cause and import the same file again: re-importing
updates by natural key, it never duplicates.

A dry run applies everything inside the transaction and then rolls it back, so
its counts (created / updated / unchanged) are exactly what a real run would do.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from backend.catalog_import.holdings import KOHA, HoldingsMap
from backend.catalog_import.parsed import Entry, ParseResult, Source
from backend.catalog_import.records import ItemRecord, natural_key
from backend.catalog_import.report import ImportReport, ProblemCode, RecordProblem
from backend.catalog_import.sinks import CatalogSink, Outcome

if TYPE_CHECKING:
    from backend.catalog_import.csv_patrons import PinHasher
    from backend.catalog_import.marc import MarcEncoding, MarcFormat

log = logging.getLogger(__name__)


class _DryRunRollback(Exception):
    """Raised inside the transaction to roll a dry run back."""


def import_marc(source: Source, sink: CatalogSink, *, format: MarcFormat = "auto", holdings: HoldingsMap = KOHA,
                encoding: MarcEncoding = "auto", dry_run: bool = False) -> ImportReport:
    from backend.catalog_import.marc import read_marc  # pymarc only when MARC is read

    return apply(read_marc(source, format=format, holdings=holdings, encoding=encoding), sink, dry_run=dry_run)


def import_items_csv(source: Source, sink: CatalogSink, *, dry_run: bool = False) -> ImportReport:
    from backend.catalog_import.csv_items import read_items_csv

    return apply(read_items_csv(source), sink, dry_run=dry_run)


def import_patrons_csv(source: Source, sink: CatalogSink, *, pin_hasher: PinHasher | None = None,
                       dry_run: bool = False) -> ImportReport:
    from backend.catalog_import.csv_patrons import read_patrons_csv

    return apply(read_patrons_csv(source, pin_hasher=pin_hasher), sink, dry_run=dry_run)


def apply(parsed: ParseResult, sink: CatalogSink, *, dry_run: bool = False) -> ImportReport:
    entries, duplicates = without_duplicates(parsed.entries)
    skipped = sorted([*parsed.skipped, *duplicates], key=_file_order)
    base = dict(source=parsed.source, kind=parsed.kind, total=len(entries) + len(skipped), skipped=tuple(skipped),
                warnings=tuple(sorted(parsed.warnings, key=_file_order)), records_read=parsed.records_read,
                dry_run=dry_run)
    counts = {outcome: 0 for outcome in Outcome}
    current: Entry | None = None
    try:
        with sink.transaction():
            for current in entries:
                counts[_upsert(sink, current)] += 1
            current = None
            if dry_run:
                raise _DryRunRollback
    except _DryRunRollback:
        pass
    except Exception as exc:  # any sink failure (SQL, constraint, bug) aborts the file: report it, keep nothing
        where = f"{current.position.describe()} [{current.record.barcode}]: " if current else "transaction: "
        log.error("import of %s rolled back; %s%s", parsed.source, where, exc, exc_info=True)
        return ImportReport(**base, failure=f"{where}{type(exc).__name__}: {exc}")
    report = ImportReport(**base, created=counts[Outcome.CREATED], updated=counts[Outcome.UPDATED],
                          unchanged=counts[Outcome.UNCHANGED], applied=not dry_run)
    log.info("import of %s%s: %d created, %d updated, %d unchanged, %d skipped", parsed.source,
             " (dry run)" if dry_run else "", report.created, report.updated, report.unchanged, len(skipped))
    return report


def without_duplicates(entries: list[Entry]) -> tuple[list[Entry], list[RecordProblem]]:
    """The first entry per natural key; every later one becomes a problem pointing at the first."""
    first: dict[tuple[str, str], Entry] = {}
    kept: list[Entry] = []
    problems: list[RecordProblem] = []
    for entry in entries:
        key = natural_key(entry.record)
        if key in first:
            problems.append(RecordProblem(position=entry.position, code=ProblemCode.DUPLICATE_KEY,
                                          key=entry.record.barcode,
                                          detail=f"first at {first[key].position.describe()}"))
        else:
            first[key] = entry
            kept.append(entry)
    return kept, problems


def _upsert(sink: CatalogSink, entry: Entry) -> Outcome:
    if isinstance(entry.record, ItemRecord):
        return Outcome(sink.upsert_item(entry.record))
    return Outcome(sink.upsert_patron(entry.record))


def _file_order(problem: RecordProblem) -> tuple[int, int]:
    return (problem.position.record or 0, problem.position.line or 0)
