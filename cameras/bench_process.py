"""The camera service as a real process: its CPU per stream, and alarm → clip available at the backend.

Runs a broker, a synthetic camera served as HTTP MJPEG by its own process
(``openshelf sim camera``) or an H.264 video file played at its own rate,
``openshelf camera`` reading it, and a local HTTP receiver standing in for the
backend. The camera process's CPU is read from
the OS (psutil) over a quiet window while it streams, buffers, and pushes the
live view; then gate alarms are published over MQTT and each one is timed from
the publish to the moment its clip upload has fully arrived at the receiver.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psutil
import yaml

from openshelf.bench_gate import BenchBroker, percentile
from openshelf.contract import (
    AlarmItem, AlarmReason, CameraState, Channel, GateAlarmEvent, Kind, StreamState, topic, utcnow,
)
from openshelf.mqtt import MqttLink
from openshelf.site import BrokerSettings
from openshelf.supervisor import Child

log = logging.getLogger(__name__)

CAMERA_ID = "bench-cam"
GATE_ID = "bench-gate"
CAMERA_SECRET = "bench-camera-secret"
CLIP_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class ProcessBenchOptions:
    seconds: float = 10.0
    width: int = 1280
    height: int = 720
    fps: float = 10.0
    alarms: int = 5
    post_roll_s: float = 5.0  # the camera service's default; the target is post-roll + 1 s
    broker: str = "auto"
    source: str | None = None  # a camera source (e.g. an H.264 file); None: the simulator over HTTP MJPEG


# ------------------------------------------------------------------ the stand-in backend


@dataclass
class Arrival:
    path: str
    at: float  # time.perf_counter() when the whole body had arrived
    headers: dict[str, str]
    size: int


@dataclass
class _Arrivals:
    items: list[Arrival] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)


class _Server(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True
    arrivals: _Arrivals


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _receive(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        arrived = time.perf_counter()
        arrivals = self.server.arrivals
        with arrivals.changed:
            arrivals.items.append(Arrival(self.path, arrived, {k.lower(): v for k, v in self.headers.items()},
                                          len(body)))
            arrivals.changed.notify_all()
        self.send_response(204 if self.path.endswith("/live") else 201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_PUT = _receive  # noqa: N815 - http.server dispatch names
    do_POST = _receive  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature fixed by http.server
        pass


class Receiver:
    """Accepts every upload and live frame, and remembers when each arrived."""

    def __init__(self) -> None:
        self._arrivals = _Arrivals()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> "Receiver":
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.arrivals = self._arrivals
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="bench-receiver", daemon=True)
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def wait_for(self, path_suffix: str, timeout_s: float) -> Arrival | None:
        deadline = time.monotonic() + timeout_s
        with self._arrivals.changed:
            while True:
                found = [item for item in self._arrivals.items if item.path.endswith(path_suffix)]
                if found:
                    return found[0]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._arrivals.changed.wait(remaining)

    def count(self, path_suffix: str) -> int:
        with self._arrivals.changed:
            return sum(1 for item in self._arrivals.items if item.path.endswith(path_suffix))

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None


# ------------------------------------------------------------------ the run


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _write_site(workdir: Path, broker_url: str, backend_url: str, stream_url: str) -> tuple[Path, str]:
    site_id = f"bench{uuid.uuid4().hex[:8]}"
    site = {
        "site": site_id, "demo": True, "data_dir": str(workdir / "data"),
        "broker": {"url": broker_url},
        "backend": {"public_url": backend_url},
        "gates": [{"id": GATE_ID, "secret": "bench-gate-secret"}],
        "cameras": [{"id": CAMERA_ID, "gates": [GATE_ID], "secret": CAMERA_SECRET, "source": stream_url}],
    }
    path = workdir / "site.yaml"
    path.write_text(yaml.safe_dump(site), encoding="utf-8")
    return path, site_id


class _StateWatch:
    def __init__(self) -> None:
        self.latest: CameraState | None = None
        self.live_since: float | None = None
        self._lock = threading.Lock()

    def on_state(self, parts: Any, state: CameraState) -> None:
        with self._lock:
            if state.stream is StreamState.LIVE and self.live_since is None:
                self.live_since = time.monotonic()
            self.latest = state

    def wait_live(self, timeout_s: float) -> float:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if self.live_since is not None:
                    return self.live_since
            time.sleep(0.05)
        raise RuntimeError(f"camera not live after {timeout_s:.0f} s (last state: {self.latest})")


def run_process_bench(options: ProcessBenchOptions, workdir: Path) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    broker = BenchBroker(options.broker, workdir)
    receiver = Receiver().start()
    stream_port = _free_port()
    stream = None if options.source else Child(
        "sim-camera", ["sim", "camera", "--port", str(stream_port), "--width", str(options.width),
                       "--height", str(options.height), "--fps", f"{options.fps:g}"],
        workdir / "sim-camera.log", restart=False)
    camera: Child | None = None
    link: MqttLink | None = None
    try:
        broker.start()
        if stream is not None:
            stream.start()
        stream_url = stream.wait_ready(60)["camera_sim"] if stream is not None else str(options.source)
        site_path, site_id = _write_site(workdir, broker.url, receiver.url, stream_url)
        watch = _StateWatch()
        link = MqttLink(BrokerSettings(url=broker.url), client_id=f"{site_id}-bench")
        link.subscribe(topic(site_id, Kind.CAMERA, CAMERA_ID, Channel.STATE), CameraState, watch.on_state)
        link.start()
        camera = Child("camera", ["camera", "--site", str(site_path), "--device", CAMERA_ID],
                       workdir / "camera.log", restart=False)
        camera.start()
        camera.wait_ready(60)
        live_since = watch.wait_live(60)
        # A full pre-roll in the ring before measuring: the steady state of a running camera.
        time.sleep(max(0.0, live_since + 6.0 - time.monotonic()))
        cpu = _process_cpu(camera.pid, options.seconds)
        clips = _alarm_to_clip(link, site_id, receiver, options)
        clips["live_frames_received"] = receiver.count("/live")
        return {"camera_process": cpu, "clip": clips, "stream_url": stream_url, "broker": broker.kind}
    finally:
        if camera is not None:
            camera.stop()
        if link is not None:
            link.stop()
        if stream is not None:
            stream.stop()
        receiver.stop()
        broker.stop()


def _process_cpu(pid: int | None, seconds: float) -> dict[str, float]:
    if pid is None:
        raise RuntimeError("camera process has no pid")
    process = psutil.Process(pid)
    before, wall0 = process.cpu_times(), time.monotonic()
    time.sleep(seconds)
    after, wall1 = process.cpu_times(), time.monotonic()
    used = (after.user - before.user) + (after.system - before.system)
    return {"cpu_percent": 100 * used / (wall1 - wall0), "rss_mb": process.memory_info().rss / 1e6,
            "threads": process.num_threads()}


def _alarm_to_clip(link: MqttLink, site_id: str, receiver: Receiver, options: ProcessBenchOptions) -> dict[str, Any]:
    alarm_topic = topic(site_id, Kind.GATE, GATE_ID, Channel.EVENT, "alarm")
    item = AlarmItem(uid="E004010012345678", reason=AlarmReason.NOT_ON_LOAN)
    clip_s: list[float] = []
    snapshot_s: list[float] = []
    preroll_s: list[float] = []
    missing = 0
    for index in range(options.alarms):
        alarm_id = f"BENCH-{uuid.uuid4().hex[:8]}-{index}"
        published = time.perf_counter()
        event = GateAlarmEvent(gate_id=GATE_ID, alarm_id=alarm_id, items=[item], started_at=utcnow())
        link.publish(alarm_topic, event)
        clip = receiver.wait_for(f"/api/evidence/{alarm_id}/clip", CLIP_TIMEOUT_S)
        snapshot = receiver.wait_for(f"/api/evidence/{alarm_id}/snapshot", 0.1)
        if clip is None:
            missing += 1
            continue
        clip_s.append(clip.at - published)
        if snapshot is not None:
            snapshot_s.append(snapshot.at - published)
        first_frame = datetime.fromisoformat(clip.headers["x-captured-at"])
        preroll_s.append((event.started_at - first_frame).total_seconds())
        time.sleep(0.5)
    return {
        "n": len(clip_s), "missing": missing,
        "p50_s": percentile(clip_s, 0.5), "max_s": max(clip_s, default=float("nan")),
        "snapshot_p50_s": percentile(snapshot_s, 0.5),
        "preroll_min_s": min(preroll_s, default=float("nan")),
        "post_roll_s": options.post_roll_s, "target_s": options.post_roll_s + 1.0,
    }
