"""What every OpenShelf process does the same way: its broker identity, readiness, stopping."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
import threading
from typing import Any, Awaitable, Callable

from openshelf.contract import Channel, Kind, topic
from openshelf.mqtt import MqttLink
from openshelf.site import SIM_USER, SiteConfig, resolve_secret

log = logging.getLogger(__name__)


def device_link(site: SiteConfig, kind: Kind, device_id: str) -> MqttLink:
    """The MQTT link of one device: its own credentials, status topic and Last Will."""
    if kind is Kind.SIM:
        username, secret = SIM_USER, resolve_secret(site.sim_secret)
    else:
        username, secret = device_id, site.secret_of(device_id)
    return MqttLink(
        site.broker,
        client_id=f"{site.site}-{device_id}",
        # Simulators are test equipment, not devices: no availability topic of their own.
        status_topic=None if kind is Kind.SIM else topic(site.site, kind, device_id, Channel.STATUS,
                                                         root=site.broker.root),
        username=username if secret is not None else None,
        password=secret,
    )


def announce_ready(**fields: Any) -> None:
    """One JSON line on stdout that supervisors (demo, tests) wait for."""
    print(json.dumps({"event": "ready", **fields}), flush=True)


def stop_event_on_signals() -> threading.Event:
    """A threading.Event set by SIGINT or SIGTERM, for threaded services."""
    stop = threading.Event()

    def handle(signum: int, frame: Any) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)
    return stop


def run_async(main: Callable[[asyncio.Event], Awaitable[int]]) -> int:
    """Run an asyncio service until SIGINT/SIGTERM sets the stop event it receives."""

    async def runner() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        return await main(stop)

    try:
        return asyncio.run(runner())
    except Exception:  # noqa: BLE001 - the last line of defence prints the reason and exits non-zero
        log.exception("service failed")
        sys.stderr.flush()
        return 1
