"""The bundled demo capture (`make replay-demo`) tells the story it should."""
import json
from pathlib import Path

from ips.cli import main as reefguard

ROOT = Path(__file__).resolve().parent.parent


def test_demo_capture_is_blocked_and_explained(tmp_path, capsys):
    reefguard(["replay", "-r", str(ROOT / "pcaps" / "demo-camera-attack.pcap"),
               "-S", str(ROOT / "signatures"), "-l", str(tmp_path), "--cache-dir", "none"])
    out = capsys.readouterr().out
    records = [json.loads(line) for line in (tmp_path / "eve.json").read_text().splitlines()]
    blocked = {r["alert"]["signature_id"] for r in records
               if r["event_type"] == "alert" and r["alert"]["action"] == "blocked"}
    assert {9100001, 9100002, 9100010, 9100020} <= blocked        # Mirai, CGI injection, CVE
    logins = [r["telnet"] for r in records if r["event_type"] == "telnet"]
    assert {"login": "admin", "password": "admin", "result": "failure"} in logins
    kinds = {r["anomaly"]["kind"] for r in records if r["event_type"] == "device_anomaly"}
    assert "known_bad_destination" in kinds                    # the camera calling its C2
    assert "Hikvision" in out and "IP camera" in out            # the inventory in the summary
