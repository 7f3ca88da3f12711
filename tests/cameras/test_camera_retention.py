"""Local retention: evidence folders and spool jobs older than the period go, newer ones stay (fake clock)."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from cameras.retention import RetentionSweeper, sweep
from tests.helpers import wait_for

NOW = datetime(2025, 6, 30, 12, 0, 0, tzinfo=timezone.utc)
PERIOD = timedelta(days=30)


def _file(path: Path, age: timedelta, content: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    stamp = (NOW - age).timestamp()
    os.utime(path, (stamp, stamp))
    return path


def _camera_dir(tmp_path: Path) -> Path:
    camera = tmp_path / "cameras" / "cam1"
    _file(camera / "evidence" / "OLD1" / "snapshot.jpg", timedelta(days=45))
    _file(camera / "evidence" / "OLD1" / "clip.avi", timedelta(days=31))
    _file(camera / "evidence" / "OLD1" / "clip.avi.json", timedelta(days=31))
    # A folder with one recent file is not expired as a whole (e.g. a clip written after an old snapshot).
    _file(camera / "evidence" / "MIXED" / "snapshot.jpg", timedelta(days=40))
    _file(camera / "evidence" / "MIXED" / "clip.avi", timedelta(days=29))
    _file(camera / "evidence" / "NEW1" / "snapshot.jpg", timedelta(hours=1))
    spool = camera / "spool"
    _file(spool / "00000000000000000001-snapshot-aaaa.json", timedelta(days=33))  # never accepted
    _file(spool / "00000000000000000001-snapshot-aaaa.jpg", timedelta(days=33))
    _file(spool / "00000000000000000002-clip-bbbb.avi", timedelta(days=32))  # orphaned payload
    _file(spool / ".00000000000000000003-problem-cccc.json.partial", timedelta(days=60))
    _file(spool / "00000000000000000009-clip-dddd.json", timedelta(days=2))
    _file(spool / "00000000000000000009-clip-dddd.avi", timedelta(days=2))
    _file(spool / "failed" / "00000000000000000004-clip-eeee.json", timedelta(days=90))
    _file(spool / "failed" / "00000000000000000004-clip-eeee.avi", timedelta(days=90))
    _file(spool / "failed" / "00000000000000000008-clip-ffff.json", timedelta(days=3))
    return camera


def _remaining(camera: Path) -> list[str]:
    return sorted(str(path.relative_to(camera)) for path in camera.rglob("*") if path.is_file())


def test_sweep_deletes_what_is_older_than_the_period_and_keeps_the_rest(tmp_path):
    camera = _camera_dir(tmp_path)
    result = sweep(camera, PERIOD, NOW)
    assert _remaining(camera) == [
        "evidence/MIXED/clip.avi",
        "evidence/MIXED/snapshot.jpg",
        "evidence/NEW1/snapshot.jpg",
        "spool/00000000000000000009-clip-dddd.avi",
        "spool/00000000000000000009-clip-dddd.json",
        "spool/failed/00000000000000000008-clip-ffff.json",
    ]
    assert not (camera / "evidence" / "OLD1").exists()
    assert (result.evidence_folders, result.spool_jobs, result.unsent_jobs) == (1, 4, 1)


def test_the_same_files_expire_as_the_fake_clock_moves_on(tmp_path):
    camera = _camera_dir(tmp_path)
    assert sweep(camera, PERIOD, NOW - timedelta(days=61)).removed == 0  # before anything was 30 days old
    sweep(camera, PERIOD, NOW)
    result = sweep(camera, PERIOD, NOW + timedelta(days=29))  # MIXED and the 2- and 3-day-old jobs reach 30 days
    assert (result.evidence_folders, result.spool_jobs) == (1, 2)
    assert _remaining(camera) == ["evidence/NEW1/snapshot.jpg"]  # one hour younger than the cutoff
    result = sweep(camera, PERIOD, NOW + timedelta(days=30))
    assert _remaining(camera) == [] and result.evidence_folders == 1


def test_sweep_of_a_fresh_camera_folder_does_nothing(tmp_path):
    assert sweep(tmp_path / "nothing-here", PERIOD, NOW).removed == 0


def test_sweeper_sweeps_at_start_then_every_interval(tmp_path):
    camera = _camera_dir(tmp_path)
    clock = [NOW]
    sweeper = RetentionSweeper(camera, 30, interval_s=0.05, clock=lambda: clock[0])
    sweeper.start()
    try:
        wait_for(lambda: not (camera / "evidence" / "OLD1").exists(), what="the sweep at start")
        assert (camera / "evidence" / "NEW1").exists()
        clock[0] = NOW + timedelta(days=31)
        wait_for(lambda: not (camera / "evidence" / "NEW1").exists(), what="a later sweep")
    finally:
        sweeper.stop()
    assert sweeper.sweeps >= 2 and sweeper.total.evidence_folders == 3


def test_sweeper_refuses_a_nonsense_period(tmp_path):
    with pytest.raises(ValueError):
        RetentionSweeper(tmp_path, 0)
