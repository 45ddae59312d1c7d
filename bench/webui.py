"""Dashboard page times with 200 devices and 100,000 alerts in the store.

    PYTHONPATH=. python bench/webui.py [--devices 200] [--alerts 100000] [--rounds 5]

Seeds a temporary store (webui.demo.seed_bulk), logs in through the real
login endpoint, then renders every page and the main API reads `rounds`
times, printing the median and worst wall time per request in milliseconds
(in-process ASGI client: the figure is render + queries, not network). The
bar is 300 ms per page; exits non-zero when a page misses it.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore", message=".*httpx.*")
# This file is named after the package it measures; the script's own folder
# must not shadow that package.
ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

from fastapi.testclient import TestClient  # noqa: E402

from ips import control  # noqa: E402
from ips.store import Store  # noqa: E402
from webui.demo import seed_bulk, seed_realistic  # noqa: E402
from webui.main import create_app  # noqa: E402
from webui.settings import WebSettings  # noqa: E402

BAR_MS = 300.0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--alerts", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--signatures", type=Path, default=Path(__file__).resolve().parents[1] / "signatures")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        store = Store(path)
        started = time.perf_counter()
        seed_bulk(store, devices=args.devices, alerts=args.alerts)
        seed_realistic(store)
        control.add_user(store, "bench", "bench-password-123", actor="bench")
        counts = {table: store.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
                  for table in ("devices", "alerts", "device_anomalies", "flows")}
        store.close()
        print(f"seeded {counts} in {time.perf_counter() - started:.1f} s")
        settings = WebSettings(environment="development", store_path=path, cookie_secure=False,
                               signatures_dir=args.signatures, secret_key="bench-secret-0123456789")
        with TestClient(create_app(settings)) as client:
            token = client.get("/api/auth/csrf").json()["csrf_token"]
            client.post("/api/auth/login", data={"username": "bench", "password": "bench-password-123",
                                                 "csrf_token": token}).raise_for_status()
            busiest = client.get("/api/devices").json()[0]["mac"]
            first_alert = client.get("/api/alerts?kind=signature&limit=1").json()[0]["id"]
            targets = ["/", "/devices", f"/devices/{busiest}", "/devices/00:12:34:56:78:01",
                       "/alerts", f"/alerts?device={busiest}", "/alerts?severity=1&range=24h",
                       "/alerts?kind=anomaly", f"/alerts/{first_alert}", "/anomalies/1", "/rules",
                       "/settings", "/api/overview", "/api/devices", "/api/alerts?limit=500"]
            failed = False
            print(f"{'request':44} {'median ms':>10} {'max ms':>8}")
            for target in targets:
                client.get(target).raise_for_status()  # warm caches (rule catalog, templates)
                times = []
                for _ in range(args.rounds):
                    t0 = time.perf_counter()
                    client.get(target).raise_for_status()
                    times.append((time.perf_counter() - t0) * 1000)
                median = statistics.median(times)
                flag = "" if median < BAR_MS else "  <-- over the bar"
                failed |= bool(flag) and not target.startswith("/api/")
                print(f"{target:44} {median:10.1f} {max(times):8.1f}{flag}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
