"""ISO 28560-3 (Danish data model): decode, encode, block order, CRC failures."""

import pytest

from rfid.tagdata import (
    BlockOrder,
    CrcError,
    DecodeStatus,
    EncodeError,
    TagModel,
    UnsupportedTagError,
    UsageType,
    decode,
    encode_iso28560_3,
)
from rfid.tagdata.blocks import reverse_blocks
from rfid.tagdata.iso28560_3 import layout_crc

# Constructed example from the reference: 0x11, part 1 of 1, PII 1234567890, VN, library 12345.
EXAMPLE = bytes.fromhex("11010131 32333435 36373839 30000000 000000EC 15564E31 32333435 00000000")
DEICHMAN_TAG = bytes.fromhex("11010131 30303330 31313836 30393736 3030322F B04E4F30 32303330 30303000")


def build_tag_by_hand() -> bytes:
    """An ISO 28560-3 tag written byte by byte from the layout table."""
    tag = bytearray(32)
    tag[0] = 0x12  # version 1 (high nibble), type of usage 2 = not for circulation
    tag[1] = 2  # parts in set
    tag[2] = 2  # part number
    tag[3:11] = b"87654321"  # PII, NUL-padded to 16 bytes
    tag[21:23] = b"DK"  # country
    tag[23:29] = b"710100"  # library code, NUL-padded to 9 bytes
    crc_input = bytes(tag[0:19]) + bytes(tag[21:32]) + b"\x00\x00"
    crc = 0xFFFF
    for byte in crc_input:  # bitwise CRC-16/CCITT-FALSE, independent of the implementation under test
        crc ^= byte << 8
        for _ in range(8):
            crc = (crc << 1 ^ 0x1021 if crc & 0x8000 else crc << 1) & 0xFFFF
    tag[19], tag[20] = crc & 0xFF, crc >> 8
    return bytes(tag)


def test_hand_built_tag_decodes_field_by_field() -> None:
    tag = decode(build_tag_by_hand())
    assert tag.ok
    assert tag.model is TagModel.ISO28560_3
    assert tag.crc_valid is True
    assert tag.block_order is BlockOrder.NORMAL
    assert tag.version == 1
    assert tag.usage_type is UsageType.NOT_FOR_CIRCULATION
    assert tag.usage_code == 2
    assert tag.primary_item_id == "87654321"
    assert (tag.part_number, tag.parts_in_set) == (2, 2)
    assert tag.country == "DK"
    assert tag.owner_isil == "DK-710100"
    assert tag.problem is None


def test_encoder_reproduces_hand_built_tag() -> None:
    encoded = encode_iso28560_3(
        "87654321", usage=UsageType.NOT_FOR_CIRCULATION, parts_in_set=2, part_number=2, owner_isil="DK-710100"
    )
    assert encoded == build_tag_by_hand()


def test_reference_example_bytes_are_reproduced_by_the_encoder() -> None:
    assert encode_iso28560_3("1234567890", country="VN", owner_isil="12345") == EXAMPLE
    assert encode_iso28560_3("1234567890", owner_isil="VN-12345") == EXAMPLE


def test_real_deichman_tag() -> None:
    tag = decode(DEICHMAN_TAG)
    assert tag.ok
    assert tag.primary_item_id == "1003011860976002"
    assert tag.country == "NO"
    assert tag.owner_isil == "NO-02030000"
    assert tag.usage_type is UsageType.CIRCULATING


def test_reversed_blocks_are_accepted_and_reported() -> None:
    reversed_example = reverse_blocks(EXAMPLE)
    assert reversed_example[:4] == bytes.fromhex("31010111")
    tag = decode(reversed_example)
    assert tag.ok
    assert tag.block_order is BlockOrder.REVERSED
    assert tag.primary_item_id == "1234567890"
    assert tag.owner_isil == "VN-12345"


def test_encoder_can_write_reversed_blocks() -> None:
    encoded = encode_iso28560_3("1234567890", country="VN", owner_isil="12345", block_order=BlockOrder.REVERSED)
    assert encoded == reverse_blocks(EXAMPLE)


def test_memory_longer_than_the_layout_is_decoded_from_its_first_32_bytes() -> None:
    tag = decode(EXAMPLE + bytes.fromhex("DEADBEEF") * 4)
    assert tag.ok
    assert tag.primary_item_id == "1234567890"


def test_bad_crc_is_reported_not_accepted() -> None:
    corrupted = bytearray(EXAMPLE)
    corrupted[5] ^= 0x01  # one bit of the PII
    tag = decode(bytes(corrupted))
    assert not tag.ok
    assert tag.model is TagModel.ISO28560_3
    assert tag.status is DecodeStatus.CRC_ERROR
    assert tag.crc_valid is False
    assert "CRC mismatch" in (tag.problem or "")
    assert "0x15EC" in (tag.problem or "")


def test_bad_crc_raises_in_strict_mode() -> None:
    corrupted = bytearray(EXAMPLE)
    corrupted[19] ^= 0xFF  # the stored CRC itself
    with pytest.raises(CrcError, match="CRC mismatch"):
        decode(bytes(corrupted), strict=True)


def test_bad_crc_in_reversed_block_order_is_still_recognised_as_corrupt() -> None:
    corrupted = bytearray(reverse_blocks(EXAMPLE))
    corrupted[9] ^= 0x01
    tag = decode(bytes(corrupted))
    assert tag.status is DecodeStatus.CRC_ERROR
    assert tag.block_order is BlockOrder.REVERSED


def test_foreign_data_with_failing_crc_is_unknown_not_corrupt() -> None:
    foreign = bytes(range(0x80, 0xA0))
    tag = decode(foreign)
    assert tag.model is TagModel.UNKNOWN
    assert tag.status is DecodeStatus.UNKNOWN
    assert tag.crc_valid is None


def test_set_information() -> None:
    tag = decode(encode_iso28560_3("A-1", parts_in_set=3, part_number=2, owner_isil="DK-710100"))
    assert (tag.part_number, tag.parts_in_set) == (2, 3)


def _with_valid_crc(layout: bytearray) -> bytes:
    crc = layout_crc(bytes(layout))
    layout[19], layout[20] = crc & 0xFF, crc >> 8
    return bytes(layout)


def test_impossible_set_information_with_valid_crc_is_corrupt() -> None:
    layout = bytearray(EXAMPLE)
    layout[1], layout[2] = 2, 3  # part 3 of 2
    tag = decode(_with_valid_crc(layout))
    assert tag.status is DecodeStatus.CORRUPT
    assert "part 3 of 2" in (tag.problem or "")


def test_bibliotheca_nibble_order_is_accepted_with_a_note() -> None:
    layout = bytearray(EXAMPLE)
    layout[0] = 0x21  # usage 2 in the high nibble, version 1 in the low nibble
    tag = decode(_with_valid_crc(layout))
    assert tag.ok
    assert tag.usage_type is UsageType.NOT_FOR_CIRCULATION
    assert tag.version == 1
    assert any("Bibliotheca" in note for note in tag.notes)


def test_unsupported_version_is_reported_and_raises_when_strict() -> None:
    layout = bytearray(EXAMPLE)
    layout[0] = 0x32  # version 3, usage 2
    memory = _with_valid_crc(layout)
    tag = decode(memory)
    assert tag.status is DecodeStatus.UNSUPPORTED
    assert "version 3" in (tag.problem or "")
    with pytest.raises(UnsupportedTagError):
        decode(memory, strict=True)


@pytest.mark.parametrize(
    ("usage", "byte0"),
    [
        (UsageType.ACQUISITION, 0x10),
        (UsageType.CIRCULATING, 0x11),
        (UsageType.NOT_FOR_CIRCULATION, 0x12),
        (UsageType.DISCARDED, 0x17),
        (UsageType.PATRON_CARD, 0x18),
        (9, 0x19),
    ],
)
def test_usage_types(usage: UsageType | int, byte0: int) -> None:
    memory = encode_iso28560_3("X1", usage=usage)
    assert memory[0] == byte0
    tag = decode(memory)
    expected = usage if isinstance(usage, UsageType) else UsageType.OTHER
    assert tag.usage_type is expected
    assert tag.usage_code == byte0 & 0x0F


def test_tag_without_country_or_library() -> None:
    tag = decode(encode_iso28560_3("1234"))
    assert tag.ok
    assert tag.country is None
    assert tag.owner_isil is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"primary_item_id": ""}, "must not be empty"),
        ({"primary_item_id": "12345678901234567"}, "longer than 16"),
        ({"primary_item_id": "bøg"}, "printable ASCII"),
        ({"primary_item_id": "1", "parts_in_set": 0}, "parts in set"),
        ({"primary_item_id": "1", "parts_in_set": 2, "part_number": 3}, "part number"),
        ({"primary_item_id": "1", "country": "vn"}, "two upper-case letters"),
        ({"primary_item_id": "1", "country": "DK", "owner_isil": "VN-12345"}, "country prefix"),
        ({"primary_item_id": "1", "owner_isil": "DK-1234567890"}, "longer than 9"),
        ({"primary_item_id": "1", "usage": UsageType.OTHER}, "numeric code"),
        ({"primary_item_id": "1", "usage": 16}, "0-15"),
    ],
)
def test_encode_rejects_values_that_do_not_fit(kwargs: dict, message: str) -> None:
    with pytest.raises(EncodeError, match=message):
        encode_iso28560_3(**kwargs)
