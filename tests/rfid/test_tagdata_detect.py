"""Model detection: blank, unknown, strict mode, input checks, and the unchecked builder."""

import pytest
from pydantic import ValidationError

from rfid.tagdata import (
    CorruptTagError,
    CrcError,
    DecodeStatus,
    InvalidInputError,
    TagData,
    TagDataError,
    TagModel,
    UnknownModelError,
    decode,
    encode_iso28560_2,
    encode_iso28560_3,
)

VALID_3 = encode_iso28560_3("1234567890", country="VN", owner_isil="12345")


@pytest.mark.parametrize(
    ("memory", "reason"),
    [
        (bytes(32), "0x00"),
        (b"\xff" * 32, "0xFF"),
        (bytes(112), "0x00"),
        (b"\xff" * 8, "0xFF"),
    ],
)
def test_blank_tags(memory: bytes, reason: str) -> None:
    tag = decode(memory)
    assert tag.model is TagModel.BLANK
    assert tag.status is DecodeStatus.BLANK
    assert not tag.ok
    assert reason in (tag.problem or "")
    assert tag.primary_item_id is None


def test_blank_tags_are_returned_even_in_strict_mode() -> None:
    assert decode(bytes(32), strict=True).model is TagModel.BLANK
    assert decode(b"\xff" * 32, 0x06, strict=True).model is TagModel.BLANK


def test_iso28560_2_dsfid_with_no_elements_is_blank() -> None:
    tag = decode(bytes.fromhex("00123400 99999999"), 0x06)  # leftovers after the terminator
    assert tag.model is TagModel.BLANK
    assert "no data elements" in (tag.problem or "")


def test_unknown_model() -> None:
    memory = bytes.fromhex("E2801160 20007E3A 12345678 9ABCDEF0 0F1E2D3C 4B5A6978 8796A5B4 C3D2E1F0")
    tag = decode(memory, 0x3E)
    assert tag.model is TagModel.UNKNOWN
    assert tag.status is DecodeStatus.UNKNOWN
    assert "DSFID 0x3E" in (tag.problem or "")
    with pytest.raises(UnknownModelError, match="no supported data model"):
        decode(memory, 0x3E, strict=True)


def test_short_memory_is_unknown() -> None:
    assert decode(VALID_3[:20]).model is TagModel.UNKNOWN
    assert decode(b"").status is DecodeStatus.UNKNOWN


def test_blank_unknown_and_corrupt_are_distinct() -> None:
    corrupt = bytearray(VALID_3)
    corrupt[4] ^= 0x40
    outcomes = {
        decode(bytes(32)).status,
        decode(bytes(range(0x80, 0xA0))).status,
        decode(bytes(corrupt)).status,
    }
    assert outcomes == {DecodeStatus.BLANK, DecodeStatus.UNKNOWN, DecodeStatus.CRC_ERROR}


def test_strict_mode_error_types() -> None:
    corrupt = bytearray(VALID_3)
    corrupt[4] ^= 0x40
    with pytest.raises(CrcError):
        decode(bytes(corrupt), strict=True)
    with pytest.raises(CorruptTagError):
        decode(bytes.fromhex("1108BC"), 0x06, strict=True)
    assert issubclass(CrcError, CorruptTagError)
    assert all(issubclass(error, ValueError) for error in (CrcError, UnknownModelError, TagDataError))


def test_strict_mode_returns_good_tags() -> None:
    assert decode(VALID_3, strict=True).primary_item_id == "1234567890"


def test_dsfid_06_takes_precedence_over_an_iso28560_3_reading() -> None:
    tag = decode(encode_iso28560_2("12345678"), 0x06)
    assert tag.model is TagModel.ISO28560_2


@pytest.mark.parametrize("dsfid", [-1, 256, True, 1.5, "6"])
def test_invalid_dsfid_is_an_input_error(dsfid: object) -> None:
    with pytest.raises(InvalidInputError, match="DSFID"):
        decode(VALID_3, dsfid)  # type: ignore[arg-type]


@pytest.mark.parametrize("memory", ["11010131", 1234, None, [0x11, 0x01]])
def test_non_bytes_memory_is_an_input_error(memory: object) -> None:
    with pytest.raises(InvalidInputError, match="bytes"):
        decode(memory)  # type: ignore[arg-type]


def test_bytearray_and_memoryview_are_accepted() -> None:
    assert decode(bytearray(VALID_3)).ok
    assert decode(memoryview(VALID_3)).ok


def test_fast_built_result_equals_a_validated_one() -> None:
    tag = decode(VALID_3)
    validated = TagData.model_validate(tag.model_dump())
    assert tag == validated
    assert list(tag.__dict__) == list(TagData.model_fields)
    assert tag.model_dump_json() == validated.model_dump_json()
    assert tag.model_copy(update={"problem": "x"}).problem == "x"
    with pytest.raises(ValidationError):
        tag.primary_item_id = "changed"  # type: ignore[misc]


def test_tagdata_forbids_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        TagData(model=TagModel.BLANK, surprise=1)  # type: ignore[call-arg]
