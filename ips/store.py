"""SQLite store: the embedded database behind the collector and the web UI.

Theory of operation
-------------------
* WAL mode, so the web UI reads while the collector writes.
* Observed facts (alerts, flow summaries, devices, anomalies, counters) are
  written by one writer, the collector (`ips.collector`). User intent
  (settings, mutes, acknowledgements, quarantine/block requests, users) is
  written by the control plane (`ips.control`), and every such change is
  recorded in `audit`.
* The schema is versioned: `MIGRATIONS[i]` moves the database from version i
  to i+1, recorded in `PRAGMA user_version`. Never edit a released migration;
  append a new one.
* The EVE file stays the append-only record; the store is the queryable view
  and may be pruned.
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Iterable

from ips import events

MIGRATIONS: list[str] = [
    # 0 -> 1: initial schema
    """
    CREATE TABLE alerts (
        id INTEGER PRIMARY KEY,
        ts REAL NOT NULL,
        flow_id INTEGER,
        src_ip TEXT, src_port INTEGER, dest_ip TEXT, dest_port INTEGER,
        proto TEXT, app_proto TEXT,
        action TEXT NOT NULL,
        gid INTEGER, sid INTEGER, rev INTEGER,
        signature TEXT, category TEXT, severity INTEGER,
        metadata TEXT,               -- JSON
        src_mac TEXT,
        device_mac TEXT,             -- the LAN device this alert concerns, if known
        acknowledged INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX alerts_ts ON alerts(ts);
    CREATE INDEX alerts_device ON alerts(device_mac, ts);
    CREATE INDEX alerts_sid ON alerts(sid);

    CREATE TABLE flows (
        id INTEGER PRIMARY KEY,
        flow_id INTEGER, ts_start REAL, ts_end REAL,
        src_ip TEXT, src_port INTEGER, dest_ip TEXT, dest_port INTEGER,
        proto TEXT, app_proto TEXT,
        pkts_toserver INTEGER, pkts_toclient INTEGER,
        bytes_toserver INTEGER, bytes_toclient INTEGER,
        state TEXT, reason TEXT, action TEXT, alerted INTEGER,
        client_mac TEXT, server_mac TEXT
    );
    CREATE INDEX flows_end ON flows(ts_end);
    CREATE INDEX flows_client ON flows(client_mac, ts_end);

    CREATE TABLE devices (
        mac TEXT PRIMARY KEY,
        ip TEXT,
        vendor TEXT,
        hostname TEXT,
        type_guess TEXT, model_guess TEXT, confidence REAL,
        evidence TEXT,               -- JSON list of {source, value}
        user_name TEXT, user_type TEXT,  -- overrides that stick
        stage TEXT NOT NULL DEFAULT 'learning',  -- learning | protected | relearning
        stage_until REAL,
        first_seen REAL, last_seen REAL,
        risk REAL NOT NULL DEFAULT 0,
        quarantined INTEGER NOT NULL DEFAULT 0,
        profile TEXT                 -- JSON summary of the learned profile
    );
    CREATE TABLE device_ips (
        mac TEXT NOT NULL, ip TEXT NOT NULL, first_seen REAL, last_seen REAL,
        PRIMARY KEY (mac, ip)
    );
    CREATE TABLE device_anomalies (
        id INTEGER PRIMARY KEY,
        ts REAL NOT NULL, mac TEXT NOT NULL, ip TEXT,
        kind TEXT NOT NULL, score REAL,
        observed TEXT, baseline TEXT,    -- JSON
        explanation TEXT, count INTEGER NOT NULL DEFAULT 1,
        acknowledged INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX device_anomalies_mac ON device_anomalies(mac, ts);

    CREATE TABLE blocks (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,          -- quarantine | block_destination
        mac TEXT, device_ip TEXT, destination TEXT,
        created REAL NOT NULL, expires REAL, reason TEXT, created_by TEXT,
        active INTEGER NOT NULL DEFAULT 1
    );
    CREATE TABLE mutes (
        id INTEGER PRIMARY KEY,
        sid INTEGER, mac TEXT, kind TEXT,
        created REAL NOT NULL, expires REAL, created_by TEXT
    );
    CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE users (
        name TEXT PRIMARY KEY, password_hash TEXT NOT NULL, created REAL NOT NULL
    );
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        ts REAL NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
        target TEXT, reason TEXT, detail TEXT
    );
    CREATE TABLE counters (
        ts REAL NOT NULL, name TEXT NOT NULL, value INTEGER NOT NULL,
        PRIMARY KEY (name, ts)
    );
    """,
    # 1 -> 2: what the alerted transaction said (the request line of an
    # exploit a virtual patch stopped), so the dashboard can show why
    """
    ALTER TABLE alerts ADD COLUMN app TEXT   -- JSON {"http": {"url": ...}}, see _app_json
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)

APP_VALUE_MAX = 512       # characters kept of one app-layer field of an alert
APP_FIELDS_MAX = 24       # fields kept per protocol


def _app_json(app: dict | None) -> str | None:
    """The app-layer record beside an alert, bounded for the store: per
    protocol its scalar fields (a hostile URL or user agent is cut to
    APP_VALUE_MAX characters); nested lists and objects stay in EVE."""
    if not app:
        return None
    kept: dict[str, dict] = {}
    for proto, record in app.items():
        if not isinstance(record, dict):
            continue
        fields = {}
        for key, value in record.items():
            if isinstance(value, str):
                fields[key] = value[:APP_VALUE_MAX]
            elif isinstance(value, (int, float, bool)):
                fields[key] = value
            if len(fields) >= APP_FIELDS_MAX:
                break
        if fields:
            kept[str(proto)[:32]] = fields
    return json.dumps(kept) if kept else None


def connect(path: str | Path) -> sqlite3.Connection:
    """Open (creating and migrating if needed) the store at `path`."""
    conn = sqlite3.connect(str(path), timeout=30, check_same_thread=False,
                           isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    migrate(conn)
    return conn


def migrate(conn: sqlite3.Connection) -> int:
    """Apply pending migrations; return the schema version reached."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise RuntimeError(
            f"store schema version {version} is newer than this ReefGuard "
            f"({SCHEMA_VERSION}); refusing to touch it")
    for step in range(version, SCHEMA_VERSION):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _split_sql(MIGRATIONS[step]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version={step + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return SCHEMA_VERSION


def _split_sql(script: str) -> Iterable[str]:
    # executescript() would commit our transaction; split on ';' instead.
    # Migrations contain no ';' inside literals (keep it that way).
    for statement in script.split(";"):
        lines = [ln.split("--", 1)[0] for ln in statement.splitlines()]
        text = "\n".join(lines).strip()
        if text:
            yield text


class Store:
    """Writer API used by the collector and the control plane."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.conn = connect(self.path)
        self._lock = threading.Lock()

    def close(self) -> None:
        self.conn.close()

    # --- observed facts (collector) -----------------------------------
    def add_alerts(self, alerts: Iterable[events.Alert],
                   device_of: dict[int, str] | None = None) -> None:
        rows = [(a.timestamp, a.flow_id, a.src_ip, a.src_port, a.dest_ip,
                 a.dest_port, a.proto, a.app_proto, a.action, a.gid,
                 a.signature_id, a.rev, a.signature, a.category, a.severity,
                 json.dumps(a.metadata), a.src_mac,
                 (device_of or {}).get(id(a)), _app_json(a.app))
                for a in alerts]
        if rows:
            with self._lock:
                self.conn.executemany(
                    "INSERT INTO alerts (ts, flow_id, src_ip, src_port, dest_ip,"
                    " dest_port, proto, app_proto, action, gid, sid, rev,"
                    " signature, category, severity, metadata, src_mac, device_mac, app)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)

    def add_flows(self, flows: Iterable[events.FlowEnd]) -> None:
        rows = [(f.flow_id, f.start, f.end, f.tuple.src_ip, f.tuple.src_port,
                 f.tuple.dest_ip, f.tuple.dest_port, f.tuple.proto, f.app_proto,
                 f.pkts_toserver, f.pkts_toclient, f.bytes_toserver,
                 f.bytes_toclient, f.state, f.reason, f.action, int(f.alerted),
                 f.client_mac, f.server_mac) for f in flows]
        if rows:
            with self._lock:
                self.conn.executemany(
                    "INSERT INTO flows (flow_id, ts_start, ts_end, src_ip,"
                    " src_port, dest_ip, dest_port, proto, app_proto,"
                    " pkts_toserver, pkts_toclient, bytes_toserver,"
                    " bytes_toclient, state, reason, action, alerted,"
                    " client_mac, server_mac)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)

    def add_device_anomaly(self, a: events.DeviceAnomaly) -> None:
        """One row per (device, kind, window): the end-of-window summary
        (ips.profile) updates the row its first event made, so the owner sees
        one finding with its final count, not two."""
        with self._lock:
            observed = a.observed if isinstance(a.observed, dict) else {}
            if observed.get("summary") and observed.get("window_start") is not None:
                updated = self.conn.execute(
                    "UPDATE device_anomalies SET observed=?, baseline=?, explanation=?,"
                    " count=?, score=MAX(COALESCE(score, 0), ?)"
                    " WHERE mac=? AND kind=? AND json_extract(observed, '$.window_start')=?",
                    (json.dumps(a.observed), json.dumps(a.baseline), a.explanation, a.count,
                     a.score or 0, a.mac, a.kind, observed["window_start"])).rowcount
                if updated:
                    return
            self.conn.execute(
                "INSERT INTO device_anomalies (ts, mac, ip, kind, score,"
                " observed, baseline, explanation, count)"
                " VALUES (?,?,?,?,?,?,?,?,?)",
                (a.timestamp, a.mac, a.ip, a.kind, a.score,
                 json.dumps(a.observed), json.dumps(a.baseline),
                 a.explanation, a.count))

    def add_counters(self, ts: float, counters: dict[str, int]) -> None:
        with self._lock:
            self.conn.executemany(
                "INSERT OR REPLACE INTO counters (ts, name, value) VALUES (?,?,?)",
                [(ts, k, int(v)) for k, v in counters.items()])

    # --- settings and audit (control plane) ---------------------------
    def get_setting(self, key: str, default: Any = None) -> Any:
        row = self.conn.execute("SELECT value FROM settings WHERE key=?",
                                (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def set_setting(self, key: str, value: Any, *, actor: str,
                    reason: str | None = None) -> None:
        with self._lock:
            self.conn.execute(
                "INSERT INTO settings (key, value) VALUES (?, ?)"
                " ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (key, json.dumps(value)))
        self.audit(actor, "setting", key, reason, {"value": value})

    def audit(self, actor: str, action: str, target: str | None = None,
              reason: str | None = None, detail: dict | None = None) -> None:
        with self._lock:
            self.conn.execute(
                "INSERT INTO audit (ts, actor, action, target, reason, detail)"
                " VALUES (?,?,?,?,?,?)",
                (time.time(), actor, action, target, reason,
                 json.dumps(detail) if detail is not None else None))


class StoreConsumer:
    """Collector consumer: batches events into the store (one writer)."""

    BATCH = 500

    def __init__(self, store: Store) -> None:
        self.store = store
        self._alerts: list[events.Alert] = []
        self._flows: list[events.FlowEnd] = []

    def alert(self, a: events.Alert) -> None:
        self._alerts.append(a)
        if len(self._alerts) >= self.BATCH:
            self.flush()

    def flow_end(self, f: events.FlowEnd) -> None:
        self._flows.append(f)
        if len(self._flows) >= self.BATCH:
            self.flush()

    def device_anomaly(self, a: events.DeviceAnomaly) -> None:
        self.store.add_device_anomaly(a)

    def stats(self, s: events.Stats) -> None:
        flat: dict[str, int] = {}

        def walk(prefix: str, node) -> None:
            for key, value in node.items():
                name = f"{prefix}.{key}" if prefix else key
                if isinstance(value, dict):
                    walk(name, value)
                elif isinstance(value, (int, float)):
                    flat[name] = int(value)
        walk("", s.counters)
        self.store.add_counters(s.timestamp, flat)

    def tick(self, ts: float) -> None:
        self.flush()
        self.link_recent_alerts()

    def done(self) -> None:
        self.flush()
        self.link_recent_alerts()

    def close(self) -> None:
        # Events derived at the end (after every `done`) land here.
        self.flush()

    # An alert can come before the inventory has written the device it
    # concerns (an attack on a device that had not talked yet); recent
    # unlinked alerts are linked again once the device is known.
    RELINK_WINDOW = 2000

    def link_recent_alerts(self) -> None:
        with self.store._lock:
            self.store.conn.execute(
                "UPDATE alerts SET device_mac = COALESCE("
                " (SELECT di.mac FROM device_ips di WHERE di.ip = alerts.src_ip"
                "  AND di.mac NOT LIKE 'ip:%' ORDER BY di.last_seen DESC LIMIT 1),"
                " (SELECT di.mac FROM device_ips di WHERE di.ip = alerts.dest_ip"
                "  AND di.mac NOT LIKE 'ip:%' ORDER BY di.last_seen DESC LIMIT 1))"
                " WHERE device_mac IS NULL"
                " AND id > (SELECT COALESCE(MAX(id), 0) FROM alerts) - ?",
                (self.RELINK_WINDOW,))

    def _devices_of(self, alerts: list[events.Alert]) -> dict[int, str]:
        """The LAN device each alert concerns: the device (a real MAC, not an
        address-keyed placeholder) that last held its source, else its
        destination address."""
        found: dict[int, str] = {}
        with self.store._lock:
            for alert in alerts:
                for address in (alert.src_ip, alert.dest_ip):
                    row = self.store.conn.execute(
                        "SELECT mac FROM device_ips WHERE ip=? AND mac NOT LIKE 'ip:%'"
                        " ORDER BY last_seen DESC LIMIT 1", (address,)).fetchone()
                    if row:
                        found[id(alert)] = row[0]
                        break
        return found

    def flush(self) -> None:
        if self._alerts or self._flows:
            with self.store._lock:
                self.store.conn.execute("BEGIN")
            try:
                alerts, flows = self._alerts, self._flows
                self._alerts, self._flows = [], []
                self.store.add_alerts(alerts, self._devices_of(alerts))
                self.store.add_flows(flows)
            finally:
                with self.store._lock:
                    self.store.conn.execute("COMMIT")
