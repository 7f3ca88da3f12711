"""HTTP routes of the backend, one module per area."""

from __future__ import annotations

from fastapi import APIRouter


def circulation_routers() -> list[APIRouter]:
    """The circulation desk and kiosk routes (imported here, when an app is built)."""
    from backend.api import catalog, fines, holds, items, patrons, rules

    return [patrons.router, items.router, holds.router, fines.router, rules.router, catalog.router]
