"""The pre-event ring buffer: ordering, time queries, bounded memory, thread safety."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cameras.ringbuffer import FrameRing, RingBufferError
from cameras.source import Frame
from tests.cameras.frames import fill_ring, checkerboard

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=timezone.utc)


def test_frames_between_returns_the_frames_in_the_interval_oldest_first():
    ring = FrameRing(seconds=10)
    fill_ring(ring, T0, count=20, step_s=0.1)
    frames = ring.frames_between(T0 + timedelta(seconds=0.5), T0 + timedelta(seconds=1.0))
    assert [f.captured_at for f in frames] == [T0 + timedelta(seconds=i * 0.1) for i in range(5, 11)]
    assert [f.sequence for f in frames] == sorted(f.sequence for f in frames)


def test_old_frames_fall_out_by_age():
    ring = FrameRing(seconds=2.0)
    fill_ring(ring, T0, count=100, step_s=0.1)  # 10 s of frames
    frames = ring.snapshot()
    assert frames[-1].captured_at == T0 + timedelta(seconds=9.9)
    assert frames[-1].monotonic - frames[0].monotonic <= 2.0
    assert len(frames) == 21
    assert ring.frames_between(T0, T0 + timedelta(seconds=7)) == []


def test_memory_is_bounded_by_bytes_and_by_count():
    by_bytes = FrameRing(seconds=100, max_bytes=20_000)
    by_count = FrameRing(seconds=100, max_frames=7)
    fill_ring(by_bytes, T0, count=50, step_s=0.1)
    fill_ring(by_count, T0, count=50, step_s=0.1)
    assert 0 < by_bytes.nbytes <= 20_000
    assert len(by_count) == 7
    assert by_count.latest().captured_at == T0 + timedelta(seconds=4.9)


def test_push_encodes_a_frame_that_decodes_back():
    ring = FrameRing()
    image = checkerboard(shade=3)
    stored = ring.push(Frame(image=image, captured_at=T0, monotonic=1.0, index=1))
    assert stored.jpeg[:2] == b"\xff\xd8"
    assert stored.decode().shape == image.shape


def test_naive_timestamps_and_oversized_frames_are_refused():
    ring = FrameRing(max_bytes=10)
    with pytest.raises(RingBufferError):
        ring.push_jpeg(b"x", datetime(2025, 1, 1), 1.0)
    with pytest.raises(RingBufferError):
        ring.push_jpeg(b"x" * 11, T0, 1.0)
    assert len(ring) == 0


@settings(max_examples=50, deadline=None)
@given(sizes=st.lists(st.integers(min_value=1, max_value=400), max_size=80),
       steps=st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=80))
def test_bounds_hold_for_any_push_sequence(sizes, steps):
    ring = FrameRing(seconds=3.0, max_bytes=2000, max_frames=12)
    monotonic = 0.0
    for position, size in enumerate(sizes):
        monotonic += steps[position % len(steps)]
        ring.push_jpeg(b"j" * size, T0 + timedelta(seconds=monotonic), monotonic)
        frames = ring.snapshot()
        assert len(frames) <= 12
        assert ring.nbytes == sum(len(f.jpeg) for f in frames) <= 2000
        assert frames[-1].monotonic - frames[0].monotonic <= 3.0
        assert [f.sequence for f in frames] == sorted(f.sequence for f in frames)


def test_concurrent_writer_and_readers_see_consistent_ordered_frames():
    ring = FrameRing(seconds=1.0)
    problems: list[str] = []
    done = threading.Event()

    def write() -> None:
        for index in range(2000):
            ring.push_jpeg(b"j" * 10, T0 + timedelta(milliseconds=index), index / 1000)
        done.set()

    def read() -> None:
        while not done.is_set():
            frames = ring.frames_between(T0, T0 + timedelta(seconds=5))
            if [f.sequence for f in frames] != sorted(f.sequence for f in frames):
                problems.append("out of order")

    threads = [threading.Thread(target=write)] + [threading.Thread(target=read) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert problems == []
    assert ring.latest().sequence == 2000


def test_wait_until_captured_wakes_when_a_later_frame_arrives():
    ring = FrameRing()
    assert ring.wait_until_captured(T0, timeout_s=0.01) is False
    pusher = threading.Timer(0.05, lambda: ring.push_jpeg(b"j", T0 + timedelta(seconds=1), 1.0))
    pusher.start()
    try:
        assert ring.wait_until_captured(T0 + timedelta(seconds=0.5), timeout_s=10)
    finally:
        pusher.join()
