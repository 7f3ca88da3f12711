"""Evidence from cameras: device auth, validation, idempotency, late alarms, viewing with an audit trail."""

from __future__ import annotations

import base64
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from backend.db.models import AuditEntry, Evidence
from backend.evidence import purge_expired_evidence
from openshelf.contract import utcnow
from tests.backend.backend_testkit import CAMERA_ID, CAMERA_SECRET, snapshot_jpeg
from tests.backend.conftest import Api

CAPTURED_AT = "2025-03-01T09:30:00.250+07:00"


def camera_headers(user: str = CAMERA_ID, password: str = CAMERA_SECRET, **extra: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}", "Content-Type": "image/jpeg", "X-Captured-At": CAPTURED_AT, **extra}


def upload(api: Api, alarm_id: str, body: bytes | None = None, **headers: str):  # noqa: ANN201
    return api.client.put(f"/api/evidence/{alarm_id}/snapshot", content=snapshot_jpeg() if body is None else body,
                          headers=camera_headers(**headers))


@pytest.mark.parametrize(("user", "password"), [(CAMERA_ID, "wrong-secret-000"), ("cam-9", CAMERA_SECRET),
                                                ("gate-1", CAMERA_SECRET), (CAMERA_ID, "")])
def test_wrong_camera_credentials_are_401(api: Api, user: str, password: str) -> None:
    response = upload(api, uuid.uuid4().hex, user=user, password=password)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic")


def test_no_credentials_and_staff_sessions_cannot_upload(api: Api) -> None:
    api.login("admin")
    response = api.client.put(f"/api/evidence/{uuid.uuid4().hex}/snapshot", content=snapshot_jpeg(),
                              headers={"Content-Type": "image/jpeg"})
    assert response.status_code == 401


def test_upload_is_stored_linked_and_served_with_an_audit_entry(api: Api) -> None:
    alarm_id = api.add_alarm()
    jpeg = snapshot_jpeg()
    response = upload(api, alarm_id, jpeg)
    assert response.status_code == 201
    assert response.json()["linked"] is True
    evidence_id = response.json()["evidence_id"]
    with api.sessions() as session:
        row = session.get(Evidence, evidence_id)
        assert row is not None and row.camera_id == CAMERA_ID and row.kind == "snapshot"
        assert row.captured_at is not None and row.captured_at.utcoffset() == timedelta(0)
        assert row.captured_at.hour == 2  # 09:30 +07:00
        days = api.config.backend.evidence_retention_days
        assert row.expires_at - row.created_at == timedelta(days=days)
        assert (api.config.media_dir / row.path).read_bytes() == jpeg
    api.login("security")
    alarm = api.client.get(f"/api/alarms/{alarm_id}").json()
    assert alarm["snapshot_url"] == f"/api/evidence/{evidence_id}"
    image = api.client.get(alarm["snapshot_url"])
    assert image.status_code == 200 and image.content == jpeg
    assert image.headers["content-type"] == "image/jpeg" and "no-store" in image.headers["cache-control"]
    api.client.get(alarm["snapshot_url"])
    with api.sessions() as session:
        views = list(session.scalars(select(AuditEntry).where(AuditEntry.action == "view_evidence")))
    assert len(views) == 2 and all(view.username == "guard" and evidence_id in view.target for view in views)


def test_technicians_may_not_view_evidence(api: Api) -> None:
    evidence_id = upload(api, api.add_alarm()).json()["evidence_id"]
    api.login("technician")
    assert api.client.get(f"/api/evidence/{evidence_id}").status_code == 403


def test_the_same_upload_twice_keeps_one_row(api: Api) -> None:
    alarm_id = api.add_alarm()
    first = upload(api, alarm_id)
    second = upload(api, alarm_id, snapshot_jpeg(label="OTHER"))
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["evidence_id"] == second.json()["evidence_id"]
    with api.sessions() as session:
        assert len(list(session.scalars(select(Evidence).where(Evidence.alarm_id == alarm_id)))) == 1


def test_evidence_before_its_alarm_is_linked_when_the_alarm_appears(api: Api) -> None:
    alarm_id = uuid.uuid4().hex
    response = upload(api, alarm_id)
    assert response.status_code == 201 and response.json()["linked"] is False
    api.add_alarm(alarm_id=alarm_id)
    api.login("security")
    assert api.client.get(f"/api/alarms/{alarm_id}").json()["snapshot_url"] == \
        f"/api/evidence/{response.json()['evidence_id']}"


@pytest.mark.parametrize(("body", "headers", "status"), [
    (b"GIF89a not a jpeg", {}, 422),
    (b"\xff\xd8\xff\xe0 truncated", {}, 422),
    (b"", {}, 422),
    (None, {"Content-Type": "image/png"}, 415),
    (None, {"X-Captured-At": "yesterday"}, 422),
    (None, {"X-Captured-At": "2025-03-01T09:30:00"}, 422),  # no time zone
    (b"\xff\xd8\xff" + b"\0" * (5 * 1024 * 1024) + b"\xff\xd9", {}, 413),
])
def test_bad_uploads_are_refused_and_store_nothing(api: Api, body: bytes | None, headers: dict, status: int) -> None:
    alarm_id = uuid.uuid4().hex
    assert upload(api, alarm_id, body, **headers).status_code == status
    with api.sessions() as session:
        assert session.scalars(select(Evidence)).first() is None
    assert not (api.config.media_dir / alarm_id).exists()


def test_a_path_like_alarm_id_is_refused(api: Api) -> None:
    response = api.client.put("/api/evidence/..%2F..%2Fetc/snapshot", content=snapshot_jpeg(),
                              headers=camera_headers())
    assert response.status_code in (404, 422)


def test_clip_upload_accepts_mp4_and_avi_by_content(api: Api) -> None:
    alarm_id = api.add_alarm()
    avi = b"RIFF\x10\x00\x00\x00AVI LIST" + b"\0" * 64
    response = api.client.put(f"/api/evidence/{alarm_id}/clip", content=avi,
                              headers=camera_headers(**{"Content-Type": "video/x-msvideo"}))
    assert response.status_code == 201
    fake = api.client.put(f"/api/evidence/{alarm_id}/clip", content=b"not a video at all",
                          headers=camera_headers(**{"Content-Type": "video/mp4"}))
    assert fake.status_code == 422


def test_a_camera_problem_shows_on_the_alarm_until_a_snapshot_replaces_it(api: Api) -> None:
    alarm_id = api.add_alarm()
    report = {"camera_id": CAMERA_ID, "kind": "snapshot", "problem": "stream stale for 4 s"}
    headers = camera_headers(**{"Content-Type": "application/json"})
    first = api.client.post(f"/api/evidence/{alarm_id}/problem", json=report, headers=headers)
    assert first.status_code == 201
    assert api.client.post(f"/api/evidence/{alarm_id}/problem", json=report, headers=headers).status_code == 200
    api.login("security")
    alarm = api.client.get(f"/api/alarms/{alarm_id}").json()
    assert alarm["evidence_problem"] == "stream stale for 4 s" and alarm["snapshot_url"] is None
    assert upload(api, alarm_id).status_code == 200
    alarm = api.client.get(f"/api/alarms/{alarm_id}").json()
    assert alarm["evidence_problem"] is None and alarm["snapshot_url"] is not None


def test_a_camera_may_only_report_for_itself(api: Api) -> None:
    report = {"camera_id": "cam-2", "kind": "snapshot", "problem": "no frames"}
    response = api.client.post(f"/api/evidence/{uuid.uuid4().hex}/problem", json=report,
                               headers=camera_headers(**{"Content-Type": "application/json"}))
    assert response.status_code == 403


def test_expired_evidence_is_purged_with_its_file(api: Api) -> None:
    alarm_id = api.add_alarm()
    evidence_id = upload(api, alarm_id).json()["evidence_id"]
    days = api.config.backend.evidence_retention_days
    with api.sessions() as session:
        path = api.config.media_dir / session.get(Evidence, evidence_id).path
        assert purge_expired_evidence(session, api.config.media_dir, utcnow()) == 0
        assert purge_expired_evidence(session, api.config.media_dir, utcnow() + timedelta(days=days + 1)) == 1
        assert session.get(Evidence, evidence_id) is None
    assert not path.exists()
