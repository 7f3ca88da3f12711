"""Live view: a small, low-rate JPEG of the newest frame, pushed to the backend for the dashboard.

The pusher runs on its own thread and only *reads* the newest frame of the
ring buffer, so it can never slow the grabber or the evidence down. It keeps
no queue: every tick it sends whatever frame is newest at that moment, so a
slow backend simply gets fewer frames. The frame is made smaller by decoding
the JPEG at a reduced scale (libjpeg does this in the DCT, far cheaper than a
full decode and resize) and re-encoding it at a lower quality.

An H.264 camera's ring holds packets, and only a keyframe decodes on its own:
the live view shows the newest keyframe, so it changes at most once per
keyframe interval of the camera (its "I-frame interval"), and a keyframe
already sent is not decoded again. Decoding one costs far more than shrinking
a JPEG, so the pusher also keeps its own CPU within ``cpu_budget`` of a core
by waiting longer after an expensive frame.

    PUT {backend}/api/cameras/{camera_id}/live   (image/jpeg, X-Captured-At, HTTP Basic)

An answer may carry ``X-Live-Viewers: <n>``; while it says 0 the pusher sends
only every ``idle_interval_s``, so nobody pays for a view nobody watches.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from urllib.parse import quote

import cv2
import httpx
import numpy as np

from cameras.avi import AviError, jpeg_size
from cameras.packets import PacketError, decode_run
from cameras.ringbuffer import BufferedFrame, FrameRing, RingBufferError, encode_jpeg

log = logging.getLogger(__name__)

VIEWERS_HEADER = "X-Live-Viewers"
_REDUCED_DECODE = ((8, cv2.IMREAD_REDUCED_COLOR_8), (4, cv2.IMREAD_REDUCED_COLOR_4), (2, cv2.IMREAD_REDUCED_COLOR_2))
_GIVE_UP_STATUSES = {401, 403, 404, 405}


class LiveViewError(Exception):
    """A frame could not be made into a live-view image."""


@dataclass(frozen=True)
class LiveOptions:
    fps: float = 1.0  # 0 = live view off
    width: int = 640
    jpeg_quality: int = 70
    idle_interval_s: float = 5.0  # while the backend says nobody is watching
    # At most this share of one core for making live frames: an H.264 keyframe can cost 50-120 ms
    # to decode, so a camera with a short keyframe interval is shown less often rather than costing more.
    cpu_budget: float = 0.03
    timeout_s: float = 2.0
    retry_initial_s: float = 1.0
    retry_max_s: float = 30.0
    # The backend lacks the endpoint or refuses us: ask again only this rarely.
    refused_retry_s: float = 60.0

    def __post_init__(self) -> None:
        if self.fps < 0 or self.width < 16 or not 1 <= self.jpeg_quality <= 100 or self.timeout_s <= 0:
            raise ValueError("live view needs fps >= 0, width >= 16, quality 1..100 and a positive timeout")
        if not 0 < self.cpu_budget <= 1:
            raise ValueError("live view cpu_budget is a share of one core: 0 < cpu_budget <= 1")


def shrink_jpeg(jpeg: bytes, width: int, quality: int) -> bytes:
    """The JPEG at most ``width`` pixels wide (never enlarged), re-encoded at ``quality``."""
    try:
        full_width, _ = jpeg_size(jpeg)
    except AviError as exc:
        raise LiveViewError(str(exc)) from exc
    # The largest DCT reduction that still leaves at least ``width`` pixels; a resize does the rest.
    flag = next((flag for factor, flag in _REDUCED_DECODE if full_width // factor >= width), cv2.IMREAD_COLOR)
    image = cv2.imdecode(np.frombuffer(jpeg, dtype=np.uint8), flag)
    if image is None:
        raise LiveViewError("frame is not a decodable JPEG")
    return shrink_image(image, width, quality)


def shrink_image(image: np.ndarray, width: int, quality: int) -> bytes:
    """The image at most ``width`` pixels wide (never enlarged), as a JPEG of ``quality``."""
    if image.shape[1] > width:
        height = max(1, round(image.shape[0] * width / image.shape[1]))
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    try:
        return encode_jpeg(image, quality)
    except RingBufferError as exc:
        raise LiveViewError(str(exc)) from exc


def live_jpeg(frame: BufferedFrame, width: int, quality: int) -> bytes:
    """A buffered frame (JPEG, or an H.264 keyframe) as a live-view JPEG."""
    if frame.packet is None:
        return shrink_jpeg(frame.jpeg, width, quality)
    if not frame.keyframe:
        raise LiveViewError(f"frame {frame.sequence} is not a keyframe and cannot be decoded alone")
    try:
        decoded = decode_run([frame])
    except PacketError as exc:
        raise LiveViewError(str(exc)) from exc
    if not decoded:
        raise LiveViewError(f"keyframe {frame.sequence} did not decode")
    return shrink_image(decoded[0][1], width, quality)


class LivePusher:
    """Pushes the ring's newest frame to the backend at ``options.fps`` on its own thread."""

    def __init__(
        self,
        camera_id: str,
        ring: FrameRing,
        backend_url: str,
        secret: str | None,
        options: LiveOptions = LiveOptions(),
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.camera_id = camera_id
        self.options = options
        self._ring = ring
        self._url = f"{backend_url.rstrip('/')}/api/cameras/{quote(camera_id, safe='')}/live"
        self._auth = httpx.BasicAuth(camera_id, secret) if secret is not None else None
        self._transport = transport
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_sequence: int | None = None
        self._watched = True
        self._cpu_pause_s = 0.0
        self._retry_s = options.retry_initial_s
        self._failing = False
        self.sent = 0
        self.skipped = 0
        self.failures = 0

    @property
    def enabled(self) -> bool:
        return self.options.fps > 0

    def start(self) -> None:
        if not self.enabled:
            log.info("camera %s: live view off (fps 0)", self.camera_id)
            return
        if self._thread is not None:
            raise RuntimeError(f"live view of {self.camera_id} already started")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"live-{self.camera_id}", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.error("camera %s: live view thread did not stop within %.1f s", self.camera_id, timeout_s)
            self._thread = None

    # ------------------------------------------------------------------ loop

    def _run(self) -> None:
        timeout = httpx.Timeout(self.options.timeout_s)
        with httpx.Client(timeout=timeout, auth=self._auth, transport=self._transport) as client:
            next_due = time.monotonic()
            while not self._stop.wait(max(0.0, next_due - time.monotonic())):
                pause = self._tick(client)
                # Never catch up: after a slow request the next tick is a full period away.
                next_due = max(next_due + pause, time.monotonic() + 0.01)

    def _tick(self, client: httpx.Client) -> float:
        """Send the newest frame if it is new; returns how long to wait before the next tick."""
        frame = self._ring.latest()
        if frame is not None and not frame.keyframe:
            frame = self._ring.latest_keyframe()
        if frame is None or frame.sequence == self._last_sequence:
            self.skipped += 1
            return self._period()
        started = time.thread_time()
        try:
            body = live_jpeg(frame, self.options.width, self.options.jpeg_quality)
        except LiveViewError as exc:
            log.warning("camera %s: live frame %d skipped: %s", self.camera_id, frame.sequence, exc)
            self._last_sequence = frame.sequence
            return self._period()
        finally:
            self._cpu_pause_s = (time.thread_time() - started) / self.options.cpu_budget
        self._last_sequence = frame.sequence
        return self._send(client, frame, body)

    def _period(self) -> float:
        period = 1.0 / self.options.fps if self._watched else max(1.0 / self.options.fps, self.options.idle_interval_s)
        return max(period, self._cpu_pause_s)

    def _send(self, client: httpx.Client, frame: BufferedFrame, body: bytes) -> float:
        headers = {"Content-Type": "image/jpeg", "X-Captured-At": frame.captured_at.isoformat()}
        try:
            response = client.put(self._url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return self._failed(f"{type(exc).__name__}: {exc}")
        if response.status_code in _GIVE_UP_STATUSES:
            self._failed(f"HTTP {response.status_code}")
            return self.options.refused_retry_s
        if not response.is_success:
            return self._failed(f"HTTP {response.status_code}")
        self._succeeded(response.headers.get(VIEWERS_HEADER))
        return self._period()

    def _succeeded(self, viewers: str | None) -> None:
        self.sent += 1
        if self._failing:
            log.info("camera %s: live view reaches the backend again", self.camera_id)
        self._failing = False
        self._retry_s = self.options.retry_initial_s
        watched = viewers is None or not viewers.strip().isdigit() or int(viewers) > 0
        if watched != self._watched:
            log.debug("camera %s: live view %s", self.camera_id, "watched" if watched else "idle")
        self._watched = watched

    def _failed(self, reason: str) -> float:
        """Log the first failure of a streak only; back off so a dead backend costs nothing."""
        self.failures += 1
        if not self._failing:
            log.warning("camera %s: live view push to %s failed (%s); retrying quietly", self.camera_id,
                        self._url, reason)
        self._failing = True
        pause, self._retry_s = self._retry_s, min(self._retry_s * 2, self.options.retry_max_s)
        return max(pause, self._period())
