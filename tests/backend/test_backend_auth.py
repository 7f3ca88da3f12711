"""Staff login: cookies, wrong passwords, rate limiting, roles, logout."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from backend.db.models import AuditEntry, StaffUser
from backend.sessions import COOKIE_NAME
from backend.users import UserError, create_user, set_password
from tests.backend.backend_testkit import ACCOUNTS, cheap_passwords
from tests.backend.conftest import Api


def test_health_needs_no_login(api: Api) -> None:
    response = api.client.get("/api/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": True, "mqtt": True}


@pytest.mark.parametrize("path", ["/api/alarms", "/api/me", "/api/devices", "/api/alarms/stream",
                                  "/api/evidence/" + "0" * 32])
def test_every_other_route_needs_a_session(api: Api, path: str) -> None:
    assert api.client.get(path).status_code == 401


def test_login_sets_a_strict_httponly_cookie_and_me_answers(api: Api) -> None:
    username, password = ACCOUNTS["security"]
    response = api.client.post("/api/login", json={"username": username, "password": password})
    assert response.status_code == 200
    assert response.json() == {"username": username, "role": "security"}
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE_NAME}=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Max-Age=" in cookie
    assert api.client.get("/api/me").json() == {"username": username, "role": "security"}


def test_login_accepts_a_form_too(api: Api) -> None:
    username, password = ACCOUNTS["technician"]
    response = api.client.post("/api/login", data={"username": username, "password": password})
    assert response.status_code == 200
    assert api.client.get("/api/me").json()["role"] == "technician"


def test_a_plain_html_form_is_redirected(api: Api) -> None:
    username, password = ACCOUNTS["security"]
    good = api.client.post("/api/login", data={"username": username, "password": password},
                           headers={"Accept": "text/html"}, follow_redirects=False)
    assert good.status_code == 303 and good.headers["location"] == "/"
    bad = api.client.post("/api/login", data={"username": username, "password": "nope"},
                          headers={"Accept": "text/html"}, follow_redirects=False)
    assert bad.status_code == 303 and bad.headers["location"] == "/?error=login"


@pytest.mark.parametrize("username", ["guard", "nobody"])
def test_wrong_password_and_unknown_user_get_the_same_generic_401(api: Api, username: str) -> None:
    response = api.client.post("/api/login", json={"username": username, "password": "wrong-password"})
    assert response.status_code == 401
    assert response.json() == {"detail": "wrong username or password"}
    assert COOKIE_NAME not in response.headers.get("set-cookie", "")


@pytest.mark.parametrize("body", [{}, {"username": "guard"}, {"username": "", "password": "x"},
                                  {"username": "guard", "password": "x", "extra": 1}])
def test_malformed_login_is_422(api: Api, body: dict) -> None:
    response = api.client.post("/api/login", json=body)
    assert response.status_code == 422
    assert response.json()["detail"]


def test_login_with_broken_json_is_422(api: Api) -> None:
    response = api.client.post("/api/login", content=b"{nope", headers={"Content-Type": "application/json"})
    assert response.status_code == 422


def test_repeated_failures_are_rate_limited_even_with_the_right_password(api: Api) -> None:
    username, password = ACCOUNTS["security"]
    for _ in range(5):
        assert api.client.post("/api/login", json={"username": username, "password": "bad"}).status_code == 401
    blocked = api.client.post("/api/login", json={"username": username, "password": password})
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) > 0
    other = ACCOUNTS["admin"]
    assert api.client.post("/api/login", json={"username": other[0], "password": other[1]}).status_code == 200


def test_failed_and_successful_logins_are_audited(api: Api) -> None:
    username, _ = ACCOUNTS["security"]
    api.client.post("/api/login", json={"username": username, "password": "bad"})
    api.login("security")
    with api.sessions() as session:
        actions = [(entry.action, entry.username) for entry in session.scalars(select(AuditEntry))]
    assert ("login_failed", None) in actions
    assert ("login", username) in actions


def test_logout_ends_the_session(api: Api) -> None:
    api.login("security")
    assert api.client.post("/api/logout").status_code == 204
    assert api.client.get("/api/me").status_code == 401


def test_a_forged_or_tampered_cookie_is_refused(api: Api) -> None:
    api.login("security")
    token = api.client.cookies[COOKIE_NAME]
    api.client.cookies.set(COOKIE_NAME, token[:-2] + ("AA" if not token.endswith("AA") else "BB"))
    assert api.client.get("/api/me").status_code == 401


def test_changing_the_password_ends_existing_sessions(api: Api) -> None:
    api.login("security")
    with api.sessions() as session:
        user = session.scalars(select(StaffUser).where(StaffUser.username == "guard")).one()
        set_password(session, user, "a-brand-new-password", passwords=cheap_passwords())
        session.commit()
    assert api.client.get("/api/me").status_code == 401


def test_a_deactivated_account_cannot_log_in_or_keep_its_session(api: Api) -> None:
    api.login("security")
    with api.sessions() as session:
        session.scalars(select(StaffUser).where(StaffUser.username == "guard")).one().active = False
        session.commit()
    assert api.client.get("/api/me").status_code == 401
    username, password = ACCOUNTS["security"]
    assert api.client.post("/api/login", json={"username": username, "password": password}).status_code == 401


@pytest.mark.parametrize(("role", "path", "allowed"), [
    ("security", "/api/alarms", True),
    ("technician", "/api/alarms", False),
    ("admin", "/api/alarms", True),
    ("security", "/api/devices", False),
    ("technician", "/api/devices", True),
    ("admin", "/api/devices", True),
])
def test_roles(api: Api, role: str, path: str, allowed: bool) -> None:
    api.login(role)
    assert api.client.get(path).status_code == (200 if allowed else 403)


@pytest.mark.parametrize("role", ["security", "technician"])
def test_only_admins_check_out(api: Api, role: str) -> None:
    api.login(role)
    response = api.client.post("/api/loans", json={"item_id": "I0003", "patron_barcode": "P0001"})
    assert response.status_code == 403


def test_create_user_validates_and_refuses_duplicates(api: Api) -> None:
    with api.sessions() as session:
        user = create_user(session, "night-guard", "long-enough-pw", "security", passwords=cheap_passwords())
        session.commit()
        assert user.role == "security" and user.password_hash.startswith("$argon2id$")
        for args in (("night-guard", "long-enough-pw", "security"), ("x y", "long-enough-pw", "security"),
                     ("someone", "short", "security"), ("someone", "long-enough-pw", "janitor")):
            with pytest.raises(UserError):
                create_user(session, *args, passwords=cheap_passwords())
    response = api.client.post("/api/login", json={"username": "night-guard", "password": "long-enough-pw"})
    assert response.status_code == 200
