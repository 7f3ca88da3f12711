"""Live view: small JPEGs of the newest frame, pushed at a low rate, dropped (never queued) when the backend is slow."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from cameras.avi import jpeg_size
from cameras.grabber import Grabber, GrabberSettings
from cameras.live import LiveOptions, LivePusher, LiveViewError, shrink_jpeg
from cameras.ringbuffer import FrameRing, encode_jpeg
from cameras.source import SyntheticSource
from tests.cameras.fake_backend import FakeBackend
from tests.cameras.frames import checkerboard
from tests.helpers import wait_for

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("source,target,expected", [
    ((1280, 720), 640, (640, 360)),    # DCT reduction by 2, no resize
    ((1280, 720), 500, (500, 281)),    # reduction by 2, then a resize
    ((1000, 600), 640, (640, 384)),
    ((320, 180), 640, (320, 180)),     # never enlarged
])
def test_shrink_jpeg_makes_the_frame_at_most_the_live_width(source, target, expected):
    small = shrink_jpeg(encode_jpeg(checkerboard(*source)), target, 70)
    assert jpeg_size(small) == expected


def test_shrink_jpeg_refuses_garbage():
    with pytest.raises(LiveViewError):
        shrink_jpeg(b"not a jpeg", 640, 70)


def _ring_with_frame(sequence_time: datetime = T0, size: tuple[int, int] = (1280, 720)) -> FrameRing:
    ring = FrameRing(seconds=60)
    ring.push_jpeg(encode_jpeg(checkerboard(*size)), sequence_time, 1.0)
    return ring


def _pusher(ring: FrameRing, handler, **options) -> tuple[LivePusher, httpx.Client]:
    pusher = LivePusher("cam1", ring, "http://backend.test", "camera-secret-1", LiveOptions(**options),
                        transport=httpx.MockTransport(handler))
    return pusher, httpx.Client(transport=httpx.MockTransport(handler), auth=pusher._auth)


def test_a_tick_sends_the_newest_frame_small_with_its_time_and_credentials():
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(204)

    ring = _ring_with_frame()
    pusher, client = _pusher(ring, handler, fps=2, width=320)
    with client:
        assert pusher._tick(client) == 0.5
        assert pusher._tick(client) == 0.5  # the same frame is not sent twice
    [request] = requests
    assert request.method == "PUT" and request.url == "http://backend.test/api/cameras/cam1/live"
    assert request.headers["content-type"] == "image/jpeg"
    assert datetime.fromisoformat(request.headers["x-captured-at"]) == T0
    assert request.headers["authorization"] == httpx.BasicAuth("cam1", "camera-secret-1")._auth_header
    assert jpeg_size(request.content) == (320, 180)
    assert (pusher.sent, pusher.skipped) == (1, 1)


def test_backend_saying_nobody_watches_slows_the_pushes_to_the_idle_interval():
    viewers = ["0"]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(204, headers={"X-Live-Viewers": viewers[0]})

    ring = _ring_with_frame()
    pusher, client = _pusher(ring, handler, fps=2, idle_interval_s=7)
    with client:
        assert pusher._tick(client) == 7
        viewers[0] = "2"
        ring.push_jpeg(encode_jpeg(checkerboard(64, 48)), T0 + timedelta(seconds=1), 2.0)
        assert pusher._tick(client) == 0.5


def test_failures_back_off_and_a_missing_endpoint_is_asked_again_only_rarely():
    statuses = [503, 503, 503, 404, 204]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(statuses.pop(0))

    ring = _ring_with_frame()
    pusher, client = _pusher(ring, handler, fps=5, retry_initial_s=1, retry_max_s=3, refused_retry_s=60)
    pauses = []
    with client:
        for index in range(5):
            ring.push_jpeg(encode_jpeg(checkerboard(64, 48)), T0 + timedelta(seconds=index + 1), 2.0 + index)
            pauses.append(pusher._tick(client))
    assert pauses == [1, 2, 3, 60, 0.2]
    assert (pusher.failures, pusher.sent) == (4, 1)


def test_network_errors_are_failures_not_crashes():
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    pusher, client = _pusher(_ring_with_frame(), handler, fps=1, retry_initial_s=4)
    with client:
        assert pusher._tick(client) == 4
    assert pusher.failures == 1


def test_live_view_off_starts_no_thread():
    pusher = LivePusher("cam1", FrameRing(), "http://127.0.0.1:9", None, LiveOptions(fps=0))
    pusher.start()
    assert not pusher.enabled and pusher._thread is None
    pusher.stop()


def test_a_stuck_backend_costs_frames_not_the_grabber():
    """While the backend holds a push, the grabber keeps filling the ring; afterwards the newest frame goes out."""
    backend = FakeBackend(default_status=204).start()
    backend.hold = threading.Event()
    source = SyntheticSource(width=320, height=180, fps=50)
    ring = FrameRing(seconds=5)
    grabber = Grabber("cam1", source, ring, lambda state: None, GrabberSettings(watchdog_interval_s=0.05))
    pusher = LivePusher("cam1", ring, backend.url, "camera-secret-1", LiveOptions(fps=20, width=160))
    grabber.start()
    pusher.start()
    try:
        wait_for(lambda: backend.held >= 1, what="a push waiting on the stuck backend")
        frames_when_stuck = grabber.frames
        wait_for(lambda: grabber.frames >= frames_when_stuck + 20, what="the grabber carrying on")
        newest_before_release = ring.latest().captured_at
        backend.hold.set()
        wait_for(lambda: len(backend.of("/live")) >= 2, what="the next push")
    finally:
        pusher.stop()
        grabber.stop()
        backend.stop()
    first, second = backend.of("/live")[:2]
    # No backlog: the push after the stall carries a frame from after the stall, not the one queued behind it.
    assert datetime.fromisoformat(second.headers["x-captured-at"]) >= newest_before_release
    assert datetime.fromisoformat(first.headers["x-captured-at"]) < newest_before_release
    assert jpeg_size(second.body) == (160, 90)
    assert second.basic_auth == ("cam1", "camera-secret-1")


def test_an_expensive_frame_stretches_the_pause_to_keep_within_the_cpu_budget():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(204)

    ring = _ring_with_frame()
    generous, client = _pusher(ring, handler, fps=2)
    with client:
        assert generous._tick(client) == 0.5  # shrinking a 720p JPEG costs far less than 3 % of 0.5 s
    ring = _ring_with_frame()
    stingy, client = _pusher(ring, handler, fps=2, cpu_budget=1e-6)
    with client:
        pause = stingy._tick(client)
    assert pause > 0.5 and pause == stingy._cpu_pause_s
    with pytest.raises(ValueError):
        LiveOptions(cpu_budget=0)
