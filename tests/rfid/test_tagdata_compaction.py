"""ISO 15962 compaction schemes and the ISIL code, with vectors (dp2 unit tests, ISO 28560-2 example)."""

import pytest

from rfid.tagdata import CompactionScheme, CorruptTagError, EncodeError
from rfid.tagdata.compaction import (
    compact_text,
    compact_with,
    decode_numeric,
    decompact_text,
    encode_five_bit,
    encode_integer,
    encode_numeric,
    encode_seven_bit,
    encode_six_bit,
)
from rfid.tagdata.isil_code import decode_isil_code, encode_isil_code

S = CompactionScheme


@pytest.mark.parametrize(
    ("scheme", "text", "hex_bytes"),
    [
        (S.INTEGER, "12345678", "BC614E"),
        (S.INTEGER, "256", "0100"),
        (S.INTEGER, "9999999999999999999", "8AC7230489E7FFFF"),
        (S.NUMERIC, "0123456", "0123456F"),
        (S.NUMERIC, "091", "091F"),
        (S.NUMERIC, "1203", "1203"),
        (S.FIVE_BIT, "AHQZ", "0A23A0"),
        (S.FIVE_BIT, "ZYXWV", "D6717B00"),
        (S.FIVE_BIT, "[\\]^_", "DF3BEF80"),
        (S.SIX_BIT, "ABC12345", "0420F1CB3D35"),
        (S.SIX_BIT, "K825.6=76/Z780", "2F8CB5BB6F77DAF6B7E308"),
        (S.SIX_BIT, "QA268.L55", "441CB6E2E335D6"),
        (S.SEVEN_BIT, "ABCDEFGH", "830A1C48B1A3C8"),
        (S.UTF8, "Café", "436166C3A9"),
    ],
)
def test_scheme_vectors_encode_and_decode(scheme: CompactionScheme, text: str, hex_bytes: str) -> None:
    data = bytes.fromhex(hex_bytes)
    assert compact_with(scheme, text) == data
    assert decompact_text(scheme, data) == text


@pytest.mark.parametrize(
    ("text", "scheme"),
    [
        ("12345678", S.INTEGER),  # digits without a leading zero
        ("0123456", S.NUMERIC),  # a leading zero would be lost by integer
        ("ABCDEFG", S.FIVE_BIT),
        ("QA268.L55", S.SIX_BIT),
        ("Hello, world", S.SEVEN_BIT),
        ("Kỹ thuật", S.UTF8),
        ("x", S.UTF8),  # too short for any bit scheme
    ],
)
def test_compact_text_picks_the_expected_scheme(text: str, scheme: CompactionScheme) -> None:
    chosen, data = compact_text(text)
    assert chosen is scheme
    assert decompact_text(chosen, data) == text


@pytest.mark.parametrize(
    "text",
    ["ABC", "ABCDEFG", "ABCDEFGH", "TEST", "A B C", "QA268", "QA268.L55X", "abcdefg!", "abcdefghijklmno", "1" * 19],
)
def test_tail_padding_never_adds_characters(text: str) -> None:
    scheme, data = compact_text(text)
    assert decompact_text(scheme, data) == text


def test_six_bit_refuses_a_trailing_space_and_the_chooser_falls_back() -> None:
    with pytest.raises(EncodeError):
        encode_six_bit("ABC ")
    scheme, data = compact_text("ABC ")
    assert scheme is not S.SIX_BIT
    assert decompact_text(scheme, data) == "ABC "


@pytest.mark.parametrize(
    ("encoder", "text"),
    [
        (encode_integer, "0123"),
        (encode_integer, "1"),
        (encode_integer, "1" * 20),
        (encode_integer, "١٢٣"),  # Arabic-Indic digits are not ASCII digits
        (encode_numeric, "9"),
        (encode_five_bit, "AB"),
        (encode_five_bit, "abc"),
        (encode_six_bit, "abcd"),
        (encode_seven_bit, "short"),
        (encode_seven_bit, "ABCDEFG\x7f"),
    ],
)
def test_scheme_rules_reject_unfit_text(encoder, text: str) -> None:
    with pytest.raises(EncodeError):
        encoder(text)


def test_empty_value_is_rejected() -> None:
    with pytest.raises(EncodeError):
        compact_text("")


def test_malformed_numeric_data_is_corrupt() -> None:
    with pytest.raises(CorruptTagError):
        decode_numeric(bytes.fromhex("1F23"))  # pad nibble in the middle
    with pytest.raises(CorruptTagError):
        decode_numeric(bytes.fromhex("1A"))


def test_invalid_utf8_is_corrupt() -> None:
    with pytest.raises(CorruptTagError):
        decompact_text(S.UTF8, b"\xff\xfe")


def test_empty_integer_is_corrupt() -> None:
    with pytest.raises(CorruptTagError):
        decompact_text(S.INTEGER, b"")


# ISIL code (scheme 0 for OIDs 3 and 11); the vector is the owner ISIL of the ISO 28560-2 example tag.
def test_isil_code_vector() -> None:
    assert encode_isil_code("US-InU-Mu") == bytes.fromhex("ACC09EBAA06F6B")
    assert decode_isil_code(bytes.fromhex("ACC09EBAA06F6B")) == "US-InU-Mu"


@pytest.mark.parametrize("isil", ["DK-710100", "VN-HN0001", "NO-0203000", "a1b2C3:/-", "0", "Z", "de-Frei85"])
def test_isil_code_round_trip(isil: str) -> None:
    assert decode_isil_code(encode_isil_code(isil)) == isil


def test_isil_code_is_shorter_than_the_generic_schemes_for_mixed_case() -> None:
    generic_scheme, generic = compact_text("US-InU-Mu")
    assert len(encode_isil_code("US-InU-Mu")) < len(generic)


def test_isil_code_rejects_other_characters() -> None:
    with pytest.raises(EncodeError):
        encode_isil_code("DK 710100")


def test_isil_code_control_after_shift_is_corrupt() -> None:
    # upper: 11111 (shift digit), then digit-set 1111 (shift lower) right after the shift
    with pytest.raises(CorruptTagError):
        decode_isil_code(bytes([0b11111111, 0b10000000]))
