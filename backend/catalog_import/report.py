"""Problems with their position in the file, and the report of one import.

Every problem names where it is (MARC: record number and byte offset, for
MARCXML also the line; CSV: the line number) and why, in Vietnamese and English.
A problem in ``skipped`` means one record (or one item of a MARC record) was not
imported; a problem in ``warnings`` means it was imported with something changed
or left out, e.g. an e-mail address that is not one.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Language = Literal["vi", "en"]
ImportKind = Literal["marc", "items", "patrons"]


class ProblemCode(StrEnum):
    # the record is skipped
    UNREADABLE_RECORD = "unreadable_record"
    BAD_ENCODING = "bad_encoding"
    BAD_ROW = "bad_row"
    MISSING_TITLE = "missing_title"
    MISSING_BARCODE = "missing_barcode"
    BAD_BARCODE = "bad_barcode"
    MISSING_NAME = "missing_name"
    BAD_VALUE = "bad_value"
    BAD_PIN = "bad_pin"
    NO_ITEMS = "no_items"
    DUPLICATE_KEY = "duplicate_key"
    # the record is imported anyway
    ENCODING_MISLABELLED = "encoding_mislabelled"
    LENGTH_MISMATCH = "length_mismatch"
    VALUE_DROPPED = "value_dropped"
    VALUE_TRUNCATED = "value_truncated"
    UNKNOWN_COLUMN = "unknown_column"


_TEXT: dict[ProblemCode, tuple[str, str]] = {
    ProblemCode.UNREADABLE_RECORD: ("biểu ghi hỏng, không đọc được", "damaged record, cannot be read"),
    ProblemCode.BAD_ENCODING: ("lỗi mã hoá ký tự", "character encoding error"),
    ProblemCode.BAD_ROW: ("dòng không đúng số cột", "row has the wrong number of columns"),
    ProblemCode.MISSING_TITLE: ("thiếu nhan đề", "title missing"),
    ProblemCode.MISSING_BARCODE: ("thiếu mã vạch", "barcode missing"),
    ProblemCode.BAD_BARCODE: ("mã vạch không hợp lệ", "invalid barcode"),
    ProblemCode.MISSING_NAME: ("thiếu họ tên", "name missing"),
    ProblemCode.BAD_VALUE: ("giá trị không hợp lệ", "invalid value"),
    ProblemCode.BAD_PIN: ("mã PIN không hợp lệ", "invalid PIN"),
    ProblemCode.NO_ITEMS: ("biểu ghi không có bản tài liệu (ĐKCB) nào", "record has no items (holdings)"),
    ProblemCode.DUPLICATE_KEY: ("mã vạch trùng trong tệp", "barcode repeated in the file"),
    ProblemCode.ENCODING_MISLABELLED: ("đầu biểu ghi ghi MARC-8 nhưng dữ liệu là UTF-8; đọc theo UTF-8",
                                       "leader says MARC-8 but the data is UTF-8; read as UTF-8"),
    ProblemCode.LENGTH_MISMATCH: ("độ dài biểu ghi trong đầu biểu ghi sai", "record length in the leader is wrong"),
    ProblemCode.VALUE_DROPPED: ("bỏ qua giá trị không hợp lệ", "invalid value left out"),
    ProblemCode.VALUE_TRUNCATED: ("giá trị quá dài, đã cắt bớt", "value too long, shortened"),
    ProblemCode.UNKNOWN_COLUMN: ("cột không nhận ra, bỏ qua", "column not recognised, ignored"),
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Position(_Model):
    """Where something is in the input file (numbers are 1-based; byte offsets 0-based)."""

    record: int | None = Field(default=None, description="MARC record number")
    byte_offset: int | None = Field(default=None, description="MARC: where the record starts")
    line: int | None = Field(default=None, description="CSV line, or MARCXML line of <record>")
    field: str | None = Field(default=None, description='e.g. "952 #2" or a CSV column name')

    def describe(self, lang: Language = "en") -> str:
        words = {"vi": ("bản ghi", "byte", "dòng", "trường"), "en": ("record", "byte", "line", "field")}[lang]
        parts: list[str] = []
        if self.record is not None:
            parts.append(f"{words[0]} {self.record}")
        if self.byte_offset is not None:
            parts.append(f"{words[1]} {self.byte_offset}")
        if self.line is not None:
            parts.append(f"{words[2]} {self.line}")
        if self.field:
            parts.append(f"{words[3]} {self.field}")
        return ", ".join(parts) or {"vi": "cả tệp", "en": "whole file"}[lang]

    def at(self, field: str) -> "Position":
        return self.model_copy(update={"field": field})


class RecordProblem(_Model):
    position: Position
    code: ProblemCode
    detail: str = Field(default="", description="the offending value or the parser's own message")
    key: str | None = Field(default=None, description="the barcode, when known")

    def describe(self, lang: Language = "en") -> str:
        vi, en = _TEXT[self.code]
        text = f"{self.position.describe(lang)}: {vi if lang == 'vi' else en}"
        if self.key:
            text += f" [{self.key}]"
        return f"{text} — {self.detail}" if self.detail else text


class ImportReport(_Model):
    """The outcome of one import.

    ``total`` counts entries: items (MARC holdings or CSV rows) or patrons, plus
    each unreadable MARC record once.  ``total == created + updated + unchanged +
    len(skipped)`` when ``applied``.  When applying failed (``failure``), the
    transaction was rolled back and nothing from the file was stored: created,
    updated and unchanged are then 0.
    """

    source: str
    kind: ImportKind
    total: int = Field(ge=0)
    created: int = Field(default=0, ge=0)
    updated: int = Field(default=0, ge=0)
    unchanged: int = Field(default=0, ge=0)
    skipped: tuple[RecordProblem, ...] = ()
    warnings: tuple[RecordProblem, ...] = ()
    records_read: int = Field(default=0, ge=0, description="MARC records or CSV data rows read")
    applied: bool = Field(default=False, description="the good entries were committed")
    dry_run: bool = False
    failure: str | None = Field(default=None, description="why applying failed; nothing was stored")

    @property
    def exit_code(self) -> int:
        """0: everything imported; 1: some records skipped; 2: nothing imported (fatal)."""
        if self.failure is not None:
            return 2
        return 1 if self.skipped else 0
