"""Helpers shared by the web UI tests (imported by name: tests/ has no packages)."""
from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from webui.settings import WebSettings

RULES_DIR = Path(__file__).parent / "rules"
PASSWORD = "correct horse battery"


def make_settings(store_path: Path, **overrides) -> WebSettings:
    values = dict(environment="development", store_path=store_path, cookie_secure=False,
                  signatures_dir=RULES_DIR, secret_key="test-secret-key-0123456789",
                  sse_max_seconds=2.0, sse_poll_seconds=0.1)
    values.update(overrides)
    return WebSettings(**values)


def login(client: TestClient, user: str = "admin", password: str = PASSWORD) -> str:
    token = client.get("/api/auth/csrf").json()["csrf_token"]
    response = client.post("/api/auth/login", data={"username": user, "password": password,
                                                    "csrf_token": token})
    assert response.status_code == 200, response.text
    return response.json()["csrf_token"]
