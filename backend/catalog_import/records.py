"""What a reader produces: validated item, bibliographic and patron records.

The natural keys are the item barcode and the patron card barcode: importing a
record whose key exists updates it.  A record states the fields its reader set
explicitly (pydantic's ``model_fields_set``): a CSV file states the columns it
has, a MARC record states everything.  Stated fields replace stored ones, so the
file is the authority for what it contains; unstated fields keep their stored
values.  "No statement" values never overwrite: no status, no tag UIDs, no PIN.
"""

from __future__ import annotations

import re
from datetime import date
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from backend.circulation.model import ItemStatus

BARCODE_MAX = 64
TITLE_MAX = 500
AUTHOR_MAX = 300
NAME_MAX = 200
CATEGORY_MAX = 32
# A barcode travels through SIP2 (where "|" separates fields) and into URLs and file names.
_BARCODE = re.compile(r"^[^\s|\x00-\x1f\x7f]{1,%d}$" % BARCODE_MAX)
UID_PATTERN = r"^[0-9A-F]{16}$"


def check_barcode(value: str) -> str:
    if not _BARCODE.match(value):
        raise ValueError(f"a barcode is 1-{BARCODE_MAX} characters without spaces, control characters or '|'")
    return value


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ItemRecord(_Record):
    """One physical item (a copy), with the bibliographic facts circulation shows."""

    barcode: str = Field(description="the item's barcode: OpenShelf's item_id and the natural key")
    title: str = Field(min_length=1, max_length=TITLE_MAX)
    author: str = Field(default="", max_length=AUTHOR_MAX)
    record_id: str | None = Field(default=None, description="bibliographic record (MARC 001 / Koha biblionumber)")
    isbn: str | None = None
    publisher: str = ""
    year: int | None = None
    call_number: str = ""
    item_type: str = Field(default="book", min_length=1)
    parts: int = Field(default=1, ge=1, le=99)
    home_branch: str = ""
    holding_branch: str = ""
    location: str = Field(default="", description="shelving location within the branch")
    in_library_only: bool = False
    status: ItemStatus | None = Field(
        default=None, description="None: new items are available, existing ones keep their circulation status")
    tag_uids: tuple[str, ...] = Field(default=(), description="RFID tag UIDs, one per part; empty: keep the stored ones")

    _barcode = field_validator("barcode")(check_barcode)

    @field_validator("tag_uids")
    @classmethod
    def _uids(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for uid in value:
            if not re.match(UID_PATTERN, uid):
                raise ValueError(f"tag UID {uid!r} is not 16 upper-case hex digits")
        return value


class BibRecord(_Record):
    """A bibliographic record from MARC with the items (holdings) it carries."""

    record_id: str | None = None
    title: str = Field(min_length=1)
    author: str = ""
    isbns: tuple[str, ...] = ()
    publisher: str = ""
    year: int | None = None
    call_number: str = ""
    items: tuple[ItemRecord, ...] = ()


class PatronRecord(_Record):
    """A patron; the PIN is only ever held as an argon2 hash."""

    barcode: str = Field(description="the library card number: the natural key")
    name: str = Field(min_length=1, max_length=NAME_MAX)
    category: str = Field(default="adult", min_length=1, max_length=CATEGORY_MAX)
    email: str | None = None
    expires_on: date | None = None
    home_branch: str = ""
    pin_hash: str | None = Field(default=None, description="argon2 hash; None: keep the stored PIN")

    _barcode = field_validator("barcode")(check_barcode)

    @field_validator("pin_hash")
    @classmethod
    def _hashed(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("$argon2"):
            raise ValueError("pin_hash must be an argon2 hash (a plaintext PIN is never stored)")
        return value


CatalogRecord = ItemRecord | PatronRecord
_R = TypeVar("_R", ItemRecord, PatronRecord)


def stated_fields(record: CatalogRecord) -> dict[str, object]:
    """The fields this record states: those its reader set (a CSV column present in the file, every MARC
    field), minus "no statement" values — no status, no tag UIDs, no PIN."""
    stated = {name: getattr(record, name) for name in record.model_fields_set}
    for name, no_statement in (("status", None), ("tag_uids", ()), ("pin_hash", None)):
        if name in stated and stated[name] == no_statement:
            del stated[name]
    return stated


def merge_stated(new: _R, stored: _R) -> _R:
    """``stored`` with every field ``new`` states replaced: a re-import changes what the file says and
    keeps the rest (a column missing from the file, the circulation status, tags, the PIN)."""
    return stored.model_copy(update=stated_fields(new))


def natural_key(record: CatalogRecord) -> tuple[str, str]:
    return ("item" if isinstance(record, ItemRecord) else "patron", record.barcode)
