import json
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


def test_alert_before_its_device_is_known_gets_linked_later(tmp_path):
    from ips import events
    s = store.Store(tmp_path / "s.db")
    consumer = store.StoreConsumer(s)
    consumer.alert(events.Alert(
        timestamp=1.0, flow_id=1, pcap_cnt=1, src_ip="198.51.100.99", src_port=5000,
        dest_ip="192.0.2.20", dest_port=23, proto="TCP", app_proto="telnet",
        action="blocked", gid=1, signature_id=9100001, rev=1, signature="mirai",
        category="c", severity=2))
    consumer.flush()
    assert s.conn.execute("SELECT device_mac FROM alerts").fetchone()[0] is None
    s.conn.execute("INSERT INTO device_ips (mac, ip, first_seen, last_seen)"
                   " VALUES ('b0:be:76:00:00:20', '192.0.2.20', 1.0, 2.0)")
    consumer.tick(3.0)
    assert s.conn.execute("SELECT device_mac FROM alerts").fetchone()[0] == "b0:be:76:00:00:20"


def test_an_anomaly_window_is_one_row_its_summary_updates(tmp_path):
    from ips import events
    s = store.Store(tmp_path / "s.db")

    def anomaly(ts, count, summary, window_start=3600.0, mac="02:00:00:00:00:10"):
        observed = {"addresses": count, "window_start": window_start}
        if summary:
            observed["summary"] = True
        return events.DeviceAnomaly(timestamp=ts, mac=mac, ip="192.0.2.10", kind="scan",
                                    score=0.5 + count / 100, observed=observed, baseline={},
                                    explanation=f"{count} addresses", count=count)

    s.add_device_anomaly(anomaly(3700.0, 18, False))
    s.add_device_anomaly(anomaly(3700.0, 5, False, mac="02:00:00:00:00:20"))
    s.add_device_anomaly(anomaly(7200.0, 31, True))          # the hour closed
    s.add_device_anomaly(anomaly(7300.0, 4, True, window_start=7200.0))   # no first row
    rows = s.conn.execute("SELECT mac, ts, count, explanation FROM device_anomalies"
                          " ORDER BY id").fetchall()
    assert [tuple(r) for r in rows] == [
        ("02:00:00:00:00:10", 3700.0, 31, "31 addresses"),    # first seen, final figures
        ("02:00:00:00:00:20", 3700.0, 5, "5 addresses"),
        ("02:00:00:00:00:10", 7300.0, 4, "4 addresses")]


def test_a_version_1_store_gains_the_alert_app_column(tmp_path):
    path = tmp_path / "v1.db"
    conn = sqlite3.connect(path)
    for statement in store._split_sql(store.MIGRATIONS[0]):
        conn.execute(statement)
    conn.execute("PRAGMA user_version=1")
    conn.execute("INSERT INTO alerts (ts, action, sid) VALUES (1.0, 'blocked', 9100001)")
    conn.commit()
    conn.close()
    s = store.Store(path)
    assert s.conn.execute("PRAGMA user_version").fetchone()[0] == store.SCHEMA_VERSION == 2
    assert [tuple(row) for row in s.conn.execute("SELECT sid, app FROM alerts")] == [(9100001, None)]


def test_an_alert_keeps_what_its_transaction_said_bounded(tmp_path):
    from ips import events
    s = store.Store(tmp_path / "s.db")
    hostile = "/cgi-bin/x?" + "A" * 10_000
    s.add_alerts([events.Alert(
        timestamp=1.0, flow_id=1, pcap_cnt=1, src_ip="198.51.100.99", src_port=5000,
        dest_ip="192.0.2.20", dest_port=80, proto="TCP", app_proto="http",
        action="blocked", gid=1, signature_id=9100111, rev=1, signature="netgear",
        category="c", severity=1,
        app={"http": {"url": hostile, "http_method": "GET", "status": 200,
                      "request_headers": [{"name": "X", "value": "y"}]}})])
    app = json.loads(s.conn.execute("SELECT app FROM alerts").fetchone()[0])
    assert app == {"http": {"url": hostile[:store.APP_VALUE_MAX], "http_method": "GET", "status": 200}}
