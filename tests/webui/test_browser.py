"""End to end in Chromium (Playwright): log in, look at every page, act.

Screenshots of each page land in $REEFGUARD_SCREENSHOTS (default: a temporary folder). Skipped with a reason
when Playwright or Chromium is missing.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import pytest

playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
import uvicorn  # noqa: E402

from webui.demo import CAMERA, PLUG  # noqa: E402
from webui_helpers import PASSWORD  # noqa: E402

pytestmark = pytest.mark.browser
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# The suite must not dirty the checkout: screenshots go to a temporary
# folder unless REEFGUARD_SCREENSHOTS names one (docs/screenshots/ is
# refreshed with REEFGUARD_SCREENSHOTS=docs/screenshots).
SCREENSHOTS = Path(os.environ.get("REEFGUARD_SCREENSHOTS")
                   or Path(tempfile.gettempdir()) / "reefguard-screenshots")


@pytest.fixture
def live_url(app):
    if not Path(CHROMIUM).exists():
        pytest.skip("Chromium not installed (apt-get install -y chromium)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def page(live_url):
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM,
                                             args=["--no-sandbox", "--disable-gpu"])
        context = browser.new_context(viewport={"width": 1366, "height": 900}, base_url=live_url)
        page = context.new_page()
        page.console_errors = []
        page.on("console", lambda m: m.type == "error" and page.console_errors.append(m.text))
        page.on("dialog", lambda dialog: dialog.accept())
        page.set_default_timeout(10_000)
        yield page
        browser.close()


def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def _install_feed(data_dir: Path, work: Path) -> None:
    """A signed vendor feed with one virtual patch, installed as the box would."""
    from ips import feed
    rules = work / "tbk-dvr.rules"
    rules.write_text('drop http any any -> $HOME_NET any (msg:"ET EXPLOIT TBK DVR command '
                     'injection (CVE-2024-3721)"; http.uri; content:"/device.rsp"; '
                     'content:"cmd=list"; reference:cve,2024-3721; '
                     'metadata: cve CVE-2024-3721, device_type camera; '
                     'classtype:attempted-admin; sid:9300001; rev:1;)\n')
    private, _public = feed.generate_key(work / "vendor.key")
    bundle = feed.build_bundle([rules], private, 2, work / "feed-2.tgz", feed_name="vendor")
    feed.apply(bundle.read_bytes(), data_dir, feed.load_trusted_keys([work]))


def test_dashboard_end_to_end(page, store, store_path, tmp_path_factory):
    expect = playwright_api.expect
    page.goto("/devices")
    expect(page).to_have_url("/login?next=/devices")
    shot(page, "login")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url("/devices")
    rows = page.locator("#devices tbody tr")
    expect(rows).to_have_count(5)
    for name in ("hik-cam-garden", "HS110", "nest-hallway"):
        expect(page.locator("#devices")).to_contain_text(name)
    shot(page, "devices")

    page.goto("/")
    expect(page.locator("#protection-state h1")).to_have_text("Protected")
    shot(page, "overview")

    # quarantine the camera: the blocks row and the audit row appear
    page.goto(f"/devices/{CAMERA}")
    expect(page.locator(".explanation").first).to_contain_text("uploaded 18 MB")
    shot(page, "device")
    page.click("#quarantine")
    expect(page.locator("#lift-quarantine")).to_be_visible()
    expect(page.locator(".device-head .status")).to_have_text("quarantined")
    block = store.conn.execute("SELECT kind, active, created_by FROM blocks WHERE mac=?",
                               (CAMERA,)).fetchone()
    assert tuple(block) == ("quarantine", 1, "admin")
    assert store.conn.execute("SELECT COUNT(*) FROM audit WHERE action='quarantine' AND target=?",
                              (CAMERA,)).fetchone()[0] == 1
    shot(page, "device-quarantined")
    page.click("#lift-quarantine")
    expect(page.locator("#quarantine")).to_be_visible()
    assert store.conn.execute("SELECT active FROM blocks WHERE mac=?", (CAMERA,)).fetchone()[0] == 0

    # block a destination from the form
    page.goto(f"/devices/{PLUG}")
    page.fill("#block-form input[name=destination]", "203.0.113.66")
    page.click("#block-form button")
    expect(page.locator("#blocks")).to_contain_text("203.0.113.66")

    # alerts: timeline, live update by server-sent events, detail, mute
    page.goto("/alerts")
    expect(page.locator("#timeline-body tr")).to_have_count(8)
    expect(page.locator("#live-status")).to_have_text("live")
    store.conn.execute(
        "INSERT INTO alerts (ts, action, sid, signature, severity, device_mac)"
        " VALUES (?, 'blocked', 2023452, 'ET TELNET live brute force', 1, ?)", (time.time(), CAMERA))
    expect(page.locator("#timeline-body tr").first).to_contain_text("ET TELNET live brute force")
    expect(page.locator("#timeline-body tr").first.locator(".tag-blocked")).to_have_text("blocked")
    shot(page, "alerts")
    page.locator("#timeline-body a", has_text="ET EXPLOIT Hikvision").first.click()
    expect(page.locator("h1")).to_contain_text("Hikvision")
    expect(page.locator("#app-record")).to_contain_text("PUT")
    expect(page.locator("#app-record")).to_contain_text("/SDK/webLanguage")
    expect(page.locator("#explanation")).to_contain_text("so it never reached hik-cam-garden")
    expect(page.locator("#explanation")).to_contain_text("It targets CVE-2021-36260")
    shot(page, "alert")
    page.select_option("#mute select[name=expires_minutes]", "10080")
    page.click("#mute button")
    expect(page.locator(".facts")).to_contain_text("muted")
    mute = store.conn.execute("SELECT sid, mac, expires - created FROM mutes").fetchone()
    assert (mute[0], mute[1]) == (2031545, CAMERA) and abs(mute[2] - 7 * 86400) < 5
    page.click("#acknowledge")
    expect(page.locator(".facts")).to_contain_text("acknowledged")

    page.goto("/anomalies/1")
    expect(page.locator(".explanation")).to_contain_text("uploaded 18 MB")
    shot(page, "anomaly")
    # A virtual patch that came with the signed feed is listed like a shipped one.
    _install_feed(store_path.parent, tmp_path_factory.mktemp("vendor"))
    # What the inline service reports of the engine it loaded (ET Open's figures).
    (store_path.parent / "rules-report.json").write_text(json.dumps({
        "loaded": 24801, "refused": 26, "syntax_errors": 1, "time": time.time(),
        "by_reason": {"unsupported-keyword: file.data": 17, "unsupported-keyword: asn1": 4,
                      "unsupported-protocol: dcerpc": 1},
        "rules": [{"file": "emerging-exploit.rules", "line": 2213, "sid": 2041733,
                   "reason": "unsupported-keyword: file.data"}]}))
    page.goto("/rules")
    expect(page.locator("#patches")).to_contain_text("CVE-2021-36260")
    expect(page.locator("#patches")).to_contain_text("CVE-2024-3721")
    expect(page.locator("#engine-report")).to_contain_text("24801 rules loaded, 26 refused")
    page.click("#engine-report summary")
    expect(page.locator("#refused-rules")).to_contain_text("emerging-exploit.rules")
    shot(page, "rules")
    page.goto("/settings")
    page.select_option("select[name=failure_policy]", "fail-closed")
    with page.expect_response(lambda r: r.url.endswith("/api/settings")) as answer:
        page.click("#settings-form button")
    assert answer.value.status == 200
    page.wait_for_load_state()
    expect(page.locator("select[name=failure_policy]")).to_have_value("fail-closed")
    assert store.get_setting("engine.failure_policy") == "fail-closed"
    shot(page, "settings")

    # no CSP violation or script error on any page
    assert page.console_errors == []
