"""The generated Mosquitto configuration: one user per device, each publishing only its own topics."""

from __future__ import annotations

import threading

import paho.mqtt.client as paho
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from openshelf.broker import EmbeddedBroker, render_acl, load_acl_policy, write_mosquitto_files
from openshelf.contract import AlarmCommand, AlarmItem, AlarmReason, Channel, Kind, expires_in, topic
from openshelf.demo import demo_site
from openshelf.site import load_site
from tests.helpers import MOSQUITTO_RUN_AS, Mosquitto, free_port, wait_for


def _site(tmp_path, port, **changes):
    data = demo_site(broker_url=f"mqtt://127.0.0.1:{port}", http_port=8000, modbus_port=5020, reader_port=7001)
    data.update(changes)
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return load_site(path)


def _client(port, user, password, name):
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=name)
    client.username_pw_set(user, password)
    connected = threading.Event()
    client.on_connect = lambda c, u, f, rc, p: connected.set() if not rc.is_failure else None
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client, connected


def test_acl_lists_each_device_with_its_own_topics(tmp_path):
    site = _site(tmp_path, 1883)
    acl = render_acl(site, load_acl_policy())
    gate_block = acl.split("user gate-1\n")[1].split("\n\n")[0]
    assert "topic write openshelf/v1/demo/gate/gate-1/state" in gate_block
    assert "topic read openshelf/v1/demo/gate/gate-1/cmd/+" in gate_block
    assert "camera" not in gate_block
    camera_block = acl.split("user cam-1\n")[1].split("\n\n")[0]
    assert "topic read openshelf/v1/demo/gate/+/event/+" in camera_block
    assert "/cmd/" not in camera_block.replace("camera/cam-1/cmd/+", "")


def test_sim_user_exists_only_on_demo_sites(tmp_path):
    demo = _site(tmp_path, 1883)
    assert "user sim\n" in render_acl(demo, load_acl_policy())


def test_a_device_cannot_publish_another_devices_commands(tmp_path, site_id):
    port = free_port()
    site = _site(tmp_path, port, site=site_id)
    conf = write_mosquitto_files(site, tmp_path / "broker", port=port, persistent=False, run_as=MOSQUITTO_RUN_AS)
    broker = Mosquitto(tmp_path, conf=conf, port=port).start()
    received: list[str] = []
    clients = []
    try:
        gate, gate_up = _client(port, "gate-1", site.secret_of("gate-1"), f"{site_id}-gate")
        gate.on_message = lambda c, u, msg: received.append(AlarmCommand.model_validate_json(msg.payload).alarm_id)
        clients.append(gate)
        assert gate_up.wait(5)
        gate.subscribe(topic(site_id, Kind.GATE, "gate-1", Channel.CMD, "alarm"), qos=1)
        camera, camera_up = _client(port, "cam-1", site.secret_of("cam-1"), f"{site_id}-cam")
        backend, backend_up = _client(port, "backend", site.secret_of("backend"), f"{site_id}-backend")
        clients += [camera, backend]
        assert camera_up.wait(5) and backend_up.wait(5)
        item = AlarmItem(uid="E004010000000301", reason=AlarmReason.NOT_ON_LOAN)
        alarm_topic = topic(site_id, Kind.GATE, "gate-1", Channel.CMD, "alarm")
        forged = AlarmCommand(alarm_id="forged-by-camera", items=[item], expires_at=expires_in(5))
        camera.publish(alarm_topic, forged.model_dump_json(), qos=1).wait_for_publish(5)
        real = AlarmCommand(alarm_id="from-backend", items=[item], expires_at=expires_in(5))
        backend.publish(alarm_topic, real.model_dump_json(), qos=1).wait_for_publish(5)
        wait_for(lambda: "from-backend" in received, what="backend's command")
        assert received == ["from-backend"]
    finally:
        for client in clients:
            client.loop_stop()
            client.disconnect()
        broker.stop()


def test_wrong_password_is_refused(tmp_path, site_id):
    port = free_port()
    site = _site(tmp_path, port, site=site_id)
    conf = write_mosquitto_files(site, tmp_path / "broker", port=port, persistent=False, run_as=MOSQUITTO_RUN_AS)
    broker = Mosquitto(tmp_path, conf=conf, port=port).start()
    refused = threading.Event()
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"{site_id}-intruder")
    client.username_pw_set("gate-1", "wrong")
    client.on_connect = lambda c, u, f, rc, p: refused.set() if rc.is_failure else None
    try:
        client.connect("127.0.0.1", port)
        client.loop_start()
        assert refused.wait(5)
    finally:
        client.loop_stop()
        client.disconnect()
        broker.stop()


def test_embedded_broker_refuses_non_loopback():
    with pytest.raises(ValueError):
        EmbeddedBroker(host="0.0.0.0")


def test_embedded_broker_carries_messages(site_id):
    from openshelf.contract import TagEvent
    from openshelf.mqtt import MqttLink
    from openshelf.site import BrokerSettings

    broker = EmbeddedBroker(port=free_port())
    broker.start()
    try:
        settings = BrokerSettings(url=broker.url)
        receiver = MqttLink(settings, client_id=f"{site_id}-rx")
        got = []
        event_topic = topic(site_id, Kind.READER, "r1", Channel.EVENT, "tag_arrived")
        receiver.subscribe(event_topic, TagEvent, lambda parts, msg: got.append(msg))
        sender = MqttLink(settings, client_id=f"{site_id}-tx")
        assert receiver.start() and sender.start()
        event = TagEvent(reader_id="r1", uid="E004010000000301", item_id="I0003")
        sender.publish(event_topic, event)
        wait_for(lambda: got, what="message through amqtt")
        assert got == [event]
        sender.stop()
        receiver.stop()
    finally:
        broker.stop()
