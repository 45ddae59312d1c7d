"""The dashboard application: wires routers, middleware and error handlers.

Run: ``uvicorn --factory webui.main:create_app --host 127.0.0.1``
(settings from REEFGUARD_WEB_* variables, see webui.settings).
"""
from __future__ import annotations

import logging
import secrets
import sys
import threading
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request, status
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from ips import control
from ips.store import Store
from webui import deps, rules_catalog
from webui.middleware import SecurityHeaders
from webui.routers import alerts, api, auth, devices, overview, rules, settings as settings_pages
from webui.schema import ensure_schema
from webui.settings import WebSettings, get_settings

log = logging.getLogger("reefguard.webui")
STATIC_DIR = Path(__file__).resolve().parent / "static"

def ensure_admin(store: Store, password: str | None = None) -> str | None:
    """First run: when no user exists, create "admin". Returns the generated
    password (shown once, only its argon2 hash is stored), or None when users
    already exist or the caller chose the password."""
    if store.conn.execute("SELECT 1 FROM users LIMIT 1").fetchone():
        return None
    generated = password is None
    password = password or secrets.token_urlsafe(15)
    control.add_user(store, "admin", password, actor="first-run")
    return password if generated else None


def create_app(settings: WebSettings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        store = Store(settings.store_path)
        try:
            ensure_schema(store.conn)
            password = ensure_admin(store)
            if password:
                message = (f"ReefGuard dashboard: created user 'admin' with password "
                           f"{password} (shown once; change it under Settings)")
                print(message, file=sys.stderr, flush=True)
        finally:
            store.close()
        # Parse the rule files in the background so the first Rules or
        # device page does not pay for it.
        threading.Thread(target=rules_catalog.running_catalog, args=(settings,),
                         name="rules-catalog", daemon=True).start()
        yield

    app = FastAPI(title="ReefGuard control plane", version="1", lifespan=lifespan,
                  openapi_url=None, docs_url=None, redoc_url=None)
    app.dependency_overrides[get_settings] = lambda: settings

    @app.get("/openapi.json", include_in_schema=False)
    def openapi(_: deps.UserDep) -> JSONResponse:
        if app.openapi_schema is None:
            app.openapi_schema = get_openapi(title=app.title, version=app.version,
                                             routes=app.routes)
        return JSONResponse(app.openapi_schema)

    @app.get("/healthz", tags=["health"], summary="Liveness (no login)")
    def healthz() -> dict:
        return {"ok": True}

    app.include_router(api.router)
    for module in (auth, overview, devices, alerts, rules, settings_pages):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    app.add_middleware(SecurityHeaders)

    @app.exception_handler(deps.LoginRequired)
    async def login_required(request: Request, exc: deps.LoginRequired):
        return RedirectResponse(deps.login_redirect_url(exc.next_path), status.HTTP_303_SEE_OTHER)

    @app.exception_handler(control.NotFound)
    async def not_found(request: Request, exc: control.NotFound):
        return JSONResponse({"detail": str(exc)}, status.HTTP_404_NOT_FOUND)

    @app.exception_handler(control.ControlError)
    async def bad_request(request: Request, exc: control.ControlError):
        return JSONResponse({"detail": str(exc)}, status.HTTP_400_BAD_REQUEST)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        wants_page = (not request.url.path.startswith("/api/")
                      and "text/html" in request.headers.get("accept", ""))
        if wants_page and exc.status_code == 404:
            from webui.templating import templates
            return templates.TemplateResponse(
                request, "error.html", {"message": str(exc.detail), "user": None,
                                        "csrf_token": "", "active": ""}, status_code=404)
        return JSONResponse({"detail": exc.detail}, exc.status_code,
                            headers=getattr(exc, "headers", None))

    return app
