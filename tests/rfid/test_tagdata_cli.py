"""The decode/encode subcommands, driven through a real argparse parser."""

import argparse
import json

import pytest

from rfid.tagdata import decode, encode_iso28560_2
from rfid.tagdata.cli import register_tag_commands

EXAMPLE_HEX = "11 01 01 31 32 33 34 35 36 37 38 39 30 00 00 00 00 00 00 EC 15 56 4E 31 32 33 34 35 00 00 00 00"


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="openshelf rfid")
    subparsers = parser.add_subparsers(dest="command", required=True)
    register_tag_commands(subparsers)
    args = parser.parse_args(argv)
    return args.func(args)


def test_decode_prints_readable_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["decode", *EXAMPLE_HEX.split()]) == 0
    out = capsys.readouterr().out
    assert "ISO 28560-3" in out
    assert "1234567890" in out
    assert "VN-12345" in out
    assert "circulating" in out
    assert "1 of 1" in out
    assert "CRC:" in out and "valid" in out


def test_decode_json_for_scripts(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["decode", EXAMPLE_HEX.replace(" ", ""), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["model"] == "iso28560_3"
    assert data["usage_type"] == "circulating"
    assert data["primary_item_id"] == "1234567890"
    assert (data["part_number"], data["parts_in_set"]) == (1, 1)
    assert data["owner_isil"] == "VN-12345"
    assert data["crc_valid"] is True


def test_decode_accepts_colons_and_a_0x_prefix(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["decode", "0x" + EXAMPLE_HEX.replace(" ", ":")]) == 0
    assert "1234567890" in capsys.readouterr().out


def test_corrupt_tag_exits_2_with_reason_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    corrupted = EXAMPLE_HEX.replace("EC 15", "EC 16")
    assert run(["decode", corrupted, "--json"]) == 2
    captured = capsys.readouterr()
    assert "CRC mismatch" in captured.err
    assert json.loads(captured.out)["crc_valid"] is False


def test_unknown_tag_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["decode", "E2801160" * 8]) == 2
    captured = capsys.readouterr()
    assert "unknown" in captured.err
    assert "Model:" in captured.out


def test_blank_tag_exits_0_and_says_blank(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["decode", "00" * 32]) == 0
    assert "blank" in capsys.readouterr().out


def test_invalid_hex_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["decode", "11 0G"]) == 2
    assert "error" in capsys.readouterr().err


def test_dsfid_out_of_range_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["decode", "1103BC614E000000", "--dsfid", "0x1FF"]) == 2
    assert "DSFID" in capsys.readouterr().err


def test_decode_iso28560_2_with_dsfid(capsys: pytest.CaptureFixture[str]) -> None:
    memory = encode_iso28560_2("12345678", shelf_location="QA268.L55", title="Test")
    assert run(["decode", memory.hex(), "--dsfid", "0x06"]) == 0
    out = capsys.readouterr().out
    assert "ISO 28560-2" in out
    assert "QA268.L55" in out
    assert "Title" in out


def test_encode_model_3_prints_hex_that_decodes(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["encode", "--model", "3", "--item-id", "1234567890", "--country", "VN", "--isil", "12345"]
    assert run(argv) == 0
    printed = capsys.readouterr().out.strip()
    assert printed == EXAMPLE_HEX.replace(" ", "")


def test_encode_options(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["encode", "--model", "3", "--item-id", "B-1", "--parts", "3", "--part", "2"]
    argv += ["--isil", "DK-710100", "--usage", "not_for_circulation", "--reversed"]
    assert run(argv) == 0
    tag = decode(bytes.fromhex(capsys.readouterr().out.strip()))
    assert tag.ok
    assert tag.block_order.value == "reversed"
    assert (tag.part_number, tag.parts_in_set) == (2, 3)
    assert tag.usage_type.value == "not_for_circulation"


def test_encode_model_2(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["encode", "--model", "2", "--item-id", "12345678", "--isil", "HN0001", "--country", "VN"]
    assert run(argv) == 0
    tag = decode(bytes.fromhex(capsys.readouterr().out.strip()), 0x06)
    assert tag.ok
    assert tag.owner_isil == "VN-HN0001"
    assert tag.usage_type.value == "circulating"
    assert tag.parts_in_set is None


def test_encode_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["encode", "--model", "3", "--item-id", "X" * 17]) == 2
    assert "longer than 16" in capsys.readouterr().err


def test_encode_needs_parts_and_part_together(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["encode", "--model", "2", "--item-id", "1", "--parts", "2"]) == 2
    assert "together" in capsys.readouterr().err
