"""Composition root of the gate controller process."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from openshelf.contract import Kind
from openshelf.runtime import announce_ready, device_link, run_async
from openshelf.site import load_site

from gate_controller.modbus import ModbusGateIo, quiet_pymodbus_logs
from gate_controller.pattern_files import load_alarm_pattern
from gate_controller.profile import load_gate_profile
from gate_controller.service import GateController

log = logging.getLogger(__name__)


def run_gate(site_path: Path, gate_id: str) -> int:
    site = load_site(site_path)
    settings = site.gate(gate_id)
    profile = load_gate_profile(settings.io.profile)
    pattern = load_alarm_pattern(settings.alarm_pattern, settings.alarm_duration_ms)
    quiet_pymodbus_logs()

    async def main(stop: asyncio.Event) -> int:
        io = ModbusGateIo.from_settings(profile, settings.io)
        link = device_link(site, Kind.GATE, gate_id)
        readers = [reader.id for reader in site.readers if reader.gate == gate_id]
        controller = GateController(io=io, link=link, settings=settings, site=site.site, root=site.broker.root,
                                    pattern=pattern, reader_ids=readers)
        controller.attach(asyncio.get_running_loop())
        link.start(wait_s=None)
        announce_ready(gate=gate_id, io=io.description)
        try:
            await controller.run(stop)
        finally:
            await asyncio.to_thread(link.stop)
        return 0

    return run_async(main)
