"""The login page (the only page served without a session)."""
from __future__ import annotations

import secrets

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from webui.deps import SettingsDep, safe_next
from webui.routers.api.auth import set_login_csrf_cookie
from webui.templating import templates

router = APIRouter(tags=["pages"], include_in_schema=False)

ERRORS = {"wrong": "Wrong user name or password.",
          "limited": "Too many failed attempts. Wait a few minutes and try again.",
          "expired": "The login form expired. Please try again."}


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, settings: SettingsDep, next: str = "/",
               error: str | None = None) -> HTMLResponse:
    token = secrets.token_urlsafe(24)
    response = templates.TemplateResponse(request, "login.html", {
        "login_token": token, "next": safe_next(next), "error": ERRORS.get(error or ""),
        "user": None, "csrf_token": "", "active": "login"})
    set_login_csrf_cookie(response, settings, token)
    return response
