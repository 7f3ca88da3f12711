"""The camera service: alarm → snapshot, clip after the post-roll, problems when the stream is stale."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from cameras.grabber import GrabberSettings
from cameras.service import CameraService, EvidenceOptions
from cameras.source import SyntheticSource
from cameras.uploader import Uploader
from openshelf.contract import (
    AlarmItem, AlarmReason, CameraState, Channel, GateAlarmEvent, Kind, StreamState, topic, utcnow,
)
from openshelf.mqtt import MqttLink
from openshelf.site import BrokerSettings, CameraSettings
from tests.cameras.fake_backend import FakeBackend
from tests.cameras.fakes import FakeLink, RecordingSink
from tests.helpers import wait_for

FAST_GRABBER = GrabberSettings(stale_after_s=0.3, backoff_initial_s=0.02, backoff_max_s=0.1,
                               watchdog_interval_s=0.02)
SHORT_CLIPS = EvidenceOptions(pre_s=1.0, post_s=0.5, buffer_slack_s=1.0, clip_grace_s=0.5, snapshot_wait_s=1.0)
ITEM = AlarmItem(uid="E004010012345678", item_id="I0003", reason=AlarmReason.NOT_ON_LOAN)
SETTINGS = CameraSettings(id="cam1", gates=["g1", "g2"], source="synthetic://")


@pytest.fixture
def rig(tmp_path, site_id):
    link, sink = FakeLink(), RecordingSink()
    source = SyntheticSource(width=160, height=90, fps=25)
    service = CameraService(link, SETTINGS, source, sink, site_id, evidence_dir=tmp_path / "evidence",
                            options=SHORT_CLIPS, grabber_settings=FAST_GRABBER)
    service.start()
    yield service, link, sink, source
    service.stop()


def _alarm(site_id: str, gate: str, alarm_id: str, started_at: datetime | None = None) -> tuple[str, GateAlarmEvent]:
    event = GateAlarmEvent(gate_id=gate, alarm_id=alarm_id, items=[ITEM], started_at=started_at or utcnow())
    return topic(site_id, Kind.GATE, gate, Channel.EVENT, "alarm"), event


def _wait_for_preroll(service: CameraService) -> None:
    wait_for(lambda: len(service.ring) and service.ring.latest().captured_at - service.ring.snapshot()[0].captured_at
             >= timedelta(seconds=0.8), what="a second of pre-roll")


def test_subscribes_to_the_alarm_events_of_its_gates(rig, site_id):
    service, link, _, _ = rig
    assert sorted(link.handlers) == sorted(topic(site_id, Kind.GATE, gate, Channel.EVENT, "alarm")
                                           for gate in ("g1", "g2"))


def test_publishes_retained_camera_state_on_change(rig, site_id):
    service, link, _, _ = rig
    wait_for(lambda: any(s.stream is StreamState.LIVE for s in link.states()), what="live state")
    assert {(name, retain) for name, _, retain in link.published} == {
        (topic(site_id, Kind.CAMERA, "cam1", Channel.STATE), True)}
    assert link.states()[0].stream is StreamState.CONNECTING


def test_alarm_gives_a_snapshot_near_the_alarm_and_a_clip_with_preroll(rig, site_id):
    service, link, sink, _ = rig
    _wait_for_preroll(service)
    alarm_topic, event = _alarm(site_id, "g1", "A100")
    link.deliver(alarm_topic, event)
    wait_for(lambda: sink.of("clip"), what="clip")
    [snapshot] = sink.of("snapshot")
    path, captured_at = snapshot.args
    assert abs(captured_at - event.started_at) <= timedelta(seconds=SHORT_CLIPS.snapshot_window_s)
    assert path == service.evidence_dir / "A100" / "snapshot.jpg" and path.read_bytes()[:2] == b"\xff\xd8"
    [clip] = sink.of("clip")
    clip_path, clip_start, content_type = clip.args
    assert content_type == "video/x-msvideo" and clip_path.stat().st_size > 0
    sidecar = json.loads(clip_path.with_name(clip_path.name + ".json").read_text())
    times = [datetime.fromisoformat(frame["captured_at"]) for frame in sidecar["frames"]]
    assert times[0] < event.started_at < times[-1]
    assert times[0] <= event.started_at - timedelta(seconds=0.5)
    assert clip_start == times[0]
    assert sink.of("problem") == []


def test_a_repeated_alarm_id_is_handled_once_and_a_bad_one_is_ignored(rig, site_id):
    service, link, sink, _ = rig
    _wait_for_preroll(service)
    link.deliver(*_alarm(site_id, "g1", "A300"))
    link.deliver(*_alarm(site_id, "g2", "A300"))
    link.deliver(*_alarm(site_id, "g1", "../escape"))
    link.deliver(*_alarm(site_id, "g1", "A301"))
    wait_for(lambda: len(sink.of("clip")) == 2, what="two clips")
    assert sorted(call.alarm_id for call in sink.of("snapshot")) == ["A300", "A301"]
    assert not (service.evidence_dir.parent / "escape").exists()


def test_stopping_builds_clips_still_waiting_for_their_post_roll(tmp_path, site_id):
    link, sink = FakeLink(), RecordingSink()
    options = EvidenceOptions(pre_s=1.0, post_s=60.0, clip_grace_s=60.0, snapshot_wait_s=0.5)
    service = CameraService(link, SETTINGS, SyntheticSource(width=64, height=48, fps=25), sink, site_id,
                            evidence_dir=tmp_path / "evidence", options=options, grabber_settings=FAST_GRABBER)
    service.start()
    try:
        wait_for(lambda: service.ring.latest() is not None, what="frames")
        link.deliver(*_alarm(site_id, "g1", "A400"))
        wait_for(lambda: sink.of("snapshot"), what="snapshot")
        assert sink.of("clip") == []
    finally:
        service.stop()
    assert [call.alarm_id for call in sink.of("clip")] == ["A400"]


def test_alarm_over_real_mqtt_reaches_the_backend_as_a_snapshot_upload(tmp_path, broker_url, site_id):
    backend = FakeBackend().start()
    broker = BrokerSettings(url=broker_url)
    camera_link = MqttLink(broker, client_id=f"{site_id}-cam1",
                           status_topic=topic(site_id, Kind.CAMERA, "cam1", Channel.STATUS))
    gate_link = MqttLink(broker, client_id=f"{site_id}-g1")
    states: list[CameraState] = []
    gate_link.subscribe(topic(site_id, Kind.CAMERA, "cam1", Channel.STATE), CameraState,
                        lambda parts, state: states.append(state))
    uploader = Uploader(tmp_path / "spool", backend.url, "cam1", "camera-secret-1", backoff_initial_s=0.05)
    service = CameraService(camera_link, SETTINGS, SyntheticSource(width=160, height=90, fps=25), uploader,
                            site_id, evidence_dir=tmp_path / "evidence", options=SHORT_CLIPS,
                            grabber_settings=FAST_GRABBER)
    uploader.start()
    assert camera_link.start() and gate_link.start()
    service.start()
    try:
        wait_for(lambda: any(state.stream is StreamState.LIVE for state in states), what="retained live state")
        _wait_for_preroll(service)
        gate_link.publish(*_alarm(site_id, "g1", "A500"))
        wait_for(lambda: backend.accepted("/clip"), what="clip upload")
    finally:
        service.stop()
        gate_link.stop()
        camera_link.stop()
        uploader.stop()
        backend.stop()
    [snapshot] = backend.accepted("/api/evidence/A500/snapshot")
    assert snapshot.basic_auth == ("cam1", "camera-secret-1")
    assert snapshot.headers["content-type"] == "image/jpeg" and snapshot.body[:2] == b"\xff\xd8"
    started = datetime.fromisoformat(snapshot.headers["x-captured-at"])
    assert started.tzinfo is not None


def test_state_is_sent_again_after_a_reconnect(rig):
    service, link, _, _ = rig
    wait_for(lambda: any(s.stream is StreamState.LIVE for s in link.states()), what="live state")
    before = len(link.states())
    link.stats.connects += 1  # what MqttLink counts when it reconnects
    wait_for(lambda: len(link.states()) > before, what="state republished")
    assert link.states()[-1].stream is StreamState.LIVE
