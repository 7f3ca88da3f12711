"""An H.264 camera end to end in-process: packet ring, snapshot decoded on alarm, MP4 clip with pre-roll, live view."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import cv2
import httpx
import numpy as np
import pytest

from cameras.avi import jpeg_size
from cameras.grabber import GrabberSettings
from cameras.evidence import EvidenceError, choose_snapshot, clip_suffix, write_clip
from cameras.live import LiveOptions, LivePusher
from cameras.ringbuffer import FrameRing
from cameras.service import CameraService, EvidenceOptions
from cameras.source import EncodedPacket, OpenCvSource, VideoStream
from openshelf.contract import AlarmItem, AlarmReason, Channel, GateAlarmEvent, Kind, topic, utcnow
from openshelf.site import CameraSettings
from tests.cameras.fakes import FakeLink, RecordingSink
from tests.cameras.h264_clips import BFRAMES, GOP, IPCAM, T0, decode_file, keyframes, packet_ring, reference_pictures
from tests.helpers import wait_for

STREAM = VideoStream(320, 180, b"", session=1)
FAST_GRABBER = GrabberSettings(stale_after_s=0.3, backoff_initial_s=0.02, backoff_max_s=0.1, watchdog_interval_s=0.02)


def _packet(keyframe: bool) -> EncodedPacket:
    return EncodedPacket(b"\x00\x00\x00\x01" + (b"\x65" if keyframe else b"\x41") + b"\x00" * 100, keyframe, None,
                         STREAM)


def _push(ring: FrameRing, count: int, gop: int = 5, step_s: float = 0.1) -> None:
    for index in range(count):
        ring.push_packet(_packet(index % gop == 0), T0 + timedelta(seconds=index * step_s), index * step_s)


def test_packets_leave_the_ring_a_whole_group_at_a_time_and_the_span_starts_at_a_keyframe():
    ring = FrameRing(seconds=1.0)
    for index in range(60):
        ring.push_packet(_packet(index % 5 == 0), T0 + timedelta(seconds=index * 0.1), index * 0.1)
        frames = ring.snapshot()
        assert frames[0].keyframe
        span = frames[-1].monotonic - frames[0].monotonic
        if index >= 15:
            assert 1.0 - 1e-9 <= span < 1.0 + 0.5  # at least the ring's span, at most a group more


def test_size_limits_never_leave_a_headless_group():
    ring = FrameRing(seconds=100, max_frames=7)
    _push(ring, 23)
    frames = ring.snapshot()
    assert frames[0].keyframe and len(frames) <= 7
    assert ring.nbytes == sum(len(frame.data) for frame in frames)


def test_from_keyframe_reaches_back_to_the_group_start_and_latest_keyframe_is_found():
    ring = FrameRing(seconds=100)
    _push(ring, 12)
    frames = ring.frames_between(T0 + timedelta(seconds=0.7), T0 + timedelta(seconds=0.9), from_keyframe=True)
    assert [round((frame.captured_at - T0).total_seconds(), 1) for frame in frames] == [0.5, 0.6, 0.7, 0.8, 0.9]
    assert len(ring.frames_between(T0 + timedelta(seconds=0.7), T0 + timedelta(seconds=0.9))) == 3
    assert ring.latest_keyframe().captured_at == T0 + timedelta(seconds=1.0)


@pytest.mark.parametrize("path", [BFRAMES, IPCAM], ids=["bframes", "ipcam"])
def test_the_snapshot_is_the_decoded_picture_nearest_the_alarm(path):
    ring = packet_ring(path)
    alarm = T0 + timedelta(seconds=1.52)
    window = timedelta(seconds=0.5)
    snapshot = choose_snapshot(ring.frames_between(alarm - window, alarm + window, from_keyframe=True), alarm)
    assert snapshot is not None
    assert snapshot.captured_at == T0 + timedelta(seconds=1.5)  # equally sharp pictures: the nearest wins
    picture = cv2.imdecode(np.frombuffer(snapshot.jpeg, np.uint8), cv2.IMREAD_COLOR)
    expected = reference_pictures(path, 16)[15]
    assert np.abs(picture.astype(int) - expected.astype(int)).mean() < 4  # the same picture, as JPEG


def test_no_snapshot_without_packets_near_the_alarm():
    ring = packet_ring(IPCAM, count=GOP)
    assert choose_snapshot(ring.snapshot(), T0 + timedelta(seconds=30)) is None


def test_an_h264_clip_is_an_mp4_of_the_packets_from_the_keyframe_before_the_preroll(tmp_path):
    ring = packet_ring(BFRAMES)
    alarm = T0 + timedelta(seconds=2.35)
    frames = ring.frames_between(alarm - timedelta(seconds=1), alarm + timedelta(seconds=1), from_keyframe=True)
    assert clip_suffix(frames) == ".mp4" and clip_suffix([]) == ".avi"
    clip = write_clip(frames, tmp_path / "clip.mp4", alarm_at=alarm)
    assert clip.content_type == "video/mp4"
    sidecar = json.loads(clip.sidecar_path.read_text())
    assert sidecar["fourcc"] == "avc1"
    offsets = [frame["offset_s"] for frame in sidecar["frames"]]
    assert offsets[0] == pytest.approx(-1.35)  # the keyframe at 1.0 s, before the pre-roll's start at 1.35 s
    assert offsets == sorted(offsets) and offsets[-1] >= 0.9
    decoded = decode_file(clip.path)
    assert len(decoded) == len(offsets) == clip.frames
    assert datetime.fromisoformat(sidecar["started_at"]) == clip.started_at == T0 + timedelta(seconds=1)
    with pytest.raises(EvidenceError):
        write_clip(frames, tmp_path / "clip.avi", alarm_at=alarm)


def test_the_live_view_of_an_h264_camera_is_its_newest_keyframe_decoded_once():
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(204)

    ring = packet_ring(IPCAM, count=2 * GOP + 4)
    newest_key = ring.snapshot()[keyframes(ring.snapshot())[-1]]
    pusher = LivePusher("cam1", ring, "http://backend.test", "secret", LiveOptions(fps=2, width=160),
                        transport=httpx.MockTransport(handler))
    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        pusher._tick(client)
        pusher._tick(client)  # no newer keyframe: nothing decoded, nothing sent
    [request] = requests
    assert jpeg_size(request.content) == (160, 90)
    assert datetime.fromisoformat(request.headers["x-captured-at"]) == newest_key.captured_at
    assert (pusher.sent, pusher.skipped) == (1, 1)


def test_the_service_gives_an_h264_camera_a_snapshot_and_an_mp4_clip_with_preroll(tmp_path, site_id):
    """A real H.264 stream (the file played at its own rate), alarm → snapshot + clip with frames before it."""
    link, sink = FakeLink(), RecordingSink()
    options = EvidenceOptions(pre_s=1.0, post_s=0.5, buffer_slack_s=0.5, clip_grace_s=0.5, snapshot_wait_s=1.0)
    settings = CameraSettings(id="cam1", gates=["g1"], source=str(BFRAMES))
    service = CameraService(link, settings, OpenCvSource(str(BFRAMES)), sink, site_id,
                            evidence_dir=tmp_path / "evidence", options=options, grabber_settings=FAST_GRABBER)
    service.start()
    try:
        wait_for(lambda: len(service.ring) and service.ring.latest().captured_at
                 - service.ring.snapshot()[0].captured_at >= timedelta(seconds=1.1), what="a second of pre-roll")
        event = GateAlarmEvent(gate_id="g1", alarm_id="H1", started_at=utcnow(),
                               items=[AlarmItem(uid="E004010012345678", reason=AlarmReason.NOT_ON_LOAN)])
        link.deliver(topic(site_id, Kind.GATE, "g1", Channel.EVENT, "alarm"), event)
        wait_for(lambda: sink.of("clip"), what="clip")
    finally:
        service.stop()
    assert sink.of("problem") == []
    [snapshot] = sink.of("snapshot")
    snapshot_path, snapshot_at = snapshot.args
    assert abs(snapshot_at - event.started_at) <= timedelta(seconds=0.5)
    assert jpeg_size(snapshot_path.read_bytes()) == (320, 180)
    [clip] = sink.of("clip")
    clip_path, clip_start, content_type = clip.args
    assert (clip_path.name, content_type) == ("clip.mp4", "video/mp4")
    sidecar = json.loads(clip_path.with_name("clip.mp4.json").read_text())
    times = [datetime.fromisoformat(frame["captured_at"]) for frame in sidecar["frames"]]
    assert times[0] == clip_start <= event.started_at - timedelta(seconds=options.pre_s)  # pre-roll in the clip
    assert times[-1] >= event.started_at + timedelta(seconds=options.post_s - 0.15)
    assert times == sorted(times)
    assert len(decode_file(clip_path)) == len(times)
