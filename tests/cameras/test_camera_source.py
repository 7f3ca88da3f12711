"""Frame sources: the simulator, the source factory, and OpenCV against a real file and a real MJPEG stream."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import cv2
import numpy as np
import pytest

from cameras.source import Frame, OpenCvSource, redact_credentials, SourceError, SyntheticSource, make_source
from cameras.synthetic_server import MjpegServer


def test_synthetic_frames_carry_increasing_utc_timestamps_and_counters():
    source = SyntheticSource(width=160, height=90, fps=50)
    source.open()
    try:
        frames = [source.read() for _ in range(5)]
    finally:
        source.close()
    assert all(frame is not None for frame in frames)
    times = [frame.captured_at for frame in frames]
    assert all(t.tzinfo is timezone.utc for t in times)
    assert times == sorted(times) and len(set(times)) == 5
    assert abs(datetime.now(timezone.utc) - times[-1]) < timedelta(seconds=30)
    assert [frame.index for frame in frames] == [1, 2, 3, 4, 5]
    assert [frame.monotonic for frame in frames] == sorted(frame.monotonic for frame in frames)
    assert frames[0].image.shape == (90, 160, 3)
    assert not np.array_equal(frames[0].image, frames[1].image)  # the shape moves


def test_synthetic_frames_show_the_timestamp_overlay():
    source = SyntheticSource(width=320, height=180, fps=50)
    source.open()
    frame = source.read()
    source.close()
    top_band = frame.image[: int(180 * 0.2)]
    assert (top_band.min(axis=2) > 200).sum() > 50  # white text on a dark grid


def test_stall_resume_and_drop():
    source = SyntheticSource(width=64, height=48, fps=100)
    source.open()
    assert source.read() is not None
    source.stall()
    assert source.read() is None
    source.resume()
    assert source.read() is not None
    source.drop()
    with pytest.raises(SourceError):
        source.read()
    with pytest.raises(SourceError):
        source.read()  # stays broken until reopened
    source.open()
    assert source.read() is not None
    assert source.opens == 2
    source.close()


def test_make_source_picks_by_url():
    synthetic = make_source("synthetic://?fps=25&width=320&height=240", fps=10, width=1280, height=720)
    assert isinstance(synthetic, SyntheticSource)
    assert (synthetic.width, synthetic.height, synthetic.fps) == (320, 240, 25)
    plain = make_source("synthetic://", fps=5, width=640, height=360)
    assert (plain.width, plain.height, plain.fps) == (640, 360, 5)
    for url in ("rtsp://cam.local/stream1", "http://10.0.0.5/video.mjpg", "/dev/video0", "/srv/demo.avi"):
        assert isinstance(make_source(url), OpenCvSource), url


@pytest.mark.parametrize("url", ["", "ftp://cam/x", "/dev/sda", "synthetic://?fps=fast", "synthetic://?width=2"])
def test_make_source_refuses_nonsense(url):
    with pytest.raises(SourceError):
        make_source(url)


def _write_video(path: Path, count: int) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (160, 120))
    assert writer.isOpened()
    for index in range(count):
        writer.write(np.full((120, 160, 3), 10 + index * 12, dtype=np.uint8))
    writer.release()


def test_opencv_reads_a_video_file_in_order_then_reports_its_end(tmp_path):
    path = tmp_path / "clip.avi"
    _write_video(path, 12)
    source = OpenCvSource(str(path), 2, 2, realtime=False)
    source.open()
    frames = []
    with pytest.raises(SourceError):
        while True:
            frames.append(source.read())
    source.close()
    assert len(frames) == 12
    assert all(frame.image is None and frame.jpeg[:2] == b"\xff\xd8" for frame in frames)  # MJPG: passthrough
    brightness = [float(frame.pixels().mean()) for frame in frames]
    assert brightness == sorted(brightness)
    assert frames[0].pixels().shape == (120, 160, 3)
    assert frames[-1].captured_at >= frames[0].captured_at


def test_opencv_missing_file_and_missing_device_fail_to_open(tmp_path):
    for target in (str(tmp_path / "none.avi"), "/dev/video99"):
        source = OpenCvSource(target, 1, 1)
        with pytest.raises(SourceError):
            source.open()
        with pytest.raises(SourceError):
            source.read()


@pytest.mark.parametrize("passthrough", [True, False])
def test_opencv_reads_the_synthetic_mjpeg_stream_and_times_out_when_it_stalls(passthrough):
    server = MjpegServer(width=320, height=180, fps=25).start()
    source = OpenCvSource(server.url, open_timeout_s=3, read_timeout_s=0.5, jpeg_passthrough=passthrough)
    try:
        source.open()
        assert source.passthrough is passthrough
        frames = [source.read() for _ in range(3)]
        assert [frame.pixels().shape for frame in frames] == [(180, 320, 3)] * 3
        # Passthrough keeps the camera's JPEG and decodes nothing; otherwise there are only pixels.
        assert all((frame.jpeg is not None, frame.image is None) == (passthrough, passthrough) for frame in frames)
        server.stall()
        with pytest.raises(SourceError):
            for _ in range(200):  # frames already in flight arrive first
                source.read()
        server.resume()
        source.open()
        assert source.read() is not None
    finally:
        source.close()
        server.stop()


def test_passthrough_gives_up_for_good_on_packets_that_are_not_jpeg():
    source = OpenCvSource("http://127.0.0.1:9/stream.mjpg")
    with pytest.raises(SourceError, match="decoding"):
        source._checked_jpeg(np.frombuffer(b"\x00\x00\x01\xb3 not a jpeg", dtype=np.uint8))
    assert source._passthrough_allowed is False


def test_synthetic_camera_offline_refuses_to_reopen_until_online():
    source = SyntheticSource(width=64, height=48, fps=100)
    source.open()
    assert source.read() is not None
    source.go_offline()
    with pytest.raises(SourceError):
        source.read()
    with pytest.raises(SourceError, match="offline"):
        source.open()
    source.go_online()
    source.open()
    assert source.read() is not None
    source.close()


def test_frame_needs_pixels_or_jpeg():
    with pytest.raises(ValueError):
        Frame(image=None, captured_at=datetime.now(timezone.utc), monotonic=0.0)


def test_credentials_in_a_stream_url_never_reach_logs_or_state(tmp_path):
    assert redact_credentials("rtsp://admin:s3cret@10.0.20.11:554/stream1") == "rtsp://***@10.0.20.11:554/stream1"
    assert redact_credentials("http://10.0.0.5/video.mjpg") == "http://10.0.0.5/video.mjpg"
    assert redact_credentials(str(tmp_path / "a@b.avi")) == str(tmp_path / "a@b.avi")
    source = OpenCvSource("rtsp://admin:s3cret@127.0.0.1:9/stream1", open_timeout_s=0.5, read_timeout_s=0.5)
    with pytest.raises(SourceError) as failure:
        source.open()
    assert "s3cret" not in str(failure.value) and "***@127.0.0.1:9" in str(failure.value)
