"""The camera benchmark's plumbing (the figures themselves come from `openshelf bench camera`)."""

from __future__ import annotations

import argparse

from cameras.bench import format_report, register_bench
from cameras.bench_cpu import CpuRun, run_in_child


def test_register_bench_adds_the_camera_benchmark():
    parser = argparse.ArgumentParser()
    register_bench(parser.add_subparsers(dest="bench_command"))
    args = parser.parse_args(["camera", "--seconds", "3", "--alarms", "2", "--json"])
    assert (args.seconds, args.alarms, args.json, args.width, args.fps) == (3.0, 2, True, 1280, 10.0)
    assert callable(args.func)


def test_a_cpu_run_in_a_fresh_process_reports_cpu_and_frames():
    result = run_in_child(CpuRun("synthetic_ring", seconds=0.4, width=160, height=90, fps=25, warm_up_s=0.2))
    assert result["mode"] == "synthetic_ring"
    assert 0 < result["cpu_percent"] < 400 and result["fps"] > 5
    assert result["ring_frames"] > 0 and result["mean_jpeg_kb"] > 0


def test_report_text_names_every_figure():
    cpu = {"generator": 1.9, "synthetic_discard": 2.0, "synthetic_ring": 7.4, "mjpeg_decoded_ring": 12.7,
           "mjpeg_passthrough_ring": 0.6, "synthetic_ring_minus_generator": 5.5, "ring_buffer_alone": 5.4}
    report = {
        "config": {"width": 1280, "height": 720, "fps": 10, "seconds": 10, "cpu_count": 2, "target_cpu_percent": 10},
        "pipeline": {"cpu_percent": cpu, "ring": {"frames": 80, "mb": 14.0, "mean_jpeg_kb": 175.0}},
        "camera_process": {"cpu_percent": 1.4, "rss_mb": 144, "threads": 10},
        "clip": {"p50_s": 5.23, "max_s": 5.25, "n": 5, "missing": 0, "target_s": 6, "snapshot_p50_s": 0.29,
                 "preroll_min_s": 4.9},
    }
    text = format_report(report)
    assert "H.264 decoded + ring                  skipped" in text
    for figure in ("7.40 %", "12.70 %", "0.60 %", "1.40 %", "p50 5.23 s", "target ≤ 6 s"):
        assert figure in text, figure


def test_report_text_shows_the_h264_figures_when_there_are_some():
    cpu = {"generator": 1.9, "synthetic_discard": 2.0, "synthetic_ring": 7.4, "mjpeg_decoded_ring": 12.7,
           "mjpeg_passthrough_ring": 0.6, "h264_file_discard": 7.2, "h264_file_ring": 11.8,
           "h264_file_packets_ring": 0.4, "synthetic_ring_minus_generator": 5.5, "ring_buffer_alone": 5.4}
    clip = {"p50_s": 5.11, "max_s": 5.14, "n": 5, "missing": 0, "target_s": 6, "snapshot_p50_s": 0.45,
            "preroll_min_s": 5.26}
    report = {
        "config": {"width": 1280, "height": 720, "fps": 10, "seconds": 10, "cpu_count": 2, "target_cpu_percent": 10},
        "pipeline": {"cpu_percent": cpu, "ring": {"frames": 80, "mb": 14.0, "mean_jpeg_kb": 175.0}},
        "camera_process_h264": {"cpu_percent": 6.4, "rss_mb": 100, "threads": 11},
        "clip_h264": clip,
    }
    text = format_report(report)
    assert "H.264 file, packets kept in the ring    0.40 %" in text
    assert "H.264 file decoded + JPEG ring         11.80 %" in text
    assert "(H.264 packets, ring, live view, MQTT): 6.40 %" in text
    assert "clip at backend (H.264 → MP4): p50 5.11 s" in text and "pre-roll in clip ≥ 5.26 s" in text
