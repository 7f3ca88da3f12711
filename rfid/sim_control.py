"""``openshelf sim reader``: a simulated FEIG reader whose field is scripted over MQTT.

The reader speaks FEIG ISO Host on a TCP port (the site file's ``socket://`` URL),
so the reader service talks to it exactly as to a serial-over-TCP adapter.
``openshelf sim walk`` places and removes tags through the ``sim`` topics.
"""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import urlsplit

from openshelf.contract import Channel, Kind, SimPlaceTags, SimReaderFault, SimRemoveTags, TopicParts, topic
from openshelf.runtime import announce_ready, device_link, stop_event_on_signals
from openshelf.site import load_site

from rfid.readersim.core import SimulatedReader
from rfid.readersim.tags import VirtualTag
from rfid.readersim.tcp_transport import TcpTransport

log = logging.getLogger(__name__)


class FieldScript:
    """Applies place/remove commands to the simulated reader's field."""

    def __init__(self, reader: SimulatedReader) -> None:
        self._reader = reader

    def place(self, parts: TopicParts, command: SimPlaceTags) -> None:
        placed = []
        for tag in command.tags:
            try:
                virtual = VirtualTag.holding(bytes.fromhex(tag.uid), bytes.fromhex(tag.memory_hex), afi=tag.afi,
                                             dsfid=tag.dsfid)
            except ValueError as exc:  # more memory than an ISO 15693 tag can have
                log.error("cannot place tag %s: %s", tag.uid, exc)
                continue
            self._reader.place_tag(virtual)
            placed.append(tag.uid)
        log.info("placed %d tag(s): %s", len(placed), ", ".join(placed))

    def remove(self, parts: TopicParts, command: SimRemoveTags) -> None:
        present = {uid.hex().upper() for uid in self._reader.field_uids()}
        for uid in command.uids:
            if uid in present:
                self._reader.remove_tag(uid)
        log.info("removed %d tag(s)", len(command.uids))

    def fault(self, parts: TopicParts, command: SimReaderFault) -> None:
        if command.write_failures:
            self._reader.fail_next_writes(command.write_failures, command.write_failure_kind)
        if command.dropped_answers:
            self._reader.drop_next_answers(command.dropped_answers)
        log.info("scripted faults: %d failing write(s) (%s), %d lost answer(s)", command.write_failures,
                 command.write_failure_kind, command.dropped_answers)


def tcp_endpoint(port_url: str) -> tuple[str, int]:
    parts = urlsplit(port_url)
    if parts.scheme != "socket" or not parts.hostname or not parts.port:
        raise SystemExit(f"the reader simulator serves TCP: the reader's port must be socket://HOST:PORT, "
                         f"not {port_url!r}")
    return parts.hostname, parts.port


def run_reader_simulator(site_path: Path, reader_id: str) -> int:
    site = load_site(site_path)
    settings = site.reader(reader_id)
    host, port = tcp_endpoint(settings.port)
    stop = stop_event_on_signals()
    reader = SimulatedReader()
    transport = TcpTransport(reader, host=host, port=port)
    script = FieldScript(reader)
    link = device_link(site, Kind.SIM, f"sim-{reader_id}")
    link.subscribe(topic(site.site, Kind.SIM, reader_id, Channel.CMD, "place_tags", root=site.broker.root),
                   SimPlaceTags, script.place)
    link.subscribe(topic(site.site, Kind.SIM, reader_id, Channel.CMD, "remove_tags", root=site.broker.root),
                   SimRemoveTags, script.remove)
    link.subscribe(topic(site.site, Kind.SIM, reader_id, Channel.CMD, "reader_fault", root=site.broker.root),
                   SimReaderFault, script.fault)
    transport.start()
    link.start(wait_s=None)
    announce_ready(reader=reader_id, url=transport.url)
    try:
        stop.wait()
    finally:
        link.stop()
        transport.stop()
    return 0
