"""``openshelf rfid``: run a reader or NFC card service, check tags, decode/encode tag memory."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(parser: argparse.ArgumentParser) -> None:
    subparsers = parser.add_subparsers(dest="rfid_command", metavar="ACTION", required=True)
    run = subparsers.add_parser("run", help="poll a reader and publish tag events",
                                description="Run the reader service for one reader of the site file.")
    run.add_argument("--site", type=Path, required=True, help="site YAML file")
    run.add_argument("--device", required=True, help="reader id in the site file (readers[].id)")
    run.set_defaults(func=_run)

    nfc = subparsers.add_parser("nfc", help="read patron cards (ISO 14443 / FeliCa) with nfcpy",
                                description="Publish card_presented for patron cards on an nfcpy reader. "
                                            "ISO 15693 patron cards are read by `openshelf rfid run` instead.")
    nfc.add_argument("--site", type=Path, required=True, help="site YAML file")
    nfc.add_argument("--device", required=True, help="reader id in the site file (readers[].id)")
    nfc.add_argument("--path", default=None,
                     help="nfcpy device path: usb:VID:PID, usb:BUS:DEV, tty:USB0:pn532, udp:HOST:PORT "
                          "(default: the reader's port in the site file)")
    nfc.add_argument("--targets", default="106A,106B,212F",
                     help="technologies to sense, comma separated (106A = ISO 14443 A, 106B = B, 212F = FeliCa)")
    nfc.set_defaults(func=_nfc)

    inspect = subparsers.add_parser("inspect", help="read and explain every tag on a reader (for technicians)",
                                    description="Read every tag in a reader's field once and print its "
                                                "security state and decoded data. Stop the reader service "
                                                "on that port first.")
    inspect.add_argument("--port", required=True, help="serial device or socket://HOST:PORT")
    inspect.add_argument("--profile", default="feig-mr101", help="reader profile (firmware_configs/readers)")
    inspect.add_argument("--secured-afi", type=lambda text: int(text, 0), default=0x07)
    inspect.add_argument("--unsecured-afi", type=lambda text: int(text, 0), default=0xC2)
    inspect.add_argument("--json", action="store_true", help="print JSON for scripts")
    inspect.set_defaults(func=_inspect)

    from rfid.tagdata.cli import register_tag_commands

    register_tag_commands(subparsers)


def _run(args: argparse.Namespace) -> int:
    from rfid.main import run_reader

    return run_reader(args.site, args.device)


def _nfc(args: argparse.Namespace) -> int:
    from rfid.main import run_nfc

    targets = [item.strip() for item in args.targets.split(",") if item.strip()]
    return run_nfc(args.site, args.device, args.path, targets)


def _inspect(args: argparse.Namespace) -> int:
    import sys

    from rfid.drivers.base import ReaderError
    from rfid.drivers.feig_serial import FeigReader
    from rfid.drivers.profile import ReaderProfileError, load_reader_profile
    from rfid.inspect_tags import inspect_field, print_records
    from rfid.tagdata import AfiPolicy

    try:
        profile = load_reader_profile(args.profile)
        policy = AfiPolicy(secured_afi=args.secured_afi, unsecured_afi=args.unsecured_afi)
    except (ReaderProfileError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    driver = FeigReader(profile, args.port)
    try:
        records = inspect_field(driver, policy)
    except ReaderError as exc:
        print(f"error: reader on {args.port}: {exc}", file=sys.stderr)
        return 1
    finally:
        driver.close()
    print_records(records, as_json=args.json)
    return 0
