"""The reader service as a real process: simulator on a pty, `openshelf rfid run`, a real Mosquitto.

The simulator runs in the test process (so the test can place tags and script
faults directly); the service opens its pty as it would open /dev/ttyUSB0.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from openshelf.contract import (
    CardPresented,
    Channel,
    Kind,
    Message,
    SecureTagReply,
    SecureTagRequest,
    SetStatusEvent,
    SimPlaceTags,
    SimReaderFault,
    SimTag,
    TagDecodeStatus,
    TagEvent,
    TagWriteOutcome,
    expires_in,
    topic,
)
from openshelf.mqtt import MqttLink
from openshelf.site import BrokerSettings

from rfid.readersim import PtyTransport, SimulatedReader, VirtualTag
from rfid.tagdata import DSFID_ISO28560_2, encode_iso28560_2, encode_iso28560_3
from tests.helpers import Mosquitto, Proc, free_port, wait_for

pytestmark = pytest.mark.e2e

READER = "pad-1"
EVENTS = {"tag_arrived": TagEvent, "tag_departed": TagEvent, "set_status": SetStatusEvent,
          "card_presented": CardPresented}


class Observer:
    """Everything the reader publishes, as a kiosk would receive it; sends secure_tag requests."""

    def __init__(self, broker_url: str, site: str, reader: str) -> None:
        self.site, self.reader = site, reader
        self.link = MqttLink(BrokerSettings(url=broker_url), client_id=f"{site}-observer")
        self.reply_topic = topic(site, Kind.KIOSK, "kiosk-1", Channel.REPLY, "secure_tag")
        self._lock = threading.Lock()
        self.received: dict[str, list[Any]] = {name: [] for name in [*EVENTS, "reply"]}
        for name, model in EVENTS.items():
            self.link.subscribe(topic(site, Kind.READER, reader, Channel.EVENT, name), model, self._keep(name))
        self.link.subscribe(self.reply_topic, SecureTagReply, self._keep("reply"))

    def _keep(self, name: str) -> Any:
        def keep(parts: Any, message: Message) -> None:
            with self._lock:
                self.received[name].append(message)
        return keep

    def of(self, name: str, **match: Any) -> list[Any]:
        with self._lock:
            return [m for m in self.received[name] if all(getattr(m, k) == v for k, v in match.items())]

    def secure(self, uid: str, secure: bool) -> SecureTagReply:
        request = SecureTagRequest(uid=uid, secure=secure, reply_to=self.reply_topic, expires_at=expires_in(30))
        self.link.publish(topic(self.site, Kind.READER, self.reader, Channel.CMD, "secure_tag"), request)
        return wait_for(lambda: next(iter(self.of("reply", correlation_id=request.correlation_id)), None),
                        timeout_s=10, what=f"reply to secure_tag for {uid}")

    def publish(self, topic_name: str, message: Message) -> None:
        self.link.publish(topic_name, message).wait_for_publish(5)


def write_site(path: Path, site: str, broker_url: str, reader: dict[str, Any]) -> Path:
    document = {"site": site, "demo": True, "broker": {"url": broker_url}, "readers": [reader]}
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


class PadStack:
    def __init__(self, workdir: Path, broker_url: str) -> None:
        self.site = f"t{uuid.uuid4().hex[:10]}"
        self.sim = SimulatedReader()
        self.transport = PtyTransport(self.sim)
        self.transport.start()
        reader = {"id": READER, "role": "pad", "port": self.transport.port, "profile": "feig-sim",
                  "poll_interval_ms": 50, "departed_after_ms": 300, "write_retries": 2, "write_backoff_ms": 20,
                  "set_wait_ms": 600}
        site_path = write_site(workdir / "site.yaml", self.site, broker_url, reader)
        self.observer = Observer(broker_url, self.site, READER)
        assert self.observer.link.start()
        self.proc = Proc("rfid-run", ["rfid", "run", "--site", str(site_path), "--device", READER],
                         workdir / "rfid-run.log").start()

    def stop(self) -> int:
        try:
            return self.proc.stop()
        finally:
            self.observer.link.stop()
            self.transport.stop()


@pytest.fixture(scope="module")
def pad(mosquitto: Mosquitto, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PadStack]:
    stack = PadStack(tmp_path_factory.mktemp("pad"), mosquitto.url)
    yield stack
    assert stack.stop() == 0
    assert "Traceback" not in stack.proc.log_text()


def uid(n: int) -> str:
    return f"E0040100{n:08X}"


def danish(n: int, item_id: str, *, afi: int = 0x07, parts: int = 1, part: int = 1) -> VirtualTag:
    memory = encode_iso28560_3(item_id, parts_in_set=parts, part_number=part, country="DK", owner_isil="710100")
    return VirtualTag.holding(bytes.fromhex(uid(n)), memory, afi=afi)


def test_danish_and_iso28560_2_tags_both_arrive_with_their_item_ids(pad: PadStack) -> None:
    pad.sim.place_tag(danish(0x101, "5000000101"))
    iso2 = encode_iso28560_2("VN-5000000102", owner_isil="VN-HN0001", title="Lục Vân Tiên")
    pad.sim.place_tag(VirtualTag.holding(bytes.fromhex(uid(0x102)), iso2, afi=0x07, dsfid=DSFID_ISO28560_2))
    [danish_event] = wait_for(lambda: pad.observer.of("tag_arrived", uid=uid(0x101)), what="ISO 28560-3 arrival")
    [iso2_event] = wait_for(lambda: pad.observer.of("tag_arrived", uid=uid(0x102)), what="ISO 28560-2 arrival")
    assert (danish_event.item_id, danish_event.owner_isil, danish_event.decode) == (
        "5000000101", "DK-710100", TagDecodeStatus.DECODED)
    assert (iso2_event.item_id, iso2_event.owner_isil) == ("VN-5000000102", "VN-HN0001")
    assert danish_event.reader_id == READER and danish_event.afi == 0x07


def test_a_tag_polled_twenty_times_arrives_once_and_departs_once(pad: PadStack) -> None:
    pad.sim.place_tag(danish(0x201, "5000000201"))
    wait_for(lambda: pad.observer.of("tag_arrived", uid=uid(0x201)), what="arrival")
    requests_then = pad.sim.stats.requests
    wait_for(lambda: pad.sim.stats.requests - requests_then >= 40, what="20 more polls")  # inventory + reset each
    pad.sim.remove_tag(uid(0x201))
    wait_for(lambda: pad.observer.of("tag_departed", uid=uid(0x201)), what="departure")
    assert len(pad.observer.of("tag_arrived", uid=uid(0x201))) == 1
    assert len(pad.observer.of("tag_departed", uid=uid(0x201))) == 1


def test_secure_and_unsecure_change_the_simulated_tags_afi(pad: PadStack) -> None:
    pad.sim.place_tag(danish(0x301, "5000000301", afi=0xC2))
    wait_for(lambda: pad.observer.of("tag_arrived", uid=uid(0x301)), what="arrival")
    reply = pad.observer.secure(uid(0x301), True)
    assert (reply.ok, reply.outcome, reply.afi) == (True, TagWriteOutcome.DONE, 0x07)
    assert pad.sim.afi_of(uid(0x301)) == 0x07
    reply = pad.observer.secure(uid(0x301), False)
    assert (reply.ok, reply.afi) == (True, 0xC2) and pad.sim.afi_of(uid(0x301)) == 0xC2


def test_forced_write_failure_is_answered_as_failure_after_the_retries(pad: PadStack) -> None:
    pad.sim.place_tag(danish(0x401, "5000000401", afi=0xC2))
    pad.sim.fail_next_writes(3, "error")
    reply = pad.observer.secure(uid(0x401), True)
    assert (reply.ok, reply.outcome, reply.attempts) == (False, TagWriteOutcome.WRITE_ERROR, 3)
    assert pad.sim.afi_of(uid(0x401)) == 0xC2


def test_undecodable_tag_is_published_as_corrupt(pad: PadStack) -> None:
    memory = bytearray(encode_iso28560_3("5000000501", country="DK", owner_isil="710100"))
    memory[7] ^= 0x40
    pad.sim.place_tag(VirtualTag.holding(bytes.fromhex(uid(0x501)), bytes(memory), afi=0x07))
    [event] = wait_for(lambda: pad.observer.of("tag_arrived", uid=uid(0x501)), what="corrupt tag arrival")
    assert event.decode is TagDecodeStatus.CORRUPT and event.item_id is None and event.afi == 0x07


def test_multi_part_sets_complete_and_incomplete(pad: PadStack) -> None:
    for part in (1, 2):
        pad.sim.place_tag(danish(0x600 + part, "5000000600", parts=2, part=part))
    wait_for(lambda: pad.observer.of("set_status", item_id="5000000600", complete=True, final=True),
             what="complete set")
    pad.sim.place_tag(danish(0x701, "5000000700", parts=3, part=1))
    [final] = wait_for(lambda: pad.observer.of("set_status", item_id="5000000700", final=True),
                       what="final status of the incomplete set")
    assert (final.complete, final.parts_present, final.parts_in_set) == (False, [1], 3)


# --------------------------------------------------------------------------- `openshelf sim reader` on TCP


def test_reader_simulator_scripted_over_mqtt(mosquitto: Mosquitto, tmp_path: Path) -> None:
    site = f"t{uuid.uuid4().hex[:10]}"
    reader = {"id": "gate-reader-1", "role": "gate", "port": f"socket://127.0.0.1:{free_port()}",
              "profile": "feig-mr101", "poll_interval_ms": 50, "write_retries": 1, "write_backoff_ms": 10}
    site_path = write_site(tmp_path / "site.yaml", site, mosquitto.url, reader)
    observer = Observer(mosquitto.url, site, "gate-reader-1")
    assert observer.link.start()
    sim = Proc("sim-reader", ["sim", "reader", "--site", str(site_path), "--device", "gate-reader-1"],
               tmp_path / "sim.log").start()
    service = Proc("rfid-run", ["rfid", "run", "--site", str(site_path), "--device", "gate-reader-1"],
                   tmp_path / "rfid.log")
    try:
        service.start()
        sim_cmd = lambda name: topic(site, Kind.SIM, "gate-reader-1", Channel.CMD, name)  # noqa: E731
        # More than an ICODE SLI's 112 bytes: the simulated tag grows to fit, the service reads it all.
        memory = encode_iso28560_2("5000000801", title="Truyện Kiều " * 12)
        assert len(memory) > 200
        observer.publish(sim_cmd("place_tags"), SimPlaceTags(
            tags=[SimTag(uid=uid(0x801), memory_hex=memory.hex(), dsfid=DSFID_ISO28560_2, afi=0x07)],
            expires_at=expires_in(30)))
        [event] = wait_for(lambda: observer.of("tag_arrived", uid=uid(0x801)), what="arrival via sim reader")
        assert event.item_id == "5000000801" and event.gate_id is None
        observer.publish(sim_cmd("reader_fault"), SimReaderFault(write_failures=2, expires_at=expires_in(30)))
        reply = observer.secure(uid(0x801), False)
        assert (reply.ok, reply.outcome, reply.attempts) == (False, TagWriteOutcome.WRITE_ERROR, 2)
        reply = observer.secure(uid(0x801), False)
        assert (reply.ok, reply.afi) == (True, 0xC2)
    finally:
        assert service.stop() == 0
        assert sim.stop() == 0
        observer.link.stop()
    assert "Traceback" not in service.log_text() + sim.log_text()
