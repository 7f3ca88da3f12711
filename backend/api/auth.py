"""Staff login, logout and who-am-I."""

from __future__ import annotations

import json
import logging
import math

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from backend.api.deps import Staff, audit, context, current_staff
from backend.context import BackendContext
from backend.db.models import StaffRole
from backend.schemas import LoginRequest, Me
from backend.sessions import COOKIE_NAME
from backend.users import authenticate

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api", tags=["staff login"])

WRONG_CREDENTIALS = "wrong username or password"
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_LOGIN_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": LoginRequest.model_json_schema()},
            "application/x-www-form-urlencoded": {"schema": LoginRequest.model_json_schema()},
        },
    }
}


@router.post("/login", response_model=Me, openapi_extra=_LOGIN_BODY,
             responses={401: {"description": WRONG_CREDENTIALS}, 429: {"description": "too many failures"}})
async def login(request: Request, ctx: BackendContext = Depends(context)) -> Response:
    """Log in with JSON or a form; sets the session cookie. A plain HTML form is redirected back to ``/``."""
    is_form = request.headers.get("content-type", "").startswith(_FORM_TYPES)
    credentials = await _read_credentials(request, is_form)
    address = request.client.host if request.client else "unknown"
    wait_s = ctx.limiter.retry_after(credentials.username, address)
    if wait_s > 0:
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, "too many failed logins; try again later",
                            headers={"Retry-After": str(math.ceil(wait_s))})
    me, token = await run_in_threadpool(_check, ctx, credentials, address)
    wants_page = is_form and "text/html" in request.headers.get("accept", "")
    if me is None:
        if wants_page:
            return RedirectResponse("/?error=login", status.HTTP_303_SEE_OTHER)
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, WRONG_CREDENTIALS)
    response: Response = (RedirectResponse("/", status.HTTP_303_SEE_OTHER) if wants_page
                          else JSONResponse(me.model_dump(mode="json")))
    response.set_cookie(COOKIE_NAME, token, max_age=ctx.codec.max_age_s, httponly=True, samesite="strict",
                        secure=ctx.secure_cookies, path="/")
    return response


async def _read_credentials(request: Request, is_form: bool) -> LoginRequest:
    try:
        if is_form:
            form = await request.form()
            data: object = {key: value for key, value in form.items() if isinstance(value, str)}
        else:
            data = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
        raise RequestValidationError(
            [{"type": "json_invalid", "loc": ("body",), "msg": "send JSON {username, password} or a form",
              "input": None}]
        ) from None
    try:
        return LoginRequest.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from None


def _check(ctx: BackendContext, credentials: LoginRequest, address: str) -> tuple[Me | None, str]:
    with ctx.sessions() as session:
        user = authenticate(session, ctx.passwords, credentials.username, credentials.password)
        if user is None:
            ctx.limiter.failed(credentials.username, address)
            audit(session, ctx, None, "login_failed", f"{credentials.username[:64]} from {address}")
            session.commit()
            log.info("failed login for %r from %s", credentials.username[:64], address)
            return None, ""
        ctx.limiter.succeeded(credentials.username, address)
        audit(session, ctx, user.username, "login", address)
        session.commit()
        return Me(username=user.username, role=StaffRole(user.role)), ctx.codec.issue(user.username,
                                                                                        user.password_hash)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(staff: Staff = Depends(current_staff), ctx: BackendContext = Depends(context)) -> Response:
    with ctx.sessions() as session:
        audit(session, ctx, staff.username, "logout", None)
        session.commit()
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="strict", secure=ctx.secure_cookies)
    return response


@router.get("/me", response_model=Me)
def me(staff: Staff = Depends(current_staff)) -> Me:
    return Me(username=staff.username, role=staff.role)
