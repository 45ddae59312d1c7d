"""The JSON API and the pages, on a seeded store."""
from __future__ import annotations

import json
import time

from webui.demo import CAMERA, PLUG, THERMOSTAT


def test_overview_reports_protection_from_counters(authed, store):
    data = authed.get("/api/overview").json()
    assert data["protection"]["state"] == "protected"
    assert data["devices_total"] == 5 and data["devices_online"] == 4
    assert data["top_risks"][0]["mac"] == CAMERA
    assert len(data["traffic"]) == 24 and sum(p["down"] for p in data["traffic"]) > 0
    now = time.time()
    store.add_counters(now, {"ips.uninspected": 40})
    assert authed.get("/api/overview").json()["protection"]["state"] == "degraded"
    store.add_counters(now, {"engine.workers_alive": 0, "ips.uninspected": 0})
    store.conn.execute("DELETE FROM counters WHERE name='ips.uninspected'")
    assert authed.get("/api/overview").json()["protection"]["state"] == "bypassed"
    store.conn.execute("DELETE FROM counters")
    assert authed.get("/api/overview").json()["protection"]["state"] == "bypassed"


def test_devices_list_and_detail(authed):
    devices = {d["mac"]: d for d in authed.get("/api/devices").json()}
    camera = devices[CAMERA]
    assert (camera["type"], camera["vendor"], camera["ip"], camera["risk"]) == (
        "camera", "Hikvision", "192.0.2.21", 82)
    assert camera["last_alert"]["signature"].startswith("ET EXPLOIT Hikvision")
    detail = authed.get(f"/api/devices/{CAMERA}").json()
    assert detail["profile"]["destinations"][0]["ip"] == "198.51.100.10"
    assert len(detail["profile"]["hours"]) == 7 and len(detail["profile"]["hours"][0]) == 24
    assert {a["kind"] for a in detail["anomalies"]} == {"unusual_volume", "new_destination"}
    assert [p["sid"] for p in detail["patches"]] == [9100001]
    assert authed.get("/api/devices/02:00:00:00:00:99").status_code == 404
    assert authed.get("/api/devices/not-a-mac").status_code == 422


def test_quarantine_roundtrip_through_api(authed, store):
    response = authed.post(f"/api/devices/{CAMERA}/quarantine", json={"reason": "test"})
    assert response.status_code == 200
    block_id = response.json()["detail"]["block_id"]
    row = store.conn.execute("SELECT kind, mac, active, created_by FROM blocks WHERE id=?",
                             (block_id,)).fetchone()
    assert tuple(row) == ("quarantine", CAMERA, 1, "admin")
    assert store.conn.execute("SELECT actor FROM audit WHERE action='quarantine'").fetchone()[0] == "admin"
    assert authed.get(f"/api/devices/{CAMERA}").json()["status"] == "quarantined"
    assert authed.delete(f"/api/devices/{CAMERA}/quarantine").json()["detail"]["lifted"] == 1
    assert store.conn.execute("SELECT active FROM blocks WHERE id=?", (block_id,)).fetchone()[0] == 0


def test_block_rename_relearn(authed, store):
    assert authed.post(f"/api/devices/{PLUG}/block", json={"destination": "evil"}).status_code == 400
    assert authed.post(f"/api/devices/{PLUG}/block", json={"destination": "203.0.113.66"}).status_code == 200
    blocks = authed.get(f"/api/devices/{PLUG}").json()["blocks"]
    assert [(b["kind"], b["destination"]) for b in blocks] == [("block_destination", "203.0.113.66")]
    assert authed.post(f"/api/devices/{PLUG}/unblock", json={"destination": "203.0.113.66"}).status_code == 200
    assert authed.patch(f"/api/devices/{PLUG}", json={"name": "Kettle", "type": "plug"}).status_code == 200
    assert authed.get(f"/api/devices/{PLUG}").json()["name"] == "Kettle"
    assert authed.post(f"/api/devices/{THERMOSTAT}/relearn", json={"days": 1}).status_code == 200
    assert authed.get(f"/api/devices/{THERMOSTAT}").json()["stage"] == "relearning"


def test_alert_filters_detail_and_mute(authed):
    everything = authed.get("/api/alerts").json()
    assert len(everything) == 8 and everything == sorted(everything, key=lambda i: -i["ts"])
    high = authed.get("/api/alerts", params={"severity": 1}).json()
    assert high and all(i["severity"] == 1 for i in high)
    assert {i["kind"] for i in authed.get("/api/alerts", params={"kind": "anomaly"}).json()} == {
        "unusual_volume", "new_destination", "unusual_time"}
    recent = authed.get("/api/alerts", params={"since": time.time() - 3600}).json()
    assert len(recent) == 4
    camera = authed.get("/api/alerts", params={"device": CAMERA, "kind": "signature"}).json()
    assert len(camera) == 3
    detail = authed.get(f"/api/alerts/{camera[0]['id']}").json()
    assert detail["flow"]["bytes_toserver"] == 1200 and detail["metadata"]["cve"] == ["CVE_2021_36260"]
    assert detail["app"]["http"]["url"] == "/SDK/webLanguage"      # what the exploit sent
    told = detail["explanation"]                                   # and for the owner
    assert told["summary"].endswith("was sent traffic matching \"ET EXPLOIT Hikvision IP Camera "
                                    "RCE Attempt (CVE-2021-36260)\" from 203.0.113.66.")
    assert "It targets CVE-2021-36260, a known flaw." in told["points"]
    assert told["points"][1].endswith("so it never reached " + detail["device_name"] + ".")
    anomaly = authed.get("/api/anomalies/1").json()
    assert anomaly["explanation"].startswith("Garden camera uploaded 18 MB")
    response = authed.post("/api/mutes", json={"sid": detail["sid"], "mac": CAMERA,
                                               "expires_minutes": 60})
    assert response.status_code == 200
    after = authed.get("/api/alerts", params={"device": CAMERA, "kind": "signature"}).json()
    assert detail["id"] not in [i["id"] for i in after]
    shown = authed.get("/api/alerts", params={"device": CAMERA, "include_muted": True}).json()
    assert any(i["id"] == detail["id"] and i["muted"] for i in shown)
    assert authed.post("/api/mutes", json={"sid": 1, "kind": "scan", "expires_minutes": 5}).status_code == 422
    assert authed.post(f"/api/alerts/{detail['id']}/acknowledge").status_code == 200
    assert authed.get(f"/api/alerts/{detail['id']}").json()["acknowledged"] is True


def test_rules_page_shows_what_the_engine_refused(authed, store_path):
    assert authed.get("/api/rules").json()["engine"] is None      # no inline service yet
    report = {"loaded": 24801, "refused": 2, "syntax_errors": 0, "time": time.time(),
              "by_reason": {"unsupported-protocol: dcerpc": 1, "unsupported-keyword: asn1": 1},
              "rules": [{"file": "emerging-exploit.rules", "line": 17, "sid": 2100001,
                         "reason": "unsupported-keyword: asn1"}]}
    (store_path.parent / "rules-report.json").write_text(json.dumps(report))
    assert authed.get("/api/rules").json()["engine"] == report
    page = authed.get("/rules").text
    assert "24801 rules loaded, 2 refused" in page
    assert "unsupported-protocol: dcerpc" in page and "emerging-exploit.rules" in page


def test_rules_summary_and_toggles(authed, store):
    summary = authed.get("/api/rules").json()
    assert (summary["total"], summary["active"], summary["patches"]) == (4, 3, 2)
    assert summary["version"] == "2024.04.19-1" and summary["feed"]["state"] == "ok"
    assert authed.post("/api/rules/toggle", json={"cve": "cve-2021-36260", "enabled": False}).json()[
        "detail"]["sids"] == [9100001]
    assert store.get_setting("rules.disabled_sids") == [9100001]
    assert authed.post("/api/rules/toggle", json={"category": "bad-unknown", "enabled": False}).status_code == 200
    assert authed.get("/api/rules").json()["active"] == 1
    assert authed.post("/api/rules/toggle", json={"cve": "CVE-1999-0001", "enabled": False}).status_code == 404
    assert authed.post("/api/rules/toggle", json={"sid": 5, "cve": "x", "enabled": False}).status_code == 422


def test_settings_and_users(authed, store):
    assert authed.put("/api/settings", json={"failure_policy": "fail-closed", "learning_days": 3}).status_code == 200
    assert authed.get("/api/settings").json()["failure_policy"] == "fail-closed"
    assert authed.put("/api/settings", json={"failure_policy": "sometimes"}).status_code == 422
    assert authed.post("/api/users", json={"name": "bob", "password": "another long one"}).status_code == 200
    assert [u["name"] for u in authed.get("/api/users").json()] == ["admin", "bob"]
    assert authed.delete("/api/users/bob").status_code == 200
    assert authed.delete("/api/users/admin").status_code == 400
    audit = authed.get("/api/audit").json()
    assert [a["action"] for a in audit[:3]] == ["delete_user", "add_user", "setting"]


def test_live_feed_sends_new_alerts(authed, store):
    def insert_later():
        time.sleep(0.3)
        store.conn.execute(
            "INSERT INTO alerts (ts, action, sid, signature, severity, device_mac)"
            " VALUES (?, 'blocked', 42, 'LIVE TEST ALERT', 1, ?)", (time.time(), CAMERA))

    import threading
    threading.Thread(target=insert_later).start()
    events = []
    with authed.stream("GET", "/api/alerts/stream") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data: ") and "LIVE TEST ALERT" in line:
                events.append(json.loads(line[6:]))
                break
    assert events and events[0]["device_mac"] == CAMERA and events[0]["severity"] == 1


def test_pages_render(authed):
    for path, text in [("/", "Protected"), ("/devices", "hik-cam-garden"),
                       (f"/devices/{CAMERA}", "uploaded 18 MB"), ("/alerts", "unusual_volume"),
                       ("/alerts/1", "Flow"), ("/anomalies/1", "What changed"),
                       ("/rules", "CVE-2021-36260"), ("/settings", "fail-open")]:
        response = authed.get(path)
        assert response.status_code == 200 and text in response.text, path
        assert "<script>" not in response.text  # no inline script anywhere
    assert authed.get("/devices/02:00:00:00:00:99", headers={"Accept": "text/html"}).status_code == 404
    assert authed.get("/alerts?severity=1&kind=signature&range=24h&show=open").status_code == 200


def test_rules_installed_by_the_feed_are_listed_with_the_shipped_ones(authed, store_path, tmp_path):
    """A virtual patch that arrived in a signed feed bundle shows on the Rules
    page and can be toggled by its CVE, like one shipped in signatures/."""
    from ips import feed
    before = authed.get("/api/rules").json()
    rules = tmp_path / "tbk.rules"
    rules.write_text('drop http any any -> $HOME_NET any (msg:"TBK DVR command injection"; '
                     'http.uri; content:"/device.rsp"; content:"mdb=sos"; '
                     'metadata: cve CVE-2024-3721; classtype:attempted-admin; sid:9300001; rev:1;)\n')
    private, _public = feed.generate_key(tmp_path / "vendor.key")
    bundle = feed.build_bundle([rules], private, 3, tmp_path / "feed-3.tgz", feed_name="vendor")
    keys = feed.load_trusted_keys([tmp_path])
    feed.apply(bundle.read_bytes(), store_path.parent, keys)
    summary = authed.get("/api/rules").json()
    assert summary["total"] == before["total"] + 1
    assert "feed/tbk.rules" in summary["files"]
    patch = next(p for p in authed.get("/api/rules/patches").json() if p["sid"] == 9300001)
    assert patch["cves"] == ["CVE-2024-3721"] and patch["file"] == "feed/tbk.rules"
    done = authed.post("/api/rules/toggle", json={"cve": "CVE-2024-3721", "enabled": False})
    assert done.json()["detail"]["sids"] == [9300001]


def test_rules_page_says_when_a_feed_signing_key_is_revoked(authed, store):
    status = {"state": "ok", "version": 9, "updated": time.time(),
              "revoked_keys": {"0123456789abcdef": {"by": "fedcba9876543210", "version": 9}}}
    store.conn.execute("INSERT OR REPLACE INTO settings (key, value) VALUES ('feed.status', ?)",
                       (json.dumps(status),))
    assert "1 signing key(s) revoked" in authed.get("/rules").text


def test_shipped_patch_protects_its_device_before_it_fires(store_path, store):
    """With the shipped signatures/, a Huawei router lists the HG532 patch
    although no alert has fired for it, and the Hikvision camera does not."""
    from pathlib import Path

    from fastapi.testclient import TestClient
    from webui.main import create_app
    from webui_helpers import login, make_settings
    router = "e0:24:7f:00:00:06"
    now = time.time()
    store.conn.execute(
        "INSERT INTO devices (mac, ip, vendor, hostname, type_guess, stage, first_seen, last_seen,"
        " risk) VALUES (?,?,?,?,?,?,?,?,?)",
        (router, "192.0.2.26", "Huawei Technologies Co.,Ltd", "hg532", "router", "protected",
         now - 86400, now, 0.1))
    shipped = Path(__file__).resolve().parents[2] / "signatures"
    with TestClient(create_app(make_settings(store_path, signatures_dir=shipped))) as client:
        login(client)
        detail = client.get(f"/api/devices/{router}").json()
        camera = client.get(f"/api/devices/{CAMERA}").json()
    patches = {p["sid"]: p for p in detail["patches"]}
    assert 9100020 in patches and patches[9100020]["fired"] is False
    assert patches[9100020]["cves"] == ["CVE-2017-17215"]
    assert 9100020 not in {p["sid"] for p in camera["patches"]}


def test_live_feed_connection_closes_only_after_its_running_query(store_path):
    # A client that disconnects cancels the feed while a query may still run
    # in its worker thread; closing the SQLite connection under that query
    # crashed the process. The close must wait for the query.
    import threading

    from webui.routers.api.alerts import FeedConnection

    feed = FeedConnection(store_path)
    started, release = threading.Event(), threading.Event()
    results = []

    def slow_query(conn):
        started.set()
        release.wait(5)
        return conn.execute("SELECT count(*) FROM alerts").fetchone()[0]

    worker = threading.Thread(target=lambda: results.append(feed.run(slow_query)))
    worker.start()
    assert started.wait(5)
    feed.close_soon()
    time.sleep(0.2)
    release.set()                   # the query runs on an open connection...
    worker.join(5)
    assert results and results[0] >= 0
    deadline = time.time() + 5      # ...and the close follows it
    while time.time() < deadline:
        try:
            # through the feed's lock: touching the connection beside the
            # closing thread is the very crash this guards against
            feed.run(lambda conn: conn.execute("SELECT 1"))
        except Exception as exc:  # noqa: BLE001 - sqlite3.ProgrammingError once closed
            assert "closed" in str(exc)
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the feed connection was never closed")
