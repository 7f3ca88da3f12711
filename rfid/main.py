"""Composition root of the reader service process."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from openshelf.contract import Kind
from openshelf.runtime import announce_ready, device_link, stop_event_on_signals
from openshelf.site import load_site

from rfid.drivers.feig_serial import FeigReader
from rfid.drivers.profile import load_reader_profile
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
    link.start(wait_s=None)
    announce_ready(reader=reader_id, port=settings.port)
    try:
        service.run(stop)
    finally:
        link.stop()
        driver.close()
    return 0
