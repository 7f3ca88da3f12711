"""A scripted patron: walks through a gate's beams, carrying demo items' tags through its reader field."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Literal

from openshelf.contract import (
    Channel, Kind, SimBeams, SimBeamStep, SimPlaceTags, SimRemoveTags, SimTag, expires_in, topic,
)
from openshelf.demo_catalog import DEMO_COUNTRY, DEMO_ISIL_LIBRARY, demo_item, tag_uid_for
from openshelf.mqtt import MqttLink
from openshelf.runtime import device_link
from openshelf.site import SiteConfig, load_site

log = logging.getLogger(__name__)

AFI_SECURED = 0x07
AFI_ON_LOAN = 0xC2
Direction = Literal["out", "in"]
# A brisk walk through beams ~15 cm apart breaks them ~115 ms apart; 200 ms keeps every
# phase visible to a gate polling at 20 Hz even on a busy demo machine.
STEP_MS = 200
# A tailgater follows so closely that both beams are clear only this long between the two.
TAILGATE_GAP_MS = 300


def demo_tags(item_ids: list[str]) -> list[SimTag]:
    """Every part's tag of each demo item, with real ISO 28560-3 memory."""
    from rfid.tagdata import encode_iso28560_3

    tags = []
    for item_id in item_ids:
        item = demo_item(item_id)
        for part in range(1, item.parts + 1):
            memory = encode_iso28560_3(item.item_id, parts_in_set=item.parts, part_number=part,
                                       country=DEMO_COUNTRY, owner_isil=DEMO_ISIL_LIBRARY)
            afi = AFI_ON_LOAN if item.on_loan_to else AFI_SECURED
            tags.append(SimTag(uid=tag_uid_for(item.item_id, part), memory_hex=memory.hex(), afi=afi))
    return tags


def patron_beam_steps(direction: Direction, *, tailgate: bool = False) -> list[SimBeamStep]:
    """The beam sequence of one patron (two with ``tailgate``) walking ``out`` (A then B) or ``in``."""
    first, second = ("beam_a", "beam_b") if direction == "out" else ("beam_b", "beam_a")
    one = [
        SimBeamStep(beam=first, broken=True, after_ms=0),
        SimBeamStep(beam=second, broken=True, after_ms=STEP_MS),
        SimBeamStep(beam=first, broken=False, after_ms=STEP_MS),
        SimBeamStep(beam=second, broken=False, after_ms=STEP_MS),
    ]
    if not tailgate:
        return one
    follower = [one[0].model_copy(update={"after_ms": TAILGATE_GAP_MS}), *one[1:]]
    return one + follower


def steps_duration_s(steps: list[SimBeamStep]) -> float:
    return sum(step.after_ms for step in steps) / 1000


def gate_readers(site: SiteConfig, gate_id: str | None) -> tuple[str, list[str]]:
    gate = gate_of(site, gate_id)
    readers = [reader.id for reader in site.readers if reader.gate == gate]
    if not readers:
        raise SystemExit(f"gate {gate} has no reader in the site file")
    return gate, readers


def gate_of(site: SiteConfig, gate_id: str | None) -> str:
    if not site.gates:
        raise SystemExit("the site has no gates")
    gate = gate_id or site.gates[0].id
    if gate not in {candidate.id for candidate in site.gates}:
        raise SystemExit(f"the site has no gate {gate!r}")
    return gate


def walk_through_gate(site_path: Path, item_ids: list[str], *, gate_id: str | None, dwell_s: float,
                      direction: Direction = "out", tailgate: bool = False) -> int:
    """Play the beams of a patron (or two) and, with ``item_ids``, carry their tags through the reader field."""
    site = load_site(site_path)
    try:
        tags = demo_tags(item_ids)
    except KeyError as exc:
        print(f"openshelf sim walk: {exc.args[0]}")
        return 2
    gate, readers = gate_readers(site, gate_id) if tags else (gate_of(site, gate_id), [])
    steps = patron_beam_steps(direction, tailgate=tailgate)
    link = device_link(site, Kind.SIM, f"walk-{time.monotonic_ns()}")
    if not link.start(wait_s=10):
        print(f"openshelf sim walk: cannot reach the broker at {site.broker.url}")
        return 1
    try:
        _send(link, site, readers, "place_tags", SimPlaceTags(tags=tags, expires_at=expires_in(5)) if tags else None)
        beams = topic(site.site, Kind.SIM, gate, Channel.CMD, "beams", root=site.broker.root)
        link.publish(beams, SimBeams(steps=steps, expires_at=expires_in(5))).wait_for_publish(5)
        people = "two patrons (tailgating)" if tailgate else "a patron"
        carrying = f"with {', '.join(item_ids)} ({len(tags)} tag(s))" if tags else "without items"
        print(f"{people} walking {direction} through {gate} {carrying}", flush=True)
        time.sleep(max(dwell_s if tags else 0.0, steps_duration_s(steps) + 0.1))
        if tags:
            remove = SimRemoveTags(uids=[tag.uid for tag in tags], expires_at=expires_in(5))
            _send(link, site, readers, "remove_tags", remove)
    finally:
        link.stop()
    return 0


def _send(link: MqttLink, site: SiteConfig, readers: list[str], name: str,
          command: SimPlaceTags | SimRemoveTags | None) -> None:
    if command is None:
        return
    for reader in readers:
        target = topic(site.site, Kind.SIM, reader, Channel.CMD, name, root=site.broker.root)
        link.publish(target, command).wait_for_publish(5)
