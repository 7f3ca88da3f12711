"""Composition root of the kiosk process: ``openshelf kiosk --site site.yaml --device kiosk-1``."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from openshelf.config import ConfigError
from openshelf.contract import Kind
from openshelf.mqtt import MqttLink
from openshelf.runtime import announce_ready, device_link, stop_event_on_signals
from openshelf.site import SiteConfig, load_site, resolve_secret

log = logging.getLogger(__name__)

SECURE_TAG_DEADLINE_S = 5.0
WINDOWED_SIZE = (1280, 800)


def queue_path(site: SiteConfig, kiosk_id: str) -> Path:
    return site.data_dir / "kiosk" / f"{kiosk_id}.queue.sqlite3"


@dataclass
class KioskRuntime:
    """Everything one kiosk process runs; ``start`` connects, ``close`` stops all of it."""

    app: KioskApp
    controller: KioskController
    link: MqttLink
    replayer: Replayer
    queue: OfflineQueue
    printer: ReceiptPrinter | None

    def start(self) -> None:
        self.link.start(wait_s=None)
        self.replayer.start()

    def close(self) -> None:
        self.replayer.stop()
        self.controller.stop()
        self.link.stop()
        self.queue.close()
        if self.printer is not None:
            self.printer.close()


def build_kiosk(site: SiteConfig, kiosk_id: str, *, stop_event: threading.Event | None = None,
                on_ready: Callable[[], None] | None = None, lockdown: bool = True,
                clock: Callable[[], float] = time.monotonic, replay_retry_s: float = 5.0,
                retry: RetryTimings | None = None) -> KioskRuntime:
    """Wire the kiosk's parts. Call after :func:`kiosk.ui.bootstrap.prepare_kivy`."""
    from kiosk.backend_client import CirculationClient
    from kiosk.backend_http import BackendHttp, HttpCredentials, ReceiptAddressBook, TitleCatalog
    from kiosk.controller import KioskController, KioskServices, RetryTimings
    from kiosk.i18n import Translator
    from kiosk.mailer import ReceiptMailer
    from kiosk.pad import PadSubscriber
    from kiosk.printer import build_printer
    from kiosk.queue import OfflineQueue
    from kiosk.replay import Replayer
    from kiosk.state import KioskStatePublisher
    from kiosk.tag_security import TagSecurityClient
    from kiosk.ui.app import KioskApp
    from kiosk.work import ItemWorker

    settings = site.kiosk(kiosk_id)
    if settings.pad_reader is None:
        raise ConfigError(f"kiosk {kiosk_id}: pad_reader is required (the reader items are placed on)")
    try:
        exit_code = resolve_secret(settings.exit_code)
    except ValueError as exc:
        raise ConfigError(f"{kiosk_id}.exit_code: {exc}") from None
    root, site_id = site.broker.root, site.site
    link = device_link(site, Kind.KIOSK, kiosk_id)
    circulation = CirculationClient(link, site=site_id, root=root, kiosk_id=kiosk_id, backend_id=site.backend.id,
                                    deadline_s=settings.backend_deadline_ms / 1000)
    security = TagSecurityClient(link, site=site_id, root=root, kiosk_id=kiosk_id, reader_id=settings.pad_reader,
                                 deadline_s=SECURE_TAG_DEADLINE_S)
    queue = OfflineQueue(queue_path(site, kiosk_id))
    http = BackendHttp(site.backend.url, HttpCredentials(kiosk_id, site.secret_of(kiosk_id)))
    printer = build_printer(settings.printer)
    app = KioskApp(stop_event=stop_event, on_ready=on_ready, lockdown=lockdown)
    services = KioskServices(
        circulation=circulation, worker=ItemWorker(circulation, security, queue), queue=queue,
        titles=TitleCatalog(http), addresses=ReceiptAddressBook(http), printer=printer,
        mailer=ReceiptMailer(settings.smtp) if settings.smtp else None,
        state=KioskStatePublisher(link, site=site_id, root=root, kiosk_id=kiosk_id),
    )
    controller = KioskController(
        settings=settings, library=site.name or site.site, translator=Translator.load(settings.language),
        services=services, post=app.post, render=app.render, exit_code=exit_code, on_technician_exit=app.stop,
        printer_codepage=settings.printer.codepage, clock=clock, retry=retry or RetryTimings(),
    )
    app.attach(controller)
    replayer = Replayer(queue, circulation, retry_s=replay_retry_s,
                        on_progress=lambda pending: app.post(lambda: controller.queue_progress(pending)))
    circulation.availability.add_listener(lambda online: app.post(lambda: controller.backend_availability(online)))
    circulation.subscribe()
    security.subscribe()
    PadSubscriber(link, site=site_id, root=root, pad_reader=settings.pad_reader, card_reader=settings.card_reader,
                  post=app.post, listener=controller).subscribe()
    return KioskRuntime(app=app, controller=controller, link=link, replayer=replayer, queue=queue, printer=printer)


def run_kiosk(site_path: Path, kiosk_id: str, *, windowed: bool = False,
              size: tuple[int, int] | None = None) -> int:
    """Run one kiosk until SIGTERM/SIGINT or the technician exit; returns the process exit status."""
    from kiosk.ui.bootstrap import prepare_kivy

    site = load_site(site_path)
    settings = site.kiosk(kiosk_id)
    fullscreen = settings.fullscreen and not windowed
    prepare_kivy(fullscreen=fullscreen, size=size or (None if fullscreen else WINDOWED_SIZE))
    stop = stop_event_on_signals()
    runtime = build_kiosk(site, kiosk_id, stop_event=stop,
                          on_ready=lambda: announce_ready(kiosk=kiosk_id, pad_reader=settings.pad_reader))
    runtime.start()
    try:
        runtime.app.run()
    finally:
        runtime.close()
    log.info("kiosk %s stopped", kiosk_id)
    return 0


if TYPE_CHECKING:  # the GUI stack is imported lazily, inside build_kiosk
    from kiosk.controller import KioskController, RetryTimings
    from kiosk.printer import ReceiptPrinter
    from kiosk.queue import OfflineQueue
    from kiosk.replay import Replayer
    from kiosk.ui.app import KioskApp
