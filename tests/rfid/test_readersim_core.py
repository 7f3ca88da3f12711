"""Simulated FEIG reader core: pure request bytes in, answer bytes out."""

from __future__ import annotations

import pytest

from rfid.feig import (
    FrameReader,
    Status,
    build_get_system_info,
    build_inventory,
    build_lock_afi,
    build_nxp_eas_alarm,
    build_read_blocks,
    build_reset_to_ready,
    build_write_afi,
    build_write_blocks,
    decode_frame,
    decode_inventory,
    decode_read_blocks,
    decode_system_info,
    encode_frame,
)
from rfid.readersim import SimulatedReader, VirtualTag, nxp_uid

UID = bytes.fromhex("E004010012345678")


def answer(reader: SimulatedReader, request: bytes):
    return decode_frame(reader.respond(request))


def test_reference_inventory_answer_byte_for_byte() -> None:
    reader = SimulatedReader([VirtualTag(UID)])
    expected = bytes.fromhex("11 00 B0 00 01 03 00 E0 04 01 00 12 34 56 78 D8 35")
    assert reader.respond(bytes.fromhex("07 FF B0 01 00 1C 56")) == expected


def test_empty_field_answers_no_transponder() -> None:
    assert SimulatedReader().respond(build_inventory()) == bytes.fromhex("06 00 B0 01 5C 63")


def test_only_new_tags_until_reset_to_ready() -> None:
    reader = SimulatedReader([VirtualTag(UID)])
    assert answer(reader, build_inventory()).status == Status.OK
    assert answer(reader, build_inventory()).status == Status.NO_TRANSPONDER
    assert answer(reader, build_reset_to_ready()).status == Status.OK
    assert answer(reader, build_inventory()).status == Status.OK


def test_ont_off_reports_every_tag_each_time() -> None:
    reader = SimulatedReader([VirtualTag(UID)], only_new_tags=False)
    assert answer(reader, build_inventory()).status == Status.OK
    assert answer(reader, build_inventory()).status == Status.OK


def test_more_data_pages() -> None:
    reader = SimulatedReader([VirtualTag(nxp_uid(i)) for i in range(5)], max_tags_per_answer=2)
    first = answer(reader, build_inventory())
    assert first.status == Status.MORE_DATA and len(decode_inventory(first.answer_data)) == 2
    second = answer(reader, build_inventory(more=True))
    third = answer(reader, build_inventory(more=True))
    assert (second.status, third.status) == (Status.MORE_DATA, Status.OK)
    uids = {r.uid for f in (first, second, third) for r in decode_inventory(f.answer_data)}
    assert uids == {nxp_uid(i) for i in range(5)}


def test_inventory_afi_option_filters() -> None:
    reader = SimulatedReader([VirtualTag(nxp_uid(1), afi=0x07), VirtualTag(nxp_uid(2), afi=0xC2)])
    records = decode_inventory(answer(reader, build_inventory(afi=0x07)).answer_data)
    assert [r.uid for r in records] == [nxp_uid(1)]


def test_read_answer_carries_tag_memory() -> None:
    reader = SimulatedReader([VirtualTag(UID, memory=bytes(range(16)))])
    blocks = decode_read_blocks(answer(reader, build_read_blocks(UID, 1, 2)).answer_data)
    assert blocks.blocks == (bytes(range(4, 8)), bytes(range(8, 12)))


def test_reversed_block_order_on_the_wire() -> None:
    reader = SimulatedReader([VirtualTag(UID, memory=b"\x11\x01\x01\x31")], reverse_block_bytes=True)
    blocks = decode_read_blocks(answer(reader, build_read_blocks(UID, 0, 1)).answer_data)
    assert blocks.blocks == (b"\x31\x01\x01\x11",)


def test_read_outside_memory_is_address_error() -> None:
    reader = SimulatedReader([VirtualTag(UID, block_count=8)])
    assert answer(reader, build_read_blocks(UID, 6, 4)).status == Status.ADDRESS_ERROR


def test_non_addressed_read_with_two_tags_collides() -> None:
    reader = SimulatedReader([VirtualTag(nxp_uid(1)), VirtualTag(nxp_uid(2))])
    assert answer(reader, build_read_blocks(None, 0, 1)).status == Status.RF_COMMUNICATION_ERROR


def test_addressed_command_for_absent_tag() -> None:
    reader = SimulatedReader([VirtualTag(nxp_uid(1))])
    assert answer(reader, build_get_system_info(UID)).status == Status.NO_TRANSPONDER


def test_lift_during_write_reports_failing_block_and_removes_tag() -> None:
    reader = SimulatedReader([VirtualTag(UID)])
    reader.fail_next_writes(1, kind="lift")
    frame = answer(reader, build_write_blocks(UID, 2, 4, b"\xaa" * 16))
    assert frame.status == Status.WRITE_ERROR and frame.answer_data == bytes((4,))
    assert UID not in reader.field_uids()
    assert reader.memory_of(UID)[8:24] == b"\xaa" * 8 + bytes(8)


def test_locked_afi_is_refused_with_iso_error() -> None:
    reader = SimulatedReader([VirtualTag(UID, afi=0x07)])
    assert answer(reader, build_lock_afi(UID)).status == Status.OK
    frame = answer(reader, build_write_afi(UID, 0xC2))
    assert frame.status == Status.ISO_ERROR and frame.answer_data == b"\x12"
    assert reader.afi_of(UID) == 0x07


def test_eas_alarm_ignores_quiet_tags() -> None:
    reader = SimulatedReader([VirtualTag(UID, eas=True)])
    assert answer(reader, build_nxp_eas_alarm()).status == Status.OK
    answer(reader, build_inventory())  # the tag is now quiet
    assert answer(reader, build_nxp_eas_alarm()).status == Status.NO_TRANSPONDER


def test_system_info_reflects_tag() -> None:
    reader = SimulatedReader([VirtualTag(UID, afi=0xC2, dsfid=0x06)])
    info = decode_system_info(answer(reader, build_get_system_info(UID)).answer_data)
    assert (info.afi, info.dsfid, info.block_count, info.block_size) == (0xC2, 0x06, 28, 4)


def test_other_com_address_is_ignored() -> None:
    reader = SimulatedReader([VirtualTag(UID)], com_adr=3)
    assert reader.respond(build_inventory(com_adr=4)) == b""
    assert decode_frame(reader.respond(build_inventory(com_adr=3))).com_adr == 3


def test_corrupt_request_gets_no_answer() -> None:
    reader = SimulatedReader([VirtualTag(UID)])
    assert reader.respond(bytes.fromhex("07 FF B0 01 00 1C 57")) == b""


def test_unknown_command() -> None:
    reader = SimulatedReader()
    frame = decode_frame(reader.respond(encode_frame(0xFF, 0x65, b"")))
    assert (frame.control, frame.status) == (0x65, Status.UNKNOWN_COMMAND)


def test_wire_faults_noise_drop_corrupt() -> None:
    reader = SimulatedReader([VirtualTag(UID)], only_new_tags=False)
    reader.drop_next_answers(1)
    assert reader.respond(build_inventory()) == b""
    reader.inject_noise(b"\xf0\x00")
    noisy = reader.respond(build_inventory())
    assert noisy[:2] == b"\xf0\x00" and len(FrameReader().feed(noisy)) == 1
    reader.corrupt_next_answers(1)
    stream = FrameReader()
    assert stream.feed(reader.respond(build_inventory())) == [] and stream.stats.crc_errors == 1
    assert reader.stats_dict()["dropped_answers"] == 1


def test_session_handles_split_requests() -> None:
    reader = SimulatedReader([VirtualTag(UID)])
    session = reader.session()
    request = build_inventory()
    assert session.feed(b"\x00" + request[:3]) == b""
    assert decode_frame(session.feed(request[3:])).status == Status.OK


def test_removed_tag_keeps_state_and_can_return() -> None:
    reader = SimulatedReader([VirtualTag(UID, afi=0x07)])
    tag = reader.remove_tag(UID.hex())
    assert reader.afi_of(UID) == 0x07 and reader.field_uids() == []
    reader.place_tag(tag)
    assert reader.field_uids() == [UID]


def test_fail_next_writes_rejects_unknown_kind() -> None:
    with pytest.raises(ValueError):
        SimulatedReader().fail_next_writes(1, kind="explode")  # type: ignore[arg-type]
