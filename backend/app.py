"""The FastAPI application factory. Nothing is created at import time; the caller owns every resource."""

from __future__ import annotations

from datetime import datetime
from typing import Callable

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.api import alarms, auth, dashboard, devices, evidence, health, loans
from backend.api import gate_ops as gate_ops_api
from backend.api import circulation_routers
from backend.circulation_runtime import CirculationParts, build_circulation_parts
from backend.config import BackendServiceConfig
from backend.context import BackendContext, GateControl
from backend.db.engine import session_factory
from backend.gate_view import GateView
from backend.notifier import AlarmNotifier
from backend.passwords import Passwords
from backend.rate_limit import LoginRateLimiter
from backend.sessions import SessionCodec
from openshelf.contract import utcnow

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_DOCS_PATHS = ("/docs", "/redoc", "/openapi.json")


def create_app(
    config: BackendServiceConfig,
    *,
    engine: Engine,
    gate_service: GateControl | None,
    notifier: AlarmNotifier,
    view: GateView | None = None,
    passwords: Passwords | None = None,
    limiter: LoginRateLimiter | None = None,
    clock: Callable[[], datetime] = utcnow,
    circulation: CirculationParts | None = None,
) -> FastAPI:
    """Build the app around resources the caller created (and will close).

    ``view`` is the gate view shared with the gate service; without one a view
    is loaded from the database here, so checkouts still update something.
    """
    sessions = session_factory(engine)
    if view is None:
        view = GateView()
        with sessions() as session:
            view.load(session)
    passwords = passwords or Passwords()
    if circulation is None:
        circulation = build_circulation_parts(config, engine, view, pin_hasher=passwords)
    app = FastAPI(
        title="OpenShelf backend",
        version="1",
        description="Gate decisions, alarms with evidence, staff login and the live alarm board.",
    )
    app.state.ctx = BackendContext(
        config=config,
        sessions=sessions,
        passwords=passwords,
        codec=SessionCodec(config.session_secret.get_secret_value()),
        limiter=limiter or LoginRateLimiter(),
        view=view,
        notifier=notifier,
        gate=gate_service,
        clock=clock,
        circulation=circulation,
    )
    for module in (health, auth, alarms, evidence, devices, loans, dashboard):
        app.include_router(module.router)
    gate_ops_api.install(app)
    for router in circulation_routers():
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=dashboard.WEB_DIR), name="static")
    app.add_middleware(SecurityHeaders)
    return app


class SecurityHeaders:
    """Plain ASGI (not BaseHTTPMiddleware) so the live event stream passes through untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        # The interactive docs load Swagger UI from a CDN; the dashboard itself loads nothing foreign.
        strict = not scope["path"].startswith(_DOCS_PATHS)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "same-origin")
                if strict:
                    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
                    headers.setdefault("X-Frame-Options", "DENY")
            await send(message)

        await self._app(scope, receive, send_with_headers)
