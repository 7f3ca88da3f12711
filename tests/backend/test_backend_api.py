"""The JSON API: alarms, acknowledging, minimal circulation, devices, the pages."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from backend.alarm_writer import AlarmWriter, DeviceSighting
from backend.db.models import Alarm, AuditEntry, Loan
from openshelf.contract import AlarmReason, GateLinkState, GateState, utcnow
from openshelf.demo_catalog import tag_uid_for
from tests.backend.backend_testkit import GATE_ID
from tests.backend.conftest import Api


def test_alarms_come_newest_first_with_items_titles_and_paging(api: Api) -> None:
    older = api.add_alarm("I0003", seconds_ago=60)
    newer = api.add_alarm("I0008", reason=AlarmReason.IN_LIBRARY_ONLY, seconds_ago=5)
    unknown = api.add_alarm(None, reason=AlarmReason.UNKNOWN_TAG, decided_locally=True, seconds_ago=1)
    api.login("security")
    page = api.client.get("/api/alarms").json()
    assert [row["id"] for row in page["alarms"]] == [unknown, newer, older]
    assert page["total"] == 3
    first = page["alarms"][1]
    assert first["gate_id"] == GATE_ID
    assert first["items"] == [{"uid": tag_uid_for("I0008"), "item_id": "I0008", "title": "Từ điển Tiếng Việt",
                               "reason": "in_library_only"}]
    assert first["status"] == "open" and first["snapshot_url"] is None and first["evidence_problem"] is None
    assert page["alarms"][0]["decided_locally"] is True
    assert page["alarms"][0]["items"][0]["title"] is None
    second_page = api.client.get("/api/alarms", params={"offset": 1, "limit": 1}).json()
    assert [row["id"] for row in second_page["alarms"]] == [newer]


def test_one_alarm_and_a_missing_one(api: Api) -> None:
    alarm_id = api.add_alarm()
    api.login("security")
    assert api.client.get(f"/api/alarms/{alarm_id}").json()["id"] == alarm_id
    assert api.client.get("/api/alarms/" + "f" * 32).status_code == 404


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 201}, {"offset": -1}, {"status": "sleeping"},
                                    {"limit": "many"}])
def test_bad_paging_is_422(api: Api, params: dict) -> None:
    api.login("security")
    response = api.client.get("/api/alarms", params=params)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][0] == "query"


def test_acknowledge_records_who_when_and_silences_the_gate(api: Api) -> None:
    alarm_id = api.add_alarm()
    api.login("security")
    before = utcnow()
    response = api.client.post(f"/api/alarms/{alarm_id}/acknowledge",
                               json={"outcome": "returned_to_desk", "note": "  book left at desk  "})
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "acknowledged" and body["acknowledged_by"] == "guard"
    assert body["outcome"] == "returned_to_desk" and body["note"] == "book left at desk"
    with api.sessions() as session:
        stored = session.get(Alarm, alarm_id)
        assert stored is not None and stored.acknowledged_at is not None
        assert before - timedelta(seconds=1) <= stored.acknowledged_at <= utcnow()
        assert session.scalar(select(func.count()).select_from(AuditEntry)
                              .where(AuditEntry.action == "acknowledge_alarm")) == 1
    assert api.gate.silenced == [(GATE_ID, alarm_id)]
    again = api.client.post(f"/api/alarms/{alarm_id}/acknowledge", json={"outcome": "false_alarm"})
    assert again.status_code == 409


@pytest.mark.parametrize("body", [{}, {"outcome": "shrugged"}, {"outcome": "false_alarm", "note": "x" * 2001},
                                  {"outcome": "false_alarm", "by": "someone-else"}])
def test_bad_acknowledgements_are_422_and_change_nothing(api: Api, body: dict) -> None:
    alarm_id = api.add_alarm()
    api.login("security")
    response = api.client.post(f"/api/alarms/{alarm_id}/acknowledge", json=body)
    assert response.status_code == 422
    assert api.client.get(f"/api/alarms/{alarm_id}").json()["status"] == "open"
    assert api.gate.silenced == []


def test_silence_then_acknowledge(api: Api) -> None:
    alarm_id = api.add_alarm()
    api.login("security")
    assert api.client.post(f"/api/alarms/{alarm_id}/silence").json()["status"] == "silenced"
    assert api.client.post(f"/api/alarms/{alarm_id}/acknowledge",
                           json={"outcome": "patron_left"}).json()["status"] == "acknowledged"
    assert api.gate.silenced == [(GATE_ID, alarm_id), (GATE_ID, alarm_id)]


def test_checkout_and_return_update_the_gate_view_at_once(api: Api) -> None:
    view = api.client.app.state.ctx.view
    assert view.lookup(tag_uid_for("I0003")).on_loan is False
    api.login("admin")
    loan = api.client.post("/api/loans", json={"item_id": "I0003", "patron_barcode": "P0001"})
    assert loan.status_code == 201, loan.text
    assert loan.json()["item_id"] == "I0003" and loan.json()["returned_at"] is None
    assert view.lookup(tag_uid_for("I0003")).on_loan is True
    assert api.client.post("/api/loans", json={"item_id": "I0003", "patron_barcode": "P0001"}).status_code == 409
    returned = api.client.post("/api/returns", json={"item_id": "I0003"})
    assert returned.status_code == 200 and returned.json()["returned_at"] is not None
    assert view.lookup(tag_uid_for("I0003")).on_loan is False
    assert api.client.post("/api/returns", json={"item_id": "I0003"}).status_code == 409


def test_both_tags_of_a_two_part_item_follow_its_loan(api: Api) -> None:
    view = api.client.app.state.ctx.view
    api.login("admin")
    assert api.client.post("/api/loans", json={"item_id": "I0009", "patron_barcode": "P0001"}).status_code == 201
    assert view.lookup(tag_uid_for("I0009", 1)).on_loan and view.lookup(tag_uid_for("I0009", 2)).on_loan


@pytest.mark.parametrize(("body", "status"), [
    ({"item_id": "I0008", "patron_barcode": "P0001"}, 409),  # in-library only
    ({"item_id": "I0002", "patron_barcode": "P0001"}, 409),  # already on loan in the demo
    ({"item_id": "I9999", "patron_barcode": "P0001"}, 404),
    ({"item_id": "I0003", "patron_barcode": "P9999"}, 404),
    ({"item_id": "I0003"}, 422),
    ({"item_id": "I 3", "patron_barcode": "P0001"}, 422),
    ({"item_id": "I0003", "patron_barcode": "P0001", "due": "never"}, 422),
])
def test_refused_checkouts_write_nothing(api: Api, body: dict, status: int) -> None:
    api.login("admin")
    with api.sessions() as session:
        loans_before = session.scalar(select(func.count()).select_from(Loan))
    response = api.client.post("/api/loans", json=body)
    assert response.status_code == status
    assert isinstance(response.json()["detail"], (str, list)) and response.json()["detail"]
    with api.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Loan)) == loans_before


def test_devices_list_configured_and_heard_devices(api: Api) -> None:
    writer = AlarmWriter(api.sessions, api.notifier)
    writer.start()
    now = utcnow()
    writer.record_device(DeviceSighting(GATE_ID, "gate", now, online=True))
    writer.record_device(DeviceSighting(GATE_ID, "gate", now, state=GateState(
        io_link=GateLinkState.UP, light=False, buzzer=False, alarm_active=False)))
    writer.record_device(DeviceSighting("stray-7", "reader", now, online=False))
    writer.stop()
    api.login("technician")
    devices = {row["id"]: row for row in api.client.get("/api/devices").json()}
    assert set(devices) == {GATE_ID, "reader-1", "cam-1", "stray-7"}
    assert devices[GATE_ID]["online"] is True and devices[GATE_ID]["state"]["io_link"] == "up"
    assert devices["reader-1"]["online"] is None and devices["reader-1"]["configured"] is True
    assert devices["stray-7"]["configured"] is False and devices["stray-7"]["online"] is False


def test_the_root_shows_login_then_the_board(api: Api) -> None:
    page = api.client.get("/")
    assert page.status_code == 200 and 'id="login-form"' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    api.login("security")
    board = api.client.get("/")
    assert 'id="alarm-list"' in board.text and 'id="login-form"' not in board.text
    assert api.client.get("/static/board.js").status_code == 200


def test_openapi_documents_the_api(api: Api) -> None:
    schema = api.client.get("/openapi.json").json()
    for path in ("/api/alarms", "/api/alarms/{alarm_id}/acknowledge", "/api/evidence/{alarm_id}/snapshot",
                 "/api/login", "/api/loans", "/api/returns", "/api/devices", "/api/alarms/stream"):
        assert path in schema["paths"], path
    assert api.client.get("/docs").status_code == 200
