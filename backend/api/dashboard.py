"""``/``: the login page for strangers, the alarm board for staff."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from backend.api.deps import context, staff_from_cookie
from backend.context import BackendContext

WEB_DIR = Path(__file__).resolve().parents[1] / "web"
router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def index(request: Request, ctx: BackendContext = Depends(context)) -> HTMLResponse:
    page = "board.html" if staff_from_cookie(request, ctx) is not None else "login.html"
    return HTMLResponse((WEB_DIR / page).read_text(encoding="utf-8"), headers={"Cache-Control": "no-store"})
