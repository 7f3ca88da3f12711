"""Where frames come from: a camera stream, a device, a video file or the simulator.

Every source speaks the same small protocol. ``read()`` returns ``None`` when no
frame arrived in time (the stream may recover by itself) and raises
:class:`SourceError` when the source is broken and must be reopened.
"""

from __future__ import annotations

import functools
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

from cameras.h264 import H264Error, parameter_sets

log = logging.getLogger(__name__)

_DEVICE_PATTERN = re.compile(r"^/dev/video(\d+)$")
_NETWORK_SCHEMES = {"rtsp", "rtsps", "http", "https"}


class SourceError(Exception):
    """A frame source cannot be opened or has stopped delivering frames."""


@dataclass(frozen=True)
class VideoStream:
    """One opening of an H.264 stream: what a decoder or a muxer needs besides the packets."""

    width: int
    height: int
    parameter_sets: bytes  # SPS and PPS, Annex B (may be empty when the stream sends them in band only)
    session: int  # a new number per opening: packets of two openings never share a clip


@dataclass(frozen=True)
class EncodedPacket:
    """One H.264 access unit as the camera sent it (Annex B), in decode order."""

    data: bytes
    keyframe: bool
    pts_ms: float | None  # the stream's presentation timestamp: only its order is used
    stream: VideoStream


@dataclass(frozen=True)
class Frame:
    """One captured image with the wall-clock and monotonic time it was taken.

    A frame carries decoded pixels (``image``); or, when the camera already sends
    JPEG (MJPEG streams), the camera's own JPEG bytes (``jpeg``); or, for an H.264
    camera, the camera's own encoded packet (``packet``). The ring buffer stores
    JPEGs and packets as they are instead of decoding and re-encoding them.
    """

    image: np.ndarray | None
    captured_at: datetime
    monotonic: float
    index: int = 0
    jpeg: bytes | None = None
    packet: EncodedPacket | None = None

    def __post_init__(self) -> None:
        if self.image is None and self.jpeg is None and self.packet is None:
            raise ValueError("a frame needs pixels, JPEG bytes or an encoded packet")

    def pixels(self) -> np.ndarray:
        """The decoded image (decoding the JPEG if the frame only has that)."""
        if self.image is not None:
            return self.image
        if self.jpeg is None:
            raise SourceError(f"frame {self.index} is an H.264 packet: decode it with its group of pictures")
        image = cv2.imdecode(np.frombuffer(self.jpeg, dtype=np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise SourceError(f"frame {self.index} is not a decodable JPEG")
        return image


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

    With ``jpeg_passthrough`` (the default), a stream whose codec is MJPEG is
    read as raw packets: each packet is the camera's JPEG, kept as it is, which
    spares a decode and a re-encode per frame (most of a camera's CPU cost).
    If those packets turn out not to be standalone JPEGs, the source reopens
    once with decoding and stays that way.

    With ``h264_passthrough`` (the default), an H.264 stream is read the same
    way: every frame is the camera's packet (Annex B, keyframes flagged), and
    nothing is decoded until an alarm needs a snapshot. Packets before the
    first keyframe of an opening are skipped: nothing could decode them.

    Decoding (other codecs, or either passthrough turned off) uses one thread
    by default: at camera frame rates a single thread keeps up, and more
    decoder threads buy no CPU (measured no cheaper), only more memory.
    """

    def __init__(
        self,
        url_or_device: str | int,
        open_timeout_s: float = 5.0,
        read_timeout_s: float = 5.0,
        *,
        realtime: bool | None = None,
        jpeg_passthrough: bool = True,
        h264_passthrough: bool = True,
        decoder_threads: int = 1,
    ) -> None:
        self._target = url_or_device
        self._decoder_threads = decoder_threads
        self._open_timeout_ms = int(open_timeout_s * 1000)
        self._read_timeout_ms = int(read_timeout_s * 1000)
        self._device = url_or_device if isinstance(url_or_device, int) else _device_index(url_or_device)
        is_file = isinstance(url_or_device, str) and _scheme(url_or_device) == "" and self._device is None
        self._realtime = is_file if realtime is None else realtime
        self._passthrough_allowed = jpeg_passthrough and self._device is None
        self._h264_allowed = h264_passthrough and self._device is None
        self._capture: cv2.VideoCapture | None = None
        self._raw = False
        self._raw_checked = False
        self._stream: VideoStream | None = None
        self._sessions = 0
        self._keyframe_seen = False
        self._index = 0
        self._frame_period = 0.0
        self._next_due = 0.0

    @property
    def description(self) -> str:
        """The source for logs and state reports, without the credentials an RTSP URL often carries."""
        return redact_credentials(str(self._target))

    @property
    def passthrough(self) -> bool:
        """True while frames are the camera's own JPEG packets (no decode, no re-encode)."""
        return self._raw

    @property
    def h264_passthrough(self) -> bool:
        """True while frames are the camera's own H.264 packets (nothing decoded)."""
        return self._stream is not None

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
        codec = _codec(capture)
        self._raw = self._passthrough_allowed and codec in _JPEG_CODECS and _read_raw_packets(capture)
        self._raw_checked = False
        self._stream = self._h264_stream(capture) if self._h264_allowed and codec in _H264_CODECS else None
        self._keyframe_seen = False
        mode = " (JPEG passthrough)" if self._raw else " (H.264 packets kept, not decoded)" if self._stream else ""
        log.info("opened video source %s%s", self.description, mode)

    def _h264_stream(self, capture: cv2.VideoCapture) -> VideoStream | None:
        """Switch ``capture`` to undecoded packets and describe the stream; None if the backend cannot."""
        if not _read_raw_packets(capture):
            log.warning("video source %s: the OpenCV backend cannot deliver H.264 packets; decoding frames",
                        self.description)
            return None
        try:
            extradata = parameter_sets(_extradata(capture))
        except H264Error as exc:
            log.warning("video source %s: %s; relying on in-band SPS/PPS", self.description, exc)
            extradata = b""
        self._sessions += 1
        return VideoStream(int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
                           extradata, self._sessions)

    def _open_capture(self) -> cv2.VideoCapture:
        target = self._target
        if self._device is not None:
            return cv2.VideoCapture(self._device, cv2.CAP_V4L2)
        assert isinstance(target, str)
        if _scheme(target) == "" and not Path(target).is_file():
            raise SourceError(f"video file {target} does not exist")
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, self._open_timeout_ms,
            cv2.CAP_PROP_READ_TIMEOUT_MSEC, self._read_timeout_ms,
        ]
        if self._decoder_threads > 0:  # 0: FFmpeg's own choice (one per core)
            params += [cv2.CAP_PROP_N_THREADS, self._decoder_threads]
        return cv2.VideoCapture(target, cv2.CAP_FFMPEG, params)

    def read(self) -> Frame | None:
        if self._capture is None:
            raise SourceError(f"video source {self.description} is not open")
        if self._realtime:
            self._pace()
        ok, image = self._capture.read()
        if not ok or image is None or image.size == 0:
            # OpenCV cannot tell a read timeout from a closed stream or a file's end; all need a reopen.
            raise SourceError(f"video source {self.description} stopped delivering frames")
        captured_at, monotonic = _now()
        if self._stream is not None:
            return self._packet_frame(image, captured_at, monotonic)
        self._index += 1
        if self._raw:
            jpeg = self._checked_jpeg(image)
            return Frame(image=None, jpeg=jpeg, captured_at=captured_at, monotonic=monotonic, index=self._index)
        return Frame(image=image, captured_at=captured_at, monotonic=monotonic, index=self._index)

    def _packet_frame(self, packet: np.ndarray, captured_at: datetime, monotonic: float) -> Frame | None:
        assert self._capture is not None and self._stream is not None
        keyframe = self._capture.get(cv2.CAP_PROP_LRF_HAS_KEY_FRAME) > 0
        self._keyframe_seen = self._keyframe_seen or keyframe
        if not self._keyframe_seen:
            return None  # joined mid-group: undecodable until the next keyframe
        pts = self._capture.get(cv2.CAP_PROP_POS_MSEC)
        self._index += 1
        encoded = EncodedPacket(packet.tobytes(), keyframe, pts if np.isfinite(pts) else None, self._stream)
        return Frame(image=None, packet=encoded, captured_at=captured_at, monotonic=monotonic, index=self._index)

    def _checked_jpeg(self, packet: np.ndarray) -> bytes:
        """The packet as JPEG bytes; gives passthrough up for good if packets are not standalone JPEGs."""
        jpeg = packet.tobytes()
        usable = jpeg.startswith(b"\xff\xd8")
        if usable and not self._raw_checked:
            # Some cameras leave the Huffman tables out of their MJPEG frames; only a decode tells.
            usable = cv2.imdecode(packet.reshape(-1), cv2.IMREAD_REDUCED_GRAYSCALE_8) is not None
            self._raw_checked = usable
        if not usable:
            self._passthrough_allowed = False
            log.warning("video source %s: MJPEG packets are not standalone JPEGs; decoding frames instead",
                        self.description)
            raise SourceError(f"video source {self.description}: switching from JPEG passthrough to decoding")
        return jpeg

    def _pace(self) -> None:
        delay = self._next_due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        self._next_due = max(self._next_due + self._frame_period, time.monotonic() - self._frame_period)

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None
        self._raw = False
        self._stream = None


_JPEG_CODECS = {b"MJPG", b"JPEG", b"mjpg", b"jpeg"}
_H264_CODECS = {b"h264", b"H264", b"avc1", b"AVC1", b"x264", b"X264"}


def redact_credentials(url: str) -> str:
    """``rtsp://user:pass@host/x`` → ``rtsp://***@host/x``; anything else unchanged."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]).geturl()


def _read_raw_packets(capture: cv2.VideoCapture) -> bool:
    """Ask the FFmpeg backend for undecoded packets; False if the backend cannot."""
    return bool(capture.set(cv2.CAP_PROP_FORMAT, -1))


def _extradata(capture: cv2.VideoCapture) -> bytes:
    """The codec's extradata (SPS/PPS for H.264), empty if the backend has none."""
    index = int(capture.get(cv2.CAP_PROP_CODEC_EXTRADATA_INDEX))
    if index <= 0:
        return b""
    ok, data = capture.retrieve(flag=index)
    return data.tobytes() if ok and data is not None else b""


def _codec(capture: cv2.VideoCapture) -> bytes:
    code = int(capture.get(cv2.CAP_PROP_FOURCC)) & 0xFFFFFFFF
    return code.to_bytes(4, "little")


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

    The background is a textured scene rendered once, so a frame costs a copy
    and three small drawings, and compresses about like a real camera image
    (a flat image would make JPEG look cheaper than it is).

    ``stall()`` makes it deliver nothing (``read()`` returns ``None``) until
    ``resume()``; ``drop()`` makes the next ``read()`` fail as if the stream
    broke, so the grabber has to reconnect; ``go_offline()`` drops the stream
    and refuses to reopen until ``go_online()``, like a camera losing power.
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
        self._offline = False
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

    def go_offline(self) -> None:
        with self._lock:
            self._offline = True
            self._drop_pending = True

    def go_online(self) -> None:
        with self._lock:
            self._offline = False

    def open(self) -> None:
        with self._lock:
            if self._offline:
                raise SourceError("synthetic camera offline: connection refused")
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


@functools.lru_cache(maxsize=4)
def _background(width: int, height: int) -> np.ndarray:
    """Fine texture (JPEG cost like a real scene) under a grid (edges to judge sharpness and motion by)."""
    noise = np.random.default_rng(7).integers(0, 256, (height, width, 3), dtype=np.uint8)
    image = cv2.normalize(cv2.GaussianBlur(noise, (0, 0), 2.0), None, 30, 130, cv2.NORM_MINMAX)
    step = max(8, width // 16)
    for x in range(0, width, step):
        cv2.line(image, (x, 0), (x, height - 1), (160, 160, 160), 1)
    for y in range(0, height, step):
        cv2.line(image, (0, y), (width - 1, y), (160, 160, 160), 1)
    image.flags.writeable = False  # shared by every source of this size; frames are drawn on copies
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
    jpeg_passthrough: bool = True,
    h264_passthrough: bool = True,
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
        return OpenCvSource(source, open_timeout_s, read_timeout_s, jpeg_passthrough=jpeg_passthrough,
                            h264_passthrough=h264_passthrough)
    if scheme:
        raise SourceError(f"unsupported camera source scheme {scheme!r} in {redact_credentials(source)!r}")
    if source.startswith("/dev/") and _device_index(source) is None:
        raise SourceError(f"{source!r} is not a V4L2 device (expected /dev/videoN)")
    return OpenCvSource(source, open_timeout_s, read_timeout_s, jpeg_passthrough=jpeg_passthrough,
                        h264_passthrough=h264_passthrough)


def _synthetic_from_url(source: str, *, fps: float, width: int, height: int) -> SyntheticSource:
    query = parse_qs(urlsplit(source).query)
    try:
        fps = float(query.get("fps", [fps])[0])
        width = int(query.get("width", [width])[0])
        height = int(query.get("height", [height])[0])
    except ValueError as exc:
        raise SourceError(f"bad synthetic source parameters in {source!r}: {exc}") from None
    return SyntheticSource(width=width, height=height, fps=fps)
