"""``decode`` and ``encode`` subcommands for checking and programming tags by hand.

``register_tag_commands(subparsers)`` adds them to an existing argparse
subparsers object (the ``openshelf rfid`` command group).  Each parser gets
``func=callable(args) -> int``.  Exit codes: 0 ok (or a blank tag), 2 corrupt,
unknown or unusable input, with the reason on stderr.
"""

from __future__ import annotations

import argparse
import json
import string
import sys
from typing import Any

from .detect import decode
from .errors import TagDataError
from .iso28560_2 import encode_iso28560_2
from .iso28560_3 import encode_iso28560_3
from .model import BlockOrder, DecodeStatus, TagData, TagModel, UsageType

EXIT_OK = 0
EXIT_BAD_TAG = 2

_MODEL_TITLES = {
    TagModel.ISO28560_3: "ISO 28560-3 (Danish data model)",
    TagModel.ISO28560_2: "ISO 28560-2 (ISO 15962 elements)",
    TagModel.THREEM: "3M proprietary (RFID 501, read-only)",
    TagModel.BLANK: "blank",
    TagModel.UNKNOWN: "unknown",
}
_HEX_SEPARATORS = str.maketrans("", "", string.whitespace + ":-")
_ENCODABLE_USAGES = [usage.value for usage in UsageType if usage is not UsageType.OTHER]


def register_tag_commands(subparsers: Any) -> None:
    """Add ``decode`` and ``encode`` to ``subparsers`` (from ``ArgumentParser.add_subparsers``)."""
    decode_parser = subparsers.add_parser(
        "decode",
        help="decode a tag memory dump",
        description="Decode tag user memory given as hex (spaces and colons allowed) and say what it holds.",
    )
    decode_parser.add_argument("hex", nargs="+", help="tag memory as hex, e.g. '11 01 01 31 ...'")
    decode_parser.add_argument("--dsfid", type=_integer, default=None, help="DSFID register value, e.g. 0x06")
    decode_parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    decode_parser.set_defaults(func=run_decode)

    encode_parser = subparsers.add_parser(
        "encode",
        help="encode tag memory for an item",
        description="Print, as hex, the user memory to write for an item.",
    )
    encode_parser.add_argument("--model", choices=["3", "2"], required=True, help="ISO 28560-3 or ISO 28560-2")
    encode_parser.add_argument("--item-id", required=True, help="primary item ID (barcode)")
    encode_parser.add_argument("--parts", type=int, default=None, help="number of parts in the set")
    encode_parser.add_argument("--part", type=int, default=None, help="part number of this tag (1-based)")
    encode_parser.add_argument("--country", default=None, help="ISO 3166 alpha-2 country, e.g. VN")
    encode_parser.add_argument("--isil", default=None, help="owner ISIL, full (VN-HN0001) or without country")
    encode_parser.add_argument("--usage", choices=_ENCODABLE_USAGES, default=UsageType.CIRCULATING.value)
    encode_parser.add_argument("--reversed", action="store_true", help="reverse each 4-byte block (FEIG readers)")
    encode_parser.set_defaults(func=run_encode)


def _integer(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from exc


def run_decode(args: argparse.Namespace) -> int:
    hex_text = "".join(args.hex).translate(_HEX_SEPARATORS)
    hex_text = hex_text[2:] if hex_text[:2].lower() == "0x" else hex_text
    try:
        memory = bytes.fromhex(hex_text)
        tag = decode(memory, args.dsfid)
    except ValueError as exc:  # bad hex, or a TagDataError such as a DSFID out of range
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_TAG
    if args.json:
        print(json.dumps(tag.model_dump(mode="json"), indent=2))
    else:
        print(format_tag(tag))
    if tag.status in (DecodeStatus.OK, DecodeStatus.BLANK):
        return EXIT_OK
    print(f"error: {tag.status.value}: {tag.problem}", file=sys.stderr)
    return EXIT_BAD_TAG


def run_encode(args: argparse.Namespace) -> int:
    if (args.parts is None) != (args.part is None):
        print("error: --parts and --part must be given together", file=sys.stderr)
        return EXIT_BAD_TAG
    order = BlockOrder.REVERSED if args.reversed else BlockOrder.NORMAL
    usage = UsageType(args.usage)
    try:
        if args.model == "3":
            memory = encode_iso28560_3(
                args.item_id,
                usage=usage,
                parts_in_set=args.parts or 1,
                part_number=args.part or 1,
                country=args.country,
                owner_isil=args.isil,
                block_order=order,
            )
        else:
            memory = encode_iso28560_2(
                args.item_id,
                usage=usage,
                parts_in_set=args.parts,
                part_number=args.part,
                country=args.country,
                owner_isil=args.isil,
                block_order=order,
            )
    except TagDataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_TAG
    print(memory.hex().upper())
    return EXIT_OK


def format_tag(tag: TagData) -> str:
    """Readable summary for a technician."""
    lines = [_line("Model", _MODEL_TITLES[tag.model])]
    if tag.status is not DecodeStatus.OK:
        lines.append(_line("Status", tag.status.value))
        lines.append(_line("Problem", tag.problem or "-"))
    if tag.model in (TagModel.BLANK, TagModel.UNKNOWN):
        return "\n".join(lines)
    if tag.crc_valid is not None:
        lines.append(_line("CRC", "valid" if tag.crc_valid else "INVALID"))
    lines.append(_line("Block order", tag.block_order.value))
    lines.append(_line("Primary item ID", tag.primary_item_id or "-"))
    if tag.usage_type is not None:
        lines.append(_line("Usage type", f"{tag.usage_type.value} (code {tag.usage_code})"))
    if tag.parts_in_set is not None:
        lines.append(_line("Part", f"{tag.part_number} of {tag.parts_in_set}"))
    if tag.owner_isil is not None:
        lines.append(_line("Owner ISIL", tag.owner_isil))
    for label, value in _optional_lines(tag):
        lines.append(_line(label, value))
    lines.extend(_line("Note", note) for note in tag.notes)
    return "\n".join(lines)


def _optional_lines(tag: TagData) -> list[tuple[str, str]]:
    candidates = [
        ("Shelf location", tag.shelf_location),
        ("Media format", tag.media_format),
        ("MARC media format", tag.marc_media_format),
        ("Title", tag.title),
        ("Item type", None if tag.item_type is None else f"{tag.item_type} (code {tag.item_type_code})"),
        ("Branch / library", None if tag.branch is None else f"{tag.branch} / {tag.library_number}"),
    ]
    found = [(label, value) for label, value in candidates if value is not None]
    shown = {1, 2, 3, 4, 5, 6, 7, 8, 17}
    found.extend(
        (f"OID {element.oid} {element.name}", element.text or f"0x{element.data_hex}")
        for element in tag.elements
        if element.oid not in shown
    )
    return found


def _line(label: str, value: str) -> str:
    return f"{label + ':':<18}{value}"
