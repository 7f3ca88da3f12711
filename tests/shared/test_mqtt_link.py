"""MqttLink against a real Mosquitto: validation at the edge, de-duplication, expiry, reconnect."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from openshelf.contract import (
    AlarmCommand, AlarmItem, AlarmReason, Channel, DeviceStatus, Kind, TagEvent, topic, utcnow,
)
from openshelf.mqtt import MqttLink
from openshelf.site import BrokerSettings
from tests.helpers import Mosquitto, wait_for


def _link(url: str, site: str, device: str = "r1", kind: Kind = Kind.READER) -> MqttLink:
    return MqttLink(BrokerSettings(url=url), client_id=f"{site}-{device}",
                    status_topic=topic(site, kind, device, Channel.STATUS))


def _raw_client(url: str) -> paho.Client:
    settings = BrokerSettings(url=url)
    client = paho.Client(CallbackAPIVersion.VERSION2)
    client.connect(settings.host, settings.port)
    client.loop_start()
    return client


def _retained_status(url: str, status_topic: str) -> DeviceStatus | None:
    got: list[DeviceStatus] = []
    done = threading.Event()
    client = paho.Client(CallbackAPIVersion.VERSION2)

    def on_message(c, u, msg):
        got.append(DeviceStatus.model_validate_json(msg.payload))
        done.set()

    client.on_message = on_message
    settings = BrokerSettings(url=url)
    client.connect(settings.host, settings.port)
    client.subscribe(status_topic, qos=1)
    client.loop_start()
    done.wait(2)
    client.loop_stop()
    client.disconnect()
    return got[0] if got else None


def test_valid_messages_arrive_and_malformed_ones_are_counted_and_dropped(broker_url, site_id):
    receiver = _link(broker_url, site_id, "backend", Kind.BACKEND)
    received: list[TagEvent] = []
    receiver.subscribe(topic(site_id, Kind.READER, "+", Channel.EVENT, "tag_arrived", wildcards=True),
                       TagEvent, lambda parts, msg: received.append(msg))
    assert receiver.start()
    sender = _raw_client(broker_url)
    try:
        target = topic(site_id, Kind.READER, "r1", Channel.EVENT, "tag_arrived")
        good = TagEvent(reader_id="r1", uid="E004010000000301", item_id="I0003")
        sender.publish(target, b"{not json", qos=1)
        sender.publish(target, json.dumps({**good.model_dump(mode="json"), "patron": "x"}), qos=1)
        sender.publish(target, good.model_dump_json(), qos=1)
        sender.publish(target, good.model_dump_json(), qos=1)  # a QoS 1 redelivery
        wait_for(lambda: len(received) == 1 and receiver.stats.duplicates == 1, what="good + duplicate")
        assert received[0] == good
        assert receiver.stats.malformed == 2
    finally:
        sender.loop_stop()
        sender.disconnect()
        receiver.stop()


def test_expired_commands_are_ignored(broker_url, site_id):
    gate = _link(broker_url, site_id, "g1", Kind.GATE)
    got: list[AlarmCommand] = []
    cmd_topic = topic(site_id, Kind.GATE, "g1", Channel.CMD, "alarm")
    gate.subscribe(cmd_topic, AlarmCommand, lambda parts, msg: got.append(msg))
    assert gate.start()
    backend = _link(broker_url, site_id, "backend", Kind.BACKEND)
    assert backend.start()
    try:
        item = AlarmItem(uid="E004010000000301", reason=AlarmReason.NOT_ON_LOAN)
        backend.publish(cmd_topic, AlarmCommand(alarm_id="old", items=[item], expires_at=utcnow() - timedelta(seconds=1)))
        backend.publish(cmd_topic, AlarmCommand(alarm_id="new", items=[item], expires_at=utcnow() + timedelta(seconds=5)))
        wait_for(lambda: got, what="live command")
        wait_for(lambda: gate.stats.expired == 1, what="expired command counted")
        assert [cmd.alarm_id for cmd in got] == ["new"]
    finally:
        backend.stop()
        gate.stop()


def test_status_online_then_offline_on_clean_stop(broker_url, site_id):
    link = _link(broker_url, site_id)
    status_topic = topic(site_id, Kind.READER, "r1", Channel.STATUS)
    assert link.start()
    status = wait_for(lambda: _retained_status(broker_url, status_topic), what="online status")
    assert status.online is True
    link.stop()
    assert _retained_status(broker_url, status_topic).online is False


def test_last_will_marks_a_dead_device_offline(tmp_path, site_id):
    """The will is published by the broker when the connection dies without a goodbye."""
    broker = Mosquitto(tmp_path).start()
    try:
        link = _link(broker.url, site_id)
        watcher = _link(broker.url, site_id, "backend", Kind.BACKEND)
        assert link.start() and watcher.start()
        status_topic = topic(site_id, Kind.READER, "r1", Channel.STATUS)
        statuses: list[bool] = []
        watcher.subscribe(status_topic, DeviceStatus, lambda parts, msg: statuses.append(msg.online))
        wait_for(lambda: statuses and statuses[-1] is True, what="online")
        link._client.socket().close()  # a crash: no DISCONNECT packet is sent
        wait_for(lambda: statuses[-1] is False, timeout_s=30, what="last will")
        link.stop()
        watcher.stop()
    finally:
        broker.stop()


def test_reconnects_and_resubscribes_after_broker_restart(tmp_path, site_id):
    broker = Mosquitto(tmp_path).start()
    receiver = _link(broker.url, site_id, "backend", Kind.BACKEND)
    sender = _link(broker.url, site_id)
    received: list[TagEvent] = []
    receiver.subscribe(topic(site_id, Kind.READER, "r1", Channel.EVENT, "tag_arrived"),
                       TagEvent, lambda parts, msg: received.append(msg))
    try:
        assert receiver.start() and sender.start()
        broker.kill()
        wait_for(lambda: not receiver.connected.is_set(), what="disconnect noticed")
        broker.start()
        wait_for(lambda: receiver.connected.is_set() and sender.connected.is_set(), timeout_s=20, what="reconnect")
        event = TagEvent(reader_id="r1", uid="E004010000000301", item_id="I0003")
        sender.publish(topic(site_id, Kind.READER, "r1", Channel.EVENT, "tag_arrived"), event)
        wait_for(lambda: received, what="event after restart")
        assert received == [event]
        assert receiver.stats.connects >= 2
    finally:
        sender.stop()
        receiver.stop()
        broker.stop()
