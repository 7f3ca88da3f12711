"""Reader profiles: per-model serial and protocol settings, loaded from YAML.

Profiles live in ``firmware_configs/readers/<name>.yaml`` at the repository root.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

logger = logging.getLogger(__name__)


class ReaderProfileError(ValueError):
    """A reader profile is missing or invalid; the message names the file and field."""


class ReaderProfile(BaseModel):
    """Settings of one reader model. Values not verified in a vendor document are listed in ``unconfirmed``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(min_length=1, description="Human-readable model name, e.g. 'FEIG ID ISC.MR101'")
    protocol: Literal["feig-iso-host"] = "feig-iso-host"
    baudrate: int = Field(38400, gt=0)
    # FEIG readers ship with even parity; Linux ptys refuse it, so the model default is
    # none and real-reader profiles set "even" explicitly.
    parity: Literal["none", "even", "odd"] = "none"
    com_address: int = Field(255, ge=0, le=255, description="255 reaches any reader on the line")
    frame_format: Literal["standard", "advanced"] = "standard"
    block_size: int = Field(4, ge=1, le=32)
    response_timeout_s: float = Field(0.5, gt=0, le=30)
    write_timeout_s: float = Field(1.0, gt=0, le=30)
    retries: int = Field(2, ge=0, le=10, description="extra attempts after a timeout")
    max_blocks_per_read: int = Field(16, ge=1, le=255)
    max_blocks_per_write: int = Field(8, ge=1, le=255)
    afi_filter: Literal["system_info", "inventory_mode"] = Field(
        "system_info",
        description="system_info: host filters via Get System Information; "
        "inventory_mode: AFI byte in the Inventory MODE (newer readers, unconfirmed)",
    )
    inventory_reset_to_ready: bool = Field(
        True, description="send Reset to Ready after each inventory so ONT=1 readers report all tags next time"
    )
    reverse_block_bytes: bool = Field(
        False, description="reverse the bytes of every block after reads and before writes (go-feig does)"
    )
    unconfirmed: list[str] = Field(default_factory=list, description="fields whose values are unverified")

    @field_validator("unconfirmed")
    @classmethod
    def _names_known_fields(cls, names: list[str]) -> list[str]:
        unknown = sorted(set(names) - set(cls.model_fields))
        if unknown:
            raise ValueError(f"unknown field name(s) {', '.join(unknown)}")
        return names

    @property
    def serial_parity(self) -> str:
        """Parity constant as pyserial expects it ('N', 'E', 'O')."""
        return {"none": "N", "even": "E", "odd": "O"}[self.parity]


def profiles_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "firmware_configs" / "readers"


def available_profiles() -> list[str]:
    directory = profiles_dir()
    return sorted(path.stem for path in directory.glob("*.yaml")) if directory.is_dir() else []


def load_reader_profile(name_or_path: str | Path, *, overrides: dict[str, Any] | None = None) -> ReaderProfile:
    """Load ``firmware_configs/readers/<name>.yaml`` or an explicit YAML path.

    ``overrides`` replaces fields after loading (e.g. ``{"parity": "none"}`` for a pty).
    """
    path = _resolve_profile_path(name_or_path)
    raw = _read_yaml_mapping(path)
    if overrides:
        raw = {**raw, **overrides}
    try:
        return ReaderProfile.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"field '{'.'.join(str(part) for part in err['loc']) or '<root>'}': {err['msg']}" for err in exc.errors()
        )
        logger.error("invalid reader profile %s: %s", path, problems)
        raise ReaderProfileError(f"{path}: {problems}") from exc


def _resolve_profile_path(name_or_path: str | Path) -> Path:
    candidate = Path(name_or_path)
    looks_like_path = candidate.suffix in {".yaml", ".yml"} or len(candidate.parts) > 1
    path = candidate if looks_like_path else profiles_dir() / f"{candidate.name}.yaml"
    if not path.is_file():
        known = ", ".join(available_profiles()) or "none"
        raise ReaderProfileError(f"reader profile {path} not found (known profiles: {known})")
    return path


def _read_yaml_mapping(path: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        logger.error("reader profile %s is not valid YAML%s: %s", path, where, exc)
        raise ReaderProfileError(f"{path}:{where} not valid YAML: {exc}") from exc
    except OSError as exc:
        raise ReaderProfileError(f"{path}: cannot read: {exc}") from exc
    if not isinstance(raw, dict):
        raise ReaderProfileError(f"{path}: expected a mapping of fields, got {type(raw).__name__}")
    return raw
