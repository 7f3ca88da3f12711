"""MqttLink driven by an asyncio loop (``start_on_loop``): same contract as the threaded link."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest

from openshelf.contract import Channel, DeviceStatus, Kind, TagEvent, topic
from openshelf.mqtt import MqttLink, MqttLinkError
from openshelf.site import BrokerSettings
from tests.helpers import Mosquitto
from tests.shared.test_mqtt_link import _retained_status


def _link(url: str, site: str, device: str, kind: Kind = Kind.READER) -> MqttLink:
    return MqttLink(BrokerSettings(url=url), client_id=f"{site}-{device}",
                    status_topic=topic(site, kind, device, Channel.STATUS))


async def _until(predicate: Callable[[], Any], timeout_s: float = 10.0, what: str = "") -> Any:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not (value := predicate()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)
    return value


def _event(n: int) -> TagEvent:
    return TagEvent(reader_id="r1", uid=f"E0040100000003{n:02X}", item_id="I0003")


async def test_messages_reach_handlers_on_the_loop_thread_and_status_follows_the_link(broker_url, site_id):
    receiver = _link(broker_url, site_id, "backend", Kind.BACKEND)
    sender = _link(broker_url, site_id, "r1")
    reads = topic(site_id, Kind.READER, "r1", Channel.EVENT, "tag_arrived")
    got: list[tuple[TagEvent, int]] = []
    receiver.subscribe(reads, TagEvent, lambda parts, event: got.append((event, threading.get_ident())))
    receiver.start_on_loop()
    sender.start_on_loop()
    status_topic = topic(site_id, Kind.READER, "r1", Channel.STATUS)
    try:
        await _until(lambda: receiver.connected.is_set() and sender.connected.is_set(), what="both connected")
        first, second = _event(1), _event(2)
        sender.publish(reads, first)  # from the loop
        await asyncio.to_thread(sender.publish, reads, second)  # from another thread
        await _until(lambda: len(got) == 2, what="both events")
        assert [event for event, _ in got] == [first, second]
        assert {thread for _, thread in got} == {threading.get_ident()}
        online = await asyncio.to_thread(_retained_status, broker_url, status_topic)
        assert online is not None and online.online is True
        with pytest.raises(MqttLinkError):
            sender.stop()  # on its own loop it must be awaited
    finally:
        await sender.aclose()
        await receiver.aclose()
    offline: DeviceStatus | None = await asyncio.to_thread(_retained_status, broker_url, status_topic)
    assert offline is not None and offline.online is False
    assert not sender.connected.is_set()


async def test_reconnects_and_resubscribes_after_broker_restart(tmp_path, site_id):
    broker = Mosquitto(tmp_path).start()
    receiver = _link(broker.url, site_id, "backend", Kind.BACKEND)
    sender = _link(broker.url, site_id, "r1")
    reads = topic(site_id, Kind.READER, "r1", Channel.EVENT, "tag_arrived")
    got: list[TagEvent] = []
    receiver.subscribe(reads, TagEvent, lambda parts, event: got.append(event))
    receiver.start_on_loop()
    sender.start_on_loop()
    try:
        await _until(lambda: receiver.connected.is_set() and sender.connected.is_set(), what="connected")
        await asyncio.to_thread(broker.kill)
        await _until(lambda: not receiver.connected.is_set(), what="disconnect noticed")
        await asyncio.to_thread(broker.start)
        await _until(lambda: receiver.connected.is_set() and sender.connected.is_set(), timeout_s=20,
                     what="reconnect")
        event = _event(3)
        sender.publish(reads, event)
        await _until(lambda: got, what="event after restart")
        assert got == [event]
        assert receiver.stats.connects >= 2
    finally:
        await sender.aclose()
        await receiver.aclose()
        await asyncio.to_thread(broker.stop)


async def test_a_link_that_never_reached_its_broker_closes_cleanly(site_id):
    link = MqttLink(BrokerSettings(url="mqtt://127.0.0.1:1"), client_id=f"{site_id}-lonely")
    link.start_on_loop()
    await asyncio.sleep(0.2)  # the first attempt is refused
    assert not link.connected.is_set()
    await link.aclose()


async def test_stop_from_another_thread_closes_a_loop_driven_link(broker_url, site_id):
    link = _link(broker_url, site_id, "r2")
    link.start_on_loop()
    await _until(link.connected.is_set, what="connected")
    await asyncio.to_thread(link.stop)
    assert not link.connected.is_set()
    status = await asyncio.to_thread(_retained_status, broker_url, topic(site_id, Kind.READER, "r2", Channel.STATUS))
    assert status is not None and status.online is False


async def test_a_burst_larger_than_one_read_pass_arrives_whole(broker_url, site_id):
    """More messages than one pass handles (256) sit in the socket buffer at once: none may be left behind."""
    receiver = _link(broker_url, site_id, "backend", Kind.BACKEND)
    reads = topic(site_id, Kind.READER, "r1", Channel.EVENT, "tag_arrived")
    got: list[str] = []
    receiver.subscribe(reads, TagEvent, lambda parts, event: got.append(event.event_id))
    receiver.start_on_loop()
    sender = _link(broker_url, site_id, "r1")
    try:
        await _until(receiver.connected.is_set, what="receiver connected")
        assert await asyncio.to_thread(sender.start)
        events = [_event(n % 250) for n in range(600)]
        await asyncio.to_thread(lambda: [sender.publish(reads, event) for event in events])
        await _until(lambda: len(got) == len(events), what="every event of the burst")
        assert got == [event.event_id for event in events]
    finally:
        await asyncio.to_thread(sender.stop)
        await receiver.aclose()
