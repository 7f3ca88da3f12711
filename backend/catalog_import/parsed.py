"""What reading a file yields before anything is applied: good entries and problems, in file order."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from backend.catalog_import.errors import ImportFileError
from backend.catalog_import.records import CatalogRecord
from backend.catalog_import.report import ImportKind, Position, RecordProblem

Source = Path | str | bytes


@dataclass(frozen=True)
class Entry:
    """One record to upsert and where it came from (to name it if applying it fails)."""

    position: Position
    record: CatalogRecord


@dataclass
class ParseResult:
    source: str
    kind: ImportKind
    entries: list[Entry] = field(default_factory=list)
    skipped: list[RecordProblem] = field(default_factory=list)
    warnings: list[RecordProblem] = field(default_factory=list)
    records_read: int = 0

    @property
    def total(self) -> int:
        return len(self.entries) + len(self.skipped)


def load_source(source: Source) -> tuple[bytes, str]:
    """The file's bytes and a name for reports; ``bytes`` are taken as they are (tests, uploads)."""
    if isinstance(source, bytes):
        return source, "<bytes>"
    path = Path(source)
    try:
        return path.read_bytes(), str(path)
    except OSError as exc:
        raise ImportFileError(f"cannot read {path}: {exc.strerror or exc}") from exc
