"""Inline evasion: the offline evasion payloads, crafted segment by segment
from the lab's attacker namespace toward the camera behind the box. The box
must drop the exploit (the server never receives a complete request, so it
never answers) and log the alert as blocked.

Everything runs in namespaces this module creates (documentation addresses
only) and is removed at the end, also on failure. Budget: < 90 s."""
from __future__ import annotations

import json
import time

import pytest

from tests.inline_support import why_not_inline

pytestmark = pytest.mark.inline


def _why_not() -> str | None:
    return why_not_inline("scapy", "ips.worker")


if _why_not():
    pytest.skip(_why_not(), allow_module_level=True)

from appliance.lab import ATTACKER, PYTHON, LabTopology, read_alerts  # noqa: E402
from tests.evasion.make_cases import NETGEAR_RULES, PORT_RULES  # noqa: E402

CAMERA = "192.0.2.10"
# (case, port the lab camera listens on, sids that may fire)
INLINE_CASES = [
    ("uri-split-24", 80, {1000001, 1000002}),
    ("out-of-order", 80, {1000001, 1000002}),
    ("overlap-attack-first", 80, {1000001, 1000002}),
    ("port-37215", 37215, {3001}),
    ("port-52869", 52869, {3002}),
]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    rules = tmp_path_factory.mktemp("rules") / "evasion.rules"
    # the offline rules, as drop rules: inline the box must block them
    rules.write_text((NETGEAR_RULES + PORT_RULES).replace("alert ", "drop "))
    topology = LabTopology()
    try:
        topology.create()
        topology.start_services()
        data_dir = tmp_path_factory.mktemp("box")
        topology.box = topology.start_box(str(data_dir), [str(rules)], workers=1,
                                          policy="fail-open")
        topology.data_dir = data_dir
        yield topology
    finally:
        topology.destroy()


def _alerts(data_dir, sids, timeout=4.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = [a for a in read_alerts(data_dir) if a["alert"]["signature_id"] in sids]
        if found:
            return found
        time.sleep(0.2)
    return []


@pytest.mark.parametrize("case,port,sids", INLINE_CASES, ids=[c[0] for c in INLINE_CASES])
def test_crafted_evasion_is_blocked_inline(lab, case, port, sids):
    # a source port of its own per case: a blocked flow stays blocked
    source_port = 47000 + [c[0] for c in INLINE_CASES].index(case)
    done = lab.run("inet", [PYTHON, "-m", "tests.evasion.inline_sender", case, ATTACKER,
                            str(source_port), CAMERA, str(port)], timeout=30)
    result = json.loads(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else {}
    assert result.get("handshake"), done.stderr[-800:]
    assert result["answered"] is False           # the complete exploit never reached the server
    alerts = _alerts(lab.data_dir, sids)
    assert alerts and all(a["alert"]["action"] == "blocked" for a in alerts)


def test_benign_first_overlap_reaches_server_normalised(lab):
    # Control for the crafted path: the same sender, a request the box lets
    # through. The attack bytes overlap benign ones already inspected; inline
    # the box rewrites them to the benign copy, so the server answers a
    # benign request and no exploit alert exists.
    done = lab.run("inet", [PYTHON, "-m", "tests.evasion.inline_sender", "overlap-benign-first",
                            ATTACKER, "47100", CAMERA, "80"], timeout=30)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"handshake": True, "answered": True}
    assert not [a for a in read_alerts(lab.data_dir)
                if a["alert"]["signature_id"] in (1000001, 1000002) and a["src_port"] == 47100]
