"""MJPEG AVI muxing: the ring's JPEGs go into the clip byte for byte, and players read it back."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import cv2
import numpy as np
import pytest

from cameras.avi import AviError, jpeg_size, write_mjpeg_avi
from cameras.evidence import write_clip
from cameras.ringbuffer import FrameRing, encode_jpeg
from tests.cameras.frames import checkerboard

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=timezone.utc)


def _jpegs(count: int, width: int = 160, height: int = 120) -> list[bytes]:
    return [encode_jpeg(checkerboard(width, height, shade=index * 7)) for index in range(count)]


@pytest.mark.parametrize("size", [(160, 120), (1280, 720), (17, 33)])
def test_jpeg_size_reads_the_frame_header(size):
    assert jpeg_size(encode_jpeg(checkerboard(*size))) == size


NOT_JPEG = [b"", b"GIF89a", b"\xff\xd8\xff\xe0\x00\x10JFIF", b"\xff\xd8" + b"\x00" * 40 + b"\xff\xd9"]


@pytest.mark.parametrize("data", NOT_JPEG)
def test_jpeg_size_refuses_what_is_not_a_complete_jpeg(data):
    with pytest.raises(AviError):
        jpeg_size(data)


def test_a_truncated_jpeg_is_refused():
    jpeg = encode_jpeg(checkerboard())
    with pytest.raises(AviError, match="truncated"):
        jpeg_size(jpeg[: len(jpeg) // 2])


def _read_back(path, raw: bool) -> list:
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    assert capture.isOpened()
    if raw:
        assert capture.set(cv2.CAP_PROP_FORMAT, -1)
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    fps = capture.get(cv2.CAP_PROP_FPS)
    capture.release()
    return frames, fps


def test_avi_holds_the_jpegs_byte_for_byte_and_decodes(tmp_path):
    jpegs = _jpegs(7)
    jpegs[3] += b"\0" if len(jpegs[3]) % 2 == 0 else b""  # one odd-length chunk, which needs RIFF padding
    assert any(len(jpeg) % 2 for jpeg in jpegs)
    path = tmp_path / "clip.avi"
    write_mjpeg_avi(path, jpegs, 12.5, (160, 120))
    packets, fps = _read_back(path, raw=True)
    assert [packet.tobytes() for packet in packets] == jpegs
    assert fps == pytest.approx(12.5, rel=0.01)
    images, _ = _read_back(path, raw=False)
    assert len(images) == 7 and images[0].shape == (120, 160, 3)
    expected = [cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR) for jpeg in jpegs]
    assert all(np.abs(a.astype(int) - b.astype(int)).mean() < 2 for a, b in zip(images, expected))


def test_write_avi_needs_frames_and_a_rate(tmp_path):
    with pytest.raises(AviError):
        write_mjpeg_avi(tmp_path / "a.avi", [], 10, (16, 16))
    with pytest.raises(AviError):
        write_mjpeg_avi(tmp_path / "a.avi", _jpegs(1), 0, (160, 120))


def test_clip_skips_broken_frames_and_resizes_odd_sized_ones(tmp_path):
    ring = FrameRing(seconds=60)
    good = _jpegs(4)
    ring.push_jpeg(good[0], T0, 1.0)
    ring.push_jpeg(good[1][:300], T0 + timedelta(seconds=0.1), 1.1)  # truncated in transit
    ring.push_jpeg(encode_jpeg(checkerboard(320, 240)), T0 + timedelta(seconds=0.2), 1.2)  # camera changed size
    ring.push_jpeg(good[3], T0 + timedelta(seconds=0.3), 1.3)
    clip = write_clip(ring.snapshot(), tmp_path / "clip.avi", alarm_at=T0)
    sidecar = json.loads(clip.sidecar_path.read_text())
    assert clip.frames == 3
    assert [entry["offset_s"] for entry in sidecar["frames"]] == [0.0, 0.2, 0.3]
    packets, _ = _read_back(clip.path, raw=True)
    assert packets[0].tobytes() == good[0] and packets[2].tobytes() == good[3]
    assert jpeg_size(packets[1].tobytes()) == (160, 120)
