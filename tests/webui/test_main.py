"""Login, sessions, CSRF, rate limit, headers, first-run admin."""
from __future__ import annotations

from fastapi.testclient import TestClient

from ips import control
from ips.store import Store
from webui.main import create_app, ensure_admin
from webui.security import SESSION_COOKIE

from webui_helpers import PASSWORD, login, make_settings


def test_healthz_is_public_and_has_security_headers(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    headers = response.headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert "unsafe-inline" not in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"


def test_pages_redirect_to_login_with_next(client):
    response = client.get("/devices?x=1", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/devices%3Fx%3D1"


def test_login_sets_strict_httponly_cookie(client):
    login(client)
    cookie = next(h for h in client.cookies.jar if h.name == SESSION_COOKIE)
    assert cookie.has_nonstandard_attr("HttpOnly")
    raw = [v for k, v in client.get("/api/auth/csrf").headers.items() if k == "set-cookie"]
    assert any("samesite=strict" in v.lower() and "httponly" in v.lower() for v in raw)
    assert client.get("/api/overview").status_code == 200


def test_secure_flag_follows_settings(store_path):
    app = create_app(make_settings(store_path, cookie_secure=True))
    with TestClient(app, base_url="https://testserver") as c:
        token = c.get("/api/auth/csrf").json()["csrf_token"]
        response = c.post("/api/auth/login", data={"username": "admin", "password": PASSWORD,
                                                   "csrf_token": token})
        assert "secure" in response.headers["set-cookie"].lower()


def test_login_needs_login_token(client):
    response = client.post("/api/auth/login", data={"username": "admin", "password": PASSWORD,
                                                    "csrf_token": "forged"})
    assert response.status_code == 403


def test_html_login_form_redirects_to_next_only_locally(client):
    page = client.get("/login?next=/alerts")
    token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    response = client.post("/api/auth/login", headers={"Accept": "text/html"}, follow_redirects=False,
                           data={"username": "admin", "password": PASSWORD, "csrf_token": token,
                                 "next": "//evil.example/"})
    assert response.status_code == 303 and response.headers["location"] == "/"


def test_mutations_need_csrf_header(client):
    login(client)
    response = client.post("/api/devices/00:12:34:56:78:01/quarantine", json={})
    assert response.status_code == 403
    response = client.post("/api/devices/00:12:34:56:78:01/quarantine", json={},
                           headers={"X-CSRF-Token": "wrong"})
    assert response.status_code == 403


def test_login_rate_limit(store_path):
    app = create_app(make_settings(store_path, login_max_failures=3))
    with TestClient(app) as c:
        token = c.get("/api/auth/csrf").json()["csrf_token"]
        codes = [c.post("/api/auth/login", data={"username": "admin", "password": "wrong password",
                                                 "csrf_token": token}).status_code
                 for _ in range(4)]
        assert codes == [401, 401, 401, 429]
        # the right password is refused too while the limit holds
        response = c.post("/api/auth/login", data={"username": "admin", "password": PASSWORD,
                                                   "csrf_token": token})
        assert response.status_code == 429 and int(response.headers["retry-after"]) > 0


def test_logout_ends_session(authed):
    assert authed.post("/api/auth/logout").status_code == 200
    assert authed.get("/api/overview").status_code == 401


def test_ensure_admin_first_run_only(tmp_path, capsys):
    store = Store(tmp_path / "new.db")
    password = ensure_admin(store)
    assert password and len(password) >= 16
    stored = store.conn.execute("SELECT password_hash FROM users WHERE name='admin'").fetchone()[0]
    assert password not in stored and control.verify_password(store, "admin", password)
    assert ensure_admin(store) is None
    store.close()


def test_app_start_prints_generated_password_once(tmp_path, capsys):
    app = create_app(make_settings(tmp_path / "fresh.db"))
    with TestClient(app):
        pass
    err = capsys.readouterr().err
    assert "created user 'admin' with password" in err
    with TestClient(create_app(make_settings(tmp_path / "fresh.db"))):
        pass
    assert "password" not in capsys.readouterr().err


def test_user_names_and_device_names_are_escaped(authed, store):
    control.rename_device(store, "00:12:34:56:78:01", actor="t", name="<script>alert(1)</script>")
    page = authed.get("/devices").text
    assert "<script>alert(1)" not in page and "&lt;script&gt;" in page
