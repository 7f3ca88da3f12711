"""Migrations build exactly the models' schema; the demo seed is complete and idempotent."""

from __future__ import annotations

import json
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, inspect, select

from backend.db import Base, Item, Loan, Patron, StaffUser, Tag, make_engine, session_factory, upgrade_database
from backend.demo_seed import ensure_demo_accounts, seed_demo
from backend.gate_view import GateView
from openshelf.demo_catalog import DEMO_ITEMS, DEMO_PATRON_PIN, tag_uid_for
from tests.backend.backend_testkit import cheap_passwords

TABLES = {"items", "tags", "patrons", "loans", "alarms", "alarm_items", "evidence", "devices", "staff_users",
          "audit_log", "alembic_version"}
CIRCULATION_TABLES = {"patron_cards", "holds", "fines", "payments", "circulation_rules", "circulation_policy",
                      "circulation_results"}


def test_migrations_create_every_table_and_match_the_models(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        upgrade_database(engine)
        upgrade_database(engine)  # a second run is a no-op
        # Other revisions (gate operations …) add tables of their own; each must be a model's table.
        created = set(inspect(engine).get_table_names())
        assert TABLES | CIRCULATION_TABLES <= created
        assert created == set(Base.metadata.tables) | {"alembic_version"}
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_demo_accounts_file_is_private_and_stable(tmp_path: Path) -> None:
    accounts = ensure_demo_accounts(tmp_path)
    assert set(accounts) == {"security", "technician", "admin"}
    path = tmp_path / "demo-accounts.json"
    assert path.stat().st_mode & 0o777 == 0o600
    assert json.loads(path.read_text())["security"] == {"username": accounts["security"][0],
                                                         "password": accounts["security"][1]}
    assert ensure_demo_accounts(tmp_path) == accounts


def test_seed_demo_is_complete_and_idempotent(database_url: str, tmp_path: Path) -> None:
    engine = make_engine(database_url)
    passwords = cheap_passwords()
    try:
        upgrade_database(engine)
        sessions = session_factory(engine)
        accounts = ensure_demo_accounts(tmp_path)
        for _ in range(2):
            with sessions() as session:
                seed_demo(session, accounts, passwords=passwords)
        with sessions() as session:
            assert session.scalar(select(func.count()).select_from(Item)) == len(DEMO_ITEMS)
            assert session.scalar(select(func.count()).select_from(Tag)) == sum(item.parts for item in DEMO_ITEMS)
            assert session.get(Tag, tag_uid_for("I0009", 2)).item_id == "I0009"
            open_loans = set(session.scalars(select(Loan.item_id).where(Loan.returned_at.is_(None))))
            assert open_loans == {item.item_id for item in DEMO_ITEMS if item.on_loan_to}
            patron = session.scalars(select(Patron)).one()
            assert patron.barcode == "P0001" and passwords.verify(patron.pin_hash, DEMO_PATRON_PIN)
            staff = {user.username: user for user in session.scalars(select(StaffUser))}
            for role, (username, password) in accounts.items():
                assert staff[username].role == role and passwords.verify(staff[username].password_hash, password)
            view = GateView()
            assert view.load(session) == len(DEMO_ITEMS)
        assert view.lookup(tag_uid_for("I0002")).on_loan is True
        assert view.lookup(tag_uid_for("I0008")).in_library_only is True
        assert view.lookup("E0040100FFFFFF01") is None
        assert view.lookup("E0040100FFFFFF01", "I0003").item_id == "I0003"
    finally:
        engine.dispose()


def test_seed_accepts_plain_passwords_keyed_by_role(database_url: str) -> None:
    engine = make_engine(database_url)
    passwords = cheap_passwords()
    try:
        upgrade_database(engine)
        with session_factory(engine)() as session:
            seed_demo(session, {"admin": "admin-password-1"}, passwords=passwords)
            admin = session.scalars(select(StaffUser).where(StaffUser.username == "admin")).one()
            assert admin.role == "admin" and passwords.verify(admin.password_hash, "admin-password-1")
    finally:
        engine.dispose()
