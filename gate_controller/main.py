"""Composition root of the gate controller process: one gate, or several gates in one process.

Several gates share one event loop and one :class:`LoopInbox`, but each keeps its
own MQTT link: its own broker credentials (the broker's ACL lets a gate publish
only on its own topics), its own status topic and Last Will. The links run on the
event loop (:meth:`MqttLink.start_on_loop`), so the process has one thread doing
everything: fifty gates are fifty sockets in one ``epoll``, not fifty processes.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

from openshelf.config import ConfigError
from openshelf.contract import Kind
from openshelf.mqtt import MqttLink
from openshelf.runtime import announce_ready, device_link, run_async
from openshelf.site import GateSettings, SiteConfig, load_site

from gate_controller.alarm_pattern import AlarmPattern
from gate_controller.inbox import LoopInbox
from gate_controller.modbus import ModbusGateIo, quiet_pymodbus_logs
from gate_controller.pattern_files import load_alarm_pattern
from gate_controller.profile import GateIoProfile, load_gate_profile
from gate_controller.service import GateController

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GatePlan:
    """Everything one gate needs, checked before anything starts (a typo fails fast, for every gate)."""

    settings: GateSettings
    profile: GateIoProfile
    pattern: AlarmPattern
    reader_ids: list[str]


def plan_gates(site: SiteConfig, gate_ids: list[str]) -> list[GatePlan]:
    if not gate_ids:
        raise ConfigError(f"site {site.site}: no gate to run (the site file lists no gates)")
    duplicates = sorted({gate_id for gate_id in gate_ids if gate_ids.count(gate_id) > 1})
    if duplicates:
        raise ConfigError(f"gate(s) named more than once: {', '.join(duplicates)}")
    plans = []
    for gate_id in gate_ids:
        settings = site.gate(gate_id)
        plans.append(GatePlan(
            settings=settings,
            profile=load_gate_profile(settings.io.profile),
            pattern=load_alarm_pattern(settings.alarm_pattern, settings.alarm_duration_ms),
            reader_ids=[reader.id for reader in site.readers if reader.gate == gate_id],
        ))
    return plans


def all_gate_ids(site_path: Path) -> list[str]:
    return [gate.id for gate in load_site(site_path).gates]


def run_gate(site_path: Path, gate_id: str) -> int:
    return run_gates(site_path, [gate_id])


def run_gates(site_path: Path, gate_ids: list[str]) -> int:
    """Run the named gates until SIGINT/SIGTERM; one failing gate stops them all (the supervisor restarts)."""
    site = load_site(site_path)
    plans = plan_gates(site, gate_ids)
    quiet_pymodbus_logs()
    # The links run on the event loop; what threads remain (executor, DNS) share the GIL with it, and a
    # thread coming back from a system call waits up to one switch interval: 0.5 ms rather than 5 ms.
    sys.setswitchinterval(0.0005)

    async def main(stop: asyncio.Event) -> int:
        loop = asyncio.get_running_loop()
        inbox = LoopInbox(loop)
        controllers: list[GateController] = []
        links: list[MqttLink] = []
        ios: list[str] = []
        for index, plan in enumerate(plans):
            io = ModbusGateIo.from_settings(plan.profile, plan.settings.io)
            link = device_link(site, Kind.GATE, plan.settings.id)
            controller = GateController(io=io, link=link, settings=plan.settings, site=site.site,
                                        root=site.broker.root, pattern=plan.pattern, reader_ids=plan.reader_ids,
                                        beam_phase=index)  # the gates' polls spread evenly over the period
            controller.attach(loop, inbox)
            link.start_on_loop()
            controllers.append(controller)
            links.append(link)
            ios.append(io.description)
        _announce(plans, ios)
        try:
            async with asyncio.TaskGroup() as group:
                for controller in controllers:
                    group.create_task(controller.run(stop), name=f"gate-{controller.gate_id}")
        finally:
            await asyncio.gather(*(link.aclose() for link in links))
        return 0

    return run_async(main)


def _announce(plans: list[GatePlan], ios: list[str]) -> None:
    if len(plans) == 1:
        announce_ready(gate=plans[0].settings.id, io=ios[0])
    else:
        announce_ready(gates=[plan.settings.id for plan in plans], io=ios)
    log.info("running %d gate(s): %s", len(plans), ", ".join(plan.settings.id for plan in plans))
