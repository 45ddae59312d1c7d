"""Every route, without a session, answers 401 (API) or a redirect to the
login page (HTML) -- except the few that must work logged out."""
from __future__ import annotations

import re

from starlette.routing import Mount

try:  # FastAPI >= 0.160 keeps included routers lazily
    from fastapi.routing import iter_route_contexts
except ImportError:  # pragma: no cover - older FastAPI lists routes flat
    iter_route_contexts = None

# The only routes served without a session: liveness, the login page, the
# login form's token and the login itself. Static assets (CSS, JS, icon)
# carry no data and the login page needs them.
PUBLIC = {("GET", "/healthz"), ("GET", "/login"), ("GET", "/api/auth/csrf"),
          ("POST", "/api/auth/login")}
SAMPLE = {"mac": "00:12:34:56:78:01", "alert_id": "1", "anomaly_id": "1", "mute_id": "1",
          "name": "admin"}


def concrete(path: str) -> str:
    return re.sub(r"{(\w+)(:\w+)?}", lambda m: SAMPLE[m.group(1)], path)


def all_routes(app) -> list[tuple[str, set[str]]]:
    """(path, methods) of every endpoint; mounts other than /static fail."""
    result = []
    if iter_route_contexts is not None:
        contexts = [(c.path, c.original_route) for c in iter_route_contexts(app.routes)]
    else:
        contexts = [(r.path, r) for r in app.routes]
    for path, route in contexts:
        if isinstance(route, Mount):
            assert path == "/static", path
            continue
        result.append((path, set(route.methods) - {"HEAD", "OPTIONS"}))
    return result


def test_every_route_needs_a_session(app, client):
    checked = 0
    for path, methods in all_routes(app):
        for method in sorted(methods):
            if (method, path) in PUBLIC:
                continue
            response = client.request(method, concrete(path), follow_redirects=False,
                                      json={} if method != "GET" else None,
                                      headers={"X-CSRF-Token": "x", "Accept": "text/html"})
            if path.startswith("/api/") or path == "/openapi.json":
                assert response.status_code == 401, (method, path, response.status_code)
            else:
                assert response.status_code == 303, (method, path, response.status_code)
                assert response.headers["location"].startswith("/login?next=")
            checked += 1
    assert checked >= 30, checked


def test_public_routes_are_exactly_the_listed_ones(app, client):
    public = set()
    for path, methods in all_routes(app):
        for method in methods:
            response = client.request(method, concrete(path), follow_redirects=False)
            if response.status_code not in (401, 303):
                public.add((method, path))
    assert public == PUBLIC


def test_static_assets_hold_no_data(client):
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/../webui/main.py").status_code == 404
