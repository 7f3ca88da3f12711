"""FeigReader against the simulator over a pty and over TCP (socket://)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from rfid.drivers import (
    AfiLockedError,
    InvalidRequestError,
    ReaderDriver,
    ReaderLinkDown,
    ReaderStatusError,
    ReaderTimeout,
    TagNotFound,
    TagWriteError,
)
from rfid.drivers.feig_serial import FeigReader
from rfid.drivers.profile import ReaderProfile
from rfid.readersim import PtyTransport, SimulatedReader, TcpTransport, VirtualTag, nxp_uid
from rfid.readersim.transport import ThreadedTransport

PROFILE = ReaderProfile(model="test reader", parity="none", response_timeout_s=0.15, retries=2)
TAG_A = nxp_uid(0xA)
TAG_B = nxp_uid(0xB)


@dataclass
class Rig:
    sim: SimulatedReader
    transport: ThreadedTransport
    driver: FeigReader


@contextmanager
def make_rig(kind: str, profile: ReaderProfile = PROFILE, **sim_options: Any) -> Iterator[Rig]:
    sim = SimulatedReader(**sim_options)
    transport: ThreadedTransport = PtyTransport(sim) if kind == "pty" else TcpTransport(sim)
    transport.start()
    driver = FeigReader(profile, transport.url)  # type: ignore[attr-defined]
    try:
        yield Rig(sim, transport, driver)
    finally:
        driver.close()
        transport.stop()


@pytest.fixture(params=["pty", "tcp"])
def rig(request: pytest.FixtureRequest) -> Iterator[Rig]:
    with make_rig(request.param) as built:
        yield built


def test_feig_reader_implements_the_protocol(rig: Rig) -> None:
    assert isinstance(rig.driver, ReaderDriver)


def test_inventory_empty_and_with_tags(rig: Rig) -> None:
    assert rig.driver.inventory() == []
    rig.sim.set_tags([VirtualTag(TAG_A, dsfid=0x06), VirtualTag(TAG_B)])
    tags = rig.driver.inventory()
    assert {t.uid for t in tags} == {TAG_A, TAG_B}
    by_uid = {t.uid: t for t in tags}
    assert by_uid[TAG_A].dsfid == 0x06 and by_uid[TAG_A].tr_type == 0x03
    assert by_uid[TAG_A].uid_hex == TAG_A.hex().upper()
    # ONT=1 reader: tags stay visible because the driver sends Reset to Ready.
    assert {t.uid for t in rig.driver.inventory()} == {TAG_A, TAG_B}


def test_inventory_afi_filter_via_system_info(rig: Rig) -> None:
    rig.sim.set_tags([VirtualTag(TAG_A, afi=0x07), VirtualTag(TAG_B, afi=0xC2)])
    assert [t.uid for t in rig.driver.inventory(afi=0x07)] == [TAG_A]
    assert [t.uid for t in rig.driver.inventory(afi=0xC2)] == [TAG_B]
    assert rig.driver.inventory(afi=0x42) == []


@pytest.mark.parametrize("kind", ["pty", "tcp"])
def test_inventory_afi_filter_in_inventory_mode(kind: str) -> None:
    profile = PROFILE.model_copy(update={"afi_filter": "inventory_mode"})
    with make_rig(kind, profile, tags=[VirtualTag(TAG_A, afi=0x07), VirtualTag(TAG_B, afi=0xC2)]) as r:
        assert [t.uid for t in r.driver.inventory(afi=0xC2)] == [TAG_B]
        assert r.sim.stats_dict()["requests"] == 2  # one inventory + Reset to Ready, no system info


def test_inventory_more_data_pages() -> None:
    tags = [VirtualTag(nxp_uid(i)) for i in range(7)]
    with make_rig("pty", tags=tags, max_tags_per_answer=3) as r:
        assert {t.uid for t in r.driver.inventory()} == {nxp_uid(i) for i in range(7)}


def test_write_and_read_blocks(rig: Rig) -> None:
    rig.sim.place_tag(VirtualTag(TAG_A))
    payload = bytes(range(0x10, 0x10 + 32))
    rig.driver.write_blocks(TAG_A, 0, payload)
    assert rig.sim.memory_of(TAG_A)[:32] == payload
    assert rig.driver.read_blocks(TAG_A, 0, 8) == payload
    assert rig.driver.read_blocks(TAG_A, 2, 1) == payload[8:12]


def test_long_read_and_write_are_chunked(rig: Rig) -> None:
    rig.sim.place_tag(VirtualTag(TAG_A))
    payload = bytes(range(112))  # 28 blocks > max_blocks_per_write (8) and per_read (16)
    rig.driver.write_blocks(TAG_A, 0, payload)
    assert rig.driver.read_blocks(TAG_A, 0, 28) == payload


def test_read_blocks_any_with_single_tag(rig: Rig) -> None:
    rig.sim.place_tag(VirtualTag(TAG_A, memory=b"\x11\x01\x01\x31"))
    assert rig.driver.read_blocks_any(0, 1) == b"\x11\x01\x01\x31"
    rig.sim.place_tag(VirtualTag(TAG_B))
    with pytest.raises(ReaderStatusError) as excinfo:
        rig.driver.read_blocks_any(0, 1)
    assert excinfo.value.status == 0x83


def test_read_of_absent_tag_raises_tag_not_found(rig: Rig) -> None:
    with pytest.raises(TagNotFound):
        rig.driver.read_blocks(TAG_A, 0, 1)


def test_bad_arguments_raise_invalid_request(rig: Rig) -> None:
    with pytest.raises(InvalidRequestError):
        rig.driver.read_blocks(b"\x01\x02", 0, 1)
    with pytest.raises(InvalidRequestError):
        rig.driver.write_blocks(TAG_A, 0, b"\x01\x02\x03")


def test_write_afi_then_read_back_via_system_info(rig: Rig) -> None:
    rig.sim.place_tag(VirtualTag(TAG_A, afi=0x07, dsfid=0x06))
    rig.driver.write_afi(TAG_A, 0xC2)
    info = rig.driver.system_info(TAG_A)
    assert (info.afi, info.dsfid, info.uid, info.block_size, info.block_count) == (0xC2, 0x06, TAG_A, 4, 28)
    assert rig.sim.afi_of(TAG_A) == 0xC2


def test_locked_afi_raises_afi_locked(rig: Rig) -> None:
    rig.sim.place_tag(VirtualTag(TAG_A, afi=0x07, afi_locked=True))
    with pytest.raises(AfiLockedError):
        rig.driver.write_afi(TAG_A, 0xC2)
    assert rig.sim.afi_of(TAG_A) == 0x07


def test_eas_set_reset_and_alarm(rig: Rig) -> None:
    rig.sim.set_tags([VirtualTag(TAG_A), VirtualTag(TAG_B)])
    assert rig.driver.eas_alarm() is False
    rig.driver.set_eas(TAG_A, True)
    assert rig.sim.eas_of(TAG_A) is True
    rig.driver.inventory()  # tags went quiet and were reset: the alarm must still see them
    assert rig.driver.eas_alarm() is True
    rig.driver.set_eas(TAG_A, False)
    assert rig.sim.eas_of(TAG_A) is False
    assert rig.driver.eas_alarm() is False


def test_timeout_then_retry_succeeds(rig: Rig) -> None:
    rig.sim.place_tag(VirtualTag(TAG_A, afi=0x07))
    rig.sim.drop_next_answers(1)
    assert rig.driver.system_info(TAG_A).afi == 0x07
    assert rig.driver.stats["timeouts"] == 1 and rig.driver.stats["retries"] == 1


def test_lost_inventory_answer_does_not_hide_quiet_tags(rig: Rig) -> None:
    rig.sim.place_tag(VirtualTag(TAG_A))
    rig.sim.drop_next_answers(1)  # the reader silenced the tag, but its answer was lost
    assert [t.uid for t in rig.driver.inventory()] == [TAG_A]


def test_all_retries_time_out_then_recovery(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    rig.sim.place_tag(VirtualTag(TAG_A))
    rig.sim.drop_next_answers(2 * (PROFILE.retries + 1))
    with caplog.at_level(logging.INFO, logger="rfid.drivers"):
        for _ in range(2):
            with pytest.raises(ReaderTimeout):
                rig.driver.system_info(TAG_A)
        assert rig.driver.system_info(TAG_A).uid == TAG_A
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    recoveries = [r for r in caplog.records if "recovered" in r.getMessage()]
    assert len(warnings) == 1 and len(recoveries) == 1


def test_crc_error_in_answer_is_retried_and_counted(rig: Rig) -> None:
    rig.sim.place_tag(VirtualTag(TAG_A))
    rig.sim.corrupt_next_answers(1)
    assert rig.driver.system_info(TAG_A).uid == TAG_A
    assert rig.driver.stats["crc_errors"] == 1


def test_noise_before_answer_is_resynchronised(rig: Rig) -> None:
    rig.sim.place_tag(VirtualTag(TAG_A))
    noise = b"\x00\xff\x13\x02\x00\x40garbage\xf0"
    rig.sim.inject_noise(noise)
    assert [t.uid for t in rig.driver.inventory()] == [TAG_A]
    assert rig.driver.stats["garbage_bytes"] >= len(noise)
    assert rig.driver.stats["timeouts"] == 0


def test_tag_lifted_mid_write(rig: Rig) -> None:
    rig.sim.place_tag(VirtualTag(TAG_A))
    rig.sim.fail_next_writes(1, kind="lift")
    with pytest.raises(TagWriteError) as excinfo:
        rig.driver.write_blocks(TAG_A, 0, b"\xaa" * 16)
    assert excinfo.value.block == 2
    with pytest.raises(TagNotFound):
        rig.driver.write_blocks(TAG_A, 0, b"\xaa" * 16)
    assert rig.sim.memory_of(TAG_A)[:16] == b"\xaa" * 8 + bytes(8)


def test_tag_write_error(rig: Rig) -> None:
    rig.sim.place_tag(VirtualTag(TAG_A))
    rig.sim.fail_next_writes(2, kind="error")
    with pytest.raises(TagWriteError) as excinfo:
        rig.driver.write_blocks(TAG_A, 4, b"\x01\x02\x03\x04")
    assert (excinfo.value.block, excinfo.value.iso_error) == (4, 0x13)
    with pytest.raises(TagWriteError):
        rig.driver.write_afi(TAG_A, 0xC2)
    assert rig.sim.afi_of(TAG_A) == 0x00


def test_lift_during_eas_write_raises_write_error(rig: Rig) -> None:
    rig.sim.place_tag(VirtualTag(TAG_A))
    rig.sim.fail_next_writes(1, kind="lift")
    with pytest.raises(TagWriteError):
        rig.driver.set_eas(TAG_A, True)
    with pytest.raises(TagNotFound):
        rig.driver.set_eas(TAG_A, True)


def test_tcp_port_closed_and_reopened(caplog: pytest.LogCaptureFixture) -> None:
    with make_rig("tcp", tags=[VirtualTag(TAG_A)]) as r:
        assert [t.uid for t in r.driver.inventory()] == [TAG_A]
        port = r.transport.port  # type: ignore[attr-defined]
        r.transport.stop()
        with caplog.at_level(logging.INFO, logger="rfid.drivers"):
            for _ in range(3):
                with pytest.raises(ReaderLinkDown):
                    r.driver.inventory()
            r.transport.start()
            assert r.transport.port == port  # type: ignore[attr-defined]
            assert [t.uid for t in r.driver.inventory()] == [TAG_A]
        downs = [rec for rec in caplog.records if rec.levelno == logging.WARNING]
        recoveries = [rec for rec in caplog.records if "recovered" in rec.getMessage()]
        assert len(downs) == 1 and len(recoveries) == 1
        assert r.driver.stats["opens"] == 2


def test_pty_vanishing_raises_link_down() -> None:
    with make_rig("pty", tags=[VirtualTag(TAG_A)]) as r:
        assert r.driver.inventory()
        r.transport.stop()
        with pytest.raises(ReaderLinkDown):
            r.driver.inventory()


def test_open_unreachable_port_raises_link_down(tmp_path: Any) -> None:
    driver = FeigReader(PROFILE, str(tmp_path / "no-such-tty"))
    with pytest.raises(ReaderLinkDown):
        driver.open()
    driver.close()


@pytest.mark.parametrize("kind", ["pty", "tcp"])
def test_advanced_frames(kind: str) -> None:
    profile = PROFILE.model_copy(update={"frame_format": "advanced"})
    with make_rig(kind, profile, tags=[VirtualTag(TAG_A, afi=0x07)]) as r:
        assert [t.uid for t in r.driver.inventory()] == [TAG_A]
        r.driver.write_blocks(TAG_A, 0, b"\x01\x02\x03\x04")
        assert r.driver.read_blocks(TAG_A, 0, 1) == b"\x01\x02\x03\x04"


def test_reversed_block_bytes_give_memory_order() -> None:
    profile = PROFILE.model_copy(update={"reverse_block_bytes": True})
    with make_rig("pty", profile, tags=[VirtualTag(TAG_A)], reverse_block_bytes=True) as r:
        r.driver.write_blocks(TAG_A, 0, b"\x11\x01\x01\x31")
        assert r.sim.memory_of(TAG_A)[:4] == b"\x11\x01\x01\x31"
        assert r.driver.read_blocks(TAG_A, 0, 1) == b"\x11\x01\x01\x31"
