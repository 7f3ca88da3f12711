"""Engines, sessions and programmatic migrations for SQLite and PostgreSQL."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parents[1] / "migrations"


class DatabaseError(Exception):
    """The database cannot be reached, created or migrated."""


def make_engine(url: str) -> Engine:
    """An engine for ``sqlite:///path`` or ``postgresql+psycopg://…`` with sane defaults."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        _ensure_sqlite_folder(parsed.database)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _ensure_sqlite_folder(database: str | None) -> None:
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Foreign keys are off by default in SQLite; WAL lets dashboard reads run beside the writer.
    # Temporary tables and sorts stay in memory (a file per sort costs more than a circulation transaction).
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA temp_store=MEMORY")
    cursor.close()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def upgrade_database(url: str | Engine, revision: str = "head") -> None:
    """Bring the schema at ``url`` (or an existing engine) up to ``revision``."""
    engine = make_engine(url) if isinstance(url, str) else url
    try:
        command.upgrade(alembic_config(engine), revision)
    except Exception as exc:  # alembic and drivers raise many types; all mean "cannot migrate"
        raise DatabaseError(f"cannot migrate the database {engine.url.render_as_string()}: {exc}") from exc
    finally:
        if isinstance(url, str):
            engine.dispose()
    log.info("database schema is at %s", revision)
