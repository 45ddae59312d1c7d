"""ips.control: every action writes its row and an audit row, or nothing."""
from __future__ import annotations

import json
import time

import pytest

from ips import control
from webui.demo import CAMERA, PLUG


def audit_rows(store, action):
    return store.conn.execute("SELECT * FROM audit WHERE action=? ORDER BY id", (action,)).fetchall()


def test_quarantine_inserts_active_block_and_audit(store):
    block_id = control.quarantine(store, CAMERA.upper(), actor="alice", reason="exfiltration")
    row = store.conn.execute("SELECT * FROM blocks WHERE id=?", (block_id,)).fetchone()
    assert (row["kind"], row["mac"], row["device_ip"], row["active"]) == (
        "quarantine", CAMERA, "192.0.2.21", 1)
    assert row["created_by"] == "alice" and row["reason"] == "exfiltration"
    assert store.conn.execute("SELECT quarantined FROM devices WHERE mac=?", (CAMERA,)).fetchone()[0] == 1
    [entry] = audit_rows(store, "quarantine")
    assert entry["actor"] == "alice" and entry["target"] == CAMERA
    assert json.loads(entry["detail"])["block_id"] == block_id
    # idempotent: a second request returns the same row
    assert control.quarantine(store, CAMERA, actor="alice") == block_id


def test_unquarantine_deactivates_but_keeps_history(store):
    control.quarantine(store, CAMERA, actor="alice")
    assert control.unquarantine(store, CAMERA, actor="bob") == 1
    rows = store.conn.execute("SELECT active FROM blocks WHERE mac=?", (CAMERA,)).fetchall()
    assert [r[0] for r in rows] == [0]
    assert audit_rows(store, "unquarantine")[0]["actor"] == "bob"


def test_unknown_device_changes_nothing(store):
    before = store.conn.execute("SELECT COUNT(*) FROM audit").fetchone()[0]
    with pytest.raises(control.NotFound):
        control.quarantine(store, "02:00:00:00:00:99", actor="alice")
    assert store.conn.execute("SELECT COUNT(*) FROM blocks").fetchone()[0] == 0
    assert store.conn.execute("SELECT COUNT(*) FROM audit").fetchone()[0] == before


@pytest.mark.parametrize("bad", ["evil.example", "300.1.1.1", "", "1.2.3.4; rm"])
def test_block_destination_needs_an_address(store, bad):
    with pytest.raises(control.ControlError):
        control.block_destination(store, PLUG, bad, actor="alice")


def test_block_and_allow_destination(store):
    block_id = control.block_destination(store, PLUG, "203.0.113.7", actor="alice")
    assert control.block_destination(store, PLUG, "203.0.113.7", actor="alice") == block_id
    network_block = control.block_destination(store, PLUG, "203.0.113.9/24", actor="alice")
    assert store.conn.execute("SELECT destination FROM blocks WHERE id=?",
                              (network_block,)).fetchone()[0] == "203.0.113.0/24"
    control.allow_destination(store, PLUG, "203.0.113.7", actor="alice")
    assert store.conn.execute("SELECT active FROM blocks WHERE id=?", (block_id,)).fetchone()[0] == 0
    assert store.get_setting("devices.allowed_destinations") == {PLUG: ["203.0.113.7"]}


def test_rename_and_clear(store):
    control.rename_device(store, PLUG, actor="alice", name="Kettle plug", device_type="plug")
    row = store.conn.execute("SELECT user_name, user_type FROM devices WHERE mac=?", (PLUG,)).fetchone()
    assert tuple(row) == ("Kettle plug", "plug")
    control.rename_device(store, PLUG, actor="alice", name="")
    assert store.conn.execute("SELECT user_name FROM devices WHERE mac=?", (PLUG,)).fetchone()[0] is None
    with pytest.raises(control.ControlError):
        control.rename_device(store, PLUG, actor="alice")


def test_relearn_uses_learning_period(store):
    control.update_settings(store, actor="alice", learning_days=2)
    until = control.relearn(store, CAMERA, actor="alice")
    assert until == pytest.approx(time.time() + 2 * 86400, abs=5)
    row = store.conn.execute("SELECT stage, stage_until FROM devices WHERE mac=?", (CAMERA,)).fetchone()
    assert row["stage"] == "relearning" and row["stage_until"] == until


def test_mute_requires_expiry_and_one_target(store):
    with pytest.raises(control.ControlError):
        control.mute(store, actor="a", sid=1, kind="scan", expires=time.time() + 60)
    with pytest.raises(control.ControlError):
        control.mute(store, actor="a", sid=1, expires=time.time() - 1)
    mute_id = control.mute(store, actor="a", sid=2031545, mac=CAMERA, expires=time.time() + 60)
    control.unmute(store, mute_id, actor="a")
    with pytest.raises(control.NotFound):
        control.unmute(store, mute_id, actor="a")


def test_acknowledge(store):
    control.acknowledge_alert(store, 1, actor="a")
    control.acknowledge_anomaly(store, 1, actor="a")
    assert store.conn.execute("SELECT acknowledged FROM alerts WHERE id=1").fetchone()[0] == 1
    with pytest.raises(control.NotFound):
        control.acknowledge_alert(store, 99999, actor="a")


def test_rules_and_settings_keys(store):
    assert control.set_sids_enabled(store, [5, 3], False, actor="a") == [3, 5]
    assert control.set_sids_enabled(store, [3], True, actor="a") == [5]
    assert control.set_category_enabled(store, "policy-violation", False, actor="a") == ["policy-violation"]
    assert store.get_setting("rules.disabled_sids") == [5]
    control.update_settings(store, actor="a", failure_policy="fail-closed", auto_quarantine=True)
    assert store.get_setting("engine.failure_policy") == "fail-closed"
    assert store.get_setting("devices.auto_quarantine") is True
    with pytest.raises(control.ControlError):
        control.update_settings(store, actor="a", failure_policy="maybe")


def test_users_hash_with_argon2_and_keep_last(store):
    control.add_user(store, "bob", "a long password", actor="admin")
    stored = store.conn.execute("SELECT password_hash FROM users WHERE name='bob'").fetchone()[0]
    assert stored.startswith("$argon2id$") and "a long password" not in stored
    assert control.verify_password(store, "bob", "a long password")
    assert not control.verify_password(store, "bob", "wrong password")
    assert not control.verify_password(store, "nobody", "a long password")
    with pytest.raises(control.ControlError):
        control.add_user(store, "carol", "short", actor="admin")
    control.delete_user(store, "bob", actor="admin")
    with pytest.raises(control.ControlError):
        control.delete_user(store, "admin", actor="admin")
