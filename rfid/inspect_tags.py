"""``openshelf rfid inspect``: what a technician sees when checking tags on a reader.

Reads every tag in the field once (system information, EAS bit, memory) and
prints it decoded, with its security state under the site's AFI policy. It opens
the reader's port itself, so stop the reader service on that port first.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from rfid.drivers.base import ReaderDriver, ReaderError
from rfid.identify import MAX_BLOCKS_READ
from rfid.tagdata import AfiPolicy, decode, security_state
from rfid.tagdata.cli import format_tag

NXP_MANUFACTURER = 0x04


def inspect_field(driver: ReaderDriver, policy: AfiPolicy) -> list[dict[str, Any]]:
    """One record per tag in the field; a tag that cannot be read gets an ``error``."""
    records = []
    for tag in driver.inventory():
        record: dict[str, Any] = {"uid": tag.uid_hex}
        try:
            info = driver.system_info(tag.uid)
            count = min(info.block_count, MAX_BLOCKS_READ)
            memory = driver.read_blocks(tag.uid, 0, count)
            eas = driver.eas_state(tag.uid) if tag.uid[1] == NXP_MANUFACTURER else None
        except ReaderError as exc:
            record["error"] = str(exc)
            records.append(record)
            continue
        record.update(
            afi=info.afi, dsfid=info.dsfid, eas=eas, block_size=info.block_size, block_count=info.block_count,
            security=security_state(info.afi, eas, policy).value, memory_hex=memory.hex().upper(),
            tag=decode(memory, info.dsfid),
        )
        records.append(record)
    return records


def print_records(records: list[dict[str, Any]], *, as_json: bool) -> None:
    if as_json:
        print(json.dumps([{**r, "tag": r["tag"].model_dump(mode="json")} if "tag" in r else r for r in records],
                         indent=2))
        return
    if not records:
        print("no tag in the field")
    for record in records:
        print(f"UID {record['uid']}")
        if "error" in record:
            print(f"  cannot be read: {record['error']}")
            continue
        eas = "n/a" if record["eas"] is None else ("set" if record["eas"] else "clear")
        print(f"  AFI 0x{record['afi']:02X} ({record['security']}), EAS {eas}, DSFID 0x{record['dsfid']:02X}, "
              f"{record['block_count']} blocks of {record['block_size']} bytes")
        print("  " + format_tag(record["tag"]).replace("\n", "\n  "))
        print(f"  memory {record['memory_hex']}")
    sys.stdout.flush()
