"""Where frames come from: a camera stream, a device, a video file or the simulator.

Every source speaks the same small protocol. ``read()`` returns ``None`` when no
frame arrived in time (the stream may recover by itself) and raises
:class:`SourceError` when the source is broken and must be reopened.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, urlsplit

import cv2
import numpy as np

log = logging.getLogger(__name__)

_DEVICE_PATTERN = re.compile(r"^/dev/video(\d+)$")
_NETWORK_SCHEMES = {"rtsp", "rtsps", "http", "https"}


class SourceError(Exception):
    """A frame source cannot be opened or has stopped delivering frames."""


@dataclass(frozen=True)
class Frame:
    """One captured image with the wall-clock and monotonic time it was taken."""

    image: np.ndarray
    captured_at: datetime
    monotonic: float
    index: int = 0


class FrameSource(Protocol):
    def open(self) -> None: ...

    def read(self) -> Frame | None: ...

    def close(self) -> None: ...


def _now() -> tuple[datetime, float]:
    return datetime.now(timezone.utc), time.monotonic()


# --------------------------------------------------------------------------- OpenCV


class OpenCvSource:
    """RTSP / HTTP MJPEG streams, V4L2 devices and video files through OpenCV.

    Network streams use the FFmpeg backend explicitly with open and read
    timeouts, because without them ``read()`` can block for tens of seconds
    when a stream drops. Video files are paced at their own frame rate when
    ``realtime`` (the default for files) so a file behaves like a camera.
    """

    def __init__(
        self,
        url_or_device: str | int,
        open_timeout_s: float = 5.0,
        read_timeout_s: float = 5.0,
        *,
        realtime: bool | None = None,
    ) -> None:
        self._target = url_or_device
        self._open_timeout_ms = int(open_timeout_s * 1000)
        self._read_timeout_ms = int(read_timeout_s * 1000)
        is_file = (
            isinstance(url_or_device, str) and _scheme(url_or_device) == "" and _device_index(url_or_device) is None
        )
        self._realtime = is_file if realtime is None else realtime
        self._capture: cv2.VideoCapture | None = None
        self._index = 0
        self._frame_period = 0.0
        self._next_due = 0.0

    @property
    def description(self) -> str:
        return str(self._target)

    def open(self) -> None:
        self.close()
        try:
            capture = self._open_capture()
        except cv2.error as exc:
            raise SourceError(f"cannot open video source {self.description}: {exc}") from None
        if not capture.isOpened():
            capture.release()
            raise SourceError(f"cannot open video source {self.description}")
        self._capture = capture
        fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
        self._frame_period = 1.0 / fps if 0 < fps <= 240 else 0.1
        self._next_due = time.monotonic()
        log.info("opened video source %s", self.description)

    def _open_capture(self) -> cv2.VideoCapture:
        target = self._target
        device = target if isinstance(target, int) else _device_index(target)
        if device is not None:
            return cv2.VideoCapture(device, cv2.CAP_V4L2)
        if _scheme(target) == "" and not Path(target).is_file():
            raise SourceError(f"video file {target} does not exist")
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, self._open_timeout_ms,
            cv2.CAP_PROP_READ_TIMEOUT_MSEC, self._read_timeout_ms,
        ]
        return cv2.VideoCapture(target, cv2.CAP_FFMPEG, params)

    def read(self) -> Frame | None:
        if self._capture is None:
            raise SourceError(f"video source {self.description} is not open")
        if self._realtime:
            self._pace()
        ok, image = self._capture.read()
        if not ok or image is None:
            # OpenCV cannot tell a read timeout from a closed stream or a file's end; all need a reopen.
            raise SourceError(f"video source {self.description} stopped delivering frames")
        captured_at, monotonic = _now()
        self._index += 1
        return Frame(image=image, captured_at=captured_at, monotonic=monotonic, index=self._index)

    def _pace(self) -> None:
        delay = self._next_due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        self._next_due = max(self._next_due + self._frame_period, time.monotonic() - self._frame_period)

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None


def _scheme(target: str) -> str:
    scheme = urlsplit(target).scheme.lower()
    # A Windows drive letter or a bare path is not a URL scheme.
    return scheme if len(scheme) > 1 else ""


def _device_index(target: str) -> int | None:
    match = _DEVICE_PATTERN.match(target)
    return int(match.group(1)) if match else None


# --------------------------------------------------------------------------- simulator


class SyntheticSource:
    """The camera simulator: a moving shape under a large wall-clock overlay, paced at ``fps``.

    ``stall()`` makes it deliver nothing (``read()`` returns ``None``) until
    ``resume()``; ``drop()`` makes the next ``read()`` fail as if the stream
    broke, so the grabber has to reconnect.
    """

    def __init__(self, width: int = 1280, height: int = 720, fps: float = 10.0) -> None:
        if width < 16 or height < 16 or not 0 < fps <= 120:
            raise SourceError(f"synthetic source needs width/height >= 16 and 0 < fps <= 120, got "
                              f"{width}x{height}@{fps}")
        self.width = width
        self.height = height
        self.fps = fps
        self._period = 1.0 / fps
        self._lock = threading.Lock()
        self._stalled = False
        self._drop_pending = False
        self._open = False
        self._background: np.ndarray | None = None
        self._index = 0
        self._next_due = 0.0
        self.opens = 0

    @property
    def description(self) -> str:
        return f"synthetic://?width={self.width}&height={self.height}&fps={self.fps:g}"

    def stall(self) -> None:
        with self._lock:
            self._stalled = True

    def resume(self) -> None:
        with self._lock:
            self._stalled = False

    def drop(self) -> None:
        with self._lock:
            self._drop_pending = True

    def open(self) -> None:
        if self._background is None:
            self._background = _background(self.width, self.height)
        self._open = True
        self._next_due = time.monotonic()
        self.opens += 1

    def read(self) -> Frame | None:
        if not self._open:
            raise SourceError("synthetic source is not open")
        with self._lock:
            stalled, dropped = self._stalled, self._drop_pending
            self._drop_pending = False
        if dropped:
            self._open = False
            raise SourceError("synthetic stream dropped")
        self._wait_for_next_frame()
        if stalled:
            return None
        captured_at, monotonic = _now()
        self._index += 1
        image = self._render(captured_at, self._index)
        return Frame(image=image, captured_at=captured_at, monotonic=monotonic, index=self._index)

    def _wait_for_next_frame(self) -> None:
        delay = self._next_due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        # After falling behind, skip frames rather than deliver a burst.
        self._next_due = max(self._next_due + self._period, time.monotonic())

    def _render(self, captured_at: datetime, index: int) -> np.ndarray:
        assert self._background is not None
        image = self._background.copy()
        width, height = self.width, self.height
        radius = max(4, height // 10)
        travel = max(1, width - 2 * radius)
        x = radius + (index * max(1, width // 60)) % travel
        y = height // 2 + int(height / 5 * np.sin(index / 7.0))
        cv2.circle(image, (x, y), radius, (0, 160, 255), -1)
        stamp = captured_at.strftime("%Y-%m-%d %H:%M:%S.") + f"{captured_at.microsecond // 1000:03d}Z"
        scale = max(0.3, width / 900)
        thickness = max(1, int(scale * 2))
        cv2.putText(image, stamp, (int(width * 0.03), int(height * 0.15)), cv2.FONT_HERSHEY_SIMPLEX,
                    scale, (255, 255, 255), thickness, cv2.LINE_AA)
        cv2.putText(image, f"#{index:06d}", (int(width * 0.03), int(height * 0.92)), cv2.FONT_HERSHEY_SIMPLEX,
                    scale, (255, 255, 255), thickness, cv2.LINE_AA)
        return image

    def close(self) -> None:
        self._open = False


def _background(width: int, height: int) -> np.ndarray:
    """A dark grid, so the image has edges to judge sharpness and motion against."""
    image = np.full((height, width, 3), 40, dtype=np.uint8)
    step = max(8, width // 16)
    for x in range(0, width, step):
        cv2.line(image, (x, 0), (x, height - 1), (80, 80, 80), 1)
    for y in range(0, height, step):
        cv2.line(image, (0, y), (width - 1, y), (80, 80, 80), 1)
    return image


# --------------------------------------------------------------------------- factory


def make_source(
    source: str,
    *,
    fps: float = 10.0,
    width: int = 1280,
    height: int = 720,
    open_timeout_s: float = 5.0,
    read_timeout_s: float = 5.0,
) -> FrameSource:
    """Pick the source for a camera's ``source`` setting.

    ``synthetic://`` (optionally ``synthetic://?fps=10&width=1280&height=720``,
    overriding the camera's fps/size), ``rtsp://``, ``http(s)://`` (MJPEG),
    ``/dev/videoN`` or a path to a video file.
    """
    source = source.strip()
    if not source:
        raise SourceError("camera source is empty")
    scheme = _scheme(source)
    if scheme == "synthetic":
        return _synthetic_from_url(source, fps=fps, width=width, height=height)
    if scheme in _NETWORK_SCHEMES:
        return OpenCvSource(source, open_timeout_s, read_timeout_s)
    if scheme:
        raise SourceError(f"unsupported camera source scheme {scheme!r} in {source!r}")
    if source.startswith("/dev/") and _device_index(source) is None:
        raise SourceError(f"{source!r} is not a V4L2 device (expected /dev/videoN)")
    return OpenCvSource(source, open_timeout_s, read_timeout_s)


def _synthetic_from_url(source: str, *, fps: float, width: int, height: int) -> SyntheticSource:
    query = parse_qs(urlsplit(source).query)
    try:
        fps = float(query.get("fps", [fps])[0])
        width = int(query.get("width", [width])[0])
        height = int(query.get("height", [height])[0])
    except ValueError as exc:
        raise SourceError(f"bad synthetic source parameters in {source!r}: {exc}") from None
    return SyntheticSource(width=width, height=height, fps=fps)
