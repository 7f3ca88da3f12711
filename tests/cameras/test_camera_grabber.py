"""The grabber: connecting → live → stale → live, reconnects, and a clean stop."""

from __future__ import annotations

import threading

from cameras.grabber import Grabber, GrabberSettings
from cameras.ringbuffer import FrameRing
from cameras.source import Frame, SourceError, SyntheticSource
from openshelf.contract import CameraState, StreamState
from tests.helpers import wait_for

FAST = GrabberSettings(stale_after_s=0.3, backoff_initial_s=0.02, backoff_max_s=0.1, watchdog_interval_s=0.02)


class Recorder:
    def __init__(self) -> None:
        self.states: list[CameraState] = []
        self.lock = threading.Lock()

    def __call__(self, state: CameraState) -> None:
        with self.lock:
            self.states.append(state)

    def streams(self) -> list[StreamState]:
        with self.lock:
            return [state.stream for state in self.states]

    def last(self) -> CameraState:
        with self.lock:
            return self.states[-1]


def test_goes_stale_when_the_source_stalls_and_live_again_when_it_resumes():
    source = SyntheticSource(width=64, height=48, fps=50)
    ring, recorder = FrameRing(), Recorder()
    grabber = Grabber("cam1", source, ring, recorder, FAST)
    grabber.start()
    try:
        wait_for(lambda: recorder.streams()[-1] is StreamState.LIVE, what="live")
        source.stall()
        wait_for(lambda: recorder.streams()[-1] is StreamState.STALE, what="stale")
        assert "no frame" in recorder.last().reason
        source.resume()
        wait_for(lambda: recorder.streams()[-1] is StreamState.LIVE, what="live again")
    finally:
        grabber.stop()
    assert recorder.streams() == [StreamState.CONNECTING, StreamState.LIVE, StreamState.STALE, StreamState.LIVE]
    assert len(ring) > 0 and grabber.frames >= len(ring)
    assert [t.name for t in threading.enumerate() if t.name.startswith("grabber")] == []


def test_reconnects_after_the_stream_drops():
    source = SyntheticSource(width=64, height=48, fps=50)
    ring, recorder = FrameRing(), Recorder()
    grabber = Grabber("cam1", source, ring, recorder, FAST)
    grabber.start()
    try:
        wait_for(lambda: grabber.frames > 2, what="frames")
        source.drop()
        wait_for(lambda: source.opens == 2, what="reopen")
        frames_after_reopen = grabber.frames
        wait_for(lambda: grabber.frames > frames_after_reopen + 2, what="frames after reconnect")
    finally:
        grabber.stop()
    assert grabber.reconnects >= 1
    assert recorder.last().stream is StreamState.LIVE


class NeverOpens:
    def __init__(self) -> None:
        self.attempts = 0

    def open(self) -> None:
        self.attempts += 1
        raise SourceError("connection refused")

    def read(self) -> Frame | None:
        raise AssertionError("read on a source that never opened")

    def close(self) -> None:
        pass


def test_a_source_that_never_opens_stays_connecting_with_the_reason_and_stops_cleanly():
    source, recorder = NeverOpens(), Recorder()
    grabber = Grabber("cam1", source, FrameRing(), recorder, FAST)
    grabber.start()
    try:
        wait_for(lambda: source.attempts >= 3, what="retries")
    finally:
        grabber.stop()
    assert set(recorder.streams()) == {StreamState.CONNECTING}
    assert "connection refused" in recorder.last().reason


class CrashingOnce(SyntheticSource):
    """A driver with a bug: its first read raises something that is not a SourceError."""

    def __init__(self) -> None:
        super().__init__(width=32, height=24, fps=50)
        self.crashed = False

    def read(self) -> Frame | None:
        if not self.crashed:
            self.crashed = True
            raise ValueError("driver bug")
        return super().read()


def test_a_crashing_driver_does_not_kill_the_grabber():
    source, recorder = CrashingOnce(), Recorder()
    grabber = Grabber("cam1", source, FrameRing(), recorder, FAST)
    grabber.start()
    try:
        wait_for(lambda: grabber.frames > 0, what="frames after the crash")
    finally:
        grabber.stop()
    assert source.crashed and source.opens >= 2


def test_unchanged_state_is_re_reported_with_fresh_counters():
    source, recorder = SyntheticSource(width=32, height=24, fps=50), Recorder()
    settings = GrabberSettings(stale_after_s=5, watchdog_interval_s=0.02, refresh_s=0.05)
    grabber = Grabber("cam1", source, FrameRing(), recorder, settings)
    grabber.start()
    try:
        wait_for(lambda: len([s for s in recorder.states if s.stream is StreamState.LIVE]) >= 3, what="refreshes")
    finally:
        grabber.stop()
    live = [s for s in recorder.states if s.stream is StreamState.LIVE]
    assert live[-1].frames > live[0].frames
    assert live[-1].fps > 0


def test_stale_and_back_over_a_real_mjpeg_stream():
    from cameras.source import OpenCvSource
    from cameras.synthetic_server import MjpegServer

    server = MjpegServer(width=160, height=90, fps=25).start()
    source = OpenCvSource(server.url, open_timeout_s=1, read_timeout_s=0.5)
    recorder = Recorder()
    settings = GrabberSettings(stale_after_s=0.4, backoff_initial_s=0.05, backoff_max_s=0.2, watchdog_interval_s=0.02)
    grabber = Grabber("cam1", source, FrameRing(), recorder, settings)
    grabber.start()
    try:
        wait_for(lambda: recorder.streams()[-1] is StreamState.LIVE, what="live")
        server.stall()
        wait_for(lambda: recorder.streams()[-1] is StreamState.STALE, what="stale")
        server.resume()
        wait_for(lambda: recorder.streams()[-1] is StreamState.LIVE, what="live again")
    finally:
        grabber.stop()
        server.stop()
    assert recorder.streams()[:3] == [StreamState.CONNECTING, StreamState.LIVE, StreamState.STALE]
