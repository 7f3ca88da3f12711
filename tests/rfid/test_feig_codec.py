"""FEIG ISO Host codec: CRC, frames and commands byte-for-byte against the reference."""

from __future__ import annotations

import pytest

from rfid.feig import (
    FeigCodecError,
    InventoryRecord,
    Status,
    SystemInfoRecord,
    build_get_system_info,
    build_inventory,
    build_lock_afi,
    build_nxp_eas_alarm,
    build_nxp_reset_eas,
    build_nxp_set_eas,
    build_read_blocks,
    build_write_afi,
    build_write_blocks,
    crc16,
    decode_frame,
    decode_inventory,
    decode_read_blocks,
    decode_system_info,
    decode_write_error,
    describe_status,
    encode_answer,
    encode_frame,
    encode_inventory,
    encode_read_blocks,
    encode_system_info,
    parse_request,
)
from rfid.feig.status import STATUS_TABLE

UID = bytes.fromhex("E004010012345678")


def test_crc_check_value() -> None:
    assert crc16(b"123456789") == 0x6F91


def test_crc_over_whole_frame_is_zero() -> None:
    assert crc16(bytes.fromhex("07FFB001001C56")) == 0


@pytest.mark.parametrize(
    ("built", "expected"),
    [
        (build_inventory(), "07 FF B0 01 00 1C 56"),
        (build_inventory(more=True), "07 FF B0 01 80 14 D2"),
        (build_inventory(advanced=True), "02 00 09 FF B0 01 00 18 43"),
        (build_read_blocks(UID, 0, 8), "11 FF B0 23 01 E0 04 01 00 12 34 56 78 00 08 07 D6"),
        (build_write_afi(UID, 0x07), "10 FF B0 27 01 E0 04 01 00 12 34 56 78 07 D8 DE"),
        (build_write_afi(UID, 0xC2), "10 FF B0 27 01 E0 04 01 00 12 34 56 78 C2 79 4F"),
        (build_lock_afi(UID), "0F FF B0 28 01 E0 04 01 00 12 34 56 78 78 D7"),
        (build_nxp_set_eas(UID), "10 FF B1 04 A2 01 E0 04 01 00 12 34 56 78 FC BB"),
        (build_nxp_reset_eas(UID), "10 FF B1 04 A3 01 E0 04 01 00 12 34 56 78 DB 97"),
        (build_nxp_eas_alarm(), "08 FF B1 04 A5 00 73 13"),
    ],
)
def test_requests_match_reference_frames(built: bytes, expected: str) -> None:
    assert built == bytes.fromhex(expected)


def test_answer_one_tag_matches_reference() -> None:
    data = encode_inventory([InventoryRecord(tr_type=0x03, dsfid=0x00, uid=UID)])
    expected = bytes.fromhex("11 00 B0 00 01 03 00 E0 04 01 00 12 34 56 78 D8 35")
    assert encode_answer(0x00, 0xB0, Status.OK, data) == expected


def test_answer_no_transponder_matches_reference() -> None:
    assert encode_answer(0x00, 0xB0, Status.NO_TRANSPONDER) == bytes.fromhex("06 00 B0 01 5C 63")


def test_decode_reference_answer() -> None:
    frame = decode_frame(bytes.fromhex("11 00 B0 00 01 03 00 E0 04 01 00 12 34 56 78 D8 35"))
    assert (frame.com_adr, frame.control, frame.status, frame.advanced) == (0x00, 0xB0, 0x00, False)
    assert decode_inventory(frame.answer_data) == [InventoryRecord(tr_type=3, dsfid=0, uid=UID)]


def test_decode_advanced_frame() -> None:
    frame = decode_frame(bytes.fromhex("02 00 09 FF B0 01 00 18 43"))
    assert frame.advanced and frame.com_adr == 0xFF and frame.control == 0xB0
    assert frame.payload == b"\x01\x00"


def test_standard_encoding_switches_to_advanced_above_255_bytes() -> None:
    raw = encode_frame(0x00, 0xB0, bytes(300))
    assert raw[0] == 0x02 and int.from_bytes(raw[1:3], "big") == len(raw) == 307
    assert decode_frame(raw).payload == bytes(300)


def test_decode_rejects_crc_error() -> None:
    with pytest.raises(FeigCodecError, match="CRC"):
        decode_frame(bytes.fromhex("07 FF B0 01 00 1C 57"))


def test_decode_rejects_wrong_length() -> None:
    with pytest.raises(FeigCodecError, match="announces"):
        decode_frame(bytes.fromhex("08 FF B0 01 00 1C 56"))


def test_read_blocks_answer_roundtrip() -> None:
    blocks = [b"\x11\x01\x01\x31", b"\x30\x30\x33\x30"]
    decoded = decode_read_blocks(encode_read_blocks(4, blocks, [0, 1]))
    assert decoded.blocks == tuple(blocks) and decoded.security == (0, 1)
    assert decoded.data == b"".join(blocks)


def test_read_blocks_answer_with_wrong_length_is_rejected() -> None:
    with pytest.raises(FeigCodecError):
        decode_read_blocks(bytes((2, 4)) + bytes(9))


def test_system_info_roundtrip_uses_iso_minus_one_sizes() -> None:
    info = SystemInfoRecord(dsfid=0x06, uid=UID, afi=0x07, block_size=4, block_count=28, ic_ref=0x01)
    data = encode_system_info(info)
    assert data[10:12] == bytes((3, 27))
    assert decode_system_info(data) == info


def test_write_blocks_request_layout() -> None:
    frame = decode_frame(build_write_blocks(UID, 2, 4, bytes(range(8))))
    request = parse_request(frame.control, frame.payload)
    assert (request.command, request.mode, request.uid) == (0x24, 0x01, UID)
    assert request.params == bytes((2, 2, 4)) + bytes(range(8))


def test_write_blocks_rejects_partial_block() -> None:
    with pytest.raises(FeigCodecError, match="multiple"):
        build_write_blocks(UID, 0, 4, b"\x01\x02\x03")


def test_uid_must_be_eight_bytes() -> None:
    with pytest.raises(FeigCodecError, match="UID"):
        build_get_system_info(UID[:7])


def test_inventory_afi_option_sets_mode_bit() -> None:
    frame = decode_frame(build_inventory(afi=0x07))
    assert frame.payload == bytes((0x01, 0x10, 0x07))


def test_write_error_details() -> None:
    assert decode_write_error(0x03, b"\x05").block == 5
    detail = decode_write_error(0x95, b"\x13\x04")
    assert (detail.iso_error, detail.block) == (0x13, 4)


def test_status_table_has_names_and_meanings() -> None:
    assert {0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x10, 0x11, 0x94, 0x95} <= set(STATUS_TABLE)
    assert all(info.name and info.meaning for info in STATUS_TABLE.values())
    assert {status.value for status in Status} == set(STATUS_TABLE)
    assert describe_status(0x01).startswith("0x01 No transponder")
    assert "unknown" in describe_status(0x42)
