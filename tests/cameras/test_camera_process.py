"""`openshelf camera` as a real process: ready line, retained state, evidence upload, clean SIGTERM; an H.264 stream."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
import yaml

from openshelf.contract import (
    AlarmItem, AlarmReason, CameraState, Channel, GateAlarmEvent, Kind, StreamState, topic, utcnow,
)
from openshelf.mqtt import MqttLink
from openshelf.site import BrokerSettings
from tests.cameras.fake_backend import FakeBackend
from tests.cameras.h264_clips import BFRAMES
from tests.helpers import Proc, wait_for


def _wait(camera: Proc, predicate, what: str) -> None:
    try:
        wait_for(predicate, what=what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; camera log:\n{camera.log_text()[-3000:]}") from None


@pytest.mark.e2e
def test_camera_process_uploads_a_snapshot_for_a_gate_alarm(tmp_path, broker_url, site_id):
    backend = FakeBackend().start()
    site_file = tmp_path / "site.yaml"
    site_file.write_text(yaml.safe_dump({
        "site": site_id, "demo": True, "data_dir": "data",
        "broker": {"url": broker_url},
        "backend": {"public_url": backend.url},
        "gates": [{"id": "g1", "secret": "gate-secret-12"}],
        "cameras": [{"id": "cam1", "gates": ["g1"], "secret": "camera-secret-1",
                     "source": "synthetic://?fps=10&width=320&height=180"}],
    }))
    gate = MqttLink(BrokerSettings(url=broker_url), client_id=f"{site_id}-g1")
    states: list[CameraState] = []
    gate.subscribe(topic(site_id, Kind.CAMERA, "cam1", Channel.STATE), CameraState, lambda p, s: states.append(s))
    camera = Proc("camera", ["camera", "--site", str(site_file), "--device", "cam1"], tmp_path / "camera.log")
    try:
        camera.start()
        assert gate.start()
        _wait(camera, lambda: any(s.stream is StreamState.LIVE for s in states), "camera live")
        item = AlarmItem(uid="E004010012345678", reason=AlarmReason.UNKNOWN_TAG)
        gate.publish(topic(site_id, Kind.GATE, "g1", Channel.EVENT, "alarm"),
                     GateAlarmEvent(gate_id="g1", alarm_id="A1", items=[item]))
        _wait(camera, lambda: backend.accepted("/api/evidence/A1/snapshot"), "snapshot upload")
        assert camera.stop() == 0
    finally:
        camera.kill()
        gate.stop()
        backend.stop()
    assert camera.ready_line["camera"] == "cam1"
    [upload] = backend.accepted("/api/evidence/A1/snapshot")
    assert upload.basic_auth == ("cam1", "camera-secret-1")
    assert datetime.fromisoformat(upload.headers["x-captured-at"]).tzinfo is not None
    camera_dir = tmp_path / "data" / "cameras" / "cam1"
    assert (camera_dir / "evidence" / "A1" / "snapshot.jpg").read_bytes() == upload.body
    # Stopping early still builds the clip from the frames there were; it waits in the spool or went out.
    assert (camera_dir / "evidence" / "A1" / "clip.avi").exists()


@pytest.mark.e2e
def test_camera_process_on_an_h264_stream_uploads_an_mp4_clip_with_preroll(tmp_path, broker_url, site_id):
    """A real H.264 stream (a file played at its own rate): packets in the ring, live view from keyframes,
    alarm → JPEG snapshot and an MP4 of the camera's own packets starting before the alarm."""
    backend = FakeBackend().start()
    site_file = tmp_path / "site.yaml"
    site_file.write_text(yaml.safe_dump({
        "site": site_id, "demo": True, "data_dir": "data",
        "broker": {"url": broker_url},
        "backend": {"public_url": backend.url},
        "gates": [{"id": "g1", "secret": "gate-secret-12"}],
        "cameras": [{"id": "cam1", "gates": ["g1"], "secret": "camera-secret-1", "source": str(BFRAMES),
                     "pre_event_s": 1.0, "post_event_s": 1.0, "live_fps": 5.0}],
    }))
    gate = MqttLink(BrokerSettings(url=broker_url), client_id=f"{site_id}-g1")
    camera = Proc("camera", ["camera", "--site", str(site_file), "--device", "cam1"], tmp_path / "camera.log")
    try:
        camera.start()
        assert gate.start()
        # Live frames are the stream's keyframes, one a second: two of them a second apart = a second of pre-roll.
        _wait(camera, lambda: _live_span_s(backend) >= 1.0, "a second of stream seen through the live view")
        event = GateAlarmEvent(gate_id="g1", alarm_id="H1", started_at=utcnow(),
                               items=[AlarmItem(uid="E004010012345678", reason=AlarmReason.NOT_ON_LOAN)])
        gate.publish(topic(site_id, Kind.GATE, "g1", Channel.EVENT, "alarm"), event)
        _wait(camera, lambda: backend.accepted("/api/evidence/H1/clip"), "clip upload")
        assert camera.stop() == 0
    finally:
        camera.kill()
        gate.stop()
        backend.stop()
    [clip] = backend.accepted("/api/evidence/H1/clip")
    assert clip.headers["content-type"] == "video/mp4" and clip.body[4:8] == b"ftyp"
    assert datetime.fromisoformat(clip.headers["x-captured-at"]) <= event.started_at - timedelta(seconds=1)
    [snapshot] = backend.accepted("/api/evidence/H1/snapshot")
    assert snapshot.headers["content-type"] == "image/jpeg" and snapshot.body[:2] == b"\xff\xd8"
    sidecar = json.loads((tmp_path / "data" / "cameras" / "cam1" / "evidence" / "H1" / "clip.mp4.json").read_text())
    offsets = [frame["offset_s"] for frame in sidecar["frames"]]
    assert offsets[0] <= -1.0 and offsets[-1] >= 0.85 and any(-1.0 < offset < 0 for offset in offsets)
    live = backend.of("/api/cameras/cam1/live")
    assert all(request.headers["content-type"] == "image/jpeg" for request in live)


def _live_span_s(backend: FakeBackend) -> float:
    times = [datetime.fromisoformat(request.headers["x-captured-at"]) for request in backend.of("/live")]
    return (max(times) - min(times)).total_seconds() if times else 0.0
