"""Live rule reload in the lab: the new set takes effect without dropping
traffic, and a broken set is refused while the running rules stay.

Real kernel, real NFQUEUE, real pipeline, documentation addresses only."""
import subprocess
import sys
from pathlib import Path

import pytest

from tests.appliance.test_inline import _why_not
from tests.inline_support import Chatter, running_lab
from tests.inline_support import box_status as _status, wait_for as _wait

pytestmark = pytest.mark.inline

if _why_not():
    pytest.skip(_why_not(), allow_module_level=True)

from appliance.lab import read_alerts  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
PATCHES = (ROOT / "signatures" / "virtual-patches.rules").read_text()
NEW_RULE = ('drop http any any -> any any (msg:"REEFGUARD TEST reload blocks snapshot uploads"; '
            'flow:to_server,established; http.uri; content:"/upload/snapshot"; '
            'classtype:policy-violation; sid:9199001; rev:1;)\n')


def _reload(data_dir: Path) -> None:
    subprocess.run([sys.executable, "-m", "ips.cli", "reload", "--data-dir", str(data_dir)],
                   check=True, cwd=ROOT, timeout=30)


def test_reload_applies_new_rules_without_dropping_traffic_and_refuses_a_broken_set(tmp_path):
    rules = tmp_path / "box.rules"
    rules.write_text(PATCHES)
    data_dir = tmp_path / "box"
    data_dir.mkdir()
    with running_lab(data_dir, [str(rules)], workers=1, policy="fail-open") as lab:
        assert lab.act("cam", "upload")["ok"]

        # Traffic that must keep flowing while the new set compiles and swaps.
        with Chatter(lab) as chatter:
            rules.write_text(PATCHES + NEW_RULE)
            _reload(data_dir)
            assert _wait(lambda: _status(data_dir)["totals"]["reloads"] >= 1), "no reload"
        assert chatter.attempts >= 3 and chatter.failures == [], vars(chatter)

        # The new rule is live: the upload is now dropped and alerted.
        assert not lab.act("cam", "upload")["ok"]
        assert _wait(lambda: any(a["alert"]["signature_id"] == 9199001
                                 for a in read_alerts(data_dir)), 10)

        # A garbled file is refused: the running rules (with the new one) stay.
        rules.write_text("this is not a rule\nneither is this (\n")
        _reload(data_dir)
        assert _wait(lambda: _status(data_dir)["totals"]["reload_failures"] >= 1), "not refused"
        assert not lab.act("cam", "upload")["ok"]
        assert lab.act("inet", "inject", "192.0.2.10")["ok"] is False
        assert lab.act("thermo", "mqtt")["ok"]
