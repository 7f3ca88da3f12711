"""Configuration loading: YAML plus environment, validated by a strict pydantic model.

Every error names the file (or environment variable) and the field, because the
person reading it is a technician at a library, not the author of the code.

Environment overrides use ``OPENSHELF__`` followed by the field path joined with
``__``; list indexes are numbers: ``OPENSHELF__BROKER__URL=mqtt://host:1883``,
``OPENSHELF__GATES__0__IO__PORT=5020``. Values are parsed as YAML scalars.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

ENV_PREFIX = "OPENSHELF__"
M = TypeVar("M", bound=BaseModel)


class ConfigError(Exception):
    """A configuration file or variable is missing, unreadable or invalid."""


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read configuration: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping, not {type(data).__name__}")
    return data


def _set_path(data: Any, keys: list[str], value: Any, origin: str) -> None:
    node = data
    for position, key in enumerate(keys):
        last = position == len(keys) - 1
        if isinstance(node, list):
            if not key.isdigit() or int(key) >= len(node):
                raise ConfigError(f"{origin}: no list element {key!r} to override")
            index = int(key)
            if last:
                node[index] = value
            else:
                node = node[index]
            continue
        if not isinstance(node, dict):
            raise ConfigError(f"{origin}: cannot override inside a scalar at {key!r}")
        match = next((existing for existing in node if str(existing).lower() == key), key)
        if last:
            node[match] = value
        else:
            node = node.setdefault(match, {})


def apply_env_overrides(data: dict[str, Any], environ: Mapping[str, str]) -> dict[str, str]:
    """Apply ``OPENSHELF__A__B=value`` overrides in place; returns field path → variable name."""
    origins: dict[str, str] = {}
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX):
            continue
        keys = [part.lower() for part in name[len(ENV_PREFIX):].split("__") if part]
        if not keys:
            continue
        try:
            value = yaml.safe_load(environ[name])
        except yaml.YAMLError as exc:
            raise ConfigError(f"environment {name}: not a valid value: {exc}") from exc
        _set_path(data, keys, value, f"environment {name}")
        origins[".".join(keys)] = name
    return origins


def _format_errors(error: ValidationError, source: str, origins: dict[str, str]) -> str:
    lines = []
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"]) or "(top level)"
        where = f"environment {origins[field]}" if field in origins else source
        shown = item.get("input")
        detail = f" (got {shown!r})" if not isinstance(shown, (dict, list)) and shown is not None else ""
        lines.append(f"{where}: {field}: {item['msg']}{detail}")
    return "\n".join(lines)


def validate(model: type[M], data: dict[str, Any], source: str, origins: dict[str, str] | None = None) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, source, origins or {})) from None


def load_model(
    model: type[M],
    path: Path | str,
    environ: Mapping[str, str] | None = None,
) -> M:
    """Load ``path`` as YAML, apply environment overrides, validate into ``model``."""
    path = Path(path)
    data = read_yaml(path)
    origins = apply_env_overrides(data, os.environ if environ is None else environ)
    return validate(model, data, str(path), origins)
