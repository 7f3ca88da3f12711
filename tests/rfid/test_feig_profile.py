"""Reader profiles: shipped YAML files load; broken ones name the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from rfid.drivers.profile import ReaderProfile, ReaderProfileError, available_profiles, load_reader_profile


def test_shipped_profiles_load() -> None:
    names = available_profiles()
    assert {"feig-mr101", "feig-sim"} <= set(names)
    for name in names:
        assert load_reader_profile(name).protocol == "feig-iso-host"


def test_mr101_profile_values() -> None:
    profile = load_reader_profile("feig-mr101")
    assert profile.parity == "even" and profile.serial_parity == "E"
    assert profile.block_size == 4 and profile.afi_filter == "system_info"
    assert "baudrate" in profile.unconfirmed


def test_sim_profile_uses_no_parity() -> None:
    assert load_reader_profile("feig-sim").serial_parity == "N"


def test_overrides_replace_fields() -> None:
    assert load_reader_profile("feig-mr101", overrides={"parity": "none"}).parity == "none"


def test_load_by_path(tmp_path: Path) -> None:
    path = tmp_path / "custom.yaml"
    path.write_text("model: Custom\nbaudrate: 115200\n")
    assert load_reader_profile(path) == ReaderProfile(model="Custom", baudrate=115200)


def test_invalid_field_names_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("model: Bad\nbaudrate: fast\n")
    with pytest.raises(ReaderProfileError, match=r"bad\.yaml.*'baudrate'"):
        load_reader_profile(path)


def test_unknown_field_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "typo.yaml"
    path.write_text("model: Typo\nbaud_rate: 9600\n")
    with pytest.raises(ReaderProfileError, match=r"typo\.yaml.*'baud_rate'"):
        load_reader_profile(path)


def test_unconfirmed_must_name_fields(tmp_path: Path) -> None:
    path = tmp_path / "unconf.yaml"
    path.write_text("model: X\nunconfirmed: [baudrate, colour]\n")
    with pytest.raises(ReaderProfileError, match="colour"):
        load_reader_profile(path)


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("model: X\nbaudrate: [1, 2\n")
    with pytest.raises(ReaderProfileError, match=r"broken\.yaml.*line"):
        load_reader_profile(path)


def test_missing_profile_lists_known_ones() -> None:
    with pytest.raises(ReaderProfileError, match="feig-mr101"):
        load_reader_profile("no-such-reader")
