"""The staff circulation API: patrons, items and tags, loans, holds, rules, fines; the kiosk catalogue endpoints."""

from __future__ import annotations

import base64
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Iterator

import pytest
import yaml
from sqlalchemy import func, select

from backend.app import create_app
from backend.config import load_backend_config
from backend.db import AuditEntry, Item, Loan, Patron, PatronCard, Tag, make_engine
from backend.notifier import AlarmNotifier
from openshelf.demo_catalog import tag_uid_for
from tests.backend.backend_testkit import cheap_passwords, write_site
from tests.backend.conftest import Api, FakeGate, TestClient

NEW_TAG = "E0040100ABCDEF01"


def _count(api: Api, model: type, *where: object) -> int:
    with api.sessions() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


# --------------------------------------------------------------------------- patrons


def test_patron_lifecycle_cards_block_and_pin(api: Api) -> None:
    client = api.login("admin")
    created = client.post("/api/patrons", json={
        "patron_id": "P0100", "name": "Trần Thị Bình", "category": "student", "email": "binh@example.org",
        "pin": "2468", "cards": [{"card_id": "04A1B2C3D4E5F6", "kind": "nfc_uid"}]})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["cards"] == [{"card_id": "P0100", "kind": "barcode"}, {"card_id": "04A1B2C3D4E5F6", "kind": "nfc_uid"}]
    assert body["has_pin"] is True and "pin" not in body and Decimal(body["fines_owed"]) == 0
    with api.sessions() as session:
        stored = session.scalars(select(Patron).where(Patron.barcode == "P0100")).one()
        assert stored.pin_hash.startswith("$argon2") and "2468" not in stored.pin_hash
    # The NFC card identifies the patron to the circulation, the PIN too.
    status = api.client.app.state.ctx.circulation.circulation.patron_status("04A1B2C3D4E5F6", "2468")
    assert status.ok and status.pin_valid and status.name == "Trần Thị Bình"
    assert client.post("/api/patrons/P0100/cards", json={"card_id": "P0001"}).status_code == 409  # P0001's card
    assert client.post("/api/patrons/P0100/cards", json={"card_id": "RF-77", "kind": "rfid"}).status_code == 201
    assert client.delete("/api/patrons/P0100/cards/P0100").status_code == 200
    blocked = client.post("/api/patrons/P0100/block", json={"reason": "Mất thẻ"}).json()
    assert blocked["blocked"] is True and blocked["block_reason"] == "Mất thẻ"
    refused = client.post("/api/loans", json={"item_id": "I0010", "patron_barcode": "RF-77"})
    assert refused.status_code == 409 and refused.headers["x-openshelf-reason"] == "patron_blocked"
    assert client.post("/api/patrons/P0100/unblock").json()["blocked"] is False
    assert client.put("/api/patrons/P0100/pin", json={"pin": "1357"}).status_code == 204
    circulation = api.client.app.state.ctx.circulation.circulation
    assert circulation.patron_status("RF-77", "1357").pin_valid is True
    assert circulation.patron_status("RF-77", "2468").pin_valid is False
    patched = client.patch("/api/patrons/P0100", json={"email": None, "expires_on": "2030-12-31"}).json()
    assert patched["email"] is None and patched["expires_on"] == "2030-12-31" and patched["category"] == "student"
    assert [row["patron_id"] for row in client.get("/api/patrons", params={"q": "RF-77"}).json()["patrons"]] == [
        "P0100"]
    assert client.delete("/api/patrons/P0100").status_code == 204
    assert client.get("/api/patrons/P0100").status_code == 404
    assert _count(api, PatronCard, PatronCard.card_id == "RF-77") == 0
    assert _count(api, AuditEntry, AuditEntry.action == "reset_pin") == 1


@pytest.mark.parametrize("body", [
    {"patron_id": "P 1", "name": "x"},
    {"patron_id": "P0200", "name": ""},
    {"patron_id": "P0200", "name": "x", "pin": "12"},
    {"patron_id": "P0200", "name": "x", "email": "not-an-address"},
    {"patron_id": "P0200", "name": "x", "cards": [{"card_id": "C1", "kind": "magstripe"}]},
    {"patron_id": "P0200", "name": "x", "shoe_size": 42},
])
def test_bad_patron_fields_are_422_and_write_nothing(api: Api, body: dict) -> None:
    api.login("admin")
    before = _count(api, Patron)
    response = api.client.post("/api/patrons", json=body)
    assert response.status_code == 422
    assert _count(api, Patron) == before and _count(api, PatronCard, PatronCard.card_id == "C1") == 0


def test_a_patron_with_loans_cannot_be_deleted(api: Api) -> None:
    api.login("admin")
    response = api.client.delete("/api/patrons/P0001")
    assert response.status_code == 409 and "loan" in response.json()["detail"]
    assert api.client.get("/api/patrons/P0001").json()["open_loans"] == 2


# --------------------------------------------------------------------------- items and tags


def test_item_lifecycle_and_tags_reach_the_gate(api: Api) -> None:
    client = api.login("admin")
    view = client.app.state.ctx.view
    created = client.post("/api/items", json={
        "item_id": "I0100", "title": "Lược sử thời gian", "author": "Stephen Hawking", "record_id": "B100",
        "item_type": "book", "home_branch": "MAIN", "location": "Tầng 2", "tags": [{"uid": NEW_TAG}]})
    assert created.status_code == 201, created.text
    assert created.json()["tags"] == [{"uid": NEW_TAG, "part": 1}] and created.json()["status"] == "available"
    assert view.lookup(NEW_TAG).item_id == "I0100" and view.lookup(NEW_TAG).on_loan is False
    assert client.put("/api/items/I0100/tags", json={"tags": [{"uid": tag_uid_for("I0001")}]}).status_code == 409
    replaced = client.put("/api/items/I0100/tags", json={"tags": [{"uid": "E0040100ABCDEF02"}]})
    assert replaced.status_code == 200 and replaced.json()["tags"] == [{"uid": "E0040100ABCDEF02", "part": 1}]
    assert view.lookup(NEW_TAG) is None and view.lookup("E0040100ABCDEF02").item_id == "I0100"
    patched = client.patch("/api/items/I0100", json={"in_library_only": True, "status": "in_process"}).json()
    assert patched["in_library_only"] is True and patched["status"] == "in_process"
    assert view.lookup("E0040100ABCDEF02").in_library_only is True
    assert client.patch("/api/items/I0002", json={"status": "available"}).status_code == 409  # on loan
    assert client.delete("/api/items/I0002").status_code == 409
    assert client.delete("/api/items/I0100").status_code == 204
    assert view.lookup("E0040100ABCDEF02") is None and _count(api, Tag, Tag.item_id == "I0100") == 0
    found = client.get("/api/items", params={"q": "Dế Mèn"}).json()
    assert [row["item_id"] for row in found["items"]] == ["I0003"]
    assert client.get("/api/items", params={"status": "on_loan"}).json()["total"] == 2


@pytest.mark.parametrize("body", [
    {"item_id": "I0101", "title": "x", "status": "on_loan"},
    {"item_id": "I0101", "title": "x", "tags": [{"uid": "not-a-uid"}]},
    {"item_id": "I0101", "title": "x", "parts": 1, "tags": [{"uid": NEW_TAG, "part": 2}]},
    {"item_id": "I0101", "title": "x", "tags": [{"uid": NEW_TAG}, {"uid": NEW_TAG}]},
    {"item_id": "I0101", "title": "x", "year": "long ago"},
    {"item_id": "I0101"},
])
def test_bad_items_are_422_and_write_nothing(api: Api, body: dict) -> None:
    api.login("admin")
    response = api.client.post("/api/items", json=body)
    assert response.status_code == 422
    assert _count(api, Item, Item.item_id == "I0101") == 0 and _count(api, Tag, Tag.uid == NEW_TAG) == 0


# --------------------------------------------------------------------------- loans


def test_checkout_renew_return_with_rules_and_messages(api: Api) -> None:
    client = api.login("admin")
    out = client.post("/api/loans", json={"item_id": "I0010", "patron_barcode": "P0001",
                                          "idempotency_key": "desk-0001-abc"})
    assert out.status_code == 201, out.text
    loan = out.json()
    assert loan["code"] == "checked_out" and loan["message_vi"].startswith("Mượn thành công") and loan["id"]
    again = client.post("/api/loans", json={"item_id": "I0010", "patron_barcode": "P0001",
                                            "idempotency_key": "desk-0001-abc"})
    assert again.status_code == 201 and again.json()["id"] == loan["id"]  # the same answer, one loan
    assert _count(api, Loan, Loan.item_id == "I0010") == 1
    listed = client.get("/api/loans", params={"patron_id": "P0001"}).json()
    assert {row["item_id"] for row in listed["loans"]} == {"I0002", "I0005", "I0010"}
    renewed = client.post("/api/loans/I0010/renew", json={})
    assert renewed.status_code == 200 and renewed.json()["renewals"] == 1
    assert renewed.json()["due_at"] > loan["due_at"]
    back = client.post("/api/returns", json={"item_id": "I0010"})
    assert back.status_code == 200 and back.json()["returned_at"] and back.json()["sort_hint"] == "shelve"
    assert client.post("/api/loans/I0010/renew", json={}).status_code == 404


def test_holds_trap_on_return_and_block_others(api: Api) -> None:
    client = api.login("admin")
    client.post("/api/patrons", json={"patron_id": "P0300", "name": "Lê Văn Cường", "pin": "1111"})
    hold = client.post("/api/holds", json={"patron_id": "P0300", "item_id": "I0002"})
    assert hold.status_code == 201 and hold.json()["status"] == "pending"
    assert client.post("/api/holds", json={"patron_id": "P0300"}).status_code == 422
    assert client.post("/api/holds", json={"patron_id": "P0300", "record_id": "NOPE"}).status_code == 404
    returned = client.post("/api/returns", json={"item_id": "I0002"}).json()
    assert returned["sort_hint"] == "hold_shelf" and returned["code"] == "returned_hold_here"
    ready = client.get("/api/holds", params={"patron_id": "P0300"}).json()
    assert [(row["item_id"], row["status"]) for row in ready] == [("I0002", "ready")]
    assert ready[0]["pickup_expires_at"] is not None
    taken = client.post("/api/loans", json={"item_id": "I0002", "patron_barcode": "P0001"})
    assert taken.status_code == 409 and taken.headers["x-openshelf-reason"] == "on_hold_for_other"
    assert client.delete(f"/api/holds/{hold.json()['hold_id']}").status_code == 204
    assert client.get("/api/items/I0002").json()["status"] == "available"
    assert client.post("/api/loans", json={"item_id": "I0002", "patron_barcode": "P0001"}).status_code == 201


def test_rules_are_admin_data_validated_whole(api: Api) -> None:
    client = api.login("admin")
    rules = client.get("/api/circulation/rules").json()
    assert rules["currency"] == "VND" and {"patron_category": "student", "item_type": "dvd"}.items() <= \
        next(rule for rule in rules["rules"] if rule["patron_category"] == "student" and rule["item_type"] == "dvd"
             ).items()
    bad = client.put("/api/circulation/rules", json={**rules, "rules": [{"loan_period": -1}]})
    assert bad.status_code == 422 and "loan_period" in str(bad.json()["detail"])
    assert client.get("/api/circulation/rules").json() == rules  # nothing half-written
    short = {"rules": [{"loan_period": 2, "max_loans": 10}], "currency": "VND", "hold_pickup_days": 3}
    saved = client.put("/api/circulation/rules", json=short)
    assert saved.status_code == 200 and saved.json()["rules"][0]["loan_period"] == 2
    loan = client.post("/api/loans", json={"item_id": "I0011", "patron_barcode": "P0001"}).json()
    assert (date.fromisoformat(loan["due_at"][:10]) - date.fromisoformat(loan["checked_out_at"][:10])).days in (2, 3)
    api.login("technician")
    assert client.get("/api/circulation/rules").status_code == 403


def test_fines_are_charged_and_paid_exactly_once(api: Api) -> None:
    client = api.login("admin")
    fine = client.post("/api/fines", json={"patron_id": "P0001", "amount": "15000", "kind": "damage",
                                           "item_id": "I0003", "description": "Rách bìa"})
    assert fine.status_code == 201 and Decimal(fine.json()["outstanding"]) == 15000
    too_much = client.post("/api/patrons/P0001/payments", json={"amount": "20000"})
    assert too_much.status_code == 409 and too_much.headers["x-openshelf-reason"] == "invalid_amount"
    paid = client.post("/api/patrons/P0001/payments", json={"amount": "15000", "idempotency_key": "cash-0001"})
    again = client.post("/api/patrons/P0001/payments", json={"amount": "15000", "idempotency_key": "cash-0001"})
    assert paid.status_code == again.status_code == 201
    assert paid.json()["transaction_id"] == again.json()["transaction_id"]
    assert client.get("/api/fines", params={"patron_id": "P0001"}).json() == []
    assert Decimal(client.get("/api/patrons/P0001").json()["fines_owed"]) == 0
    assert client.post("/api/fines", json={"patron_id": "P0001", "amount": "-5"}).status_code == 422


@pytest.mark.parametrize("role", ["security", "technician"])
@pytest.mark.parametrize("method, path", [("get", "/api/patrons"), ("get", "/api/items"), ("get", "/api/holds"),
                                          ("get", "/api/fines"), ("get", "/api/loans")])
def test_circulation_desk_is_for_admins(api: Api, role: str, method: str, path: str) -> None:
    api.login(role)
    assert getattr(api.client, method)(path).status_code == 403


def test_openapi_documents_the_circulation_api(api: Api) -> None:
    paths = api.client.get("/openapi.json").json()["paths"]
    for path in ("/api/patrons", "/api/patrons/{patron_id}/cards", "/api/patrons/{patron_id}/pin",
                 "/api/items/{item_id}/tags", "/api/loans/{item_id}/renew", "/api/holds", "/api/circulation/rules",
                 "/api/fines", "/api/patrons/{patron_id}/payments", "/api/catalog/items/{item_id}"):
        assert path in paths, path


# --------------------------------------------------------------------------- kiosk endpoints

KIOSK_ID, KIOSK_SECRET = "kiosk-1", "kiosk-secret-0123"


@pytest.fixture
def kiosk_api(tmp_path: Path, seeded_database_url: str, site_id: str) -> Iterator[TestClient]:
    path = write_site(tmp_path, site_id=site_id, database_url=seeded_database_url)
    site = yaml.safe_load(path.read_text(encoding="utf-8"))
    site["kiosks"] = [{"id": KIOSK_ID, "secret": KIOSK_SECRET}]
    path.write_text(yaml.safe_dump(site, allow_unicode=True), encoding="utf-8")
    config = load_backend_config(path)
    engine = make_engine(config.database_url.get_secret_value())
    app = create_app(config, engine=engine, gate_service=FakeGate(), notifier=AlarmNotifier(),
                     passwords=cheap_passwords())
    try:
        with TestClient(app, base_url="http://testserver") as client:
            yield client
    finally:
        app.state.ctx.circulation.close()
        engine.dispose()


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_kiosks_read_titles_and_only_their_own_sessions_email(kiosk_api: TestClient) -> None:
    item = kiosk_api.get("/api/catalog/items/I0009", headers=_basic(KIOSK_ID, KIOSK_SECRET))
    assert item.status_code == 200
    assert item.json() == {"item_id": "I0009", "title": "Việt Nam sử lược", "author": "Trần Trọng Kim", "parts": 2}
    assert kiosk_api.get("/api/catalog/items/I0009", headers=_basic(KIOSK_ID, "wrong")).status_code == 401
    assert kiosk_api.get("/api/catalog/items/I0009").status_code == 401
    assert kiosk_api.get("/api/catalog/items/I9999", headers=_basic(KIOSK_ID, KIOSK_SECRET)).status_code == 404
    sessions = kiosk_api.app.state.ctx.circulation.sessions
    session_id = sessions.open(KIOSK_ID, "P0001")
    email = kiosk_api.get(f"/api/kiosk/sessions/{session_id}/email", headers=_basic(KIOSK_ID, KIOSK_SECRET))
    assert email.status_code == 200 and email.json() == {"email": "ban.doc@example.org"}
    other = sessions.open("kiosk-2", "P0001")
    assert kiosk_api.get(f"/api/kiosk/sessions/{other}/email",
                         headers=_basic(KIOSK_ID, KIOSK_SECRET)).status_code == 404
