"""The gate-operations API: occupancy and counts, device health, keeping alarms, the live view."""

from __future__ import annotations

import base64
import json
import threading
import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import httpx
import pytest
from fastapi import HTTPException
from sqlalchemy import select
from starlette.requests import ClientDisconnect

from backend.api.gate_ops import GateOpsHttp
from backend.api.uploads import read_limited
from backend.db.gate_ops_models import AlarmKeep
from backend.db.models import AuditEntry, Device, Evidence
from backend.evidence import purge_expired_evidence
from backend.gate_ops import BeamFaultRecord, OccupancySettings, PassageRecord, store_beam_faults, store_passages
from backend.live_view import LiveFrames
from openshelf.contract import PassageDirection
from tests.backend.backend_testkit import ACCOUNTS, CAMERA_ID, CAMERA_SECRET, GATE_ID, ServerThread, snapshot_jpeg
from tests.backend.conftest import Api
from tests.helpers import free_port, wait_for

HCM = OccupancySettings(reset_hour=8, timezone="Asia/Ho_Chi_Minh")
NOW = datetime(2026, 3, 2, 3, 15, tzinfo=timezone.utc)  # 10:15 in Hà Nội
AVI = b"RIFF\x10\x00\x00\x00AVI LIST" + b"\0" * 64


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def monotonic(api: Api) -> FakeMonotonic:
    """The app on a fixed wall clock (NOW, Hà Nội hours opening at 08:00) and a hand-driven monotonic clock."""
    clock = FakeMonotonic()
    app = api.client.app
    app.state.ctx = replace(app.state.ctx, clock=lambda: NOW)
    app.state.gate_ops = GateOpsHttp(HCM, LiveFrames(monotonic=clock))
    return clock


def utc(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=timezone.utc)


def walk(api: Api, direction: str, *moments: datetime, gate_id: str = GATE_ID) -> None:
    records = [PassageRecord(uuid.uuid4().hex, gate_id, PassageDirection(direction), at) for at in moments]
    with api.sessions() as session:
        store_passages(session, records, HCM.zone, NOW)


def camera_auth(user: str = CAMERA_ID, password: str = CAMERA_SECRET) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def push(api: Api, body: bytes, camera_id: str = CAMERA_ID, **headers: str) -> httpx.Response:
    return api.client.put(f"/api/cameras/{camera_id}/live", content=body,
                          headers={**camera_auth(), "Content-Type": "image/jpeg", **headers})


def audit_entries(api: Api, action: str) -> list[AuditEntry]:
    with api.sessions() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


# ---------------------------------------------------------------------------- occupancy and counts


@pytest.mark.usefixtures("monotonic")
def test_occupancy_is_for_logged_in_gate_staff(api: Api) -> None:
    walk(api, "in", utc(2, 1, 10), utc(2, 2), utc(2, 3))
    walk(api, "out", utc(2, 3, 5))
    walk(api, "in", utc(1, 23))  # 06:00 local: before today's opening
    assert api.client.get("/api/gates/occupancy").status_code == 401
    for role in ("security", "technician", "admin"):
        api.login(role)
        body = api.client.get("/api/gates/occupancy").json()
        assert body["since"] == "2026-03-02T01:00:00Z"
        assert body["gates"][0]["gate_id"] == GATE_ID
        assert (body["total"]["entries"], body["total"]["exits"], body["total"]["occupancy"]) == (3, 1, 2)


@pytest.mark.usefixtures("monotonic")
def test_hourly_counts_fill_empty_hours_and_check_the_range(api: Api) -> None:
    walk(api, "in", utc(2, 1, 10), utc(2, 1, 20), utc(2, 3))
    walk(api, "out", utc(2, 3, 5))
    api.login("technician")
    today = api.client.get(f"/api/gates/{GATE_ID}/counts").json()  # default: opening hour to the end of this hour
    assert [(hour["hour_start"], hour["entries"], hour["exits"]) for hour in today["hours"]] == [
        ("2026-03-02T01:00:00Z", 2, 0), ("2026-03-02T02:00:00Z", 0, 0), ("2026-03-02T03:00:00Z", 1, 1)]
    ranged = api.client.get(f"/api/gates/{GATE_ID}/counts",
                            params={"from": "2026-03-02T09:30:00+07:00", "to": "2026-03-02T10:00:00+07:00"})
    assert ranged.status_code == 200
    assert [hour["hour_start"] for hour in ranged.json()["hours"]] == ["2026-03-02T02:00:00Z"]
    for params in ({"from": "2026-03-02T09:00:00"}, {"from": "2026-03-02T09:00:00Z", "to": "2026-03-02T08:00:00Z"},
                   {"from": "2026-01-01T00:00:00Z", "to": "2026-03-01T00:00:00Z"}, {"from": "yesterday"}):
        assert api.client.get(f"/api/gates/{GATE_ID}/counts", params=params).status_code == 422, params
    assert api.client.get("/api/gates/gate-404/counts").status_code == 404


# ---------------------------------------------------------------------------- device health


@pytest.mark.usefixtures("monotonic")
def test_device_health_names_what_is_wrong(api: Api) -> None:
    with api.sessions() as session:
        session.add_all([
            Device(id=GATE_ID, kind="gate", online=True, last_seen=NOW,
                   state={"io_link": "up", "light": False, "buzzer": False, "alarm_active": False}),
            Device(id=CAMERA_ID, kind="camera", online=True, last_seen=NOW,
                   state={"stream": "stale", "fps": 0.0, "reason": "no frame for 4.2 s"}),
            Device(id="kiosk-9", kind="kiosk", online=False, last_seen=NOW, state={"mode": "out_of_paper"}),
        ])
        session.commit()
        store_beam_faults(session, [BeamFaultRecord(GATE_ID, "1", "beam_a", True, utc(2, 2), utc(2, 2))])
    api.login("security")
    devices = {row["id"]: row for row in api.client.get("/api/devices/health").json()}
    assert devices[GATE_ID]["condition"] == "fault"
    assert devices[GATE_ID]["problems"][0]["code"] == "beam_stuck"
    assert "beam_a" in devices[GATE_ID]["problems"][0]["detail"]
    assert devices[CAMERA_ID]["condition"] == "fault"
    assert devices[CAMERA_ID]["problems"] == [{"code": "stream_stale", "detail": "no frame for 4.2 s", "since": None}]
    assert devices["kiosk-9"]["condition"] == "offline" and not devices["kiosk-9"]["configured"]
    assert [problem["code"] for problem in devices["kiosk-9"]["problems"]] == ["offline", "out_of_paper"]
    assert devices["reader-1"]["condition"] == "unknown" and devices["reader-1"]["configured"]


# ---------------------------------------------------------------------------- keeping an alarm for an incident


@pytest.mark.usefixtures("monotonic")
def test_keeping_and_releasing_an_alarm_is_audited_and_announced(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    alarm_id = api.add_alarm()
    announced: list[tuple[str, dict]] = []
    monkeypatch.setattr(api.notifier, "publish", lambda name, data: announced.append((name, data)))
    api.login("technician")
    assert api.client.post(f"/api/alarms/{alarm_id}/keep", json={"kept": True}).status_code == 403
    api.login("security")
    assert api.client.post(f"/api/alarms/{uuid.uuid4().hex}/keep", json={"kept": True}).status_code == 404
    assert api.client.post(f"/api/alarms/{alarm_id}/keep", json={"kept": "maybe"}).status_code == 422

    kept = api.client.post(f"/api/alarms/{alarm_id}/keep", json={"kept": True, "note": " police report 17 "})
    assert kept.status_code == 200
    assert kept.json() == {"alarm_id": alarm_id, "kept": True, "kept_by": "guard", "kept_at": "2026-03-02T03:15:00Z",
                           "note": "police report 17"}
    assert api.client.post(f"/api/alarms/{alarm_id}/keep", json={"kept": True, "note": "police report 17"}).json()[
        "kept"]
    assert [entry.target for entry in audit_entries(api, "keep_alarm")] == [f"{alarm_id} police report 17"]
    assert api.client.get("/api/kept-alarms").json() == [kept.json()]
    assert announced == [("alarm_kept", kept.json())]

    released = api.client.post(f"/api/alarms/{alarm_id}/keep", json={"kept": False})
    assert released.json()["kept"] is False and released.json()["kept_by"] is None
    assert [(entry.username, entry.target) for entry in audit_entries(api, "release_alarm")] == [("guard", alarm_id)]
    assert api.client.get("/api/kept-alarms").json() == []
    assert api.client.post(f"/api/alarms/{alarm_id}/keep", json={"kept": False}).status_code == 200
    assert len(audit_entries(api, "release_alarm")) == 1  # releasing twice changes nothing


def test_the_purge_skips_kept_alarms_until_they_are_released(api: Api) -> None:
    kept_alarm, other_alarm = api.add_alarm(), api.add_alarm()
    paths = {}
    for alarm_id in (kept_alarm, other_alarm):
        for kind, body, content_type in (("snapshot", snapshot_jpeg(), "image/jpeg"), ("clip", AVI, "video/avi")):
            response = api.client.put(f"/api/evidence/{alarm_id}/{kind}", content=body,
                                      headers={**camera_auth(), "Content-Type": content_type})
            assert response.status_code == 201, response.text
        with api.sessions() as session:
            paths[alarm_id] = [api.config.media_dir / row.path for row in
                               session.scalars(select(Evidence).where(Evidence.alarm_id == alarm_id))]
    api.login("security")
    assert api.client.post(f"/api/alarms/{kept_alarm}/keep", json={"kept": True}).status_code == 200
    days = api.config.backend.evidence_retention_days
    later = datetime.now(timezone.utc) + timedelta(days=days, hours=1)  # the clock the purge runs on
    with api.sessions() as session:
        assert purge_expired_evidence(session, api.config.media_dir, later) == 2
    assert all(path.exists() for path in paths[kept_alarm])
    assert not any(path.exists() for path in paths[other_alarm])
    assert api.client.post(f"/api/alarms/{kept_alarm}/keep", json={"kept": False}).status_code == 200
    with api.sessions() as session:
        assert purge_expired_evidence(session, api.config.media_dir, later) == 2
        assert session.get(AlarmKeep, kept_alarm) is None
    assert not any(path.exists() for path in paths[kept_alarm])


def test_a_clip_is_downloaded_through_the_audited_evidence_route(api: Api) -> None:
    alarm_id = api.add_alarm()
    api.client.put(f"/api/evidence/{alarm_id}/clip", content=AVI,
                   headers={**camera_auth(), "Content-Type": "video/x-msvideo"})
    report = {"camera_id": CAMERA_ID, "kind": "snapshot", "problem": "camera stream stale at the alarm"}
    api.client.post(f"/api/evidence/{alarm_id}/problem", json=report, headers=camera_auth())
    api.login("security")
    alarm = api.client.get(f"/api/alarms/{alarm_id}").json()
    clip = next(entry for entry in alarm["evidence"] if entry["kind"] == "clip")
    snapshot = next(entry for entry in alarm["evidence"] if entry["kind"] == "snapshot")
    assert snapshot["url"] is None and snapshot["problem"] == "camera stream stale at the alarm"
    download = api.client.get(clip["url"])
    assert download.status_code == 200 and download.content == AVI
    assert [entry.username for entry in audit_entries(api, "view_evidence")] == ["guard"]


# ---------------------------------------------------------------------------- live view


@pytest.mark.usefixtures("monotonic")
def test_only_the_camera_itself_may_push_its_live_view(api: Api) -> None:
    frame = snapshot_jpeg()
    assert api.client.put(f"/api/cameras/{CAMERA_ID}/live", content=frame,
                          headers={"Content-Type": "image/jpeg"}).status_code == 401
    assert push(api, frame, **camera_auth(password="wrong-secret-000")).status_code == 401
    api.login("admin")  # a staff session is no camera credential
    assert api.client.put(f"/api/cameras/{CAMERA_ID}/live", content=frame,
                          headers={"Content-Type": "image/jpeg"}).status_code == 401
    assert push(api, frame, camera_id="cam-2").status_code == 403
    assert push(api, frame, **{"Content-Type": "image/png"}).status_code == 415
    assert push(api, b"\xff\xd8\xff" + b"\0" * (1024 * 1024)).status_code == 413
    assert push(api, b"definitely not a jpeg").status_code == 422
    assert push(api, frame, **{"X-Captured-At": "noon"}).status_code == 422
    assert api.client.get(f"/api/cameras/{CAMERA_ID}/live.jpg").status_code == 404  # nothing was accepted


def test_staff_see_the_latest_frame_and_the_camera_learns_who_watches(api: Api, monotonic: FakeMonotonic) -> None:
    first, second = snapshot_jpeg(label="ONE"), snapshot_jpeg(label="TWO")
    accepted = push(api, first)
    assert accepted.status_code == 204 and accepted.headers["X-Live-Viewers"] == "0"
    assert push(api, second, **{"X-Captured-At": "2026-03-02T10:15:00+07:00"}).status_code == 204
    assert api.client.get(f"/api/cameras/{CAMERA_ID}/live.jpg").status_code == 401
    api.login("security")
    assert api.client.get("/api/cameras/cam-9/live.jpg").status_code == 404
    image = api.client.get(f"/api/cameras/{CAMERA_ID}/live.jpg")
    assert image.status_code == 200 and image.content == second
    assert image.headers["content-type"] == "image/jpeg" and "no-store" in image.headers["cache-control"]
    assert image.headers["x-captured-at"] == "2026-03-02T10:15:00+07:00"
    assert push(api, first).headers["X-Live-Viewers"] == "1"
    api.login("technician")
    assert api.client.get(f"/api/cameras/{CAMERA_ID}/live.jpg").content == first
    assert push(api, second).headers["X-Live-Viewers"] == "2"
    monotonic.now += 11
    assert push(api, second).headers["X-Live-Viewers"] == "0"


def test_each_viewing_session_is_audited_once(api: Api, monotonic: FakeMonotonic) -> None:
    push(api, snapshot_jpeg())
    api.login("security")
    for _ in range(5):  # the dashboard refreshes about once a second
        assert api.client.get(f"/api/cameras/{CAMERA_ID}/live.jpg").status_code == 200
        monotonic.now += 1
    assert [(entry.username, entry.target) for entry in audit_entries(api, "view_live")] == [("guard", CAMERA_ID)]
    monotonic.now += 60  # the guard looked away; the next look is a new session
    api.client.get(f"/api/cameras/{CAMERA_ID}/live.jpg")
    api.login("technician")
    api.client.get(f"/api/cameras/{CAMERA_ID}/live.jpg")
    assert [entry.username for entry in audit_entries(api, "view_live")] == ["guard", "guard", "tech"]


class CutOffUpload:
    """A request whose client goes away mid-body (a camera giving up on a slow answer)."""

    headers: dict[str, str] = {}
    url = SimpleNamespace(path=f"/api/cameras/{CAMERA_ID}/live")
    client = None

    async def stream(self):  # noqa: ANN201
        yield b"\xff\xd8\xff"
        raise ClientDisconnect()


async def test_a_live_upload_cut_off_by_the_camera_is_answered_not_raised() -> None:
    with pytest.raises(HTTPException) as caught:
        await read_limited(CutOffUpload(), 1024)  # type: ignore[arg-type]
    assert caught.value.status_code == 400


# ---------------------------------------------------------------------------- the stream for technicians


def test_technicians_get_occupancy_events_but_no_alarms(api: Api) -> None:
    with ServerThread(api.client.app, free_port()) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        username, password = ACCOUNTS["technician"]
        assert client.post("/api/login", json={"username": username, "password": password}).status_code == 200
        assert client.get("/api/alarms/stream").status_code == 403
        events: list[tuple[str, dict]] = []
        with client.stream("GET", "/api/gates/stream") as response:
            assert response.status_code == 200
            reader = threading.Thread(target=_read_events, args=(response, events), name="sse-reader")
            reader.start()
            try:
                wait_for(lambda: api.notifier.subscriber_count == 1, what="stream subscribed")
                api.notifier.publish("alarm", {"id": "secret"})
                api.notifier.publish("occupancy", {"total": {"occupancy": 4}})
                wait_for(lambda: events, what="an occupancy event")
            finally:
                api.notifier.close()
                reader.join(5)
    assert events == [("occupancy", {"total": {"occupancy": 4}})]


def _read_events(response: httpx.Response, into: list[tuple[str, dict]]) -> None:
    name = None
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: ") and name is not None:
            into.append((name, json.loads(line[6:])))
            name = None


def test_openapi_documents_the_gate_operations(api: Api) -> None:
    paths = api.client.get("/openapi.json").json()["paths"]
    for path in ("/api/gates/occupancy", "/api/gates/{gate_id}/counts", "/api/gates/stream", "/api/devices/health",
                 "/api/alarms/{alarm_id}/keep", "/api/kept-alarms", "/api/cameras/{camera_id}/live",
                 "/api/cameras/{camera_id}/live.jpg"):
        assert path in paths, path
