"""Alembic migrations; run programmatically by ``backend.db.upgrade_database``."""
