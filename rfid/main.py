"""Composition roots of the reader service and the NFC card service processes."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

from openshelf.contract import Kind
from openshelf.runtime import announce_ready, device_link, stop_event_on_signals
from openshelf.site import load_site

from rfid.drivers.feig_serial import FeigReader
from rfid.drivers.profile import load_reader_profile
from rfid.nfc import DEFAULT_TARGETS, CardService, NfcpyCardReader
from rfid.service import ReaderService

log = logging.getLogger(__name__)


def run_reader(site_path: Path, reader_id: str) -> int:
    site = load_site(site_path)
    settings = site.reader(reader_id)
    profile = load_reader_profile(settings.profile)
    stop = stop_event_on_signals()
    driver = FeigReader(profile, settings.port)
    link = device_link(site, Kind.READER, reader_id)
    service = ReaderService(driver=driver, link=link, settings=settings, site=site.site, root=site.broker.root)
    service.subscribe()
    link.start(wait_s=None)
    announce_ready(reader=reader_id, port=settings.port, role=settings.role)
    try:
        service.run(stop)
    finally:
        link.stop()
        driver.close()
    return 0


def run_nfc(site_path: Path, reader_id: str, path: str | None, targets: Sequence[str] = DEFAULT_TARGETS) -> int:
    """Patron cards on an nfcpy reader; ``path`` defaults to the reader's ``port`` in the site file."""
    site = load_site(site_path)
    settings = site.reader(reader_id)
    device_path = path or settings.port
    stop = stop_event_on_signals()
    # nfcpy logs "searching for reader" at INFO on every reopen attempt; the service logs the outage once.
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        logging.getLogger("nfc.clf").setLevel(logging.WARNING)
    reader = NfcpyCardReader(device_path, targets)
    link = device_link(site, Kind.READER, reader_id)
    service = CardService(reader=reader, link=link, reader_id=reader_id, site=site.site, root=site.broker.root,
                          poll_interval_s=settings.poll_interval_ms / 1000,
                          removed_after_s=settings.departed_after_ms / 1000)
    link.start(wait_s=None)
    announce_ready(reader=reader_id, nfc=device_path)
    try:
        service.run(stop)
    finally:
        reader.close()
        link.stop()
    return 0
