"""Register-map profiles for gate I/O modules (``firmware_configs/gates/<name>.yaml``).

A profile says which Modbus points carry the gate's roles: the two relay outputs
(``light``, ``buzzer``) and the two beam inputs (``beam_a`` library side,
``beam_b`` exit side), plus optional hardware counters and a packed DI word.
Addresses are 0-based PDU addresses (what goes on the wire); manuals print
1-based references (00001, 30017), so profiles note the reference in a comment.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from gate_controller.io import BEAM_ROLES, OUTPUT_ROLES, BeamRole, OutputRole
from openshelf.config import ConfigError, read_yaml
from openshelf.paths import firmware_dir

RegisterTable = Literal["coil", "discrete_input", "input_register", "holding_register"]
PROFILE_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
BIT_READ_FC = {"coil": 1, "discrete_input": 2}


class GateProfileError(ConfigError):
    """A gate I/O profile is missing, unreadable or invalid (message names file and field)."""


def _parse_address(value: Any) -> Any:
    """Accept ints and strings like "0x0010" or "16"; YAML already turns bare 0x0010 into 16."""
    if isinstance(value, str):
        text = value.strip().lower()
        try:
            return int(text, 16) if text.startswith("0x") else int(text, 10)
        except ValueError:
            raise PydanticCustomError(
                "address", "not an address: write a number like 16 or 0x0010", {}
            ) from None
    if isinstance(value, bool):  # YAML "yes"/"no" must not become address 1/0
        raise PydanticCustomError("address", "not an address: write a number like 16 or 0x0010", {})
    return value


Address = Annotated[int, BeforeValidator(_parse_address), Field(ge=0, le=0xFFFF)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TransportDefaults(_Strict):
    """What the module uses out of the box; the site file may override both."""

    port: int = Field(default=502, ge=1, le=65535)
    unit_id: int = Field(default=1, ge=0, le=247)


class OutputPoint(_Strict):
    """A relay driven through a coil. ``fc`` is the write function: 5 (single) or 15 (multiple)."""

    address: Address
    fc: Literal[5, 15] = 5


class Outputs(_Strict):
    light: OutputPoint
    buzzer: OutputPoint

    def __getitem__(self, role: OutputRole) -> OutputPoint:
        if role not in OUTPUT_ROLES:
            raise KeyError(f"no output role {role!r}; roles are {', '.join(OUTPUT_ROLES)}")
        return getattr(self, role)


class InputPoint(_Strict):
    """A beam input. ``coil`` exists because ADAM-6000 modules serve their DI through FC01."""

    table: Literal["discrete_input", "coil"] = "discrete_input"
    address: Address
    polarity: Literal["active_high", "active_low"] = "active_high"

    @property
    def read_fc(self) -> int:
        return BIT_READ_FC[self.table]

    def broken(self, raw: bool) -> bool:
        """Translate the bit the module reports into "beam broken"."""
        return raw if self.polarity == "active_high" else not raw

    def raw_for(self, broken: bool) -> bool:
        """The bit the module reports when the beam is (not) broken."""
        return self.broken(broken)  # the mapping is its own inverse


class Inputs(_Strict):
    beam_a: InputPoint
    beam_b: InputPoint

    def __getitem__(self, role: BeamRole) -> InputPoint:
        if role not in BEAM_ROLES:
            raise KeyError(f"no input role {role!r}; roles are {', '.join(BEAM_ROLES)}")
        return getattr(self, role)


class Counters(_Strict):
    """32-bit DI pulse counters, two registers per channel."""

    table: Literal["input_register", "holding_register"] = "input_register"
    word_order: Literal["hi_lo", "lo_hi"]
    beam_a: Address
    beam_b: Address

    def combine(self, words: list[int]) -> int:
        first, second = words[0], words[1]
        high, low = (first, second) if self.word_order == "hi_lo" else (second, first)
        return (high << 16) | low

    def split(self, value: int) -> list[int]:
        high, low = (value >> 16) & 0xFFFF, value & 0xFFFF
        return [high, low] if self.word_order == "hi_lo" else [low, high]


class DiWord(_Strict):
    """All DI packed in one register, bit n = DI channel n."""

    table: Literal["input_register", "holding_register"] = "input_register"
    address: Address


class GateIoProfile(_Strict):
    model: str = Field(min_length=1, description="module model, e.g. 'Moxa ioLogik E1214'")
    vendor: str = ""
    defaults: TransportDefaults = TransportDefaults()
    outputs: Outputs
    inputs: Inputs
    counters: Counters | None = None
    di_word: DiWord | None = None
    notes: str = ""

    def output(self, role: OutputRole) -> OutputPoint:
        return self.outputs[role]

    def input(self, role: BeamRole) -> InputPoint:
        return self.inputs[role]

    def point_uses(self) -> list[tuple[RegisterTable, int, str]]:
        """Every (table, address) the profile occupies, with the field that claims it."""
        uses: list[tuple[RegisterTable, int, str]] = []
        for role in OUTPUT_ROLES:
            uses.append(("coil", self.output(role).address, f"outputs.{role}.address"))
        for beam in BEAM_ROLES:
            point = self.input(beam)
            uses.append((point.table, point.address, f"inputs.{beam}.address"))
        if self.counters is not None:
            for beam in BEAM_ROLES:
                base = getattr(self.counters, beam)
                field = f"counters.{beam}"
                uses.append((self.counters.table, base, field))
                uses.append((self.counters.table, base + 1, f"{field} (second word)"))
        if self.di_word is not None:
            uses.append((self.di_word.table, self.di_word.address, "di_word.address"))
        return uses

    @model_validator(mode="after")
    def _addresses_used_once(self) -> GateIoProfile:
        claimed: dict[tuple[str, int], str] = {}
        for table, address, field in self.point_uses():
            if address > 0xFFFF:
                raise PydanticCustomError("address", "{field}: 0x{address} is past the end of the table",
                                          {"field": field, "address": f"{address:04X}"})
            previous = claimed.setdefault((table, address), field)
            if previous != field:
                raise PydanticCustomError(
                    "address_conflict",
                    "{field}: address 0x{address} in table {table} is already used by {previous}",
                    {"field": field, "address": f"{address:04X}", "table": table, "previous": previous},
                )
        if self.di_word is not None:
            for beam in BEAM_ROLES:
                if self.input(beam).address > 15:
                    raise PydanticCustomError(
                        "di_word", "inputs.{beam}.address: a DI word holds channels 0-15 only", {"beam": beam}
                    )
        return self


def gates_dir() -> Path:
    return firmware_dir() / "gates"


def available_profiles() -> list[str]:
    return sorted(path.stem for path in gates_dir().glob("*.yaml"))


def profile_path(name_or_path: str | Path) -> Path:
    """A bare name (``moxa-e1214``) means the shipped profile; anything path-like is a file."""
    text = str(name_or_path)
    looks_like_path = isinstance(name_or_path, Path) or "/" in text or text.endswith((".yaml", ".yml"))
    if looks_like_path:
        return Path(name_or_path)
    if not PROFILE_NAME_PATTERN.match(text):
        raise GateProfileError(f"gate I/O profile name {text!r}: use letters, digits, '-', '_' or '.'")
    return gates_dir() / f"{text}.yaml"


def _format_error(item: Any) -> str:
    field = ".".join(str(part) for part in item["loc"])
    shown = item.get("input")
    detail = f" (got {shown!r})" if isinstance(shown, (str, int, float)) and item["type"] != "missing" else ""
    return f"{field}: {item['msg']}{detail}" if field else item["msg"]


def parse_gate_profile(data: dict[str, Any], source: str) -> GateIoProfile:
    try:
        return GateIoProfile.model_validate(data)
    except ValidationError as exc:
        lines = [f"{source}: {_format_error(item)}" for item in exc.errors()]
        raise GateProfileError("\n".join(lines)) from None


def load_gate_profile(name_or_path: str | Path) -> GateIoProfile:
    path = profile_path(name_or_path)
    if not path.is_file():
        known = ", ".join(available_profiles()) or "none"
        raise GateProfileError(f"{path}: no such gate I/O profile (shipped profiles: {known})")
    try:
        data = read_yaml(path)
    except ConfigError as exc:
        raise GateProfileError(str(exc)) from None
    return parse_gate_profile(data, str(path))
