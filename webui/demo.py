"""Realistic demo content for the dashboard: tests, screenshots and the
benchmark seed a store with it. Addresses are documentation ranges only
(192.0.2.0/24 LAN, 198.51.100.0/24 and 203.0.113.0/24 "internet").

Run ``python -m webui.demo PATH`` to create a demo store.
"""
from __future__ import annotations

import json
import random
import sys
import time

from ips.store import Store

CAMERA = "00:12:34:56:78:01"
PLUG = "50:c7:bf:00:00:02"
THERMOSTAT = "18:b4:30:00:00:03"
SPEAKER = "f0:27:2d:00:00:04"
PRINTER = "3c:2a:f4:00:00:05"
ROUTER = "02:00:00:00:01:01"
"""Source MAC of what comes in from the internet: the bridge sees the router's."""

# What the alerted transaction said, by _SIGNATURES index (the store keeps it
# beside the alert; the alert page shows it).
_APP_RECORDS = {
    0: {"http": {"hostname": "192.0.2.21", "url": "/SDK/webLanguage", "http_method": "PUT",
                 "http_user_agent": "Mozilla/5.0", "protocol": "HTTP/1.1", "length": 0}},
}

_DEVICES = [
    # mac, ip, vendor, hostname, type, model, risk, stage
    (CAMERA, "192.0.2.21", "Hikvision", "hik-cam-garden", "camera", "DS-2CD2042WD", 0.82, "protected"),
    (PLUG, "192.0.2.22", "TP-Link", "HS110", "plug", "Kasa HS110", 0.35, "protected"),
    (THERMOSTAT, "192.0.2.23", "Nest Labs", "nest-hallway", "thermostat", "Learning Thermostat", 0.12, "protected"),
    (SPEAKER, "192.0.2.24", "Amazon", "echo-kitchen", "speaker", "Echo Dot", 0.05, "learning"),
    (PRINTER, "192.0.2.25", "Brother", "BRN3C2AF4", "printer", None, 0.0, "protected"),
]

_SIGNATURES = [
    # sid, msg, category, severity, cve
    (2031545, "ET EXPLOIT Hikvision IP Camera RCE Attempt (CVE-2021-36260)",
     "Attempted Administrator Privilege Gain", 1, "CVE_2021_36260"),
    (2023452, "ET TELNET Mirai-style telnet brute force login attempt", "Attempted Administrator Privilege Gain", 1, None),
    (2027865, "ET INFO Observed DNS Query to .cloud TLD", "Potentially Bad Traffic", 3, None),
    (2013028, "ET POLICY curl User-Agent Outbound", "Attempted Information Leak", 2, None),
    (2400001, "ET DROP Spamhaus DROP Listed Traffic Inbound", "Misc Attack", 2, None),
]


def _ip_of(mac: str) -> str:
    return next(ip for device_mac, ip, *_ in _DEVICES if device_mac == mac)


def _hours(active: range, weekend: bool = True, scale: int = 40) -> list[list[int]]:
    grid = []
    for day in range(7):
        row = []
        for hour in range(24):
            busy = hour in active and (weekend or day < 5)
            row.append(scale + (hour * 7 + day * 3) % 11 if busy else (hour + day) % 3)
        grid.append(row)
    return grid


def _profile(kind: str, now: float) -> dict:
    hour0 = (int(now) // 3600) * 3600
    if kind == "camera":
        destinations = [("198.51.100.10", "cloud.hik-connect.example", 48_000_000, 2200),
                        ("198.51.100.53", "ntp.example", 90_000, 300),
                        ("203.0.113.80", "firmware.hikvision.example", 2_400_000, 4)]
        hours, up, down = _hours(range(0, 24)), 2_000_000, 80_000
        ports = [{"port": 443, "proto": "TCP", "flows": 2100}, {"port": 554, "proto": "TCP", "flows": 40},
                 {"port": 123, "proto": "UDP", "flows": 300}]
    elif kind == "plug":
        destinations = [("198.51.100.30", "n-devs.tplinkcloud.example", 1_200_000, 900)]
        hours, up, down = _hours(range(6, 23)), 20_000, 12_000
        ports = [{"port": 443, "proto": "TCP", "flows": 900}, {"port": 9999, "proto": "TCP", "flows": 12}]
    else:
        destinations = [("198.51.100.40", "home.nest.example", 3_000_000, 1500),
                        ("198.51.100.53", "ntp.example", 40_000, 100)]
        hours, up, down = _hours(range(5, 24), scale=20), 60_000, 50_000
        ports = [{"port": 443, "proto": "TCP", "flows": 1500}, {"port": 123, "proto": "UDP", "flows": 100}]
    volume = []
    for i in range(48):
        ts = hour0 - (47 - i) * 3600
        wave = 1 + ((i * 5) % 7) / 7
        volume.append({"hour_ts": ts, "up": int(up * wave), "down": int(down * wave)})
    if kind == "camera":  # the exfiltration spike the anomaly talks about
        volume[-2]["up"] = up * 9
    return {"destinations": [{"ip": ip, "name": name, "bytes": b, "flows": f}
                             for ip, name, b, f in destinations],
            "ports": ports, "hours": hours, "volume": volume}


def seed_realistic(store: Store, now: float | None = None) -> None:
    """A small home: camera under attack, plug, thermostat, speaker, printer."""
    now = time.time() if now is None else now
    conn = store.conn
    conn.execute("BEGIN")
    for mac, ip, vendor, hostname, dtype, model, risk, stage in _DEVICES:
        profile = _profile(dtype, now) if dtype in ("camera", "plug", "thermostat") else None
        conn.execute(
            "INSERT OR REPLACE INTO devices (mac, ip, vendor, hostname, type_guess, model_guess,"
            " confidence, evidence, stage, stage_until, first_seen, last_seen, risk, profile)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (mac, ip, vendor, hostname, dtype, model, 0.9,
             json.dumps([{"source": "dhcp", "value": f"hostname {hostname}"},
                         {"source": "oui", "value": vendor}]),
             stage, now + 3 * 86400 if stage == "learning" else None,
             now - 30 * 86400, now - (5000 if dtype == "printer" else 30), risk,
             json.dumps(profile) if profile else None))
        conn.execute("INSERT OR REPLACE INTO device_ips (mac, ip, first_seen, last_seen)"
                     " VALUES (?,?,?,?)", (mac, ip, now - 30 * 86400, now - 30))
    alerts = [
        (now - 600, CAMERA, "203.0.113.66", 40112, "192.0.2.21", 80, "TCP", "http", 0, "blocked"),
        (now - 1800, CAMERA, "203.0.113.66", 40100, "192.0.2.21", 23, "TCP", "telnet", 1, "blocked"),
        (now - 3600 * 3, PLUG, "192.0.2.22", 51000, "198.51.100.99", 53, "UDP", "dns", 2, "allowed"),
        (now - 3600 * 5, THERMOSTAT, "192.0.2.23", 51200, "198.51.100.77", 80, "TCP", "http", 3, "allowed"),
        (now - 3600 * 30, CAMERA, "203.0.113.9", 1234, "192.0.2.21", 554, "TCP", None, 4, "blocked"),
    ]
    for flow_id, (ts, mac, src, sport, dst, dport, proto, app, sig, action) in enumerate(alerts, 1):
        sid, msg, category, severity, cve = _SIGNATURES[sig]
        metadata = {"cve": [cve]} if cve else {}
        record = _APP_RECORDS.get(sig)
        conn.execute(
            "INSERT INTO alerts (ts, flow_id, src_ip, src_port, dest_ip, dest_port, proto,"
            " app_proto, action, gid, sid, rev, signature, category, severity, metadata,"
            " src_mac, device_mac, app) VALUES (?,?,?,?,?,?,?,?,?,1,?,3,?,?,?,?,?,?,?)",
            (ts, flow_id, src, sport, dst, dport, proto, app, action, sid, msg, category,
             severity, json.dumps(metadata), mac if src == _ip_of(mac) else ROUTER, mac,
             json.dumps(record) if record else None))
        conn.execute(
            "INSERT INTO flows (flow_id, ts_start, ts_end, src_ip, src_port, dest_ip, dest_port,"
            " proto, app_proto, pkts_toserver, pkts_toclient, bytes_toserver, bytes_toclient,"
            " state, reason, action, alerted, client_mac, server_mac)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,1,?,NULL)",
            (flow_id, ts - 2, ts + 1, src, sport, dst, dport, proto, app, 6, 4, 1200, 800,
             "closed", "tcp_closed" if proto == "TCP" else "timeout",
             "drop" if action == "blocked" else "pass", mac))
    anomalies = [
        (now - 900, CAMERA, "unusual_volume", 0.91,
         {"bytes_last_hour": 18_000_000}, {"typical_bytes_per_hour": 2_000_000},
         "Garden camera uploaded 18 MB in the last hour; it normally uploads about 2 MB."),
        (now - 2400, CAMERA, "new_destination", 0.74,
         {"destination": "203.0.113.66", "port": 4444}, {"known_destinations": 3},
         "Garden camera talked to 203.0.113.66 on port 4444, a server it has never contacted."),
        (now - 3600 * 8, PLUG, "unusual_time", 0.55,
         {"hour": 3}, {"active_hours": "06:00-23:00"},
         "Smart plug was active at 03:00, outside its usual hours (06:00-23:00)."),
    ]
    for ts, mac, kind, score, observed, baseline, sentence in anomalies:
        ip = next(d[1] for d in _DEVICES if d[0] == mac)
        conn.execute("INSERT INTO device_anomalies (ts, mac, ip, kind, score, observed, baseline,"
                     " explanation) VALUES (?,?,?,?,?,?,?,?)",
                     (ts, mac, ip, kind, score, json.dumps(observed), json.dumps(baseline), sentence))
    # background traffic for the overview chart
    rng = random.Random(7)
    for i in range(240):
        end = now - rng.random() * 86400
        mac, ip = rng.choice([(d[0], d[1]) for d in _DEVICES])
        conn.execute(
            "INSERT INTO flows (flow_id, ts_start, ts_end, src_ip, src_port, dest_ip, dest_port,"
            " proto, pkts_toserver, pkts_toclient, bytes_toserver, bytes_toclient, state, reason,"
            " action, alerted, client_mac) VALUES (?,?,?,?,?,?,443,'TCP',10,10,?,?,'closed',"
            "'tcp_closed','bypass',0,?)",
            (1000 + i, end - 30, end, ip, 40000 + i, "198.51.100.10",
             rng.randint(20_000, 900_000), rng.randint(20_000, 3_000_000), mac))
    for offset in (240, 120, 0):
        ts = now - offset - 1
        base = int((now - offset) * 3) % 100000
        conn.executemany("INSERT OR REPLACE INTO counters (ts, name, value) VALUES (?,?,?)",
                         [(ts, "ips.inspected", 5_000_000 + base), (ts, "ips.bypassed", 41_000_000 + base),
                          (ts, "ips.uninspected", 0), (ts, "ips.blocked", 1_234),
                          (ts, "engine.workers_alive", 2), (ts, "engine.workers_expected", 2)])
    conn.execute("INSERT OR REPLACE INTO settings (key, value) VALUES ('feed.status', ?)",
                 (json.dumps({"state": "ok", "version": "2024.04.19-1", "updated": now - 7200,
                              "source": "https://feeds.example/reefguard"}),))
    conn.execute("COMMIT")


def seed_bulk(store: Store, *, devices: int = 200, alerts: int = 100_000,
              anomalies: int = 2_000, flows: int = 20_000, now: float | None = None) -> None:
    """Load for the benchmark: many devices, alerts spread over 30 days."""
    now = time.time() if now is None else now
    rng = random.Random(1)
    conn = store.conn
    conn.execute("BEGIN")
    macs = [f"02:00:00:00:{i // 256:02x}:{i % 256:02x}" for i in range(devices)]
    kinds = ["camera", "plug", "thermostat", "speaker", "tv", "sensor", "hub"]
    for i, mac in enumerate(macs):
        kind = kinds[i % len(kinds)]
        conn.execute(
            "INSERT OR REPLACE INTO devices (mac, ip, vendor, hostname, type_guess, stage,"
            " first_seen, last_seen, risk, profile) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (mac, f"192.0.2.{i % 250 + 1}", "Vendor", f"{kind}-{i}", kind, "protected",
             now - 40 * 86400, now - rng.random() * 3600, rng.random(),
             json.dumps(_profile(kind if kind in ("camera", "plug") else "thermostat", now))))
    batch = []
    for i in range(alerts):
        sid, msg, category, severity, _ = _SIGNATURES[i % len(_SIGNATURES)]
        mac = macs[rng.randrange(devices)]
        batch.append((now - rng.random() * 30 * 86400, i + 1, "203.0.113.5", 4000, "192.0.2.9",
                      80, "TCP", "http", "allowed", sid, msg, category, severity, "{}", mac, mac))
        if len(batch) == 5000:
            conn.executemany(
                "INSERT INTO alerts (ts, flow_id, src_ip, src_port, dest_ip, dest_port, proto,"
                " app_proto, action, gid, sid, rev, signature, category, severity, metadata,"
                " src_mac, device_mac) VALUES (?,?,?,?,?,?,?,?,?,1,?,1,?,?,?,?,?,?)", batch)
            batch.clear()
    if batch:
        conn.executemany(
            "INSERT INTO alerts (ts, flow_id, src_ip, src_port, dest_ip, dest_port, proto,"
            " app_proto, action, gid, sid, rev, signature, category, severity, metadata,"
            " src_mac, device_mac) VALUES (?,?,?,?,?,?,?,?,?,1,?,1,?,?,?,?,?,?)", batch)
    conn.executemany(
        "INSERT INTO device_anomalies (ts, mac, ip, kind, score, observed, baseline, explanation)"
        " VALUES (?,?,?,?,?,'{}','{}',?)",
        [(now - rng.random() * 30 * 86400, macs[rng.randrange(devices)], "192.0.2.9",
          "new_destination", rng.random(), "Device talked to a new server.")
         for _ in range(anomalies)])
    conn.executemany(
        "INSERT INTO flows (flow_id, ts_start, ts_end, src_ip, src_port, dest_ip, dest_port,"
        " proto, pkts_toserver, pkts_toclient, bytes_toserver, bytes_toclient, state, reason,"
        " action, alerted, client_mac) VALUES (?,?,?,'192.0.2.9',4000,'198.51.100.10',443,'TCP',"
        "5,5,?,?,'closed','tcp_closed','pass',0,?)",
        [(alerts + i, now - 86400 * rng.random() - 10, now - 86400 * rng.random(),
          rng.randint(100, 100_000), rng.randint(100, 1_000_000), macs[rng.randrange(devices)])
         for i in range(flows)])
    conn.execute("COMMIT")


if __name__ == "__main__":
    target = Store(sys.argv[1] if len(sys.argv) > 1 else "demo.db")
    seed_realistic(target)
    target.close()
