"""Text clean-up shared by the readers: Unicode NFC, whitespace, ISBD punctuation, header keys.

Some exporters write Vietnamese decomposed (NFD: ``e`` + U+0302 + U+0301 instead
of ``ế``).  Both look the same on screen but compare, sort and search
differently, so every string that enters OpenShelf is normalised to NFC here.
"""

from __future__ import annotations

import re
import unicodedata

# Zero-width characters and the BOM survive copy-paste from word processors and spreadsheets.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))
_WHITESPACE = re.compile(r"\s+")
# ISBD punctuation that separates MARC subfields (" /", " :", " ;", " =", ",") ends many values.
_TRAILING_ISBD = re.compile(r"[\s/:;,=]+$")
# A final full stop is punctuation, except after an initial ("Smith, J.") or an abbreviation ("T.1.").
_TRAILING_STOP = re.compile(r"(?<=[^\W\d_]{2})\.$")


def clean_text(value: str | None) -> str:
    """NFC, without control or zero-width characters, runs of whitespace as one space, trimmed."""
    if not value:
        return ""
    text = unicodedata.normalize("NFC", value).translate(_INVISIBLE)
    text = "".join(char if unicodedata.category(char)[0] != "C" else " " for char in text)
    return _WHITESPACE.sub(" ", text).strip()


def trim_isbd(value: str) -> str:
    """Drop the punctuation MARC cataloguers put between subfields ("Truyện Kiều /" → "Truyện Kiều")."""
    text = _TRAILING_ISBD.sub("", value)
    return _TRAILING_STOP.sub("", text).rstrip()


def fold_key(value: str) -> str:
    """A header or code compared loosely: lower case, no diacritics, ``đ`` as ``d``, letters and digits only.

    "Mã vạch", "MA VACH" and "ma_vach" all fold to ``mavach``.
    """
    text = unicodedata.normalize("NFD", clean_text(value).casefold()).replace("đ", "d")
    return "".join(char for char in text if char.isalnum() and not unicodedata.combining(char))


def truncate(value: str, limit: int) -> str:
    """At most ``limit`` characters; a cut value ends with an ellipsis so it is visibly cut."""
    return value if len(value) <= limit else value[: limit - 1].rstrip() + "…"
