"""Fixtures: a seeded store, the app, and logged-in clients."""
from __future__ import annotations

import shutil
import time
import warnings
from pathlib import Path

import pytest

warnings.filterwarnings("ignore", message=".*httpx.*")
from fastapi.testclient import TestClient  # noqa: E402

from ips import control  # noqa: E402
from ips.store import Store  # noqa: E402
from webui.demo import seed_realistic  # noqa: E402
from webui.settings import WebSettings  # noqa: E402
from webui.main import create_app  # noqa: E402

from webui_helpers import PASSWORD, login, make_settings  # noqa: E402

# Production argon2 parameters cost ~100 ms per hash on purpose; the tests
# hash hundreds of times, so they use the cheapest parameters argon2 allows.
from argon2 import PasswordHasher  # noqa: E402

control._hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
control._DUMMY_HASH = control._hasher.hash("reefguard-no-such-user")


def pytest_configure(config):
    config.addinivalue_line("filterwarnings", "ignore:.*httpx.*")


@pytest.fixture(scope="session")
def seeded_template(tmp_path_factory) -> Path:
    """Seeded once per session (argon2 hashing is deliberately slow); each
    test gets a copy."""
    path = tmp_path_factory.mktemp("template") / "reefguard.db"
    store = Store(path)
    seed_realistic(store)
    control.add_user(store, "admin", PASSWORD, actor="test")
    store.close()
    return path


@pytest.fixture
def store_path(tmp_path: Path, seeded_template: Path) -> Path:
    path = tmp_path / "reefguard.db"
    shutil.copyfile(seeded_template, path)
    # The template was seeded earlier in the session: move the engine's
    # counter samples to "now" so the protection state is not stale.
    store = Store(path)
    store.conn.execute("UPDATE counters SET ts = ts + (? - (SELECT MAX(ts) FROM counters))",
                       (time.time() - 1,))
    store.close()
    return path


@pytest.fixture
def store(store_path: Path):
    opened = Store(store_path)
    yield opened
    opened.close()


@pytest.fixture
def settings(store_path: Path) -> WebSettings:
    return make_settings(store_path)


@pytest.fixture
def app(settings):
    return create_app(settings)


@pytest.fixture
def client(app):
    with TestClient(app) as anonymous:
        yield anonymous


@pytest.fixture
def authed(client):
    """A logged-in client whose mutating requests carry the CSRF header."""
    csrf = login(client)
    client.headers["X-CSRF-Token"] = csrf
    return client
