"""3M proprietary layout ("RFID 501"): decode only."""

from rfid.tagdata import DecodeStatus, TagModel, decode


def build_threem_tag(block0: bytes = bytes([0x04, 0x23, 0x00, 0x01])) -> bytes:
    """A 3M tag from the layout table: part 2 of 3, book, branch 5, library 12345, custom -2."""
    barcode = b"31234000567890".ljust(16, b"\x00")  # blocks 1-4
    owner = (5 << 20 | 12345).to_bytes(4, "big")  # block 5: 12 bits branch, 20 bits library
    custom = (-2).to_bytes(4, "big", signed=True)  # block 6
    return block0 + barcode + owner + custom + bytes(4)


def test_hand_built_threem_tag_decodes() -> None:
    tag = decode(build_threem_tag())
    assert tag.ok
    assert tag.model is TagModel.THREEM
    assert tag.primary_item_id == "31234000567890"
    assert (tag.part_number, tag.parts_in_set) == (2, 3)
    assert tag.item_type == "book"
    assert tag.item_type_code == 1
    assert tag.branch == 5
    assert tag.library_number == 12345
    assert tag.custom_value == -2
    assert tag.crc_valid is None
    assert tag.usage_type is None
    assert tag.notes == ()


def test_biblio_rfid_programming_pattern() -> None:
    tag = decode(build_threem_tag(bytes.fromhex("04110001")))
    assert tag.model is TagModel.THREEM
    assert (tag.part_number, tag.parts_in_set) == (1, 1)


def test_unlisted_item_type_is_named_unknown() -> None:
    tag = decode(build_threem_tag(bytes.fromhex("0411000B")))
    assert tag.model is TagModel.THREEM
    assert (tag.item_type, tag.item_type_code) == ("unknown", 11)


def test_non_zero_block_7_is_noted() -> None:
    memory = build_threem_tag()[:28] + b"\x01\x02\x03\x04"
    tag = decode(memory)
    assert tag.model is TagModel.THREEM
    assert "block 7 is not zero" in tag.notes


def test_factory_blank_is_blank() -> None:
    tag = decode(b"\x55" * 24 + bytes(8))
    assert tag.model is TagModel.BLANK
    assert tag.status is DecodeStatus.BLANK
    assert "3M factory blank" in (tag.problem or "")


def test_implausible_3m_like_data_is_unknown() -> None:
    # fixed bytes right but part 4 of 3, and a barcode with bytes after its padding
    assert decode(build_threem_tag(bytes.fromhex("04430001"))).model is TagModel.UNKNOWN
    memory = bytearray(build_threem_tag())
    memory[19] = ord("X")  # text after the NUL padding
    assert decode(bytes(memory)).model is TagModel.UNKNOWN
