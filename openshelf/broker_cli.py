"""``openshelf broker``: the embedded demo broker, or a Mosquitto configuration for a real site."""

from __future__ import annotations

import argparse
import threading
from pathlib import Path


def register(parser: argparse.ArgumentParser) -> None:
    subparsers = parser.add_subparsers(dest="broker_command", metavar="ACTION", required=True)
    embedded = subparsers.add_parser("embedded", help="run the embedded (amqtt) broker on loopback, for demos")
    embedded.add_argument("--port", type=int, default=1883)
    embedded.set_defaults(func=_run_embedded)

    config = subparsers.add_parser(
        "mosquitto-config", help="write mosquitto.conf, a hashed password file and the ACL for a site",
        description="One broker user per device (the device id, its secret as password) and an ACL that lets "
                    "each device publish only its own topics.")
    config.add_argument("--site", type=Path, required=True, help="site YAML file")
    config.add_argument("--out", type=Path, required=True, help="directory to write into")
    config.add_argument("--port", type=int, default=None, help="listener port (default: the site's broker URL)")
    config.add_argument("--bind", default="127.0.0.1", help="listener address (default loopback)")
    config.add_argument("--run-as", default=None,
                        help="the user Mosquitto runs as when started as root (default: Mosquitto's own)")
    config.set_defaults(func=_write_config)


def _run_embedded(args: argparse.Namespace) -> int:
    from openshelf.broker import EmbeddedBroker
    from openshelf.runtime import announce_ready, stop_event_on_signals

    stop = stop_event_on_signals()
    broker = EmbeddedBroker(port=args.port)
    broker.start()
    announce_ready(url=broker.url)
    stop.wait()
    broker.stop()
    return 0


def _write_config(args: argparse.Namespace) -> int:
    from openshelf.broker import write_mosquitto_files
    from openshelf.site import load_site

    site = load_site(args.site)
    conf = write_mosquitto_files(site, args.out, port=args.port or site.broker.port, bind=args.bind,
                                 run_as=args.run_as)
    print(f"wrote {conf} (start it with: mosquitto -c {conf})")
    return 0
