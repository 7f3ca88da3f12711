"""Every word the kiosk shows, in Vietnamese and English, from gettext catalogs.

The catalogs (``kiosk/locale/<lang>/LC_MESSAGES/kiosk.po``) use stable keys as
msgids (``start.borrow``), so a missing translation is visible as a key instead
of silently falling back to another language, and a test can check that every
key the code uses exists in every language. ``python -m kiosk.msgfmt`` compiles
them to ``.mo``; a catalog whose ``.mo`` is missing or older than its ``.po`` is
compiled in memory at start, so an edited translation is never ignored.

Dates and amounts follow each language's conventions: ``05/06/2025`` and
``5 Jun 2025``; ``12.000 đ`` and ``12,000 VND`` (the currency words are
catalog entries too).
"""

from __future__ import annotations

import gettext
import io
import logging
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Iterable

from kiosk.msgfmt import DOMAIN, LOCALE_DIR, compile_po

log = logging.getLogger(__name__)

LANGUAGES = ("vi", "en")
_MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class TranslationError(LookupError):
    """A catalog is missing or cannot be read."""


def load_catalog(language: str, locale_dir: Path = LOCALE_DIR) -> gettext.GNUTranslations:
    po_path = locale_dir / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    mo_path = po_path.with_suffix(".mo")
    if not po_path.exists() and not mo_path.exists():
        raise TranslationError(f"no {DOMAIN} catalog for {language!r} under {locale_dir}")
    if mo_path.exists() and (not po_path.exists() or mo_path.stat().st_mtime >= po_path.stat().st_mtime):
        with mo_path.open("rb") as handle:
            return gettext.GNUTranslations(handle)
    log.info("compiling %s in memory (no up-to-date .mo beside it)", po_path)
    return gettext.GNUTranslations(io.BytesIO(compile_po(po_path)))


class _Defaulting(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "?"


class Translator:
    """Looks keys up in the current language; switching language is one assignment."""

    def __init__(self, catalogs: dict[str, gettext.GNUTranslations], default: str = "vi") -> None:
        if default not in catalogs:
            raise TranslationError(f"no catalog for the default language {default!r}")
        self._catalogs = catalogs
        self.default = default
        self.language = default
        self._reported: set[tuple[str, str]] = set()

    @classmethod
    def load(cls, default: str = "vi", languages: Iterable[str] = LANGUAGES,
             locale_dir: Path = LOCALE_DIR) -> "Translator":
        return cls({language: load_catalog(language, locale_dir) for language in languages}, default)

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(self._catalogs)

    def set_language(self, language: str) -> None:
        if language not in self._catalogs:
            raise TranslationError(f"no catalog for {language!r}")
        self.language = language

    def __call__(self, key: str, **params: Any) -> str:
        return self.text(self.language, key, **params)

    def text(self, language: str, key: str, **params: Any) -> str:
        template = self._catalogs[language].gettext(key)
        if template == key and (language, key) not in self._reported:
            self._reported.add((language, key))
            log.error("no %s translation for %r", language, key)
        if not params:
            return template
        return template.format_map(_Defaulting({name: self.format(value, language) for name, value in params.items()}))

    def has(self, language: str, key: str) -> bool:
        return self._catalogs[language].gettext(key) != key

    # ------------------------------------------------------------------ values

    def format(self, value: Any, language: str | None = None) -> str:
        language = language or self.language
        if isinstance(value, datetime):
            return format_date(value, language)
        if isinstance(value, Decimal):
            return self.money(value, language)
        return str(value)

    def money(self, amount: Decimal | str, language: str | None = None) -> str:
        language = language or self.language
        try:
            value = Decimal(amount)
        except (InvalidOperation, TypeError):
            return str(amount)
        places = int(self.text(language, "money.decimal_places") or "0")
        digits = f"{value:,.{places}f}"
        if language == "vi":
            digits = digits.replace(",", "\x00").replace(".", ",").replace("\x00", ".")
        return self.text(language, "money.amount", amount=digits)


def format_date(value: datetime, language: str) -> str:
    """A due date in the kiosk's local time: ``dd/mm/yyyy`` (vi) or ``5 Jun 2025`` (en)."""
    local = value.astimezone() if value.tzinfo is not None else value
    if language == "vi":
        return f"{local.day:02d}/{local.month:02d}/{local.year}"
    return f"{local.day} {_MONTHS_EN[local.month - 1]} {local.year}"
