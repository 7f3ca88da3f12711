"""Patrons from a CSV file: one row per patron card.

Columns (English or Vietnamese names; see docs/import.md): barcode (required),
name — or surname and firstname, as Koha exports them —, category, email,
expires_on, pin, home_branch.  PINs are hashed with argon2 as each row is read;
the plaintext is never kept, logged or reported.  A blank PIN keeps the stored one.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

from backend.catalog_import.csv_rows import RowProblem, barcode_of, build_records, parsed
from backend.catalog_import.csv_table import Column, CsvRow, read_csv_table
from backend.catalog_import.errors import ImportFileError
from backend.catalog_import.parsed import ParseResult, Source, load_source
from backend.catalog_import.records import NAME_MAX, PatronRecord
from backend.catalog_import.report import ProblemCode, RecordProblem
from backend.catalog_import.text import truncate
from backend.catalog_import.values import normalise_category, parse_date, parse_email

PIN_LENGTH = (4, 32)
_PIN = re.compile(r"^\S{%d,%d}$" % PIN_LENGTH)

PATRON_COLUMNS: tuple[Column, ...] = (
    Column("barcode", ("card", "card_id", "cardnumber", "patron_barcode", "số thẻ", "mã thẻ", "mã bạn đọc",
                       "mã số thẻ", "số thẻ bạn đọc", "mã vạch"), required=True),
    Column("name", ("full_name", "full name", "họ tên", "họ và tên", "tên bạn đọc", "họ tên bạn đọc")),
    Column("surname", ("last name", "family name", "họ")),
    Column("firstname", ("first name", "given name", "tên")),
    Column("category", ("categorycode", "patron_category", "loại bạn đọc", "đối tượng", "nhóm bạn đọc", "nhóm")),
    Column("email", ("e-mail", "thư điện tử")),
    Column("expires_on", ("expiry", "expiry_date", "dateexpiry", "ngày hết hạn", "hạn thẻ", "hết hạn",
                          "ngày hết hạn thẻ")),
    Column("pin", ("mã PIN", "password", "mật khẩu")),
    Column("home_branch", ("branch", "branchcode", "chi nhánh", "thư viện")),
)


class PinHasher(Protocol):
    def hash(self, secret: str) -> str: ...


def default_pin_hasher() -> PinHasher:
    from argon2 import PasswordHasher  # argon2id, the same hashes circulation verifies

    return PasswordHasher()


def read_patrons_csv(source: Source, *, pin_hasher: PinHasher | None = None) -> ParseResult:
    data, name = load_source(source)
    table = read_csv_table(data, PATRON_COLUMNS)
    if not {"name", "surname", "firstname"} & table.fields.keys():
        raise ImportFileError("header line lacks a name column: name (họ tên, họ và tên) or surname/firstname "
                              f"(họ, tên). Found: {', '.join(table.fields.values())}")
    hasher = pin_hasher or default_pin_hasher()
    return build_records(table, lambda row, notes: _patron(row, notes, hasher), source=name, kind="patrons")


def _patron(row: CsvRow, notes: list[RecordProblem], hasher: PinHasher) -> PatronRecord:
    barcode = barcode_of(row)
    name = _name(row)
    if not name:
        raise RowProblem(ProblemCode.MISSING_NAME, "name" if "name" in row.values else "surname")
    if len(name) > NAME_MAX:
        notes.append(RecordProblem(position=row.position("name"), code=ProblemCode.VALUE_TRUNCATED,
                                   detail=f"{len(name)} characters, kept {NAME_MAX}", key=barcode))
    stated: dict[str, Any] = {"barcode": barcode, "name": truncate(name, NAME_MAX)}
    present = row.values.keys()
    if "category" in present:
        stated["category"] = normalise_category(row.values["category"])
    if "expires_on" in present:
        stated["expires_on"] = parsed(row, "expires_on", parse_date)
    if "home_branch" in present:
        stated["home_branch"] = row.values["home_branch"]
    if "email" in present:
        stated["email"] = _email(row, notes, barcode)
    if "pin" in present:
        stated["pin_hash"] = _pin_hash(row, notes, barcode, hasher)  # last: hashing is the slow part
    return PatronRecord(**stated)


def _name(row: CsvRow) -> str:
    if row.values.get("name"):
        return row.values["name"]
    # Vietnamese and Koha order: family name first ("Nguyễn" + "Văn An").
    return " ".join(part for part in (row.values.get("surname", ""), row.values.get("firstname", "")) if part)


def _email(row: CsvRow, notes: list[RecordProblem], barcode: str) -> str | None:
    try:
        return parse_email(row.values["email"])
    except ValueError as exc:
        notes.append(RecordProblem(position=row.position("email"), code=ProblemCode.VALUE_DROPPED,
                                   detail=str(exc), key=barcode))
        return None


def _pin_hash(row: CsvRow, notes: list[RecordProblem], barcode: str, hasher: PinHasher) -> str | None:
    pin = row.values["pin"]
    if not pin:
        return None
    if pin.startswith("$argon2"):
        return pin  # already hashed (e.g. moved from another OpenShelf)
    if pin.startswith("$"):
        notes.append(RecordProblem(position=row.position("pin"), code=ProblemCode.VALUE_DROPPED,
                                   detail="a password hash from another system cannot be used; PIN not changed",
                                   key=barcode))
        return None
    if not _PIN.match(pin):
        # Never echo the PIN itself: reports are printed and logged.
        raise RowProblem(ProblemCode.BAD_PIN, "pin", f"{PIN_LENGTH[0]}-{PIN_LENGTH[1]} characters without spaces")
    return hasher.hash(pin)
