"""Real H.264 for camera tests: two small clips of the simulator's picture, and their packets in a ring.

The clips in ``data/`` are 4 s of ``SyntheticSource`` at 320x180, 10 fps, a keyframe every
10 frames, made once with ffmpeg/libx264 (tests need no H.264 encoder; OpenCV's wheel has none):

    ffmpeg -f rawvideo -pix_fmt bgr24 -s 320x180 -r 10 -i - -c:v libx264 -preset veryfast -g 10 -crf 30
           -profile:v high               -pix_fmt yuv420p -movflags +faststart h264_bframes_320x180.mp4
           -profile:v main -bf 0         (likewise)                            h264_ipcam_320x180.mp4

``bframes`` has B-frames (pictures arrive out of the order they are shown); ``ipcam`` has none,
like most IP cameras.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import cv2
import numpy as np

from cameras.ringbuffer import BufferedFrame, FrameRing
from cameras.source import OpenCvSource

DATA = Path(__file__).parent / "data"
BFRAMES = DATA / "h264_bframes_320x180.mp4"
IPCAM = DATA / "h264_ipcam_320x180.mp4"
CLIPS = {"bframes": BFRAMES, "ipcam": IPCAM}
FRAMES_PER_CLIP = 40
GOP = 10
T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=timezone.utc)


def packet_ring(path: Path, count: int = FRAMES_PER_CLIP, step_s: float = 0.1, seconds: float = 60.0) -> FrameRing:
    """The clip's first ``count`` packets in a ring, arriving every ``step_s`` from ``T0`` (in decode order)."""
    source = OpenCvSource(str(path), realtime=False)
    source.open()
    ring = FrameRing(seconds=seconds)
    try:
        while len(ring) < count:
            frame = source.read()
            assert frame is not None and frame.packet is not None, "expected H.264 packets"
            index = len(ring)
            ring.push_packet(frame.packet, T0 + timedelta(seconds=index * step_s), 1000.0 + index * step_s)
    finally:
        source.close()
    return ring


def reference_pictures(path: Path, count: int = FRAMES_PER_CLIP) -> list[np.ndarray]:
    """The clip decoded the ordinary way: pictures in the order they are shown."""
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    pictures = []
    try:
        while len(pictures) < count:
            ok, image = capture.read()
            if not ok:
                break
            pictures.append(image)
    finally:
        capture.release()
    return pictures


def decode_file(path: Path) -> list[tuple[float, np.ndarray]]:
    """Every picture of a video file with its timestamp in seconds."""
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    pictures = []
    try:
        while True:
            ok, image = capture.read()
            if not ok:
                return pictures
            pictures.append((capture.get(cv2.CAP_PROP_POS_MSEC) / 1000, image))
    finally:
        capture.release()


def keyframes(frames: list[BufferedFrame]) -> list[int]:
    return [index for index, frame in enumerate(frames) if frame.keyframe]
