"""Liveness for monitoring; no login needed and nothing sensitive in it."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from backend.api.deps import context
from backend.context import BackendContext
from backend.schemas import Health

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api", tags=["health"])


@router.get("/health", response_model=Health)
def health(ctx: BackendContext = Depends(context)) -> Health:
    try:
        with ctx.sessions() as session:
            session.execute(text("SELECT 1"))
        database = True
    except SQLAlchemyError:
        log.warning("health check: database unreachable", exc_info=True)
        database = False
    mqtt = ctx.gate.connected if ctx.gate is not None else None
    ok = database and mqtt is not False
    return Health(status="ok" if ok else "degraded", database=database, mqtt=mqtt)
