"""Login, logout and the session's CSRF token."""
from __future__ import annotations

import logging
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request, Response, status
from fastapi.responses import JSONResponse, RedirectResponse

from ips import control
from webui import security
from webui.deps import CsrfDep, SettingsDep, StoreDep, UserDep, safe_next

router = APIRouter(prefix="/auth", tags=["auth"])
log = logging.getLogger("reefguard.webui")


def set_login_csrf_cookie(response: Response, settings, token: str) -> None:
    response.set_cookie(security.LOGIN_CSRF_COOKIE, token, max_age=3600, httponly=True,
                        samesite="strict", secure=settings.cookie_secure, path="/")


@router.get("/csrf", summary="Start a login: returns the login form token (also set as cookie)")
def login_token(settings: SettingsDep) -> JSONResponse:
    token = secrets.token_urlsafe(24)
    response = JSONResponse({"csrf_token": token})
    set_login_csrf_cookie(response, settings, token)
    return response


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


@router.post("/login", summary="Log in (form fields); sets the session cookie",
             responses={401: {"description": "wrong user or password"},
                        403: {"description": "missing login token"},
                        429: {"description": "too many failed attempts"}})
def login(request: Request, store: StoreDep, settings: SettingsDep,
          username: Annotated[str, Form(max_length=64)],
          password: Annotated[str, Form(max_length=1024)],
          csrf_token: Annotated[str, Form(max_length=128)],
          next: Annotated[str, Form(max_length=512)] = "/") -> Response:
    html = _wants_html(request)
    back = f"/login?next={safe_next(next)}"
    if not security.tokens_match(request.cookies.get(security.LOGIN_CSRF_COOKIE) or "",
                                 csrf_token):
        if html:
            return RedirectResponse(back + "&error=expired", status.HTTP_303_SEE_OTHER)
        raise HTTPException(status.HTTP_403_FORBIDDEN, "missing or wrong login token")
    client = request.client.host if request.client else "unknown"
    wait = security.login_blocked_for(store.conn, client, username,
                                      max_failures=settings.login_max_failures,
                                      window_seconds=settings.login_window_seconds)
    if wait > 0:
        log.warning("login rate limit hit for %r from %s", username, client)
        if html:
            return RedirectResponse(back + "&error=limited", status.HTTP_303_SEE_OTHER)
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, "too many failed logins",
                            headers={"Retry-After": str(int(wait) + 1)})
    ok = control.verify_password(store, username, password)
    security.record_login(store.conn, client, username, ok, settings.login_window_seconds)
    if not ok:
        store.audit(username[:64], "login_failed", client)
        if html:
            return RedirectResponse(back + "&error=wrong", status.HTTP_303_SEE_OTHER)
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong user name or password")
    token, session = security.create_session(store.conn, settings.secret_key.get_secret_value(),
                                             username)
    store.audit(username, "login", client)
    if html:
        response: Response = RedirectResponse(safe_next(next), status.HTTP_303_SEE_OTHER)
    else:
        response = JSONResponse({"user": username, "csrf_token": session.csrf})
    response.set_cookie(security.SESSION_COOKIE, token, max_age=settings.session_max_seconds,
                        httponly=True, samesite="strict", secure=settings.cookie_secure, path="/")
    response.delete_cookie(security.LOGIN_CSRF_COOKIE, path="/")
    return response


@router.post("/logout", summary="End the session")
def logout(store: StoreDep, session: CsrfDep) -> JSONResponse:
    security.end_session(store.conn, session)
    store.audit(session.user, "logout")
    response = JSONResponse({"ok": True})
    response.delete_cookie(security.SESSION_COOKIE, path="/")
    return response


@router.get("/me", summary="Who is logged in, and the CSRF token for mutations")
def me(session: UserDep) -> dict:
    return {"user": session.user, "csrf_token": session.csrf}
