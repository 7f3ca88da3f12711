"""ISO 28560-2 element encoding (DSFID 0x06): framing, OIDs, padding, extended OIDs, encode and decode."""

import pytest

from rfid.tagdata import (
    DSFID_ISO28560_2,
    BlockOrder,
    CompactionScheme,
    CorruptTagError,
    DecodeStatus,
    EncodeError,
    TagModel,
    UsageType,
    decode,
    encode_iso28560_2,
)
from rfid.tagdata.blocks import reverse_blocks

# The complete example tag of ISO 28560-2 / GB/T 35660.2 (as used in dp2's unit tests):
# PII 123456789012 (integer, padded to a block), content parameter D0 (OIDs 3, 4, 6),
# set information 1203, shelf location QA268.L55 (6-bit), owner ISIL US-InU-Mu (ISIL code, padded).
STANDARD_EXAMPLE = bytes.fromhex(
    "9100051C BE991A14 0201D014 0204B346 07441CB6 E2E335D6 830207AC C09EBAA0 6F6B0000"
)
# The same with a title (OID 17, extended OID: precursor 7F, relative OID 02, UTF-8 "test").
EXAMPLE_WITH_TITLE = bytes.fromhex(
    "9100051C BE991A14 0202D002 140204B3 C6020744 1CB6E2E3 35D60000 0307ACC0 9EBAA06F 6B7F0204 74657374"
)


def test_standard_example_decodes() -> None:
    tag = decode(STANDARD_EXAMPLE, DSFID_ISO28560_2)
    assert tag.ok, tag.problem
    assert tag.model is TagModel.ISO28560_2
    assert tag.dsfid == 0x06
    assert tag.crc_valid is None
    assert tag.primary_item_id == "123456789012"
    assert tag.content_parameter == (3, 4, 6)
    assert (tag.parts_in_set, tag.part_number) == (12, 3)
    assert tag.shelf_location == "QA268.L55"
    assert tag.owner_isil == "US-InU-Mu"
    assert tag.country == "US"
    assert [element.oid for element in tag.elements] == [1, 2, 4, 6, 3]
    assert tag.elements[0].compaction is CompactionScheme.INTEGER
    assert tag.elements[4].compaction is CompactionScheme.APPLICATION_DEFINED
    assert tag.notes == ()


def test_extended_oid_title_decodes() -> None:
    tag = decode(EXAMPLE_WITH_TITLE, DSFID_ISO28560_2)
    assert tag.ok, tag.problem
    assert tag.title == "test"
    assert tag.content_parameter == (3, 4, 6, 17)
    title = tag.elements[-1]
    assert (title.oid, title.name, title.compaction) == (17, "title", CompactionScheme.UTF8)


def test_encoder_writes_the_same_elements_as_the_standard_example() -> None:
    encoded = encode_iso28560_2(
        "123456789012",
        owner_isil="US-InU-Mu",
        parts_in_set=12,
        part_number=3,
        shelf_location="QA268.L55",
        align_pii=True,
    )
    assert encoded.startswith(bytes.fromhex("9100051CBE991A14 0201D0"))
    assert bytes.fromhex("0307ACC09EBAA06F6B") in encoded  # owner ISIL, unpadded
    assert bytes.fromhex("140204B3") in encoded  # set information 1203 as an integer
    assert bytes.fromhex("4607441CB6E2E335D6") in encoded  # shelf location, 6-bit
    assert len(encoded) % 4 == 0
    assert decode(encoded, 6).model_dump(exclude={"elements"}) == decode(STANDARD_EXAMPLE, 6).model_dump(
        exclude={"elements"}
    )


def test_worked_example_pii_only() -> None:
    assert encode_iso28560_2("12345678") == bytes.fromhex("1103BC61 4E000000")
    assert encode_iso28560_2("12345678", align_pii=True) == bytes.fromhex("910203BC 614E0000 00000000")
    assert encode_iso28560_2("0123456").startswith(bytes.fromhex("210401234 56F".replace(" ", "")))


def test_worked_example_decoder_stops_at_zero_precursor() -> None:
    tag = decode(bytes.fromhex("1103BC614E00") + b"\xde\xad", DSFID_ISO28560_2)
    assert tag.ok
    assert tag.primary_item_id == "12345678"
    assert len(tag.elements) == 1


def test_padding_is_skipped() -> None:
    tag = decode(bytes.fromhex("910203BC614E0000 1402 04B3 00"), DSFID_ISO28560_2)
    assert tag.ok, tag.problem
    assert tag.primary_item_id == "12345678"
    assert (tag.parts_in_set, tag.part_number) == (12, 3)


@pytest.mark.parametrize(
    ("pii", "scheme"),
    [
        ("12345678", CompactionScheme.INTEGER),
        ("0123456", CompactionScheme.NUMERIC),
        ("ABCDEFG", CompactionScheme.FIVE_BIT),
        ("QA268.L55", CompactionScheme.SIX_BIT),
        ("lib-item-0042", CompactionScheme.SEVEN_BIT),
        ("Sách-001", CompactionScheme.UTF8),
    ],
)
def test_each_text_scheme_round_trips_through_a_tag(pii: str, scheme: CompactionScheme) -> None:
    tag = decode(encode_iso28560_2(pii), DSFID_ISO28560_2)
    assert tag.ok, tag.problem
    assert tag.primary_item_id == pii
    assert tag.elements[0].compaction is scheme


def test_octet_string_and_application_defined_schemes_round_trip() -> None:
    encoded = encode_iso28560_2("12345678", extra_elements={15: b"\x00\x01\xfe", 11: "DK-710100"})
    tag = decode(encoded, DSFID_ISO28560_2)
    assert tag.ok, tag.problem
    by_oid = {element.oid: element for element in tag.elements}
    assert by_oid[15].compaction is CompactionScheme.OCTET_STRING
    assert by_oid[15].data_hex == "0001FE"
    assert by_oid[11].compaction is CompactionScheme.APPLICATION_DEFINED
    assert tag.ill_borrowing_isil == "DK-710100"


@pytest.mark.parametrize("oid", [15, 16, 17, 26, 100, 270])
def test_extended_oids_round_trip(oid: int) -> None:
    encoded = encode_iso28560_2("12345678", extra_elements={oid: "local value"})
    relative = oid - 15
    assert bytes([0x5F, relative]) in encoded or bytes([0x7F, relative]) in encoded
    tag = decode(encoded, DSFID_ISO28560_2)
    assert tag.ok, tag.problem
    assert tag.elements[-1].oid == oid
    assert tag.elements[-1].text == "local value"
    assert oid in (tag.content_parameter or ())


def test_oid_beyond_the_relative_range_is_rejected() -> None:
    with pytest.raises(EncodeError, match="OID"):
        encode_iso28560_2("12345678", extra_elements={271: "x"})


def test_full_item_round_trip() -> None:
    encoded = encode_iso28560_2(
        "30000000012345",
        owner_isil="HN0001",
        country="VN",
        usage=UsageType.CIRCULATING,
        parts_in_set=3,
        part_number=2,
        shelf_location="895.922 NG",
        media_format="BA",
        marc_media_format="a",
        title="Truyện Kiều",
        extra_elements={9: "SUP-1", 14: "ALT-42"},
    )
    tag = decode(encoded, DSFID_ISO28560_2)
    assert tag.ok, tag.problem
    assert tag.primary_item_id == "30000000012345"
    assert tag.owner_isil == "VN-HN0001"
    assert tag.country == "VN"
    assert tag.usage_type is UsageType.CIRCULATING
    assert tag.usage_code == 1
    assert (tag.parts_in_set, tag.part_number) == (3, 2)
    assert tag.shelf_location == "895.922 NG"
    assert tag.media_format == "BA"
    assert tag.marc_media_format == "a"
    assert tag.title == "Truyện Kiều"
    assert tag.supplier_id == "SUP-1"
    assert tag.alternative_item_id == "ALT-42"
    assert tag.content_parameter == (3, 4, 5, 6, 7, 8, 9, 14, 17)


@pytest.mark.parametrize(
    ("usage", "text"), [(UsageType.CIRCULATING, "10"), (UsageType.DISCARDED, "70"), (UsageType.PATRON_CARD, "80")]
)
def test_type_of_usage_values_as_dp2_writes_them(usage: UsageType, text: str) -> None:
    tag = decode(encode_iso28560_2("12345678", usage=usage), DSFID_ISO28560_2)
    assert tag.usage_type is usage
    assert next(element.text for element in tag.elements if element.oid == 5) == text


def test_type_of_usage_as_octet_string_is_read_as_hex() -> None:
    memory = bytes.fromhex("1103BC614E 0201 08 6501 70 00")  # content parameter: OID 5; usage octet 0x70
    tag = decode(memory, DSFID_ISO28560_2)
    assert tag.ok, tag.problem
    assert tag.usage_type is UsageType.DISCARDED


def test_memory_size_fills_exactly() -> None:
    encoded = encode_iso28560_2("12345678", memory_size=16)
    assert encoded == bytes.fromhex("1103BC614E") + bytes(11)
    assert encode_iso28560_2("12345678", memory_size=5) == bytes.fromhex("1103BC614E")
    with pytest.raises(EncodeError, match="need"):
        encode_iso28560_2("12345678", memory_size=4)


def test_reversed_block_order_is_detected_when_memory_order_does_not_parse() -> None:
    encoded = encode_iso28560_2("12345678", owner_isil="DK-710100", block_order=BlockOrder.REVERSED)
    tag = decode(encoded, DSFID_ISO28560_2)
    assert tag.ok, tag.problem
    assert tag.block_order is BlockOrder.REVERSED
    assert tag.owner_isil == "DK-710100"


def test_without_dsfid_a_clean_element_structure_is_still_recognised() -> None:
    tag = decode(STANDARD_EXAMPLE)
    assert tag.ok
    assert tag.model is TagModel.ISO28560_2
    assert tag.dsfid is None


@pytest.mark.parametrize(
    ("memory", "message"),
    [
        (bytes.fromhex("1108BC614E"), "past the end"),  # length 8 but only 3 bytes follow
        (bytes.fromhex("1403 0102 00"), "must come first"),  # set information before the PII
        (bytes.fromhex("1103BC614E 1103BC614E 00"), "twice"),
        (bytes.fromhex("910203BC614E00FF"), "padding"),  # padding bytes must be 0x00
        (bytes.fromhex("7102FFFE00"), "UTF-8"),
        (bytes.fromhex("11"), "cut off"),
        (bytes.fromhex("1103BC614E 1401 01 00"), "impossible set information"),  # "1" -> part 1 of 0
    ],
)
def test_corrupt_element_data_is_reported(memory: bytes, message: str) -> None:
    tag = decode(memory, DSFID_ISO28560_2)
    assert tag.model is TagModel.ISO28560_2
    assert tag.status is DecodeStatus.CORRUPT
    assert message in (tag.problem or "")
    with pytest.raises(CorruptTagError):
        decode(memory, DSFID_ISO28560_2, strict=True)


def test_corrupt_tag_still_shows_what_was_read() -> None:
    memory = bytes.fromhex("1103BC614E 4408 441CB6") + bytes(2)
    tag = decode(memory, DSFID_ISO28560_2)
    assert tag.status is DecodeStatus.CORRUPT
    assert tag.primary_item_id == "12345678"


def test_content_parameter_mismatch_is_a_note() -> None:
    memory = bytes.fromhex("1103BC614E 0201 20 00")  # announces OID 5, which is absent
    tag = decode(memory, DSFID_ISO28560_2)
    assert tag.ok
    assert any("announces" in note for note in tag.notes)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"primary_item_id": ""}, "must not be empty"),
        ({"primary_item_id": "1", "parts_in_set": 2}, "together"),
        ({"primary_item_id": "1", "parts_in_set": 2, "part_number": 3}, "part number"),
        ({"primary_item_id": "1", "extra_elements": {4: "0102"}}, "OID must be"),
        ({"primary_item_id": "1", "extra_elements": {9: ""}}, "non-empty"),
        ({"primary_item_id": "1", "title": "a", "extra_elements": {17: "b"}}, "given twice"),
        ({"primary_item_id": "1", "usage": UsageType.OTHER}, "numeric code"),
        ({"primary_item_id": "é" * 128}, "at most 255"),  # 256 bytes of UTF-8
        ({"primary_item_id": "1", "owner_isil": "AB-"}, "no library code"),
    ],
)
def test_encode_rejects_bad_values(kwargs: dict, message: str) -> None:
    with pytest.raises(EncodeError, match=message):
        encode_iso28560_2(**kwargs)


def test_reversed_encoding_is_the_block_reversal_of_the_normal_one() -> None:
    normal = encode_iso28560_2("12345678", owner_isil="DK-710100")
    assert encode_iso28560_2("12345678", owner_isil="DK-710100", block_order=BlockOrder.REVERSED) == (
        reverse_blocks(normal)
    )
