"""Evidence: snapshot selection near the alarm time, and clips whose sidecar keeps every frame's time."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import cv2
import pytest

from cameras.evidence import EvidenceError, pick_snapshot, sharpness, write_clip, write_snapshot
from cameras.ringbuffer import FrameRing
from tests.cameras.frames import checkerboard, fill_ring

ALARM = datetime(2025, 3, 1, 12, 0, 0, tzinfo=timezone.utc)


def _ring_around_alarm(image=None):
    ring = FrameRing(seconds=30)
    # Frames every 100 ms from 2 s before the alarm, offset by 30 ms so none is exactly at the alarm.
    fill_ring(ring, ALARM - timedelta(seconds=2) + timedelta(milliseconds=30), 40, 0.1, image=image)
    return ring


def test_snapshot_is_the_frame_nearest_the_alarm():
    ring = _ring_around_alarm(image=checkerboard())
    chosen = pick_snapshot(ring.snapshot(), ALARM, window_s=0.5)
    assert chosen is not None
    assert chosen.captured_at == ALARM + timedelta(milliseconds=30)


def test_a_blurred_nearest_frame_loses_to_a_sharp_neighbour():
    sharp, blurred = checkerboard(), cv2.GaussianBlur(checkerboard(), (21, 21), 8)
    assert sharpness(blurred) < 0.5 * sharpness(sharp)
    ring = FrameRing(seconds=30)
    fill_ring(ring, ALARM - timedelta(milliseconds=70), 1, 0.1, image=sharp)
    fill_ring(ring, ALARM + timedelta(milliseconds=30), 1, 0.1, image=blurred, monotonic0=1000.1)
    fill_ring(ring, ALARM + timedelta(milliseconds=130), 1, 0.1, image=sharp, monotonic0=1000.2)
    chosen = pick_snapshot(ring.snapshot(), ALARM, window_s=0.5)
    assert chosen.captured_at == ALARM - timedelta(milliseconds=70)


def test_no_snapshot_when_no_frame_is_inside_the_window():
    ring = _ring_around_alarm()
    assert pick_snapshot(ring.snapshot(), ALARM + timedelta(seconds=10), window_s=0.5) is None
    assert pick_snapshot([], ALARM) is None


def test_write_snapshot_stores_the_jpeg_as_is(tmp_path):
    frame = _ring_around_alarm().latest()
    path = write_snapshot(frame, tmp_path / "A1" / "snapshot.jpg")
    assert path.read_bytes() == frame.jpeg
    assert cv2.imread(str(path)) is not None
    assert [p.name for p in path.parent.iterdir()] == ["snapshot.jpg"]


@pytest.mark.parametrize("suffix,content_type", [(".avi", "video/x-msvideo"), (".mp4", "video/mp4")])
def test_clip_holds_frames_from_before_and_after_the_alarm(tmp_path, suffix, content_type):
    ring = _ring_around_alarm()
    frames = ring.frames_between(ALARM - timedelta(seconds=1), ALARM + timedelta(seconds=1))
    clip = write_clip(frames, tmp_path / f"clip{suffix}", alarm_at=ALARM)
    assert clip.content_type == content_type
    assert clip.frames == len(frames) == 20
    sidecar = json.loads(clip.sidecar_path.read_text())
    offsets = [entry["offset_s"] for entry in sidecar["frames"]]
    assert offsets == sorted(offsets)
    assert offsets[0] < 0 < offsets[-1]
    assert [datetime.fromisoformat(e["captured_at"]) for e in sidecar["frames"]] == [f.captured_at for f in frames]
    assert sidecar["nominal_fps"] == pytest.approx(10, rel=0.01)
    capture = cv2.VideoCapture(str(clip.path))
    decoded = 0
    while capture.read()[0]:
        decoded += 1
    capture.release()
    assert decoded == 20
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f"clip{suffix}", f"clip{suffix}.json"])


def test_clip_errors_are_evidence_errors(tmp_path):
    frames = _ring_around_alarm().snapshot()
    with pytest.raises(EvidenceError):
        write_clip([], tmp_path / "clip.avi")
    with pytest.raises(EvidenceError):
        write_clip(frames, tmp_path / "clip.mkv")
