"""Shared request dependencies, as `Annotated` aliases the routers use.

* `SettingsDep`: the app's `WebSettings` (tests override `get_settings`).
* `StoreDep`: one `Store` connection per request, closed afterwards, so no
  SQLite connection is ever shared between threads.
* `UserDep`: the logged-in session for API routes (401 without one).
* `PageUserDep`: the same for HTML pages (redirects to /login instead).
* `CsrfDep`: `UserDep` plus a valid ``X-CSRF-Token`` header; every mutating
  API route takes this one.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Annotated, Iterator
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request, status

from ips.store import Store
from webui import security
from webui.schema import ensure_schema
from webui.settings import WebSettings, get_settings

SettingsDep = Annotated[WebSettings, Depends(get_settings)]

_schema_ready: set[Path] = set()
_schema_lock = threading.Lock()


def get_store(settings: SettingsDep) -> Iterator[Store]:
    store = Store(settings.store_path)
    try:
        path = settings.store_path.resolve()
        if path not in _schema_ready:
            with _schema_lock:
                ensure_schema(store.conn)
                _schema_ready.add(path)
        yield store
    finally:
        store.close()


StoreDep = Annotated[Store, Depends(get_store)]


class LoginRequired(Exception):
    """Raised by page dependencies; the app turns it into a redirect."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def _session(request: Request, store: Store, settings: WebSettings) -> security.Session | None:
    return security.load_session(
        store.conn, settings.secret_key.get_secret_value(),
        request.cookies.get(security.SESSION_COOKIE),
        idle_seconds=settings.session_idle_seconds, max_seconds=settings.session_max_seconds)


def api_user(request: Request, store: StoreDep, settings: SettingsDep) -> security.Session:
    session = _session(request, store, settings)
    if session is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "login required",
                            headers={"WWW-Authenticate": "Cookie"})
    return session


def page_user(request: Request, store: StoreDep, settings: SettingsDep) -> security.Session:
    session = _session(request, store, settings)
    if session is None:
        target = request.url.path
        if request.url.query:
            target += "?" + request.url.query
        raise LoginRequired(target)
    return session


UserDep = Annotated[security.Session, Depends(api_user)]
PageUserDep = Annotated[security.Session, Depends(page_user)]


def csrf_checked(request: Request, session: UserDep) -> security.Session:
    if not security.tokens_match(session.csrf, request.headers.get(security.CSRF_HEADER)):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "missing or wrong CSRF token")
    return session


CsrfDep = Annotated[security.Session, Depends(csrf_checked)]


def login_redirect_url(next_path: str) -> str:
    return "/login?next=" + quote(safe_next(next_path), safe="/")


def safe_next(next_path: str | None) -> str:
    """Only local paths: an open redirect after login would hand the session
    page to whoever crafted the link."""
    if not next_path or not next_path.startswith("/") or next_path.startswith("//") \
            or "\\" in next_path or len(next_path) > 512:
        return "/"
    return next_path
