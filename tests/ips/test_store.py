import sqlite3

import pytest

from ips import store


def test_fresh_store_is_wal_and_migrated(tmp_path):
    s = store.Store(tmp_path / "s.db")
    assert s.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert s.conn.execute("PRAGMA user_version").fetchone()[0] == store.SCHEMA_VERSION
    s.close()
    # reopening does not re-run migrations
    s2 = store.Store(tmp_path / "s.db")
    assert s2.conn.execute("SELECT count(*) FROM alerts").fetchone()[0] == 0


def test_settings_are_audited(tmp_path):
    s = store.Store(tmp_path / "s.db")
    s.set_setting("policy", "fail-open", actor="admin", reason="home default")
    assert s.get_setting("policy") == "fail-open"
    row = s.conn.execute("SELECT actor, action, target, reason FROM audit").fetchone()
    assert tuple(row) == ("admin", "setting", "policy", "home default")


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "s.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version={store.SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(RuntimeError, match="newer"):
        store.Store(path)
