"""Signature alerts told to the owner (webui.explain), with the metadata of
the rules exactly as shipped."""
from __future__ import annotations

from pathlib import Path

import pytest

from ips.config import Config
from ips.detect import DetectEngine
from webui.explain import explain_alert

ROOT = Path(__file__).resolve().parents[2]
CAMERA, ROUTER = "44:19:b6:00:00:01", "02:00:00:00:01:01"


@pytest.fixture(scope="module")
def shipped():
    engine, _report = DetectEngine.load([str(ROOT / "signatures" / "virtual-patches.rules")], Config())
    rules = (engine.rules[i] or engine.rule(i) for i in range(len(engine.rules)))
    return {rule.sid: rule for rule in rules}


def _item(rule=None, *, action="blocked", by_device=False, proto="TCP", **overrides):
    item = {"device_name": "garden camera", "device_mac": CAMERA,
            "src_mac": CAMERA if by_device else ROUTER,
            "src_ip": "192.0.2.21" if by_device else "203.0.113.66",
            "dest_ip": "198.51.100.7" if by_device else "192.0.2.21",
            "action": action, "proto": proto, "category": None,
            "sid": rule.sid if rule else 2000001, "title": rule.msg if rule else "ET TEST",
            "metadata": dict(rule.metadata) if rule else {}}
    item.update(overrides)
    return item


def test_a_blocked_exploit_of_an_unfixed_flaw_names_the_virtual_patch(shipped):
    told = explain_alert(_item(shipped[9100020]))        # Huawei HG532, CVE-2017-17215
    assert told["summary"] == ("garden camera was sent an exploit for a flaw that lets an attacker "
                               "run programs on it (remote code execution) from 203.0.113.66.")
    assert ("ReefGuard blocked it: the packet was dropped and everything after it on that "
            "connection, so it never reached garden camera.") in told["points"]
    assert ("It exploits CVE-2017-17215, a known flaw in Huawei HG532. Until the vendor ships a "
            "fix, this rule is what protects garden camera: a virtual patch.") in told["points"]
    assert told["advice"][0].startswith("Nothing to do now.")


def test_a_device_that_scans_is_told_as_the_device_acting(shipped):
    told = explain_alert(_item(shipped[9100030], by_device=True))
    assert told["summary"].startswith("garden camera tried to open telnet connections")
    assert told["summary"].endswith("(to 198.51.100.7).")
    assert "before it left your network" in told["points"][0]
    assert told["advice"][0].startswith("A device does this when it is infected or misused. "
                                        "Quarantine garden camera")


def test_a_loader_download_says_the_device_was_already_made_to_run_a_command(shipped):
    told = explain_alert(_item(shipped[9100120], src_ip="198.51.100.66"))
    assert told["summary"] == ("garden camera was sent a program (a Linux executable) of the kind "
                               "botnets install once they are in from 198.51.100.66.")
    assert "already made it run a command" in told["advice"][0]


def test_default_password_advice_is_about_the_password_and_the_router(shipped):
    told = explain_alert(_item(shipped[9100051]))
    assert "factory-default password" in told["summary"]
    assert told["advice"][0].startswith("If garden camera still has its factory password, change it.")


def test_an_alert_only_rule_without_attack_metadata_is_told_by_its_message():
    told = explain_alert(_item(action="allowed", proto="UDP", category="Potentially Bad Traffic",
                               title="ET INFO Observed DNS Query to .cloud TLD"))
    assert told["summary"] == ('garden camera was sent traffic matching "ET INFO Observed DNS '
                               'Query to .cloud TLD" from 203.0.113.66.')
    assert told["points"] == ["Rule category: Potentially Bad Traffic.",
                              "ReefGuard let it through: this rule only raises an alert, it does "
                              "not block."]
    assert "mute it for this device" in told["advice"][0]


def test_a_cve_in_another_ruleset_asks_for_the_vendor_update_not_a_patch():
    told = explain_alert(_item(title="ET EXPLOIT Hikvision IP Camera RCE Attempt (CVE-2021-36260)",
                               metadata={"cve": ["CVE_2021_36260"]}))
    assert "It targets CVE-2021-36260, a known flaw." in told["points"]
    assert not any("virtual patch" in point for point in told["points"])
    assert told["advice"] == ["Check whether garden camera's vendor has a firmware update for "
                              "CVE-2021-36260."]


def test_an_alert_without_a_known_device_still_reads():
    told = explain_alert(_item(device_name=None, device_mac=None, src_ip=None))
    assert told["summary"] == 'a device on your network was sent traffic matching "ET TEST".'


def test_heartbleed_is_told_as_memory_sent_back(shipped):
    told = explain_alert(_item(shipped[9100129], proto="TCP"))
    assert told["summary"] == ("garden camera was sent a request that makes it send back pieces "
                               "of its memory, where keys and passwords live (Heartbleed) from "
                               "203.0.113.66.")
    assert any(point.startswith("It exploits CVE-2014-0160, a known flaw in OpenSSL 1.0.1-1.0.1f.")
               for point in told["points"])
