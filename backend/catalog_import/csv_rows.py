"""Turn CSV rows into records, one row at a time: a bad row becomes a positioned problem, never an exception."""

from __future__ import annotations

from typing import Callable, TypeVar

from pydantic import ValidationError

from backend.catalog_import.csv_table import CsvRow, CsvTable
from backend.catalog_import.parsed import Entry, ParseResult
from backend.catalog_import.records import CatalogRecord, check_barcode
from backend.catalog_import.report import ImportKind, Position, ProblemCode, RecordProblem

T = TypeVar("T")
RowBuilder = Callable[[CsvRow, list[RecordProblem]], CatalogRecord]


class RowProblem(Exception):
    """Why one row cannot be imported (caught per row; never leaves this package)."""

    def __init__(self, code: ProblemCode, field: str | None = None, detail: str = "") -> None:
        super().__init__(detail)
        self.code, self.field, self.detail = code, field, detail


def build_records(table: CsvTable, build: RowBuilder, *, source: str, kind: ImportKind) -> ParseResult:
    result = ParseResult(source=source, kind=kind, skipped=list(table.problems),
                         records_read=len(table.rows) + len(table.problems))
    result.warnings.extend(RecordProblem(position=Position(line=1, field=header), code=ProblemCode.UNKNOWN_COLUMN)
                           for header in table.unknown_headers)
    for row in table.rows:
        try:
            record = build(row, result.warnings)
        except RowProblem as problem:
            result.skipped.append(RecordProblem(position=row.position(problem.field), code=problem.code,
                                                detail=problem.detail, key=row.values.get("barcode") or None))
        except ValidationError as exc:
            result.skipped.append(RecordProblem(position=row.position(), code=ProblemCode.BAD_VALUE,
                                                detail=validation_text(exc), key=row.values.get("barcode") or None))
        else:
            result.entries.append(Entry(position=Position(line=row.line), record=record))
    result.skipped.sort(key=lambda problem: problem.position.line or 0)
    return result


def barcode_of(row: CsvRow) -> str:
    barcode = row.values["barcode"]
    if not barcode:
        raise RowProblem(ProblemCode.MISSING_BARCODE, "barcode")
    try:
        return check_barcode(barcode)
    except ValueError as exc:
        raise RowProblem(ProblemCode.BAD_BARCODE, "barcode", f"{barcode!r}: {exc}") from None


def parsed(row: CsvRow, field: str, parse: Callable[[str], T]) -> T:
    try:
        return parse(row.values[field])
    except ValueError as exc:
        raise RowProblem(ProblemCode.BAD_VALUE, field, str(exc)) from None


def validation_text(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, error['loc'])) or 'value'}: {error['msg']}" for error in exc.errors())
