"""CPU cost of the camera pipeline, one configuration per fresh process.

Each configuration runs in its own ``python -m cameras.bench_cpu`` process so
its figure is that process's CPU time (all threads, from ``getrusage``) over a
fixed wall-clock window after a warm-up, and nothing else shares it:

* ``generator``: the synthetic source alone (what only the simulator pays);
* ``synthetic_discard``: grabber thread on the synthetic source, frames discarded (no ring buffer);
* ``synthetic_ring``: grabber + ring buffer (every frame JPEG-encoded and kept);
* ``mjpeg_decoded_ring`` / ``mjpeg_passthrough_ring``: grabber + ring buffer on an
  HTTP MJPEG stream served by another process, with OpenCV decoding every
  frame (then re-encoded for the ring) or keeping the camera's JPEG as is;
* ``h264_file_packets_ring``: grabber + ring buffer on an H.264 video file
  played at its own rate, keeping the camera's packets (the default for H.264);
* ``h264_file_ring``: the same file decoded and every frame JPEG-encoded into
  the ring (what an H.264 camera cost before packets were kept;
  ``h264_file_discard``: the decode alone).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

RING_MODES = ("synthetic_ring", "mjpeg_decoded_ring", "mjpeg_passthrough_ring", "h264_file_ring",
              "h264_file_packets_ring")
MODES = ("generator", "synthetic_discard", "h264_file_discard", *RING_MODES)


@dataclass(frozen=True)
class CpuRun:
    mode: str
    seconds: float = 10.0
    width: int = 1280
    height: int = 720
    fps: float = 10.0
    url: str | None = None  # the MJPEG stream (mjpeg_* modes) or the video file (h264_file_ring)
    ring_seconds: float = 8.0  # pre-roll 5 s + 3 s slack, as the camera service keeps
    warm_up_s: float = 1.5  # before measuring: imports, stream open, first frames


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _measure(run: CpuRun, counter: Any) -> dict[str, float]:
    """CPU share of one core over ``run.seconds`` of wall clock, and how many frames went through meanwhile."""
    seconds = run.seconds
    time.sleep(run.warm_up_s)
    frames0, cpu0, wall0 = counter(), _cpu_seconds(), time.monotonic()
    time.sleep(seconds)
    frames1, cpu1, wall1 = counter(), _cpu_seconds(), time.monotonic()
    wall = wall1 - wall0
    return {"cpu_percent": 100 * (cpu1 - cpu0) / wall, "fps": (frames1 - frames0) / wall}


def _run_generator(run: CpuRun) -> dict[str, Any]:
    import threading

    from cameras.source import SyntheticSource

    source = SyntheticSource(run.width, run.height, run.fps)
    source.open()
    stop = threading.Event()
    count = [0]

    def pump() -> None:
        while not stop.is_set():
            if source.read() is not None:
                count[0] += 1

    thread = threading.Thread(target=pump, name="generator", daemon=True)
    thread.start()
    try:
        return _measure(run, lambda: count[0])
    finally:
        stop.set()
        thread.join(5)


def _run_grabber(run: CpuRun) -> dict[str, Any]:
    from cameras.grabber import Grabber
    from cameras.ringbuffer import FrameRing
    from cameras.source import FrameSource, OpenCvSource, SyntheticSource

    source: FrameSource
    if run.mode.startswith(("mjpeg", "h264")):
        if run.url is None:
            raise ValueError(f"{run.mode} needs the stream's url or the file's path")
        source = OpenCvSource(run.url, jpeg_passthrough=run.mode == "mjpeg_passthrough_ring",
                              h264_passthrough=run.mode == "h264_file_packets_ring")
    else:
        source = SyntheticSource(run.width, run.height, run.fps)
    ring = FrameRing(run.ring_seconds) if run.mode in RING_MODES else _DiscardingRing()
    grabber = Grabber("bench", source, ring, lambda state: None)
    grabber.start()
    try:
        result = _measure(run, lambda: grabber.frames)
        if isinstance(source, OpenCvSource):
            # Read while open: closing resets them.
            result["passthrough"] = source.passthrough or source.h264_passthrough
    finally:
        grabber.stop()
    if isinstance(ring, FrameRing) and len(ring):
        result.update(ring_frames=len(ring), ring_mb=ring.nbytes / 1e6, mean_jpeg_kb=ring.nbytes / len(ring) / 1e3)
    return result


class _DiscardingRing:
    """Stands in for the ring buffer: takes frames and keeps nothing (the 'without ring buffer' case)."""

    def push(self, frame: Any) -> None:
        return None


def run_in_child(run: CpuRun, timeout_s: float | None = None) -> dict[str, Any]:
    """Run one configuration in a fresh interpreter; returns its measurement."""
    completed = subprocess.run(
        [sys.executable, "-m", "cameras.bench_cpu", json.dumps(asdict(run))],
        capture_output=True, text=True, timeout=timeout_s or run.seconds + 60,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"CPU run {run.mode} failed: {completed.stderr.strip()[-800:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main(argv: list[str]) -> int:
    run = CpuRun(**json.loads(argv[0]))
    if run.mode not in MODES:
        raise SystemExit(f"unknown mode {run.mode!r}; one of {', '.join(MODES)}")
    result = _run_generator(run) if run.mode == "generator" else _run_grabber(run)
    print(json.dumps({"mode": run.mode, "measured_at": datetime.now().isoformat(), **result}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
