"""Generate docs/mqtt.md from the contract, so the reference can never drift from the code.

Run ``python -m openshelf.contract_docs > docs/mqtt.md`` after changing the contract.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from openshelf.contract import CATALOGUE, Message, TopicSpec, topic

_HEADER = """# MQTT topic and payload reference

Generated from `openshelf/contract.py` by `python -m openshelf.contract_docs`; do not edit by hand
(a test fails when this file and the contract disagree).

## Conventions
- Topic: `<root>/v1/<site>/<kind>/<device_id>/<channel>[/<name>]`, built only by `openshelf.contract.topic()`.
  `root` defaults to `openshelf`; `site` is the site id from the site file.
- `status` and `state` are **retained**; `status` is also the **Last Will** (`online: false`).
  Events, commands and replies are never retained.
- QoS 1 everywhere. Every payload carries `version` (currently `1`), `event_id` (receivers drop
  duplicates) and `sent_at` (UTC, with timezone). Unknown fields are rejected (`extra="forbid"`).
- Commands carry `expires_at`; a receiver ignores an expired command.
- Requests carry `reply_to` (a topic) and `correlation_id`; the answer goes to `reply_to` with the same
  `correlation_id`. This works on MQTT 3.1.1 and 5 alike.
- A malformed message is logged with its topic and reason, counted, and dropped; the receiver keeps running.
- Patron data never travels over MQTT beyond opaque identifiers.

## Topics
| topic (site `S`, device `D`) | payload | retained | published by | consumed by | purpose |
|---|---|---|---|---|---|
"""


def _row(spec: TopicSpec) -> str:
    name = topic("S", spec.kind, "D", spec.channel, spec.name)
    return (f"| `{name}` | [{spec.model.__name__}](#{spec.model.__name__.lower()}) | "
            f"{'yes' if spec.retained else 'no'} | {spec.publisher} | {spec.subscribers} | {spec.purpose} |")


def _type_name(annotation: Any) -> str:
    text = annotation.__name__ if isinstance(annotation, type) else str(annotation)
    return text.replace("|", "\\|").replace("typing.", "").replace("openshelf.contract.", "").replace("datetime.", "")


def _model_section(model: type[BaseModel]) -> list[str]:
    lines = [f"### {model.__name__}", ""]
    doc = (model.__doc__ or "").strip()
    if doc:
        lines += [" ".join(doc.split()), ""]
    lines += ["| field | type | required | default |", "|---|---|---|---|"]
    for name, info in model.model_fields.items():
        required = info.is_required()
        default = "" if required or info.default_factory is not None else json.dumps(
            info.default.value if hasattr(info.default, "value") else info.default, ensure_ascii=False, default=str)
        if info.default_factory is not None:
            default = "(generated)"
        lines.append(f"| `{name}` | `{_type_name(info.annotation)}` | {'yes' if required else 'no'} | {default} |")
    lines.append("")
    return lines


def _nested_models(models: list[type[BaseModel]]) -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = []
    for model in models:
        for info in model.model_fields.values():
            for candidate in getattr(info.annotation, "__args__", ()) or (info.annotation,):
                if isinstance(candidate, type) and issubclass(candidate, BaseModel) \
                        and not issubclass(candidate, Message) and candidate not in found:
                    found.append(candidate)
    return found


def render_mqtt_doc() -> str:
    lines = [_HEADER.rstrip("\n")]
    lines += [_row(spec) for spec in CATALOGUE]
    lines += ["", "## Payloads", ""]
    models: list[type[BaseModel]] = []
    for spec in CATALOGUE:
        if spec.model not in models:
            models.append(spec.model)
    for model in models + _nested_models(models):
        lines += _model_section(model)
    return "\n".join(lines).rstrip("\n") + "\n"


if __name__ == "__main__":
    print(render_mqtt_doc(), end="")
