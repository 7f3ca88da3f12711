"""Reader service polling, in process: simulator on a pty, real FEIG driver, fake clock."""

from __future__ import annotations

from typing import Any

from openshelf.contract import (
    CardTechnology,
    Channel,
    DeviceStatus,
    Kind,
    ReaderLinkState,
    ReaderState,
    TagDecodeStatus,
    topic,
)

from rfid.drivers.base import ReaderStatusError, ReaderTimeout
from rfid.readersim import VirtualTag
from rfid.tagdata import UsageType, encode_iso28560_3
from tests.rfid.reader_service_kit import ROOT, SITE, danish_tag, iso2_tag, make_rig

UID_A = "E004010000000A01"
UID_B = "E004010000000A02"
UID_C = "E004010000000A03"


def test_a_tag_seen_on_many_polls_is_one_arrival_and_one_departure() -> None:
    with make_rig() as rig:
        rig.sim.place_tag(danish_tag(UID_A, "3000000001"))
        rig.polls(20)
        arrivals = rig.link.events("tag_arrived")
        assert [event.item_id for event in arrivals] == ["3000000001"]
        assert arrivals[0].decode is TagDecodeStatus.DECODED and arrivals[0].owner_isil == "DK-710100"
        assert arrivals[0].afi == 0x07 and arrivals[0].reader_id == "pad-1"
        rig.sim.remove_tag(UID_A)
        rig.polls(3, step_s=0.1)
        departures = rig.link.events("tag_departed")
        assert [event.uid for event in departures] == [UID_A]
        assert departures[0].event_id != arrivals[0].event_id


def test_a_tag_missing_from_one_poll_does_not_depart() -> None:
    with make_rig() as rig:
        rig.sim.place_tag(danish_tag(UID_A, "3000000001"))
        rig.polls(2)
        rig.sim.remove_tag(UID_A)
        rig.polls(1)  # 50 ms away: shorter than departed_after_ms
        rig.sim.place_tag(rig.sim.tag(UID_A))
        rig.polls(5)
        assert len(rig.link.events("tag_arrived")) == 1
        assert rig.link.events("tag_departed") == []


def test_iso28560_2_tag_is_read_beyond_the_fixed_layout() -> None:
    with make_rig() as rig:
        rig.sim.place_tag(iso2_tag(UID_B, "VN-0001234567"))
        rig.polls(1)
        [event] = rig.link.events("tag_arrived")
        assert event.item_id == "VN-0001234567" and event.owner_isil == "VN-HN0001"


def test_undecodable_tag_is_published_as_corrupt() -> None:
    memory = bytearray(encode_iso28560_3("3000000002", country="DK", owner_isil="710100"))
    memory[5] ^= 0x01  # the CRC no longer holds
    with make_rig() as rig:
        rig.sim.place_tag(VirtualTag.holding(bytes.fromhex(UID_A), bytes(memory), afi=0x07))
        rig.polls(1)
        [event] = rig.link.events("tag_arrived")
        assert event.decode is TagDecodeStatus.CORRUPT and event.item_id is None
        assert event.problem and event.afi == 0x07


def test_blank_tag_is_published_as_blank() -> None:
    with make_rig() as rig:
        rig.sim.place_tag(VirtualTag.from_hex(UID_A, afi=0x00))
        rig.polls(1)
        [event] = rig.link.events("tag_arrived")
        assert event.decode is TagDecodeStatus.BLANK and event.item_id is None


class _UnreadableMemory:
    """The real driver, except that one tag's memory reads fail (e.g. read-protected blocks)."""

    def __init__(self, driver: Any) -> None:
        self._driver = driver

    def __getattr__(self, name: str) -> Any:
        return getattr(self._driver, name)

    def read_blocks(self, uid: bytes, first: int, count: int) -> bytes:
        if uid.hex().upper() == UID_C:
            raise ReaderStatusError("read blocks: ISO error block locked", status=0x95, iso_error=0x12)
        return self._driver.read_blocks(uid, first, count)


def test_a_tag_that_cannot_be_read_is_published_after_a_few_polls() -> None:
    with make_rig(driver_wrapper=_UnreadableMemory) as rig:
        rig.sim.place_tag(danish_tag(UID_C, "3000000003"))
        rig.polls(2)
        assert rig.link.events("tag_arrived") == []
        rig.polls(3)
        [event] = rig.link.events("tag_arrived")
        assert event.decode is TagDecodeStatus.UNREAD and "could not be read" in (event.problem or "")


def test_patron_card_on_a_pad_is_a_card_presented_not_an_item() -> None:
    with make_rig() as rig:
        rig.sim.place_tag(danish_tag(UID_A, "P0012345", usage=UsageType.PATRON_CARD, afi=0xC2))
        rig.polls(10)
        [card] = rig.link.events("card_presented")
        assert card.card_id == "P0012345" and card.technology is CardTechnology.ISO15693
        rig.sim.remove_tag(UID_A)
        rig.polls(6)
        assert rig.link.events("tag_arrived") == [] and rig.link.events("tag_departed") == []


def test_patron_card_on_a_gate_is_not_published() -> None:
    with make_rig(role="gate", id="gate-reader") as rig:
        rig.sim.place_tag(danish_tag(UID_A, "P0012345", usage=UsageType.PATRON_CARD, afi=0xC2))
        rig.polls(3)
        assert rig.link.events("card_presented") == [] and rig.link.events("tag_arrived") == []


def test_multi_part_set_reports_parts_then_final_incomplete_then_complete() -> None:
    uids = [f"E00401000000B00{part}" for part in (1, 2, 3)]
    with make_rig() as rig:
        for part in (1, 2):
            rig.sim.place_tag(danish_tag(uids[part - 1], "3000000009", parts=3, part=part))
        rig.polls(1)
        statuses = rig.link.events("set_status")
        assert [(s.parts_present, s.complete, s.final) for s in statuses] == [([1], False, False),
                                                                              ([1, 2], False, False)]
        rig.polls(25)  # 1.25 s: longer than set_wait_ms
        last = rig.link.events("set_status")[-1]
        assert (last.parts_present, last.complete, last.final, last.parts_in_set) == ([1, 2], False, True, 3)
        assert len(rig.link.events("set_status")) == 3  # the end of the wait is reported once
        rig.sim.place_tag(danish_tag(uids[2], "3000000009", parts=3, part=3))
        rig.polls(1)
        last = rig.link.events("set_status")[-1]
        assert (last.parts_present, last.complete, last.final) == ([1, 2, 3], True, True)


def test_complete_set_is_final_at_once_and_its_departure_is_reported() -> None:
    uids = ["E00401000000C001", "E00401000000C002"]
    with make_rig() as rig:
        for part, uid in enumerate(uids, start=1):
            rig.sim.place_tag(danish_tag(uid, "3000000010", parts=2, part=part))
        rig.polls(1)
        assert rig.link.events("set_status")[-1].complete and rig.link.events("set_status")[-1].final
        for uid in uids:
            rig.sim.remove_tag(uid)
        rig.polls(6)
        last = rig.link.events("set_status")[-1]
        assert last.parts_present == [] and not last.complete and last.final


def test_gate_reader_inventories_only_secured_tags_while_the_backend_is_offline() -> None:
    backend_status = topic(SITE, Kind.BACKEND, "backend", Channel.STATUS, root=ROOT)
    with make_rig(role="gate", id="gate-reader") as rig:
        rig.link.deliver(backend_status, DeviceStatus(online=False))
        rig.sim.place_tag(danish_tag(UID_A, "3000000011", afi=0x07))
        rig.sim.place_tag(danish_tag(UID_B, "3000000012", afi=0xC2))
        rig.polls(3)
        assert rig.service.afi_filtered
        assert [(event.item_id, event.afi) for event in rig.link.events("tag_arrived")] == [("3000000011", 0x07)]
        rig.link.deliver(backend_status, DeviceStatus(online=True))
        rig.polls(2)
        assert not rig.service.afi_filtered
        assert {event.item_id for event in rig.link.events("tag_arrived")} == {"3000000011", "3000000012"}


def test_pad_reader_ignores_the_backend_status() -> None:
    with make_rig() as rig:
        assert not any("backend" in name for name in rig.link.handlers)
        rig.sim.place_tag(danish_tag(UID_B, "3000000012", afi=0xC2))
        rig.polls(1)
        assert len(rig.link.events("tag_arrived")) == 1


class _DeadReader:
    def __init__(self, driver: Any) -> None:
        self._driver = driver
        self.dead = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self._driver, name)

    def inventory(self, afi: int | None = None) -> list[Any]:
        if self.dead:
            raise ReaderTimeout("no answer")
        return self._driver.inventory(afi)


def test_unreachable_reader_is_reported_in_state_and_recovers() -> None:
    with make_rig(driver_wrapper=_DeadReader) as rig:
        state_topic = topic(SITE, Kind.READER, "pad-1", Channel.STATE, root=ROOT)
        rig.polls(3)
        states: list[ReaderState] = rig.link.on(state_topic)
        assert [state.link for state in states] == [ReaderLinkState.DOWN]
        rig.driver.dead = False
        rig.sim.place_tag(danish_tag(UID_A, "3000000001"))
        rig.polls(2)
        states = rig.link.on(state_topic)
        assert states[-1].link is ReaderLinkState.UP and states[-1].tags_in_field == 1
        assert all(retain for name, _, retain in rig.link.published if name == state_topic)


def test_an_item_id_too_long_for_the_contract_is_published_as_corrupt() -> None:
    from rfid.tagdata import DSFID_ISO28560_2, encode_iso28560_2

    memory = encode_iso28560_2("A" * 80)
    with make_rig() as rig:
        rig.sim.place_tag(VirtualTag.holding(bytes.fromhex(UID_A), memory, afi=0x07, dsfid=DSFID_ISO28560_2))
        rig.polls(2)
        [event] = rig.link.events("tag_arrived")
        assert event.decode is TagDecodeStatus.CORRUPT and event.item_id is None and "80 characters" in event.problem
