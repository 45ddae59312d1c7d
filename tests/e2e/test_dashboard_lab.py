"""The dashboard against the real lab: Chromium drives the web UI while the
box sits inline in the namespace lab.

What a person would do and see: log in, find the lab's camera, plug and
thermostat on the devices page and the attack on the alerts page, quarantine
the camera and watch its traffic stop in the lab (the plug's keeps flowing),
lift the quarantine and watch it work again, then mute the attack's rule for
the camera. Nothing is faked: the devices and alerts come from the box's own
collector, and the quarantine reaches the kernel through the store's `blocks`
table that the box reconciles into ipsets every second.

Everything runs in namespaces the lab creates (documentation addresses only);
the dashboard listens on 127.0.0.1 in this process. Screenshots land in
docs/screenshots/lab-*.png.
"""
from __future__ import annotations

import os
import tempfile
import socket
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from tests.inline_support import running_lab, why_not_inline

pytestmark = [pytest.mark.inline, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless=new", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
# Like tests/webui/test_browser.py: the suite leaves the checkout clean;
# REEFGUARD_SCREENSHOTS=docs/screenshots refreshes the committed pictures.
SCREENSHOTS = Path(os.environ.get("REEFGUARD_SCREENSHOTS")
                   or Path(tempfile.gettempdir()) / "reefguard-screenshots")
RULES = [str(ROOT / "signatures" / "virtual-patches.rules")]
PASSWORD = "lab dashboard passphrase"

CAMERA_MAC, CAMERA_IP = "44:47:cc:00:00:10", "192.0.2.10"
PLUG_MAC = "b0:be:76:00:00:20"
THERMOSTAT_MAC = "18:b4:30:00:00:30"
LAB_MACS = (CAMERA_MAC, PLUG_MAC, THERMOSTAT_MAC)
INJECTION_SID = 9100010     # camera CGI command injection (virtual patch)
TELNET_BRUTE_SID = 9100001  # Mirai default-credential login on the plug

# How long the box may take to turn a store change into kernel state: it
# reconciles every second, and a refused upload takes up to its 3 s timeout.
ENFORCE_SECONDS = 10.0
# The inventory writes devices to the store in batches, and the thermostat
# only shows up when its MQTT flow ends (the closed-flow timeout is 10 s).
DEVICES_SECONDS = 30.0


def _why_not() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"Chromium not installed at {CHROMIUM} (apt-get install -y chromium)"
    return why_not_inline("playwright.sync_api", "uvicorn", "ips.worker")


if _why_not():
    pytest.skip(_why_not(), allow_module_level=True)

import uvicorn  # noqa: E402
from playwright.sync_api import expect, sync_playwright  # noqa: E402

from appliance.lab import GATEWAY, read_alerts  # noqa: E402
from ips.store import Store  # noqa: E402
from webui.main import create_app, ensure_admin  # noqa: E402
from webui.schema import ensure_schema  # noqa: E402
from webui.settings import WebSettings  # noqa: E402


# ----------------------------------------------------------------------
# helpers

def wait_for(predicate, timeout: float, interval: float = 0.25):
    """Poll until `predicate()` is truthy; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def store_rows(db: Path, sql: str, params: tuple = ()) -> list[tuple]:
    conn = sqlite3.connect(db, timeout=10)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def camera_upload_ok(lab) -> bool:
    return bool(lab.act("cam", "upload").get("ok"))


def plug_ntp_ok(lab) -> bool:
    return bool(lab.act("plug", "ntp").get("ok"))


# ----------------------------------------------------------------------
# fixtures

@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """The lab with the box inline; devices talked and were attacked."""
    with running_lab(tmp_path_factory.mktemp("lab-box"), RULES, workers=1,
                     policy="fail-open") as topology:
        topology.db = topology.data_dir / "reefguard.db"
        topology.timings = {}
        # Benign chatter first, so the inventory knows the devices before
        # the attacks (an alert is attributed to the device that holds the
        # attacked address).
        for role, action, args in (("cam", "upload", ()), ("thermo", "mqtt", ()),
                                   ("plug", "dns", (GATEWAY,)), ("plug", "ntp", ()),
                                   ("inet", "http", (CAMERA_IP, "80", "GET", "/index.html"))):
            assert topology.act(role, action, *args)["ok"], f"benign {action} from {role} failed"
        started = time.monotonic()
        seen = wait_for(lambda: set(LAB_MACS) <= {row[0] for row in store_rows(
            topology.db, "SELECT mac FROM devices")}, DEVICES_SECONDS)
        topology.timings["devices_in_store"] = time.monotonic() - started
        in_store = {row[0] for row in store_rows(topology.db, "SELECT mac FROM devices")}
        assert seen, (
            f"{sorted(set(LAB_MACS) - in_store)} not in the store's `devices` table after "
            f"{DEVICES_SECONDS:.0f} s (it holds {sorted(in_store)}): the box's collector must "
            "give the inventory its Store and sync it every few seconds "
            "(ips.service.collector_main)")
        assert not topology.act("inet", "inject", CAMERA_IP)["ok"]
        assert topology.act("inet", "mirai", "192.0.2.20")["shell"] is False
        assert wait_for(lambda: {INJECTION_SID, TELNET_BRUTE_SID} <= {
            row[0] for row in store_rows(topology.db, "SELECT sid FROM alerts")}, 10)
        yield topology


@pytest.fixture(scope="module")
def dashboard(lab):
    """The web app in this process on 127.0.0.1, on the box's store, with a
    known admin password (first-run would generate and print one)."""
    store = Store(lab.db)
    try:
        ensure_schema(store.conn)
        ensure_admin(store, PASSWORD)
    finally:
        store.close()
    settings = WebSettings(environment="development", store_path=lab.db, cookie_secure=False,
                           secret_key="lab-e2e-secret-key-0123456789",
                           sse_max_seconds=5.0, sse_poll_seconds=0.2)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True, name="lab-dashboard")
    thread.start()
    try:
        assert wait_for(lambda: server.started, 10, 0.05), "dashboard did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def page(dashboard):
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1366, "height": 900},
                                          base_url=dashboard)
            page = context.new_page()
            page.console_errors = []
            page.on("console",
                    lambda message: message.type == "error" and page.console_errors.append(message.text))
            page.on("dialog", lambda dialog: dialog.accept())   # the confirm() of each action
            page.set_default_timeout(10_000)
            yield page
        finally:
            browser.close()


# ----------------------------------------------------------------------
# the test

def test_dashboard_drives_the_real_lab(lab, page):
    # log in
    page.goto("/devices")
    expect(page).to_have_url("/login?next=/devices")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url("/devices")

    # the lab's devices, found by the box itself
    table = page.locator("#devices")
    for mac in LAB_MACS:
        expect(table.locator(f'tr[data-mac="{mac}"]')).to_be_visible()
    expect(table.locator(f'tr[data-mac="{CAMERA_MAC}"]')).to_contain_text(CAMERA_IP)
    shot(page, "lab-devices")

    # the attacks, blocked and alerted
    page.goto("/alerts")
    timeline = page.locator("#timeline-body")
    expect(timeline).to_contain_text("camera CGI command injection")
    injection_row = timeline.locator("tr", has_text="camera CGI command injection").first
    expect(injection_row.locator(f'a[href="/devices/{CAMERA_MAC}"]')
           ).to_be_visible()   # attributed to the camera, not "unknown"
    expect(timeline).to_contain_text("Mirai default credential telnet login")
    shot(page, "lab-alerts")

    # quarantine the camera: its traffic stops in the lab, the plug's does not
    assert camera_upload_ok(lab)
    page.goto(f"/devices/{CAMERA_MAC}")
    page.click("#quarantine")
    expect(page.locator("#lift-quarantine")).to_be_visible()
    expect(page.locator(".device-head .status")).to_have_text("quarantined")
    clicked = time.monotonic()
    assert wait_for(lambda: not camera_upload_ok(lab), ENFORCE_SECONDS), \
        "the camera still reaches the cloud after the quarantine"
    lab.timings["quarantine_effective"] = time.monotonic() - clicked
    assert not lab.act("inet", "http", CAMERA_IP, "80", "GET", "/index.html")["ok"]
    assert plug_ntp_ok(lab) and lab.act("thermo", "mqtt")["ok"]
    assert store_rows(lab.db, "SELECT kind, device_ip, created_by FROM blocks"
                      " WHERE mac=? AND active=1", (CAMERA_MAC,)) == [
        ("quarantine", CAMERA_IP, "admin")]
    page.reload()
    shot(page, "lab-device-quarantined")

    # lift it: the camera works again
    page.click("#lift-quarantine")
    expect(page.locator("#quarantine")).to_be_visible()
    clicked = time.monotonic()
    assert wait_for(lambda: camera_upload_ok(lab), ENFORCE_SECONDS), \
        "the camera stays cut off after the quarantine was lifted"
    lab.timings["lift_effective"] = time.monotonic() - clicked

    # mute the injection rule for the camera: gone from the default list
    page.goto("/alerts")
    page.locator("#timeline-body a", has_text="camera CGI command injection").first.click()
    expect(page.locator("#mute")).to_contain_text("for this device")
    page.click("#mute button")
    expect(page.locator(".facts")).to_contain_text("muted")
    assert store_rows(lab.db, "SELECT sid, mac, created_by FROM mutes") == [
        (INJECTION_SID, CAMERA_MAC, "admin")]
    page.goto("/alerts")
    expect(page.locator("#timeline-body")).to_contain_text("Mirai default credential telnet login")
    expect(page.locator("#timeline-body")).not_to_contain_text("camera CGI command injection")
    expect(page.locator("#mutes")).to_contain_text(f"rule sid {INJECTION_SID}")
    expect(page.locator("#mutes")).to_contain_text(CAMERA_MAC)
    page.goto("/alerts?show=all")   # still there when asked for, marked muted
    expect(page.locator("#timeline-body tr", has_text="camera CGI command injection").first
           ).to_contain_text("muted")

    # the box blocked every attack it alerted on, and no page had a script error
    assert all(a["alert"]["action"] == "blocked" for a in read_alerts(lab.data_dir)
               if a["alert"]["signature_id"] in (INJECTION_SID, TELNET_BRUTE_SID))
    assert page.console_errors == []
    print(f"timings: {lab.timings}")
