from ips import events
from ips.response import ACTOR, AutoQuarantine
from ips.store import Store

MAC = "02:00:00:00:00:10"


def _store(tmp_path, enabled: bool) -> Store:
    store = Store(tmp_path / "s.db")
    store.conn.execute("INSERT INTO devices (mac, ip, first_seen, last_seen) VALUES (?,?,?,?)",
                       (MAC, "192.0.2.10", 1.0, 2.0))
    store.set_setting("devices.auto_quarantine", enabled, actor="admin")
    return store


def _scan(ts: float = 100.0) -> events.DeviceAnomaly:
    return events.DeviceAnomaly(
        timestamp=ts, mac=MAC, ip="192.0.2.10", kind="scan", score=0.95,
        observed={"direction": "outbound", "targets": 30}, baseline={},
        explanation="The camera tried telnet on 30 internet hosts in a minute.")


def _blocks(store):
    return store.conn.execute("SELECT kind, mac, created_by, active FROM blocks").fetchall()


def test_outbound_scan_quarantines_when_enabled_and_is_audited(tmp_path):
    store = _store(tmp_path, enabled=True)
    AutoQuarantine(store).device_anomaly(_scan())
    assert [tuple(r) for r in _blocks(store)] == [("quarantine", MAC, ACTOR, 1)]
    audit = store.conn.execute("SELECT actor, action, target FROM audit WHERE action='quarantine'")
    assert [tuple(r) for r in audit] == [(ACTOR, "quarantine", MAC)]


def test_off_by_default_does_nothing(tmp_path):
    store = _store(tmp_path, enabled=False)
    AutoQuarantine(store).device_anomaly(_scan())
    assert _blocks(store) == []


def test_weak_single_signal_does_not_quarantine(tmp_path):
    store = _store(tmp_path, enabled=True)
    weak = events.DeviceAnomaly(timestamp=1.0, mac=MAC, ip="192.0.2.10", kind="unusual_time",
                                score=0.75, observed={}, baseline={}, explanation="late")
    AutoQuarantine(store).device_anomaly(weak)
    assert _blocks(store) == []
