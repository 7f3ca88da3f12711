"""ESC/POS bytes for a receipt, with Vietnamese printed correctly or transliterated by a stated rule.

Two ways to put Vietnamese on a thermal printer (``printer.codepage``):

``cp1258``
    Windows-1258 (selected with ``ESC t 52`` on Epson TM printers; many
    Xprinter/Rongta models number it 94, see ``CODEPAGE_NUMBERS``). Windows-1258
    holds only some precomposed letters and adds five combining tone marks, so
    each letter is written as the largest precomposed base the code page has
    followed by the remaining marks: ``ệ`` → ``ê`` + combining dot below
    (``EA F2``). Every Vietnamese letter prints.

``transliterate`` (the default: it works on every printer)
    The rule: decompose (Unicode NFD), drop every combining mark (tones and
    the circumflex, breve and horn), write ``đ``/``Đ`` as ``d``/``D``; a few
    typographic characters become their ASCII look-alikes (dashes, quotes,
    ellipsis); anything else becomes ``?``. ``Nguyễn Đình Chiểu`` prints
    ``Nguyen Dinh Chieu``. Printed with code page 0 (PC437).

The QR code uses the printer's own QR command (``GS ( k``, model 2), so no
image library is needed.
"""

from __future__ import annotations

import unicodedata
from typing import Literal

from kiosk.receipt import Receipt

Codepage = Literal["transliterate", "cp1258"]

ESC, GS, LF = b"\x1b", b"\x1d", b"\n"
INIT = ESC + b"@"
CUT = GS + b"V" + bytes([66, 3])  # feed 3 lines, then partial cut
STATUS_PAPER = b"\x10\x04\x04"  # DLE EOT 4: real-time roll paper sensor status
PAPER_END_BITS = 0x60
PAPER_NEAR_END_BITS = 0x0C
CODEPAGE_NUMBERS = {"epson": 52, "xprinter": 94}
DEFAULT_CP1258_NUMBER = CODEPAGE_NUMBERS["epson"]
_ASCII_LOOKALIKES = {
    "đ": "d", "Đ": "D", "–": "-", "—": "-", "‘": "'", "’": "'", "“": '"', "”": '"', "…": "...",
    "•": "*", "✓": "v", "×": "x", "\u00a0": " ",
}


def transliterate(text: str) -> str:
    """Vietnamese (or any Latin text) as plain ASCII by the rule in the module docstring."""
    out = []
    for char in text:
        if char in _ASCII_LOOKALIKES:
            out.append(_ASCII_LOOKALIKES[char])
            continue
        base = "".join(part for part in unicodedata.normalize("NFD", char) if not unicodedata.combining(part))
        out.append(base if base.isascii() else "?")
    return "".join(out)


def encode_cp1258(text: str) -> bytes:
    """Windows-1258 bytes: precomposed where the code page has the letter, base + combining marks otherwise."""
    out = bytearray()
    for char in text:
        try:
            out += char.encode("cp1258")
            continue
        except UnicodeEncodeError:
            pass
        out += _decomposed_cp1258(char)
    return bytes(out)


def _decomposed_cp1258(char: str) -> bytes:
    decomposed = unicodedata.normalize("NFD", char)
    current, leftover = decomposed[0], []
    for mark in decomposed[1:]:
        combined = unicodedata.normalize("NFC", current + mark)
        if len(combined) == 1 and _encodable(combined):
            current = combined
        else:
            leftover.append(mark)
    if not _encodable(current) or not all(_encodable(mark) for mark in leftover):
        return transliterate(char).encode("ascii")
    return (current + "".join(leftover)).encode("cp1258")


def _encodable(text: str) -> bool:
    try:
        text.encode("cp1258")
    except UnicodeEncodeError:
        return False
    return True


class EscPosWriter:
    """Builds one print job; text goes through the chosen Vietnamese strategy."""

    def __init__(self, codepage: Codepage = "transliterate", cp1258_number: int = DEFAULT_CP1258_NUMBER) -> None:
        self._codepage = codepage
        self._buffer = bytearray(INIT)
        self._buffer += ESC + b"t" + bytes([cp1258_number if codepage == "cp1258" else 0])

    def encode(self, text: str) -> bytes:
        if self._codepage == "cp1258":
            return encode_cp1258(text)
        return transliterate(text).encode("ascii")

    def text(self, line: str, *, bold: bool = False, center: bool = False, large: bool = False) -> "EscPosWriter":
        self._buffer += ESC + b"a" + bytes([1 if center else 0])
        self._buffer += ESC + b"E" + bytes([1 if bold else 0])
        self._buffer += GS + b"!" + bytes([0x11 if large else 0x00])
        self._buffer += self.encode(line) + LF
        return self

    def qr(self, payload: str, module_size: int = 6) -> "EscPosWriter":
        data = payload.encode("ascii", errors="replace")
        if len(data) > 7000:
            raise ValueError("QR payload too long for one code")
        store_length = len(data) + 3
        self._buffer += ESC + b"a\x01"
        self._buffer += GS + b"(k\x04\x001A2\x00"  # model 2
        self._buffer += GS + b"(k\x03\x001C" + bytes([max(1, min(16, module_size))])
        self._buffer += GS + b"(k\x03\x001E1"  # error correction M
        self._buffer += GS + b"(k" + bytes([store_length & 0xFF, store_length >> 8]) + b"1P0" + data
        self._buffer += GS + b"(k\x03\x001Q0" + LF
        return self

    def cut(self) -> bytes:
        return bytes(self._buffer + CUT)


def receipt_job(receipt: Receipt, *, codepage: Codepage = "transliterate", width: int = 42,
                with_qr: bool = True, cp1258_number: int = DEFAULT_CP1258_NUMBER) -> bytes:
    """The whole print job for ``receipt``: heading, items, optional QR code, cut."""
    writer = EscPosWriter(codepage, cp1258_number)
    lines = receipt.text_lines(width)
    header_lines = 2
    for index, line in enumerate(lines):
        writer.text(line, bold=index < header_lines, center=index < header_lines + 1)
    if with_qr and receipt.qr_payload:
        writer.qr(receipt.qr_payload)
    return writer.cut()
