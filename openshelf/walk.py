"""A scripted patron: carries demo items' tags through a gate's reader field."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from openshelf.contract import Channel, Kind, SimPlaceTags, SimRemoveTags, SimTag, expires_in, topic
from openshelf.demo_catalog import DEMO_COUNTRY, DEMO_ISIL_LIBRARY, demo_item, tag_uid_for
from openshelf.runtime import device_link
from openshelf.site import SiteConfig, load_site

log = logging.getLogger(__name__)

AFI_SECURED = 0x07
AFI_ON_LOAN = 0xC2


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


def gate_readers(site: SiteConfig, gate_id: str | None) -> tuple[str, list[str]]:
    if not site.gates:
        raise SystemExit("the site has no gates")
    gate = gate_id or site.gates[0].id
    readers = [reader.id for reader in site.readers if reader.gate == gate]
    if not readers:
        raise SystemExit(f"gate {gate} has no reader in the site file")
    return gate, readers


def walk_through_gate(site_path: Path, item_ids: list[str], *, gate_id: str | None, dwell_s: float) -> int:
    site = load_site(site_path)
    try:
        tags = demo_tags(item_ids)
    except KeyError as exc:
        print(f"openshelf sim walk: {exc.args[0]}")
        return 2
    gate, readers = gate_readers(site, gate_id)
    link = device_link(site, Kind.SIM, f"walk-{time.monotonic_ns()}")
    if not link.start(wait_s=10):
        print(f"openshelf sim walk: cannot reach the broker at {site.broker.url}")
        return 1
    try:
        for reader in readers:
            place = topic(site.site, Kind.SIM, reader, Channel.CMD, "place_tags", root=site.broker.root)
            link.publish(place, SimPlaceTags(tags=tags, expires_at=expires_in(5))).wait_for_publish(5)
        print(f"walking through {gate} with {', '.join(item_ids)} ({len(tags)} tag(s))", flush=True)
        time.sleep(dwell_s)
        uids = [tag.uid for tag in tags]
        for reader in readers:
            remove = topic(site.site, Kind.SIM, reader, Channel.CMD, "remove_tags", root=site.broker.root)
            link.publish(remove, SimRemoveTags(uids=uids, expires_at=expires_in(5))).wait_for_publish(5)
    finally:
        link.stop()
    return 0
