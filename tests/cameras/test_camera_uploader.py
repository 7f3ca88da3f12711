"""The durable upload queue against a real local HTTP server."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from cameras.uploader import UploadError, Uploader
from tests.cameras.fake_backend import FakeBackend
from tests.helpers import free_port, wait_for

CAPTURED = datetime(2025, 3, 1, 12, 0, 0, 250000, tzinfo=timezone.utc)
JPEG = b"\xff\xd8fake-jpeg\xff\xd9"


def _uploader(spool: Path, url: str) -> Uploader:
    return Uploader(spool, url, "cam1", "camera-secret-1", backoff_initial_s=0.02, backoff_max_s=0.1,
                    request_timeout_s=5)


def _snapshot_file(tmp_path: Path) -> Path:
    path = tmp_path / "evidence" / "snapshot.jpg"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(JPEG)
    return path


@pytest.fixture
def backend():
    server = FakeBackend(script=[503, 500, 429]).start()
    yield server
    server.stop()


def test_retries_server_errors_then_uploads_the_snapshot(tmp_path, backend):
    uploader = _uploader(tmp_path / "spool", backend.url)
    uploader.start()
    try:
        uploader.enqueue_snapshot("A-1", _snapshot_file(tmp_path), CAPTURED)
        wait_for(lambda: backend.accepted(), what="accepted upload")
        wait_for(lambda: not uploader.pending(), what="empty spool")
    finally:
        uploader.stop()
    assert [r.status for r in backend.received] == [503, 500, 429, 201]
    request = backend.received[-1]
    assert (request.method, request.path) == ("PUT", "/api/evidence/A-1/snapshot")
    assert request.headers["content-type"] == "image/jpeg"
    assert datetime.fromisoformat(request.headers["x-captured-at"]) == CAPTURED
    assert request.basic_auth == ("cam1", "camera-secret-1")
    assert request.body == JPEG
    assert list((tmp_path / "spool").glob("*")) == []
    assert (tmp_path / "evidence" / "snapshot.jpg").read_bytes() == JPEG  # local evidence stays


def test_spool_survives_a_restart_and_uploads_in_order(tmp_path):
    port = free_port()
    spool = tmp_path / "spool"
    first = _uploader(spool, f"http://127.0.0.1:{port}")
    first.start()
    try:
        first.enqueue_snapshot("A1", _snapshot_file(tmp_path), CAPTURED)
        first.enqueue_problem("A2", "snapshot", "camera stream stale: no frame for 4.0 s")
        wait_for(lambda: first.attempts >= 2, what="failed attempts against a closed port")
    finally:
        first.stop()
    assert len(first.pending()) == 2 and first.uploaded == 0

    backend = FakeBackend(port=port).start()
    second = _uploader(spool, backend.url)
    second.start()
    try:
        wait_for(lambda: len(backend.accepted()) == 2, what="both uploads")
        wait_for(lambda: not second.pending(), what="empty spool")
    finally:
        second.stop()
        backend.stop()
    snapshot, problem = backend.received
    assert (snapshot.method, snapshot.path, snapshot.body) == ("PUT", "/api/evidence/A1/snapshot", JPEG)
    assert (problem.method, problem.path) == ("POST", "/api/evidence/A2/problem")
    assert problem.headers["content-type"] == "application/json"
    assert json.loads(problem.body) == {"camera_id": "cam1", "kind": "snapshot",
                                        "problem": "camera stream stale: no frame for 4.0 s"}


def test_a_client_error_gives_up_on_that_job_and_moves_on(tmp_path):
    backend = FakeBackend(script=[404]).start()
    clip = tmp_path / "clip.avi"
    clip.write_bytes(b"RIFF-fake-avi")
    uploader = _uploader(tmp_path / "spool", backend.url)
    uploader.start()
    try:
        uploader.enqueue_snapshot("A1", _snapshot_file(tmp_path), CAPTURED)
        uploader.enqueue_clip("A1", clip, CAPTURED, "video/x-msvideo")
        wait_for(lambda: backend.accepted(), what="the second job")
    finally:
        uploader.stop()
        backend.stop()
    assert [(r.path, r.status) for r in backend.received] == [
        ("/api/evidence/A1/snapshot", 404), ("/api/evidence/A1/clip", 201)]
    assert backend.received[1].headers["content-type"] == "video/x-msvideo"
    assert backend.received[1].body == b"RIFF-fake-avi"
    assert uploader.given_up == 1
    failed = sorted(p.suffix for p in (tmp_path / "spool" / "failed").iterdir())
    assert failed == [".jpg", ".json"]
    assert uploader.pending() == []


def test_half_written_spool_files_are_cleaned_at_start(tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / "00000000000000000001-snapshot-deadbeef.jpg").write_bytes(JPEG)  # payload without its job
    (spool / ".00000000000000000002-clip-deadbeef.json.partial").write_text("{")
    uploader = _uploader(spool, "http://127.0.0.1:9")
    uploader.start()
    uploader.stop()
    assert list(spool.iterdir()) == []


def test_unusable_alarm_ids_are_refused(tmp_path):
    uploader = _uploader(tmp_path / "spool", "http://127.0.0.1:9")
    with pytest.raises(UploadError):
        uploader.enqueue_problem("../../etc", "snapshot", "x")
    assert uploader.pending() == []
