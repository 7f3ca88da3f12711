"""The receipt of one session, in the patron's language, as lines of text.

The same receipt is shown on screen, printed (``kiosk.escpos``) and e-mailed
(``kiosk.mailer``). It carries item titles and due dates, never the patron's
name or card number. The optional QR code holds the same facts in a compact,
language-neutral form (``OPENSHELF|<library>|<date>|B:<item>@<due>;R:<item>``) so
that a phone can keep it.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class ReceiptLine:
    title: str
    item_id: str
    note: str = ""


@dataclass(frozen=True)
class ReceiptSection:
    heading: str
    lines: tuple[ReceiptLine, ...]


@dataclass(frozen=True)
class Receipt:
    language: str
    library: str
    heading: str
    when: str
    sections: tuple[ReceiptSection, ...]
    footer: str = ""
    qr_payload: str | None = None
    item_ids: tuple[str, ...] = field(default=())

    @property
    def empty(self) -> bool:
        return not any(section.lines for section in self.sections)

    def text_lines(self, width: int = 42) -> list[str]:
        """Plain text, wrapped to ``width`` columns (a thermal printer's line, or an e-mail body)."""
        lines = [*_wrap(self.library, width), *_wrap(self.heading, width), self.when, "-" * width]
        for section in self.sections:
            if not section.lines:
                continue
            lines += _wrap(section.heading, width)
            for line in section.lines:
                lines += _wrap(f"* {line.title} ({line.item_id})", width, indent="  ")
                if line.note:
                    lines += _wrap(line.note, width, indent="  ", first="  ")
            lines.append("-" * width)
        if self.footer:
            lines += _wrap(self.footer, width)
        return lines

    def as_text(self, width: int = 72) -> str:
        return "\n".join(self.text_lines(width)) + "\n"


def _wrap(text: str, width: int, indent: str = "", first: str = "") -> list[str]:
    return textwrap.wrap(text, width=width, initial_indent=first, subsequent_indent=indent) or [""]


def qr_payload(library_code: str, when: datetime, borrowed: list[tuple[str, datetime | None]],
               returned: list[str]) -> str:
    parts = [f"B:{item}@{due.date().isoformat() if due else ''}" for item, due in borrowed]
    parts += [f"R:{item}" for item in returned]
    return f"OPENSHELF|{library_code}|{when.date().isoformat()}|{';'.join(parts)}"
