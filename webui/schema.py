"""Tables and indexes the web UI owns, created idempotently beside the store's
versioned schema (`ips.store.MIGRATIONS` stays the store owner's).

The indexes serve the dashboard's queries at 200 devices and 100,000 alerts
(see bench/webui.py): alert filtering by severity, the merged alert timeline
(device anomalies by time), active blocks of a device, devices online.
"""
from __future__ import annotations

import sqlite3

STATEMENTS = (
    """CREATE TABLE IF NOT EXISTS web_sessions (
        token_hash TEXT PRIMARY KEY,
        user TEXT NOT NULL,
        csrf TEXT NOT NULL,
        created REAL NOT NULL,
        last_seen REAL NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS web_login_attempts (
        id INTEGER PRIMARY KEY,
        ts REAL NOT NULL,
        client TEXT NOT NULL,
        user TEXT NOT NULL,
        ok INTEGER NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS web_login_attempts_client ON web_login_attempts(client, ts)",
    "CREATE INDEX IF NOT EXISTS web_login_attempts_user ON web_login_attempts(user, ts)",
    "CREATE INDEX IF NOT EXISTS webui_alerts_severity ON alerts(severity, ts)",
    "CREATE INDEX IF NOT EXISTS webui_device_anomalies_ts ON device_anomalies(ts)",
    "CREATE INDEX IF NOT EXISTS webui_blocks_mac ON blocks(mac, active)",
    "CREATE INDEX IF NOT EXISTS webui_devices_last_seen ON devices(last_seen)",
    "CREATE INDEX IF NOT EXISTS webui_flows_flow_id ON flows(flow_id)",
    # Covering indexes: the traffic charts sum bytes per hour without
    # touching the table rows.
    "CREATE INDEX IF NOT EXISTS webui_flows_volume"
    " ON flows(ts_end, bytes_toserver, bytes_toclient)",
    "CREATE INDEX IF NOT EXISTS webui_flows_client_volume"
    " ON flows(client_mac, ts_end, bytes_toserver, bytes_toclient)",
    "CREATE INDEX IF NOT EXISTS webui_mutes_expires ON mutes(expires)",
)


def ensure_schema(conn: sqlite3.Connection) -> None:
    for statement in STATEMENTS:
        conn.execute(statement)
