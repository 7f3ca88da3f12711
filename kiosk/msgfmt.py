"""Compile gettext catalogs (.po) into the binary .mo files Python's ``gettext`` reads.

The same job as CPython's ``Tools/i18n/msgfmt.py`` (which is not installed with
Python), for the subset the kiosk's catalogs use: ``msgctxt``, ``msgid``,
``msgstr``, multi-line strings, comments, and the ``fuzzy`` flag (fuzzy entries
are left out, as GNU msgfmt does). Plural forms are refused: the kiosk's wording
avoids them (Vietnamese has none).

Run ``python -m kiosk.msgfmt`` to rebuild every catalog under ``kiosk/locale``.
"""

from __future__ import annotations

import argparse
import ast
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "kiosk"
_MO_MAGIC = 0x950412DE
_CONTEXT_SEPARATOR = "\x04"


class CatalogError(ValueError):
    """A .po file cannot be parsed; the message names the file and line."""


@dataclass
class _Entry:
    context: str | None = None
    msgid: str | None = None
    msgstr: str | None = None
    fuzzy: bool = False
    line: int = 0
    field_name: str | None = None


def parse_po(text: str, source: str = "<po>") -> dict[str, str]:
    """The translations of a .po file: ``{msgid: msgstr}`` (``ctxt\\x04msgid`` with a context).

    The header (empty msgid) is kept, because it names the charset.
    """
    messages: dict[str, str] = {}
    entry = _Entry()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            if entry.msgstr is not None:  # a comment opens the next entry
                entry = _finish(entry, messages, source)
            if line.startswith("#,") and "fuzzy" in line:
                entry.fuzzy = True
            continue
        keyword, _, rest = line.partition(" ")
        if keyword in ("msgctxt", "msgid", "msgstr"):
            if keyword != "msgstr" and entry.msgstr is not None:
                entry = _finish(entry, messages, source)
            if keyword == "msgstr" and entry.msgid is None:
                raise CatalogError(f"{source}:{number}: msgstr without a msgid")
            entry.field_name = "context" if keyword == "msgctxt" else keyword
            setattr(entry, entry.field_name, _string(rest, source, number))
            entry.line = entry.line or number
        elif keyword.startswith(("msgid_plural", "msgstr[")):
            raise CatalogError(f"{source}:{number}: plural forms are not supported; rephrase without them")
        elif line.startswith('"'):
            if entry.field_name is None:
                raise CatalogError(f"{source}:{number}: continuation line outside an entry")
            previous = getattr(entry, entry.field_name) or ""
            setattr(entry, entry.field_name, previous + _string(line, source, number))
        else:
            raise CatalogError(f"{source}:{number}: cannot parse {line[:40]!r}")
    _finish(entry, messages, source)
    return messages


def _finish(entry: _Entry, messages: dict[str, str], source: str) -> _Entry:
    if entry.msgid is not None:
        if entry.msgstr is None:
            raise CatalogError(f"{source}:{entry.line}: msgid {entry.msgid!r} has no msgstr")
        key = entry.msgid if entry.context is None else f"{entry.context}{_CONTEXT_SEPARATOR}{entry.msgid}"
        if key in messages:
            raise CatalogError(f"{source}:{entry.line}: duplicate msgid {entry.msgid!r}")
        if not entry.fuzzy or entry.msgid == "":
            messages[key] = entry.msgstr
    return _Entry()


def _string(token: str, source: str, number: int) -> str:
    token = token.strip()
    if not (token.startswith('"') and token.endswith('"') and len(token) >= 2):
        raise CatalogError(f"{source}:{number}: expected a quoted string, got {token[:40]!r}")
    try:
        value = ast.literal_eval(token)
    except (SyntaxError, ValueError) as exc:
        raise CatalogError(f"{source}:{number}: bad string literal: {exc}") from None
    if not isinstance(value, str):
        raise CatalogError(f"{source}:{number}: expected a string")
    return value


def build_mo(messages: dict[str, str]) -> bytes:
    """The GNU .mo image of ``messages`` (keys sorted, as gettext's binary search needs)."""
    keys = sorted(messages)
    ids = [key.encode("utf-8") for key in keys]
    strs = [messages[key].encode("utf-8") for key in keys]
    header_size = 7 * 4
    key_table = header_size
    value_table = key_table + len(keys) * 8
    data_start = value_table + len(keys) * 8
    offsets: list[tuple[int, int]] = []
    blob = bytearray()
    for encoded in ids:
        offsets.append((len(encoded), data_start + len(blob)))
        blob += encoded + b"\0"
    value_offsets: list[tuple[int, int]] = []
    for encoded in strs:
        value_offsets.append((len(encoded), data_start + len(blob)))
        blob += encoded + b"\0"
    output = bytearray(struct.pack("<7I", _MO_MAGIC, 0, len(keys), key_table, value_table, 0, 0))
    for length, offset in offsets:
        output += struct.pack("<2I", length, offset)
    for length, offset in value_offsets:
        output += struct.pack("<2I", length, offset)
    return bytes(output + blob)


def compile_po(po_path: Path) -> bytes:
    return build_mo(parse_po(po_path.read_text(encoding="utf-8"), str(po_path)))


def catalog_paths(locale_dir: Path = LOCALE_DIR) -> list[Path]:
    return sorted(locale_dir.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))


def compile_all(locale_dir: Path = LOCALE_DIR) -> list[Path]:
    """Write ``kiosk.mo`` beside every ``kiosk.po``; returns the files written."""
    written = []
    for po_path in catalog_paths(locale_dir):
        mo_path = po_path.with_suffix(".mo")
        mo_path.write_bytes(compile_po(po_path))
        written.append(mo_path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Compile the kiosk's .po catalogs to .mo files.")
    parser.add_argument("--locale-dir", type=Path, default=LOCALE_DIR)
    args = parser.parse_args(argv)
    try:
        for path in compile_all(args.locale_dir):
            print(f"wrote {path}")
    except CatalogError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
