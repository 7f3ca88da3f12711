"""Stand-ins for the camera service's MQTT link and uploader."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from openshelf.contract import CameraState, Message, parse_topic
from openshelf.mqtt import LinkStats


class FakeLink:
    """Records subscriptions and publications; ``deliver`` plays the broker."""

    def __init__(self) -> None:
        self.handlers: dict[str, Any] = {}
        self.stats = LinkStats(connects=1)
        self.connected = threading.Event()
        self.connected.set()
        self.published: list[tuple[str, Message, bool]] = []
        self.lock = threading.Lock()

    def subscribe(self, topic_filter, model, handler) -> None:
        self.handlers[topic_filter] = (model, handler)

    def publish(self, topic_name, message, *, retain=False):
        with self.lock:
            self.published.append((topic_name, message, retain))

    def deliver(self, topic_name: str, message: Message) -> None:
        model, handler = self.handlers[topic_name]
        handler(parse_topic(topic_name), model.model_validate_json(message.model_dump_json()))

    def states(self) -> list[CameraState]:
        with self.lock:
            return [message for _, message, _ in self.published if isinstance(message, CameraState)]


@dataclass
class Call:
    method: str
    alarm_id: str
    args: tuple


class RecordingSink:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.lock = threading.Lock()

    def _record(self, method: str, alarm_id: str, *args: Any) -> str:
        with self.lock:
            self.calls.append(Call(method, alarm_id, args))
        return f"job{len(self.calls)}"

    def enqueue_snapshot(self, alarm_id: str, path: Path, captured_at: datetime) -> str:
        return self._record("snapshot", alarm_id, path, captured_at)

    def enqueue_clip(self, alarm_id: str, path: Path, captured_at: datetime, content_type: str) -> str:
        return self._record("clip", alarm_id, path, captured_at, content_type)

    def enqueue_problem(self, alarm_id: str, kind: str, problem: str) -> str:
        return self._record("problem", alarm_id, kind, problem)

    def of(self, method: str) -> list[Call]:
        with self.lock:
            return [call for call in self.calls if call.method == method]
