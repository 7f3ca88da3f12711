"""A camera outage: live → stale → live, and an alarm during it gets the reason instead of a snapshot and a clip."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import cv2

from cameras.grabber import GrabberSettings
from cameras.service import CameraService, EvidenceOptions
from cameras.source import OpenCvSource, SyntheticSource
from cameras.synthetic_server import MjpegServer
from cameras.uploader import Uploader
from openshelf.contract import AlarmItem, AlarmReason, Channel, GateAlarmEvent, Kind, StreamState, topic, utcnow
from openshelf.site import CameraSettings
from tests.cameras.fake_backend import FakeBackend
from tests.cameras.fakes import FakeLink, RecordingSink
from tests.helpers import wait_for

FAST_GRABBER = GrabberSettings(stale_after_s=0.3, backoff_initial_s=0.02, backoff_max_s=0.1,
                               watchdog_interval_s=0.02)
OPTIONS = EvidenceOptions(pre_s=1.0, post_s=0.5, buffer_slack_s=1.0, clip_grace_s=0.5, snapshot_wait_s=0.5,
                          clip_max_gap_s=0.5)
SETTINGS = CameraSettings(id="cam1", gates=["g1"], source="synthetic://")
ITEM = AlarmItem(uid="E004010012345678", item_id="I0003", reason=AlarmReason.NOT_ON_LOAN)


def _alarm(site_id: str, alarm_id: str) -> tuple[str, GateAlarmEvent]:
    event = GateAlarmEvent(gate_id="g1", alarm_id=alarm_id, items=[ITEM], started_at=utcnow())
    return topic(site_id, Kind.GATE, "g1", Channel.EVENT, "alarm"), event


def _wait_for_preroll(service: CameraService, seconds: float = 0.8) -> None:
    def enough() -> bool:
        frames = service.ring.snapshot()
        return bool(frames) and frames[-1].captured_at - frames[0].captured_at >= timedelta(seconds=seconds)

    wait_for(enough, what=f"{seconds} s of pre-roll")


def _wait_for_preroll_since(service: CameraService, moment: datetime, seconds: float = 1.0) -> None:
    """Frames from before an outage may linger in the ring; wait for a full pre-roll after ``moment``."""
    wait_for(lambda: service.ring.latest().captured_at >= moment + timedelta(seconds=seconds),
             what=f"{seconds} s of frames since {moment.isoformat()}")


def _wait_until_last_frame_is_old(service: CameraService) -> None:
    # Frames from just before the outage would still be fair evidence; wait until none is near "now".
    wait_for(lambda: utcnow() - service.ring.latest().captured_at > timedelta(seconds=0.7), what="an old last frame")


def test_alarm_during_an_outage_is_reported_with_the_reason_then_the_stream_is_live_again(tmp_path, site_id):
    link, sink = FakeLink(), RecordingSink()
    source = SyntheticSource(width=160, height=90, fps=25)
    service = CameraService(link, SETTINGS, source, sink, site_id, evidence_dir=tmp_path / "evidence",
                            options=OPTIONS, grabber_settings=FAST_GRABBER)
    service.start()
    try:
        _wait_for_preroll(service)
        source.go_offline()
        wait_for(lambda: service.grabber.stream is StreamState.STALE, what="stale")
        _wait_until_last_frame_is_old(service)
        link.deliver(*_alarm(site_id, "OUT1"))
        wait_for(lambda: len(sink.of("problem")) == 2, what="snapshot and clip problems")
        source.go_online()
        wait_for(lambda: service.grabber.stream is StreamState.LIVE, what="live again")
    finally:
        service.stop()
    problems = {call.args[0]: call.args[1] for call in sink.of("problem") if call.alarm_id == "OUT1"}
    assert set(problems) == {"snapshot", "clip"}
    assert "stale" in problems["snapshot"] and "stale" in problems["clip"]
    assert "synthetic camera offline" in problems["clip"]  # the cause the grabber saw, kept from the alarm time
    assert sink.of("clip") == sink.of("snapshot") == []
    streams = [state.stream for state in link.states()]
    live_again = streams.index(StreamState.STALE) + streams[streams.index(StreamState.STALE):].index(StreamState.LIVE)
    assert streams[0] is StreamState.CONNECTING and streams.index(StreamState.LIVE) < live_again


def test_camera_server_going_away_and_back_over_http(tmp_path, site_id):
    """The real OpenCV/FFmpeg path and real uploads: problems for the outage alarm, a clip with pre-roll after."""
    backend = FakeBackend().start()
    server = MjpegServer(width=320, height=180, fps=20).start()
    link = FakeLink()
    uploader = Uploader(tmp_path / "spool", backend.url, "cam1", "camera-secret-1", backoff_initial_s=0.05)
    source = OpenCvSource(server.url, open_timeout_s=1, read_timeout_s=0.5)
    service = CameraService(link, SETTINGS, source, uploader, site_id, evidence_dir=tmp_path / "evidence",
                            options=OPTIONS, grabber_settings=FAST_GRABBER)
    uploader.start()
    service.start()
    try:
        _wait_for_preroll(service)
        server.stop()
        wait_for(lambda: service.grabber.stream is StreamState.STALE, what="stale after the camera went away")
        _wait_until_last_frame_is_old(service)
        topic_name, outage_alarm = _alarm(site_id, "HTTP-OUT")
        link.deliver(topic_name, outage_alarm)
        wait_for(lambda: len(backend.accepted("/api/evidence/HTTP-OUT/problem")) == 2, what="two problem reports")
        server = MjpegServer(port=server.port, width=320, height=180, fps=20).start()
        wait_for(lambda: service.grabber.stream is StreamState.LIVE, what="live again")
        _wait_for_preroll_since(service, utcnow(), 0.7)
        topic_name, alarm = _alarm(site_id, "HTTP-AFTER")
        link.deliver(topic_name, alarm)
        wait_for(lambda: backend.accepted("/api/evidence/HTTP-AFTER/clip"), what="clip upload")
    finally:
        service.stop()
        uploader.stop()
        server.stop()
        backend.stop()
    reports = [json.loads(r.body) for r in backend.accepted("/api/evidence/HTTP-OUT/problem")]
    assert sorted(report["kind"] for report in reports) == ["clip", "snapshot"]
    assert all(report["camera_id"] == "cam1" and "stale" in report["problem"] for report in reports)
    assert backend.accepted("/api/evidence/HTTP-OUT/snapshot") == backend.accepted("/api/evidence/HTTP-OUT/clip") == []
    [clip] = backend.accepted("/api/evidence/HTTP-AFTER/clip")
    assert clip.headers["content-type"] == "video/x-msvideo" and clip.body[:4] == b"RIFF"
    sidecar = json.loads((tmp_path / "evidence" / "HTTP-AFTER" / "clip.avi.json").read_text())
    times = [datetime.fromisoformat(frame["captured_at"]) for frame in sidecar["frames"]]
    # Frames from before the alarm (pre-roll) and after it, and the video holds exactly those frames.
    assert times[0] <= alarm.started_at - timedelta(seconds=0.5) and times[-1] > alarm.started_at
    assert datetime.fromisoformat(clip.headers["x-captured-at"]) == times[0]
    capture = cv2.VideoCapture(str(tmp_path / "evidence" / "HTTP-AFTER" / "clip.avi"))
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    assert count == len(times)
