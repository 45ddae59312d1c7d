"""Read models of the dashboard: SQL over the store, returning plain dicts.

Pages and the JSON API share these, so what a page shows is exactly what the
API returns. Every list has a bound (`limit`), so a store with a million
alerts costs the same per request as one with a thousand.

Counters read for the protection state (written by the inline service into
`counters`, one sample per name and timestamp):

* ``ips.inspected``   cumulative packets inspected by the workers
* ``ips.bypassed``    cumulative packets/flows handed to the kernel fast path
* ``ips.uninspected`` cumulative packets that passed without inspection
  (queue full / engine down under fail-open)
* ``ips.blocked``     cumulative packets dropped by verdict or block
* ``engine.workers_alive``    gauge: workers currently running
* ``engine.workers_expected`` gauge (optional): workers configured

State: *bypassed* when no sample is newer than `counters_stale_seconds` or
no worker is alive; *degraded* when ips.uninspected grew in the last five
minutes or fewer workers run than expected; otherwise *protected*.
"""
from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

from webui.explain import explain_alert

COUNTER_NAMES = ("ips.inspected", "ips.bypassed", "ips.uninspected", "ips.blocked",
                 "engine.workers_alive", "engine.workers_expected")
ONLINE_SECONDS = 600
RECENT_WINDOW_SECONDS = 300
ANOMALY_KINDS = ("new_device", "new_destination", "unusual_time", "unusual_volume",
                 "new_port", "scan", "brute_force", "known_bad_destination")


def _json(text: str | None, default: Any) -> Any:
    if not text:
        return default
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return default


def start_of_day(now: float) -> float:
    local = time.localtime(now)
    return time.mktime((local.tm_year, local.tm_mon, local.tm_mday, 0, 0, 0, 0, 0, -1))


# --- protection state ---------------------------------------------------------

def _counter_at(conn: sqlite3.Connection, name: str, at_or_before: float | None = None):
    if at_or_before is None:
        return conn.execute("SELECT ts, value FROM counters WHERE name=? ORDER BY ts DESC LIMIT 1",
                            (name,)).fetchone()
    return conn.execute("SELECT ts, value FROM counters WHERE name=? AND ts<=?"
                        " ORDER BY ts DESC LIMIT 1", (name, at_or_before)).fetchone()


def protection_state(conn: sqlite3.Connection, *, stale_seconds: float,
                     now: float | None = None) -> dict[str, Any]:
    now = time.time() if now is None else now
    latest: dict[str, int] = {}
    newest_ts = None
    for name in COUNTER_NAMES:
        row = _counter_at(conn, name)
        if row is not None:
            latest[name] = int(row["value"])
            newest_ts = row["ts"] if newest_ts is None else max(newest_ts, row["ts"])
    uninspected_recent = 0
    row_now = _counter_at(conn, "ips.uninspected")
    row_before = _counter_at(conn, "ips.uninspected", now - RECENT_WINDOW_SECONDS)
    if row_before is None:  # reporting began inside the window: compare with its start
        row_before = conn.execute("SELECT ts, value FROM counters WHERE name='ips.uninspected'"
                                  " ORDER BY ts LIMIT 1").fetchone()
    if row_now is not None:
        if row_before is None:
            uninspected_recent = 0
        elif row_now["value"] >= row_before["value"]:
            uninspected_recent = int(row_now["value"] - row_before["value"])
        else:  # counter restarted with the engine
            uninspected_recent = int(row_now["value"])
    alive = latest.get("engine.workers_alive")
    expected = latest.get("engine.workers_expected")
    if newest_ts is None:
        state, reason = "bypassed", "The engine has not reported yet: traffic is not inspected."
    elif now - newest_ts > stale_seconds:
        state, reason = "bypassed", (f"The engine stopped reporting {int(now - newest_ts)} s ago: "
                                     "traffic is passing uninspected.")
    elif alive is not None and alive <= 0:
        state, reason = "bypassed", "No inspection worker is running."
    elif uninspected_recent > 0:
        state, reason = "degraded", (f"{uninspected_recent} packets passed uninspected "
                                     "in the last 5 minutes.")
    elif alive is not None and expected is not None and alive < expected:
        state, reason = "degraded", f"Only {alive} of {expected} inspection workers are running."
    else:
        state, reason = "protected", "All traffic is inspected."
    return {"state": state, "reason": reason, "counters": latest,
            "sample_age": None if newest_ts is None else max(0.0, now - newest_ts),
            "uninspected_recent": uninspected_recent}


# --- devices ----------------------------------------------------------------

def _column(row: sqlite3.Row, name: str) -> Any:
    return row[name] if name in row.keys() else None


def _display(row: sqlite3.Row) -> dict[str, Any]:
    vendor = row["vendor"]
    if not vendor or vendor.startswith("locally administered"):
        # A randomised or virtual MAC says nothing about the maker.
        vendor = "Device"
    name = row["user_name"] or row["hostname"] or row["model_guess"] or (
        f"{vendor} {_column(row, 'ip') or row['mac'][-5:]}" if vendor == "Device"
        else f"{vendor} {row['mac'][-5:]}")
    return {"name": name, "type": row["user_type"] or row["type_guess"] or "unknown"}


def _status(row: sqlite3.Row, quarantined: bool, now: float) -> str:
    if quarantined:
        return "quarantined"
    if row["last_seen"] is None or now - row["last_seen"] > ONLINE_SECONDS:
        return "offline"
    return "online"


def _quarantined_macs(conn: sqlite3.Connection, now: float) -> set[str]:
    return {r[0] for r in conn.execute(
        "SELECT DISTINCT mac FROM blocks WHERE kind='quarantine' AND active=1"
        " AND (expires IS NULL OR expires > ?)", (now,))}


def _risk_percent(value: float | None) -> int:
    # devices.risk is 0..1; shown as 0..100. Values already > 1 are taken
    # as percentages so a scale mismatch does not show 5000 %.
    value = float(value or 0)
    return int(round(min(100.0, value * 100 if value <= 1 else value)))


def device_summary(row: sqlite3.Row, quarantined: bool, now: float) -> dict[str, Any]:
    shown = _display(row)
    risk = _risk_percent(row["risk"])
    return {
        "mac": row["mac"], "ip": row["ip"], "vendor": row["vendor"], "hostname": row["hostname"],
        "name": shown["name"], "type": shown["type"],
        "user_name": row["user_name"], "user_type": row["user_type"],
        "type_guess": row["type_guess"], "model_guess": row["model_guess"],
        "stage": row["stage"], "stage_until": row["stage_until"],
        "first_seen": row["first_seen"], "last_seen": row["last_seen"],
        "risk": risk, "health": 100 - risk,
        "quarantined": quarantined, "status": _status(row, quarantined, now),
    }


def list_devices(conn: sqlite3.Connection, *, now: float | None = None,
                 limit: int = 1000) -> list[dict[str, Any]]:
    now = time.time() if now is None else now
    quarantined = _quarantined_macs(conn, now)
    rows = conn.execute(
        "SELECT d.*, (SELECT a.id FROM alerts a WHERE a.device_mac=d.mac"
        "  ORDER BY a.ts DESC LIMIT 1) AS last_alert_id"
        " FROM devices d ORDER BY d.risk DESC, d.mac LIMIT ?", (limit,)).fetchall()
    alert_ids = [r["last_alert_id"] for r in rows if r["last_alert_id"] is not None]
    last_alerts: dict[int, sqlite3.Row] = {}
    for start in range(0, len(alert_ids), 500):
        chunk = alert_ids[start:start + 500]
        for a in conn.execute(
                f"SELECT id, ts, signature, severity FROM alerts WHERE id IN"
                f" ({','.join('?' * len(chunk))})", chunk):
            last_alerts[a["id"]] = a
    result = []
    for row in rows:
        item = device_summary(row, row["mac"] in quarantined, now)
        alert = last_alerts.get(row["last_alert_id"])
        item["last_alert"] = ({"id": alert["id"], "ts": alert["ts"], "signature": alert["signature"],
                               "severity": alert["severity"]} if alert else None)
        result.append(item)
    return result


def get_device(conn: sqlite3.Connection, mac: str, *, now: float | None = None) -> dict | None:
    now = time.time() if now is None else now
    row = conn.execute("SELECT * FROM devices WHERE mac=?", (mac,)).fetchone()
    if row is None:
        return None
    item = device_summary(row, mac in _quarantined_macs(conn, now), now)
    item["evidence"] = _json(row["evidence"], [])
    item["confidence"] = row["confidence"]
    item["profile"] = normalize_profile(_json(row["profile"], {}))
    item["ips"] = [dict(r) for r in conn.execute(
        "SELECT ip, first_seen, last_seen FROM device_ips WHERE mac=? ORDER BY last_seen DESC"
        " LIMIT 20", (mac,))]
    item["blocks"] = [dict(r) for r in conn.execute(
        "SELECT * FROM blocks WHERE mac=? AND active=1 AND (expires IS NULL OR expires > ?)"
        " ORDER BY created DESC LIMIT 100", (mac, now))]
    return item


def normalize_profile(profile: Any) -> dict[str, Any]:
    """Coerce the profiler's JSON into the agreed shape, dropping what does
    not fit, so a profile written by an older or newer profiler never breaks
    a page:
    {"destinations": [{"ip","name","bytes","flows"}], "ports": [{"port","proto","flows"}],
     "hours": 7 rows (Monday first) x 24 counts, "volume": [{"hour_ts","up","down"}]}"""
    if not isinstance(profile, dict):
        profile = {}
    destinations = []
    for d in _list(profile.get("destinations")):
        if isinstance(d, dict) and d.get("ip"):
            destinations.append({"ip": str(d.get("ip")), "name": d.get("name"),
                                 "bytes": _int(d.get("bytes")), "flows": _int(d.get("flows"))})
    ports = []
    for p in _list(profile.get("ports")):
        if isinstance(p, dict):
            ports.append({"port": _int(p.get("port")), "proto": str(p.get("proto") or ""),
                          "flows": _int(p.get("flows"))})
        elif isinstance(p, (int, str)) and str(p).isdigit():
            ports.append({"port": int(p), "proto": "", "flows": 0})
    hours = [[0] * 24 for _ in range(7)]
    raw_hours = profile.get("hours")
    if isinstance(raw_hours, list):
        for day, counts in enumerate(raw_hours[:7]):
            if isinstance(counts, list):
                for hour, count in enumerate(counts[:24]):
                    hours[day][hour] = _int(count)
    volume = []
    for v in _list(profile.get("volume")):
        if isinstance(v, dict) and v.get("hour_ts") is not None:
            volume.append({"hour_ts": float(_int(v.get("hour_ts"))), "up": _int(v.get("up")),
                           "down": _int(v.get("down"))})
    destinations.sort(key=lambda d: -d["bytes"])
    volume.sort(key=lambda v: v["hour_ts"])
    return {"destinations": destinations[:200], "ports": ports[:200], "hours": hours,
            "volume": volume[-24 * 14:]}


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _int(value: Any) -> int:
    try:
        return max(0, int(value))
    except (TypeError, ValueError, OverflowError):
        return 0


# --- alerts and anomalies ----------------------------------------------------

def anomaly_severity(score: float | None) -> int:
    score = float(score or 0)
    return 1 if score >= 0.8 else 2 if score >= 0.5 else 3


def active_mutes(conn: sqlite3.Connection, *, now: float | None = None) -> list[dict]:
    now = time.time() if now is None else now
    return [dict(r) for r in conn.execute(
        "SELECT * FROM mutes WHERE expires > ? ORDER BY expires LIMIT 1000", (now,))]


def _is_muted(mutes: list[dict], *, sid: int | None, kind: str | None, mac: str | None) -> bool:
    for m in mutes:
        if m["mac"] is not None and m["mac"] != mac:
            continue
        if sid is not None and m["sid"] == sid:
            return True
        if kind is not None and m["kind"] == kind:
            return True
    return False


def _alert_item(row: sqlite3.Row, names: dict[str, str], mutes: list[dict]) -> dict[str, Any]:
    return {
        "id": row["id"], "source": "signature", "kind": "signature", "ts": row["ts"],
        "severity": row["severity"] or 3, "title": row["signature"] or f"sid {row['sid']}",
        "sid": row["sid"], "category": row["category"], "action": row["action"],
        "device_mac": row["device_mac"], "device_name": names.get(row["device_mac"] or ""),
        "src_ip": row["src_ip"], "src_port": row["src_port"], "dest_ip": row["dest_ip"],
        "dest_port": row["dest_port"], "proto": row["proto"], "app_proto": row["app_proto"],
        "acknowledged": bool(row["acknowledged"]),
        "muted": _is_muted(mutes, sid=row["sid"], kind=None, mac=row["device_mac"]),
    }


def _anomaly_item(row: sqlite3.Row, names: dict[str, str], mutes: list[dict]) -> dict[str, Any]:
    return {
        "id": row["id"], "source": "anomaly", "kind": row["kind"], "ts": row["ts"],
        "severity": anomaly_severity(row["score"]), "title": row["explanation"] or row["kind"],
        "score": row["score"], "device_mac": row["mac"], "device_name": names.get(row["mac"]),
        "ip": row["ip"], "count": row["count"], "acknowledged": bool(row["acknowledged"]),
        "muted": _is_muted(mutes, sid=None, kind=row["kind"], mac=row["mac"]),
    }


def device_names(conn: sqlite3.Connection) -> dict[str, str]:
    return {r["mac"]: _display(r)["name"] for r in conn.execute(
        "SELECT mac, user_name, user_type, type_guess, hostname, model_guess, vendor FROM devices")}


def timeline(conn: sqlite3.Connection, *, device: str | None = None,
             severity: int | None = None, kind: str | None = None,
             since: float | None = None, until: float | None = None,
             include_acknowledged: bool = True, include_muted: bool = False,
             limit: int = 100, now: float | None = None) -> list[dict[str, Any]]:
    """Signature alerts and device anomalies merged, newest first.
    `severity` keeps items at least that severe (1 = high only); `kind` is
    "signature", "anomaly" or one anomaly kind."""
    limit = max(1, min(limit, 500))
    names = device_names(conn)
    mutes = active_mutes(conn, now=now)
    items: list[dict[str, Any]] = []
    # Muted rows are filtered in Python; fetch extra so a page stays full.
    fetch = limit * 2 if not include_muted and mutes else limit
    if kind in (None, "", "signature"):
        where, params = ["1=1"], []
        if device:
            where.append("device_mac=?"); params.append(device)
        if severity:
            where.append("severity<=?"); params.append(severity)
        if since is not None:
            where.append("ts>=?"); params.append(since)
        if until is not None:
            where.append("ts<?"); params.append(until)
        if not include_acknowledged:
            where.append("acknowledged=0")
        rows = conn.execute(f"SELECT * FROM alerts WHERE {' AND '.join(where)}"
                            f" ORDER BY ts DESC LIMIT ?", (*params, fetch)).fetchall()
        items += [_alert_item(r, names, mutes) for r in rows]
    if kind in (None, "", "anomaly") or kind in ANOMALY_KINDS:
        where, params = ["1=1"], []
        if device:
            where.append("mac=?"); params.append(device)
        if kind in ANOMALY_KINDS:
            where.append("kind=?"); params.append(kind)
        if severity:
            # anomaly_severity(): 1 >= 0.8, 2 >= 0.5
            threshold = {1: 0.8, 2: 0.5}.get(severity, 0.0)
            where.append("COALESCE(score,0)>=?"); params.append(threshold)
        if since is not None:
            where.append("ts>=?"); params.append(since)
        if until is not None:
            where.append("ts<?"); params.append(until)
        if not include_acknowledged:
            where.append("acknowledged=0")
        rows = conn.execute(f"SELECT * FROM device_anomalies WHERE {' AND '.join(where)}"
                            f" ORDER BY ts DESC LIMIT ?", (*params, fetch)).fetchall()
        items += [_anomaly_item(r, names, mutes) for r in rows]
    if not include_muted:
        items = [i for i in items if not i["muted"]]
    items.sort(key=lambda i: (i["ts"], i["id"]), reverse=True)
    return items[:limit]


def get_alert(conn: sqlite3.Connection, alert_id: int) -> dict | None:
    row = conn.execute("SELECT * FROM alerts WHERE id=?", (alert_id,)).fetchone()
    if row is None:
        return None
    item = _alert_item(row, device_names(conn), active_mutes(conn))
    item["rev"] = row["rev"]
    item["gid"] = row["gid"]
    item["metadata"] = _json(row["metadata"], {})
    item["app"] = _json(row["app"], {})
    item["src_mac"] = row["src_mac"]
    flow = None
    if row["flow_id"]:
        flow = conn.execute("SELECT * FROM flows WHERE flow_id=? ORDER BY ts_end DESC LIMIT 1",
                            (row["flow_id"],)).fetchone()
    item["flow"] = dict(flow) if flow else None
    item["flow_id"] = row["flow_id"]
    item["explanation"] = explain_alert(item)
    return item


def get_anomaly(conn: sqlite3.Connection, anomaly_id: int) -> dict | None:
    row = conn.execute("SELECT * FROM device_anomalies WHERE id=?", (anomaly_id,)).fetchone()
    if row is None:
        return None
    item = _anomaly_item(row, device_names(conn), active_mutes(conn))
    item["observed"] = _json(row["observed"], {})
    item["baseline"] = _json(row["baseline"], {})
    item["explanation"] = row["explanation"]
    return item


def alerts_since(conn: sqlite3.Connection, after_alert_id: int, after_anomaly_id: int,
                 limit: int = 100) -> list[dict[str, Any]]:
    """New items for the live feed (server-sent events)."""
    names = device_names(conn)
    mutes = active_mutes(conn)
    items = [_alert_item(r, names, mutes) for r in conn.execute(
        "SELECT * FROM alerts WHERE id>? ORDER BY id LIMIT ?", (after_alert_id, limit))]
    items += [_anomaly_item(r, names, mutes) for r in conn.execute(
        "SELECT * FROM device_anomalies WHERE id>? ORDER BY id LIMIT ?",
        (after_anomaly_id, limit))]
    return [i for i in items if not i["muted"]]


def max_ids(conn: sqlite3.Connection) -> tuple[int, int]:
    return (conn.execute("SELECT COALESCE(MAX(id),0) FROM alerts").fetchone()[0],
            conn.execute("SELECT COALESCE(MAX(id),0) FROM device_anomalies").fetchone()[0])


# --- overview ------------------------------------------------------------

def traffic_by_hour(conn: sqlite3.Connection, *, hours: int = 24,
                    now: float | None = None, mac: str | None = None) -> list[dict[str, Any]]:
    """Bytes up (LAN -> internet, the client side) and down per hour, from
    flow records (bypassed flows included: the collector records their
    conntrack byte counts)."""
    now = time.time() if now is None else now
    end = (int(now) // 3600 + 1) * 3600
    start = end - hours * 3600
    buckets = {start + i * 3600: [0, 0] for i in range(hours)}
    query = ("SELECT CAST(ts_end / 3600 AS INTEGER) * 3600 AS hour,"
             " SUM(bytes_toserver), SUM(bytes_toclient) FROM flows WHERE ts_end>=? AND ts_end<?")
    params: list[Any] = [start, end]
    if mac:
        query += " AND client_mac=?"
        params.append(mac)
    for hour, up, down in conn.execute(query + " GROUP BY hour", params):
        if hour in buckets:
            buckets[hour] = [up or 0, down or 0]
    return [{"hour_ts": h, "up": v[0], "down": v[1]} for h, v in sorted(buckets.items())]


def overview(conn: sqlite3.Connection, *, stale_seconds: float,
             now: float | None = None) -> dict[str, Any]:
    now = time.time() if now is None else now
    quarantined = _quarantined_macs(conn, now)
    devices_total = conn.execute("SELECT COUNT(*) FROM devices").fetchone()[0]
    online = conn.execute("SELECT COUNT(*) FROM devices WHERE last_seen>=?",
                          (now - ONLINE_SECONDS,)).fetchone()[0]
    today = start_of_day(now)
    alerts_today = conn.execute("SELECT COUNT(*) FROM alerts WHERE ts>=?", (today,)).fetchone()[0]
    anomalies_today = conn.execute("SELECT COUNT(*) FROM device_anomalies WHERE ts>=?",
                                   (today,)).fetchone()[0]
    high_today = conn.execute("SELECT COUNT(*) FROM alerts WHERE severity IN (0, 1) AND ts>=?",
                              (today,)).fetchone()[0]
    top = [device_summary(r, r["mac"] in quarantined, now) for r in conn.execute(
        "SELECT * FROM devices WHERE risk>0 ORDER BY risk DESC LIMIT 5")]
    return {
        "protection": protection_state(conn, stale_seconds=stale_seconds, now=now),
        "failure_policy": _setting(conn, "engine.failure_policy", "fail-open"),
        "devices_total": devices_total, "devices_online": online,
        "devices_quarantined": len(quarantined),
        "alerts_today": alerts_today, "anomalies_today": anomalies_today,
        "high_severity_today": high_today,
        "top_risks": top,
        "traffic": traffic_by_hour(conn, now=now),
        "recent": timeline(conn, limit=8, now=now),
    }


# --- settings, users, audit ------------------------------------------------

def _setting(conn: sqlite3.Connection, key: str, default: Any) -> Any:
    row = conn.execute("SELECT value FROM settings WHERE key=?", (key,)).fetchone()
    return _json(row[0], default) if row else default


def box_settings(conn: sqlite3.Connection) -> dict[str, Any]:
    return {
        "failure_policy": _setting(conn, "engine.failure_policy", "fail-open"),
        "learning_days": float(_setting(conn, "profiling.learning_days", 7.0)),
        "auto_quarantine": bool(_setting(conn, "devices.auto_quarantine", False)),
        "auto_quarantine_risk": float(_setting(conn, "devices.auto_quarantine_risk", 0.9)),
    }


def rule_settings(conn: sqlite3.Connection) -> dict[str, Any]:
    feed = _setting(conn, "feed.status", None)
    return {
        "disabled_sids": [int(s) for s in _setting(conn, "rules.disabled_sids", [])
                          if isinstance(s, int) or str(s).isdigit()],
        "disabled_categories": [str(c) for c in _setting(conn, "rules.disabled_categories", [])],
        "feed": feed if isinstance(feed, dict) else None,
    }


def users(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute("SELECT name, created FROM users ORDER BY name")]


def audit_log(conn: sqlite3.Connection, *, limit: int = 50, target: str | None = None) -> list[dict]:
    limit = max(1, min(limit, 500))
    if target:
        rows = conn.execute("SELECT * FROM audit WHERE target=? ORDER BY id DESC LIMIT ?",
                            (target, limit))
    else:
        rows = conn.execute("SELECT * FROM audit ORDER BY id DESC LIMIT ?", (limit,))
    return [{**dict(r), "detail": _json(r["detail"], None)} for r in rows]
