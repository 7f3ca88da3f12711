"""CRC-16/CCITT vectors from the reference notes (docs/rfid-tagdata.md, ISO 28560-3)."""

import pytest

from rfid.tagdata import crc16_ccitt, encode_iso28560_3
from rfid.tagdata.iso28560_3 import layout_crc, stored_crc

DEICHMAN_TAG = bytes.fromhex(
    "11010131 30303330 31313836 30393736 3030322F B04E4F30 32303330 30303000"
)
LIBDANRFID_SAMPLE = b"\x11\x01\x01" + b"11223344" + bytes(8) + b"\x51\x3e" + b"DE" + b"705" + bytes(6)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"RFID tag data model", 0x1AEE),
        (b"123456789", 0x29B1),
    ],
)
def test_crc16_ccitt_ascii_vectors(data: bytes, expected: int) -> None:
    assert crc16_ccitt(data) == expected


@pytest.mark.parametrize(
    ("layout", "expected"),
    [(LIBDANRFID_SAMPLE, 0x3E51), (DEICHMAN_TAG, 0xB02F)],
    ids=["libdanrfid-sample", "deichman-real-tag"],
)
def test_layout_crc_matches_stored_low_byte_first(layout: bytes, expected: int) -> None:
    assert len(layout) == 32
    assert layout_crc(layout) == expected
    assert stored_crc(layout) == expected


def test_layout_crc_is_the_ccitt_crc_of_the_32_byte_input_without_the_crc_field() -> None:
    explicit_input = DEICHMAN_TAG[0:19] + DEICHMAN_TAG[21:32] + b"\x00\x00"
    assert len(explicit_input) == 32
    assert crc16_ccitt(explicit_input) == 0xB02F


def test_constructed_examples_have_reference_crcs() -> None:
    single = encode_iso28560_3("1234567890", country="VN", owner_isil="12345")
    part_two_of_three = encode_iso28560_3(
        "1234567890", country="VN", owner_isil="12345", parts_in_set=3, part_number=2
    )
    assert stored_crc(single) == 0x15EC
    assert stored_crc(part_two_of_three) == 0x02BE
    assert part_two_of_three[:4] == bytes.fromhex("11030231")
