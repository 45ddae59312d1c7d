"""The pure-ACK fast path in the lab: on when no loaded rule can match a pure
ACK, off (and the rule sees its packets) when one can, switched by a live
reload. Real kernel, NFQUEUE and iptables u32; documentation addresses only.
The evasion side (data in ACK-only segments of pure-ACK size is still
inspected) is tests/evasion/test_inline_evasion.py::...[ack-only-12]."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.inline_support import running_lab, why_not_inline
from tests.inline_support import box_status as _status, wait_for as _wait

pytestmark = pytest.mark.inline

if why_not_inline("ips.worker"):
    pytest.skip(why_not_inline("ips.worker"), allow_module_level=True)

from appliance.lab import read_alerts  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
PATCHES = (ROOT / "signatures" / "virtual-patches.rules").read_text()
ACK_WATCHER = ('alert tcp any any -> any any (msg:"REEFGUARD TEST pure ACK seen"; flags:A; '
               'dsize:0; flow:established; threshold: type limit, track by_src, count 1, '
               'seconds 60; sid:9199301; rev:1;)\n')


def _fastpath_accepts(lab, what: str = "tcp") -> int:
    out = lab.run("box", ["iptables", "-L", "REEFGUARD-FASTPATH", "-nvx"]).stdout
    number = {"tcp": "6", "icmp": "1"}[what]
    return sum(int(line.split()[0]) for line in out.splitlines()[2:]
               if line.split() and line.split()[3] in (what, number))


def test_a_rule_that_matches_pure_acks_keeps_them_in_userspace_until_reloaded_away(tmp_path):
    rules = tmp_path / "box.rules"
    rules.write_text(PATCHES + ACK_WATCHER)
    data_dir = tmp_path / "box"
    data_dir.mkdir()
    with running_lab(data_dir, [str(rules)], workers=1, policy="fail-open") as lab:
        assert _wait(lambda: _status(data_dir)["fastpath"]["pure_ack"].startswith("off: 1 rule(s)")), \
            _status(data_dir)["fastpath"]
        assert "9199301" in _status(data_dir)["fastpath"]["pure_ack"]
        assert lab.act("cam", "upload")["ok"]
        assert _wait(lambda: any(a["alert"]["signature_id"] == 9199301
                                 for a in read_alerts(data_dir)), 10)
        assert _fastpath_accepts(lab) == 0

        # Without the watcher, a reload turns the fast path on.
        rules.write_text(PATCHES)
        subprocess.run(["kill", "-HUP", str(_status(data_dir)["pid"])], check=True)
        assert _wait(lambda: _status(data_dir)["fastpath"]["pure_ack"] == "on"), \
            _status(data_dir)["fastpath"]
        assert _wait(lambda: _status(data_dir)["totals"]["reloads"] >= 1)
        assert lab.act("cam", "upload")["ok"] and lab.act("thermo", "mqtt")["ok"]
        assert _fastpath_accepts(lab) > 0


ZEPHYR_LIKE = ('drop icmp any any -> any any (msg:"REEFGUARD TEST oversized ping exploit"; '
               'icode:0; dsize:>100; content:"EVILPING"; sid:9199302; rev:1;)\n')


def test_pings_too_small_for_any_rule_stay_in_the_kernel_bigger_ones_are_inspected(tmp_path):
    rules = tmp_path / "box.rules"
    rules.write_text(PATCHES + ZEPHYR_LIKE)
    data_dir = tmp_path / "box"
    data_dir.mkdir()
    with running_lab(data_dir, [str(rules)], workers=1, policy="fail-open") as lab:
        assert _wait(lambda: _status(data_dir)["fastpath"]["icmp_echo"].startswith(
            "on: echo payloads up to 100 bytes")), _status(data_dir)["fastpath"]
        # Same echo flow (one id): small pings stay in the kernel once the
        # flow is established, the oversized exploit goes to a worker.
        sender = (
            "from scapy.all import IP, ICMP, sr1\n"
            "import sys\n"
            "answers = []\n"
            "for seq, data in enumerate([b'x' * 56] * 5 + [b'EVILPING' + b'x' * 150]):\n"
            "    reply = sr1(IP(dst='192.0.2.10') / ICMP(id=4242, seq=seq) / data, timeout=2, verbose=0)\n"
            "    answers.append(reply is not None)\n"
            "print(answers)\n")
        done = lab.run("inet", [sys.executable, "-c", sender], timeout=60)
        assert done.stdout.strip() == "[True, True, True, True, True, False]", done.stderr[-800:]
        assert _fastpath_accepts(lab, "icmp") >= 6     # 4 requests + their replies, at least
        assert _wait(lambda: any(a["alert"]["signature_id"] == 9199302
                                 for a in read_alerts(data_dir)), 10)
