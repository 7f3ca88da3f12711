"""``openshelf bench camera``: CPU per 720p stream, and alarm → clip available, through the real pipeline.

``register_bench(subparsers)`` adds the ``camera`` benchmark to ``openshelf bench``.
The CPU figures come from fresh processes (``cameras.bench_cpu``) and from the
real ``openshelf camera`` process (``cameras.bench_process``); the clip
latency is measured through that same process, a broker and an HTTP receiver.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

TARGET_CPU_PERCENT = 10.0


def register_bench(subparsers: Any) -> None:
    camera = subparsers.add_parser(
        "camera", help="camera CPU per stream, and alarm → clip available at the backend",
        description="Measures the CPU share of one core that one camera stream costs (synthetic generator alone; "
                    "grabber without and with the ring buffer; an HTTP MJPEG stream decoded or passed through; an "
                    "H.264 file decoded or kept as packets; the whole `openshelf camera` process with live view, on "
                    "MJPEG and on H.264), then times gate alarms from the MQTT publish to the clip upload arriving "
                    "at a local HTTP receiver.")
    camera.add_argument("--seconds", type=float, default=10.0, help="CPU measuring window per configuration")
    camera.add_argument("--width", type=int, default=1280)
    camera.add_argument("--height", type=int, default=720)
    camera.add_argument("--fps", type=float, default=10.0)
    camera.add_argument("--alarms", type=int, default=5, help="alarms timed for the clip latency (0 = none)")
    camera.add_argument("--only", choices=["cpu", "process"], default=None,
                        help="cpu: the in-process pipeline figures only; process: the real camera process only")
    camera.add_argument("--broker", choices=["auto", "mosquitto", "embedded"], default="auto",
                        help="Mosquitto when installed (auto), or the embedded broker")
    camera.add_argument("--json", action="store_true", help="print one JSON document instead of a summary")
    camera.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    report = run_camera_bench(seconds=args.seconds, width=args.width, height=args.height, fps=args.fps,
                              alarms=args.alarms, only=args.only, broker=args.broker)
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    clip = report.get("clip")
    return 1 if clip is not None and clip["n"] == 0 and args.alarms > 0 else 0


def run_camera_bench(*, seconds: float = 10.0, width: int = 1280, height: int = 720, fps: float = 10.0,
                     alarms: int = 5, only: str | None = None, broker: str = "auto") -> dict[str, Any]:
    from cameras.bench_cpu import CpuRun, run_in_child
    from cameras.bench_process import ProcessBenchOptions, run_process_bench

    report: dict[str, Any] = {
        "config": {"width": width, "height": height, "fps": fps, "seconds": seconds, "alarms": alarms,
                   "cpu_count": os.cpu_count(), "target_cpu_percent": TARGET_CPU_PERCENT},
    }
    with tempfile.TemporaryDirectory(prefix="openshelf-bench-camera-") as tmp:
        if only in (None, "cpu"):
            def run(mode: str, url: str | None = None) -> dict[str, Any]:
                return run_in_child(CpuRun(mode, seconds, width, height, fps, url))

            report["pipeline"] = _pipeline_figures(run, Path(tmp), width, height, fps)
        if only in (None, "process"):
            options = ProcessBenchOptions(seconds=seconds, width=width, height=height, fps=fps, alarms=alarms,
                                          broker=broker)
            measured = run_process_bench(options, Path(tmp) / "process-mjpeg")
            report["camera_process"] = measured["camera_process"]
            report["clip"] = measured["clip"]
            report["config"]["broker"] = measured["broker"]
            h264 = _h264_file(Path(tmp), width, height, fps)
            if h264 is not None:
                measured = run_process_bench(replace(options, source=str(h264)), Path(tmp) / "process-h264")
                report["camera_process_h264"] = measured["camera_process"]
                report["clip_h264"] = measured["clip"]
    return report


def _pipeline_figures(run: Any, workdir: Path, width: int, height: int, fps: float) -> dict[str, Any]:
    from openshelf.supervisor import Child

    figures = {mode: run(mode) for mode in ("generator", "synthetic_discard", "synthetic_ring")}
    stream = Child("sim-camera", ["sim", "camera", "--port", "0", "--width", str(width), "--height", str(height),
                                  "--fps", f"{fps:g}"], workdir / "sim-camera-cpu.log", restart=False)
    stream.start()
    try:
        url = stream.wait_ready(60)["camera_sim"]
        for mode in ("mjpeg_decoded_ring", "mjpeg_passthrough_ring"):
            figures[mode] = run(mode, url)
    finally:
        stream.stop()
    h264 = _h264_file(workdir, width, height, fps)
    if h264 is not None:
        for mode in ("h264_file_discard", "h264_file_ring", "h264_file_packets_ring"):
            figures[mode] = run(mode, str(h264))
    cpu = {mode: round(result["cpu_percent"], 2) for mode, result in figures.items()}
    cpu["synthetic_ring_minus_generator"] = round(cpu["synthetic_ring"] - cpu["generator"], 2)
    cpu["ring_buffer_alone"] = round(cpu["synthetic_ring"] - cpu["synthetic_discard"], 2)
    ring = figures["synthetic_ring"]
    return {
        "cpu_percent": cpu,
        "fps": {mode: round(result["fps"], 2) for mode, result in figures.items()},
        "ring": {"frames": ring.get("ring_frames"), "mb": round(ring.get("ring_mb", 0.0), 1),
                 "mean_jpeg_kb": round(ring.get("mean_jpeg_kb", 0.0), 1)},
        "passthrough_active": figures["mjpeg_passthrough_ring"].get("passthrough"),
        "h264_packets_active": figures.get("h264_file_packets_ring", {}).get("passthrough"),
        "h264_ring_mb": round(figures.get("h264_file_packets_ring", {}).get("ring_mb", 0.0), 1),
    }


def _h264_file(workdir: Path, width: int, height: int, fps: float, seconds: float = 60.0) -> Path | None:
    """Synthetic frames as an H.264 file like an IP camera sends (2 s GOP, ~2 Mbit/s), if ffmpeg is installed."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        return None
    from cameras.source import SyntheticSource

    path = workdir / "camera-h264.mp4"
    if path.is_file():  # made once per run: the pipeline and the process figures share it
        return path
    source = SyntheticSource(width, height, fps=120)  # render as fast as possible; the file says 'fps'
    source.open()
    command = [ffmpeg, "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{width}x{height}",
               "-r", f"{fps:g}", "-i", "-", "-c:v", "libx264", "-preset", "veryfast", "-g", str(round(2 * fps)),
               "-b:v", "2M", "-pix_fmt", "yuv420p", str(path)]
    with subprocess.Popen(command, stdin=subprocess.PIPE) as encoder:
        assert encoder.stdin is not None
        for _ in range(round(seconds * fps)):
            frame = source.read()
            if frame is not None:
                encoder.stdin.write(frame.pixels().tobytes())
        encoder.stdin.close()
    return path if encoder.returncode == 0 and path.is_file() else None


def format_report(report: dict[str, Any]) -> str:
    config = report["config"]
    lines = [f"camera bench: {config['width']}x{config['height']} @ {config['fps']:g} fps, "
             f"{config['seconds']:g} s per figure, {config['cpu_count']} CPU(s); CPU in % of one core "
             f"(target ≤ {config['target_cpu_percent']:g} %)"]
    pipeline = report.get("pipeline")
    if pipeline:
        cpu = pipeline["cpu_percent"]
        lines += [
            f"  synthetic generator alone             {cpu['generator']:6.2f} %",
            f"  grabber, frames discarded (no ring)   {cpu['synthetic_discard']:6.2f} %",
            f"  grabber + ring buffer                 {cpu['synthetic_ring']:6.2f} %"
            f"   (minus generator: {cpu['synthetic_ring_minus_generator']:.2f} %;"
            f" ring alone {cpu['ring_buffer_alone']:.2f} %)",
            f"  HTTP MJPEG decoded + ring             {cpu['mjpeg_decoded_ring']:6.2f} %",
            f"  HTTP MJPEG passthrough + ring         {cpu['mjpeg_passthrough_ring']:6.2f} %",
            (f"  H.264 file decoded, frames discarded  {cpu['h264_file_discard']:6.2f} %\n"
             f"  H.264 file decoded + JPEG ring        {cpu['h264_file_ring']:6.2f} %\n"
             f"  H.264 file, packets kept in the ring  {cpu['h264_file_packets_ring']:6.2f} %"
             if "h264_file_packets_ring" in cpu
             else "  H.264 decoded + ring                  skipped (ffmpeg not installed)"),
            f"  ring: {pipeline['ring']['frames']} frames, {pipeline['ring']['mb']} MB, "
            f"{pipeline['ring']['mean_jpeg_kb']} kB per frame",
        ]
    process = report.get("camera_process")
    if process:
        lines.append(f"  openshelf camera process (MJPEG, ring, live view 1 fps, MQTT): {process['cpu_percent']:.2f} % "
                     f"of one core, RSS {process['rss_mb']:.0f} MB, {process['threads']} threads")
    lines += _clip_lines(report.get("clip"), "")
    process = report.get("camera_process_h264")
    if process:
        lines.append(f"  openshelf camera process (H.264 packets, ring, live view, MQTT): {process['cpu_percent']:.2f} "
                     f"% of one core, RSS {process['rss_mb']:.0f} MB, {process['threads']} threads")
    lines += _clip_lines(report.get("clip_h264"), " (H.264 → MP4)")
    return "\n".join(lines)


def _clip_lines(clip: dict[str, Any] | None, label: str) -> list[str]:
    if not clip:
        return []
    return [f"  alarm published → clip at backend{label}: p50 {clip['p50_s']:.2f} s  max {clip['max_s']:.2f} s "
            f"(n={clip['n']}, missing {clip['missing']}; target ≤ {clip['target_s']:g} s); snapshot p50 "
            f"{clip['snapshot_p50_s']:.2f} s; pre-roll in clip ≥ {clip['preroll_min_s']:.2f} s"]


if __name__ == "__main__":  # pragma: no cover - manual runs before the lead wires `openshelf bench camera`
    parser = argparse.ArgumentParser(prog="python -m cameras.bench")
    register_bench(parser.add_subparsers(dest="bench_command", required=True))
    arguments = parser.parse_args()
    sys.exit(arguments.func(arguments))
