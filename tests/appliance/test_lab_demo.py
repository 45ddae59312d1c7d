"""`make demo` end to end: `reefguard lab` builds the lab, shows benign
traffic passing and every attack blocked, then the virtual patch arriving by
signed feed (a forged bundle refused, the genuine one applied live), and
tears everything down. Real namespaces, bridge and NFQUEUE; ~35 s."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.inline_support import why_not_inline

pytestmark = pytest.mark.inline

if why_not_inline("scapy", "ips.worker"):
    pytest.skip(why_not_inline("scapy", "ips.worker"), allow_module_level=True)

ROOT = Path(__file__).resolve().parents[2]


def test_lab_demo_blocks_every_attack_and_takes_the_feed_update_live(tmp_path):
    done = subprocess.run([sys.executable, "-m", "ips.cli", "lab", "--duration", "1",
                           "--data-dir", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    out = done.stdout
    assert done.returncode == 0, out[-3000:] + done.stderr[-2000:]
    assert out.count(" passed\n") == 5 and "FAILED" not in out and "GOT THROUGH" not in out
    assert re.search(r"camera fetches a loader's executable \(ELF\) from the C2\s+blocked", out)
    assert "no rule yet       reached the camera" in out          # before the patch
    assert re.search(r"unknown key\s+refused \(bad signature", out)
    assert "blocked by sid 9100040" in out and "[CVE-2024-3721]" in out
    tag = re.search(r"lab (\w+) torn down", out).group(1)
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert f"rg{tag}-" not in namespaces
