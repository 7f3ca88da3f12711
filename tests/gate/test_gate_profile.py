from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gate_controller.profile import (
    Counters,
    GateProfileError,
    InputPoint,
    available_profiles,
    load_gate_profile,
    parse_gate_profile,
    profile_path,
)

VALID = """\
model: Test module
outputs:
  light:  {address: 0x0000, fc: 5}
  buzzer: {address: 0x0001}
inputs:
  beam_a: {table: discrete_input, address: 0x0000, polarity: active_high}
  beam_b: {table: discrete_input, address: 0x0001, polarity: active_low}
"""


def write(tmp_path: Path, text: str, name: str = "module.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_profiles_are_listed() -> None:
    assert {"moxa-e1214", "advantech-adam6060", "generic-example"} <= set(available_profiles())


def test_moxa_e1214_map_matches_the_manual() -> None:
    profile = load_gate_profile("moxa-e1214")
    assert (profile.output("light").address, profile.output("buzzer").address) == (0x0000, 0x0001)
    assert profile.input("beam_a").table == "discrete_input" and profile.input("beam_a").read_fc == 2
    assert (profile.input("beam_a").address, profile.input("beam_b").address) == (0, 1)
    assert profile.counters is not None
    assert (profile.counters.table, profile.counters.word_order) == ("input_register", "hi_lo")
    assert (profile.counters.beam_a, profile.counters.beam_b) == (0x0010, 0x0012)
    assert profile.di_word is not None and profile.di_word.address == 0x0030
    assert (profile.defaults.port, profile.defaults.unit_id) == (502, 1)


def test_adam6060_reads_inputs_as_coils_and_counts_low_word_first() -> None:
    profile = load_gate_profile("advantech-adam6060")
    assert (profile.output("light").address, profile.output("buzzer").address) == (0x0010, 0x0011)
    assert profile.input("beam_a").table == "coil" and profile.input("beam_a").read_fc == 1
    assert profile.counters is not None and profile.counters.word_order == "lo_hi"


def test_generic_template_is_itself_a_valid_profile() -> None:
    profile = load_gate_profile("generic-example")
    assert profile.model == "Generic Modbus TCP I/O"


def test_load_by_path(tmp_path: Path) -> None:
    path = write(tmp_path, VALID)
    profile = load_gate_profile(path)
    assert profile.input("beam_b").polarity == "active_low"
    assert load_gate_profile(str(path)) == profile


def test_site_profile_directory_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "gates").mkdir()
    write(tmp_path / "gates", VALID.replace("Test module", "Site module"), "site-io.yaml")
    monkeypatch.setenv("OPENSHELF_FIRMWARE_CONFIGS", str(tmp_path))
    assert load_gate_profile("site-io").model == "Site module"
    assert available_profiles() == ["site-io"]


def test_profile_name_versus_path() -> None:
    assert profile_path("moxa-e1214").name == "moxa-e1214.yaml"
    assert profile_path("./x.yaml") == Path("./x.yaml")
    with pytest.raises(GateProfileError, match="profile name"):
        profile_path("bad name!")


def test_hex_strings_and_decimal_addresses_are_accepted(tmp_path: Path) -> None:
    text = VALID.replace("{address: 0x0000, fc: 5}", '{address: "0x0010", fc: 15}').replace(
        "buzzer: {address: 0x0001}", "buzzer: {address: 17}"
    )
    profile = load_gate_profile(write(tmp_path, text))
    assert (profile.output("light").address, profile.output("light").fc) == (16, 15)
    assert profile.output("buzzer").address == 17


def test_unknown_profile_names_the_file_and_lists_shipped_ones() -> None:
    with pytest.raises(GateProfileError) as info:
        load_gate_profile("no-such-module")
    message = str(info.value)
    assert "no-such-module.yaml" in message and "moxa-e1214" in message


def test_missing_role_names_file_and_field(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace("  buzzer: {address: 0x0001}\n", ""))
    with pytest.raises(GateProfileError) as info:
        load_gate_profile(path)
    assert str(path) in str(info.value)
    assert "outputs.buzzer: Field required" in str(info.value)


def test_missing_beam_names_field(tmp_path: Path) -> None:
    text = VALID.replace("  beam_b: {table: discrete_input, address: 0x0001, polarity: active_low}\n", "")
    with pytest.raises(GateProfileError, match=r"inputs\.beam_b: Field required"):
        load_gate_profile(write(tmp_path, text))


def test_address_used_twice_in_one_table_names_both_fields(tmp_path: Path) -> None:
    text = VALID.replace("beam_a: {table: discrete_input, address: 0x0000", "beam_a: {table: coil, address: 0x0001")
    path = write(tmp_path, text)
    with pytest.raises(GateProfileError) as info:
        load_gate_profile(path)
    message = str(info.value)
    assert message.startswith(f"{path}: inputs.beam_a.address: address 0x0001 in table coil")
    assert "outputs.buzzer.address" in message


def test_same_address_in_different_tables_is_fine(tmp_path: Path) -> None:
    profile = load_gate_profile(write(tmp_path, VALID))  # coil 0 and discrete input 0 both used
    assert profile.output("light").address == profile.input("beam_a").address == 0


def test_counters_must_not_overlap_their_second_word(tmp_path: Path) -> None:
    text = VALID + "counters: {table: input_register, word_order: hi_lo, beam_a: 0x10, beam_b: 0x11}\n"
    with pytest.raises(GateProfileError, match=r"counters\.beam_b: address 0x0011 .* counters\.beam_a \(second word\)"):
        load_gate_profile(write(tmp_path, text))


def test_di_word_must_not_collide_with_counters(tmp_path: Path) -> None:
    text = VALID + (
        "counters: {table: input_register, word_order: hi_lo, beam_a: 0x10, beam_b: 0x12}\n"
        "di_word: {table: input_register, address: 0x13}\n"
    )
    with pytest.raises(GateProfileError, match=r"di_word\.address"):
        load_gate_profile(write(tmp_path, text))


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("polarity: active_high", "polarity: high", "inputs.beam_a.polarity"),
        ("{address: 0x0000, fc: 5}", "{address: 0x0000, fc: 6}", "outputs.light.fc"),
        ("{address: 0x0000, fc: 5}", "{adress: 0x0000}", "outputs.light.adress"),
        ("{address: 0x0000, fc: 5}", "{address: 0x10000}", "outputs.light.address"),
        ("{address: 0x0000, fc: 5}", '{address: "sixteen"}', "outputs.light.address"),
        ("{address: 0x0000, fc: 5}", "{address: yes}", "outputs.light.address"),
        ("table: discrete_input, address: 0x0000", "table: input_register, address: 0x0000", "inputs.beam_a.table"),
        ("model: Test module", "model: ''", "model"),
    ],
)
def test_bad_values_name_file_and_field(tmp_path: Path, old: str, new: str, field: str) -> None:
    assert old in VALID
    path = write(tmp_path, VALID.replace(old, new, 1))
    with pytest.raises(GateProfileError) as info:
        load_gate_profile(path)
    assert f"{path}: {field}:" in str(info.value)


def test_unreadable_yaml_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "model: [unclosed\n")
    with pytest.raises(GateProfileError, match="not valid YAML") as info:
        load_gate_profile(path)
    assert str(path) in str(info.value)


def test_parse_from_data_uses_the_given_source_name() -> None:
    with pytest.raises(GateProfileError, match=r"^site\.yaml gates\[0\]: outputs: Field required"):
        parse_gate_profile({"model": "x", "inputs": {}}, "site.yaml gates[0]")


def test_polarity_translation() -> None:
    high = InputPoint(address=0, polarity="active_high")
    low = InputPoint(address=0, polarity="active_low")
    assert (high.broken(True), high.broken(False)) == (True, False)
    assert (low.broken(True), low.broken(False)) == (False, True)
    assert low.raw_for(True) is False and high.raw_for(True) is True


def test_counter_word_order_matches_the_manuals() -> None:
    moxa = Counters(word_order="hi_lo", beam_a=0x10, beam_b=0x12)
    adam = Counters(word_order="lo_hi", beam_a=0, beam_b=2)
    assert moxa.combine([0x0001, 0x0002]) == 0x0001_0002  # CH0 = H0*65536 + L0
    assert adam.combine([0x0002, 0x0001]) == 0x0001_0002  # value = reg(n+1)*65536 + reg(n)


@given(st.integers(min_value=0, max_value=0xFFFFFFFF), st.sampled_from(["hi_lo", "lo_hi"]))
def test_counter_words_round_trip(value: int, order: str) -> None:
    counters = Counters(word_order=order, beam_a=0, beam_b=2)  # type: ignore[arg-type]
    words = counters.split(value)
    assert all(0 <= word <= 0xFFFF for word in words)
    assert counters.combine(words) == value


def test_roles_can_be_looked_up_by_name() -> None:
    profile = load_gate_profile("advantech-adam6060")
    assert profile.outputs["light"] is profile.output("light") and profile.outputs["light"].address == 0x10
    assert profile.inputs["beam_b"].address == 1
    with pytest.raises(KeyError):
        profile.outputs["siren"]  # type: ignore[index]
