"""Read a CSV file as spreadsheets write it: any of the usual encodings and delimiters, header aliases.

* Encoding: UTF-8 with or without BOM (Excel's "CSV UTF-8" writes one), or
  UTF-16 with BOM (Excel's "Unicode Text").  Anything else — e.g. a legacy
  Windows-1258 or TCVN3 file — is refused with the line of the first bad byte,
  rather than imported as mojibake.
* Delimiter: the most frequent of ``,`` ``;`` and tab in the header line.
  Excel in a Vietnamese (or most European) locale writes ``;`` because ``,`` is
  the decimal separator there.
* Header: the first non-empty line (after Excel's optional ``sep=;`` line).  Column names are matched folded (no case,
  no diacritics, no spaces or punctuation), so "Mã vạch", "MA VACH" and
  "ma_vach" are the same column; each column has English and Vietnamese aliases.
* Line numbers are physical lines of the file (1 = header), so a quoted cell
  spanning lines still points at the line the row starts on.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from dataclasses import dataclass, field
from typing import Sequence

from backend.catalog_import.errors import ImportFileError
from backend.catalog_import.report import Position, ProblemCode, RecordProblem
from backend.catalog_import.text import clean_text, fold_key

_DELIMITERS = (",", ";", "\t")
_EXCEL_SEP = re.compile(r"^\s*sep=([,;\t|])\s*$")


@dataclass(frozen=True)
class Column:
    field: str
    aliases: tuple[str, ...]
    required: bool = False

    def matches(self, header: str) -> bool:
        folded = fold_key(header)
        return folded == fold_key(self.field) or folded in {fold_key(alias) for alias in self.aliases}


@dataclass(frozen=True)
class CsvRow:
    line: int
    values: dict[str, str]  # field → cleaned cell ("" when empty or missing)
    headers: dict[str, str]  # field → the header as written, for messages

    def position(self, field_name: str | None = None) -> Position:
        return Position(line=self.line, field=self.headers.get(field_name or "") or None)


@dataclass
class CsvTable:
    delimiter: str
    fields: dict[str, str]  # recognised field → header as written
    column_fields: list[str | None] = field(default_factory=list)  # per header cell: its field, or None
    rows: list[CsvRow] = field(default_factory=list)
    problems: list[RecordProblem] = field(default_factory=list)
    unknown_headers: list[str] = field(default_factory=list)


def decode_csv(data: bytes) -> str:
    for bom, encoding in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
                          (codecs.BOM_UTF16_BE, "utf-16-be")):
        if data.startswith(bom):
            data, chosen = data[len(bom):], encoding
            break
    else:
        chosen = "utf-8"
    try:
        return data.decode(chosen)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ImportFileError(f"not {chosen.upper()} text: byte {exc.start} (line {line}) is "
                              f"{data[exc.start:exc.start + 1]!r}. Save the file as 'CSV UTF-8' "
                              f"(Excel) or UTF-8 (LibreOffice) and import it again") from exc


def detect_delimiter(header_line: str) -> str:
    counts = {delimiter: _count_outside_quotes(header_line, delimiter) for delimiter in _DELIMITERS}
    best = max(_DELIMITERS, key=lambda delimiter: counts[delimiter])  # ties: the earlier one, "," first
    return best if counts[best] else ","


def _count_outside_quotes(line: str, delimiter: str) -> int:
    count, quoted = 0, False
    for char in line:
        if char == '"':
            quoted = not quoted
        elif char == delimiter and not quoted:
            count += 1
    return count


def read_csv_table(data: bytes, columns: Sequence[Column]) -> CsvTable:
    text = decode_csv(data)
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise ImportFileError("the file is empty (no header line)")
    hint = _EXCEL_SEP.match(lines[0])  # Excel's "sep=;" line names the delimiter; the header follows it
    delimiter = hint.group(1) if hint else detect_delimiter(lines[0])
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    table: CsvTable | None = None
    previous_end = 0
    try:
        for cells in reader:
            start, previous_end = previous_end + 1, reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            if hint:
                hint = None
            elif table is None:
                table = _header(cells, columns, delimiter)
            else:
                _add_row(table, cells, start)
    except csv.Error as exc:
        raise ImportFileError(f"CSV syntax error at line {reader.line_num}: {exc}") from exc
    if table is None:
        raise ImportFileError("the file has no header line after 'sep='")
    return table


def _header(cells: list[str], columns: Sequence[Column], delimiter: str) -> CsvTable:
    table = CsvTable(delimiter=delimiter, fields={})
    for header in cells:
        header = clean_text(header)
        column = next((column for column in columns if column.matches(header)), None)
        if column is None:
            table.column_fields.append(None)
            if header:
                table.unknown_headers.append(header)
            continue
        if column.field in table.fields:
            raise ImportFileError(f"columns {table.fields[column.field]!r} and {header!r} both mean "
                                  f"{column.field!r}; keep one")
        table.fields[column.field] = header
        table.column_fields.append(column.field)
    missing = [column for column in columns if column.required and column.field not in table.fields]
    if missing:
        wanted = "; ".join(f"{column.field} ({', '.join(column.aliases[:4])})" for column in missing)
        raise ImportFileError(f"header line lacks required column(s): {wanted}. Found: {', '.join(cells)}")
    return table


def _add_row(table: CsvTable, cells: list[str], line: int) -> None:
    header_count = len(table.column_fields)
    if len(cells) > header_count and any(cell.strip() for cell in cells[header_count:]):
        table.problems.append(RecordProblem(
            position=Position(line=line), code=ProblemCode.BAD_ROW,
            detail=f"{len(cells)} values for {header_count} columns (a '{table.delimiter}' inside a value "
                   f"needs quotes)"))
        return
    values = {name: "" for name in table.fields}
    for name, cell in zip(table.column_fields, cells):
        if name is not None:
            values[name] = clean_text(cell)
    table.rows.append(CsvRow(line=line, values=values, headers=table.fields))
