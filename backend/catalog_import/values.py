"""Parse single field values from files: flags, dates, counts, tag UIDs, e-mail, codes.

Each parser takes cleaned text and returns the value or raises ``ValueError``
with a sentence saying what was expected; the readers turn that into a
positioned problem.
"""

from __future__ import annotations

import re
from datetime import date

from backend.catalog_import.text import clean_text, fold_key

_TRUE = {"1", "y", "yes", "true", "x", "co", "c", "dung"}  # "có", "c", "đúng"
_FALSE = {"", "0", "n", "no", "false", "khong", "k", "sai"}  # "không", "k", "sai"
_ISO_DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
# Vietnamese writes day first: 31/12/2025, 31-12-2025, 31.12.2025.
_DAY_FIRST_DATE = re.compile(r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_UID_SEPARATORS = re.compile(r"[\s,|;]+")
_ISBN = re.compile(r"[0-9Xx][0-9Xx -]{8,20}")

# Common Vietnamese labels for OpenShelf's built-in categories and item types (compared folded).
CATEGORY_ALIASES = {
    "nguoilon": "adult", "bandoc": "adult",
    "sinhvien": "student", "hocsinh": "student", "hocvien": "student",
    "thieunhi": "child", "treem": "child",
    "canbo": "staff", "nhanvien": "staff", "giaovien": "staff", "giangvien": "staff",
}
ITEM_TYPE_ALIASES = {
    "sach": "book", "book": "book", "bk": "book",
    "thamkhao": "reference", "sachthamkhao": "reference", "tracuu": "reference", "reference": "reference",
    "dvd": "dvd", "diadvd": "dvd", "bangdia": "dvd", "dia": "dvd",
}


def parse_flag(text: str) -> bool:
    key = fold_key(text)
    if key in _TRUE:
        return True
    if key in _FALSE:
        return False
    raise ValueError(f"{text!r} is not yes/no (1/0, có/không, x or empty)")


def parse_date(text: str) -> date | None:
    text = clean_text(text)
    if not text:
        return None
    if match := _ISO_DATE.match(text):
        year, month, day = (int(group) for group in match.groups())
    elif match := _DAY_FIRST_DATE.match(text):
        day, month, year = (int(group) for group in match.groups())
    else:
        raise ValueError(f"{text!r} is not a date (YYYY-MM-DD or DD/MM/YYYY)")
    try:
        return date(year, month, day)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a date: {exc}") from None


def parse_parts(text: str) -> int:
    text = clean_text(text)
    if not text:
        return 1
    if not text.isdigit() or not 1 <= int(text) <= 99:
        raise ValueError(f"{text!r} is not a number of parts (1-99)")
    return int(text)


def parse_tag_uids(text: str) -> tuple[str, ...]:
    """UIDs separated by spaces, commas, ``|`` or ``;``; ``E0:04:01:…`` and lower case are accepted."""
    uids = []
    for token in _UID_SEPARATORS.split(clean_text(text)):
        if not token:
            continue
        uid = token.replace(":", "").replace("-", "").upper()
        if not re.fullmatch(r"[0-9A-F]{16}", uid):
            raise ValueError(f"{token!r} is not a tag UID (16 hex digits)")
        uids.append(uid)
    return tuple(dict.fromkeys(uids))


def parse_email(text: str) -> str | None:
    text = clean_text(text)
    if not text:
        return None
    if not _EMAIL.match(text):
        raise ValueError(f"{text!r} is not an e-mail address")
    return text


def parse_isbn(text: str) -> str | None:
    """The ISBN at the start of a 020 $a or a CSV cell, digits (and X) only; None when there is none."""
    match = _ISBN.match(clean_text(text))
    if not match:
        return None
    digits = re.sub(r"[ -]", "", match.group()).upper()
    if (len(digits) == 10 and digits[:9].isdigit()) or (len(digits) == 13 and digits.isdigit()):
        return digits
    return None


def normalise_category(text: str) -> str:
    text = clean_text(text)
    return CATEGORY_ALIASES.get(fold_key(text), text.lower()) if text else "adult"


def normalise_item_type(text: str, table: dict[str, str] | None = None) -> str:
    """An export's item type code as an OpenShelf item type: ``table`` first, then the Vietnamese aliases."""
    text = clean_text(text)
    if not text:
        return "book"
    if table and text in table:
        return table[text]
    return ITEM_TYPE_ALIASES.get(fold_key(text), text.lower())
