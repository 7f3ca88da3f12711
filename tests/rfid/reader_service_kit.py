"""Shared rig for the reader service tests: simulator on a pty, real FEIG driver, a recording link."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from openshelf.contract import Channel, Kind, Message, TopicParts, parse_topic, topic
from openshelf.site import ReaderSettings

from rfid.drivers.feig_serial import FeigReader
from rfid.drivers.profile import ReaderProfile
from rfid.readersim import PtyTransport, SimulatedReader, VirtualTag
from rfid.service import ReaderService
from rfid.tagdata import DSFID_ISO28560_2, UsageType, encode_iso28560_2, encode_iso28560_3

SITE = "unit"
ROOT = "openshelf"
PROFILE = ReaderProfile(model="test reader", parity="none", response_timeout_s=0.2, retries=1)


def danish_tag(uid_hex: str, item_id: str, *, afi: int = 0x07, parts: int = 1, part: int = 1,
               usage: UsageType = UsageType.CIRCULATING, **fields: Any) -> VirtualTag:
    memory = encode_iso28560_3(item_id, parts_in_set=parts, part_number=part, country="DK", owner_isil="710100",
                               usage=usage)
    return VirtualTag.holding(bytes.fromhex(uid_hex), memory, afi=afi, **fields)


def iso2_tag(uid_hex: str, item_id: str, *, afi: int = 0x07) -> VirtualTag:
    memory = encode_iso28560_2(item_id, owner_isil="VN-HN0001", title="Truyện Kiều")
    return VirtualTag.holding(bytes.fromhex(uid_hex), memory, afi=afi, dsfid=DSFID_ISO28560_2)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class RecordingLink:
    """Stands in for MqttLink: records publishes, keeps handlers so tests can deliver messages."""

    published: list[tuple[str, Message, bool]] = field(default_factory=list)
    handlers: dict[str, tuple[type, Any]] = field(default_factory=dict)

    def publish(self, topic_name: str, message: Message, *, retain: bool = False) -> None:
        self.published.append((topic_name, message, retain))

    def subscribe(self, topic_filter: str, model: type, handler: Any) -> None:
        self.handlers[topic_filter] = (model, handler)

    def deliver(self, topic_name: str, message: Message) -> None:
        for topic_filter, (model, handler) in self.handlers.items():
            if _matches(topic_filter, topic_name):
                handler(parse_topic(topic_name), model.model_validate_json(message.model_dump_json()))
                return
        raise AssertionError(f"nothing subscribed to {topic_name}")

    def events(self, name: str) -> list[Any]:
        return [message for topic_name, message, _ in self.published
                if _name_of(topic_name) == ("event", name)]

    def on(self, topic_name: str) -> list[Any]:
        return [message for name, message, _ in self.published if name == topic_name]


def _name_of(topic_name: str) -> tuple[str, str | None]:
    parts: TopicParts = parse_topic(topic_name)
    return parts.channel.value, parts.name


def _matches(topic_filter: str, topic_name: str) -> bool:
    wanted, actual = topic_filter.split("/"), topic_name.split("/")
    return len(wanted) == len(actual) and all(w in ("+", a) for w, a in zip(wanted, actual))


@dataclass
class Rig:
    sim: SimulatedReader
    driver: Any
    link: RecordingLink
    clock: FakeClock
    service: ReaderService
    settings: ReaderSettings

    def polls(self, n: int, step_s: float = 0.05) -> None:
        for _ in range(n):
            self.service.poll_once()
            self.clock.advance(step_s)

    def reply_topic(self) -> str:
        return topic(SITE, Kind.KIOSK, "kiosk-1", Channel.REPLY, "secure_tag", root=ROOT)

    def command_topic(self) -> str:
        return topic(SITE, Kind.READER, self.settings.id, Channel.CMD, "secure_tag", root=ROOT)


@contextmanager
def make_rig(driver_wrapper: Any = None, **settings: Any) -> Iterator[Rig]:
    sim = SimulatedReader()
    transport = PtyTransport(sim)
    transport.start()
    driver: Any = FeigReader(PROFILE, transport.port)
    wrapped = driver_wrapper(driver) if driver_wrapper else driver
    options = {"id": "pad-1", "port": transport.port, "role": "pad", "poll_interval_ms": 50,
               "departed_after_ms": 200, "write_backoff_ms": 0, "set_wait_ms": 1000, **settings}
    reader_settings = ReaderSettings(**options)
    link, clock = RecordingLink(), FakeClock()
    service = ReaderService(driver=wrapped, link=link, settings=reader_settings,  # type: ignore[arg-type]
                            site=SITE, root=ROOT, clock=clock)
    service.subscribe()
    try:
        yield Rig(sim, wrapped, link, clock, service, reader_settings)
    finally:
        driver.close()
        transport.stop()
