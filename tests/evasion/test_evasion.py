"""Offline evasion suite: every case folder runs through `ips.verify.run_case`
(the replay pipeline) and must give exactly its expected alerts/anomalies."""
from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from ips.verify import run_case
from tests.evasion import make_cases

CASES = make_cases.CASES_DIR
CASE_DIRS = sorted(path.parent for path in CASES.glob("*/test.yaml"))
DOCUMENTATION = [ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")]


def test_every_generated_case_is_committed():
    assert {case.name for case in make_cases.build_cases()} == {path.name for path in CASE_DIRS}
    assert len(CASE_DIRS) >= 16


@pytest.mark.parametrize("case_dir", CASE_DIRS, ids=[path.name for path in CASE_DIRS])
def test_case_is_detected_offline(case_dir: Path, tmp_path):
    result = run_case(case_dir, CASES, tmp_path / "out")
    failures = [f"{check.description}: {check.detail}" for check in result.checks if check.ok is False]
    assert result.passed, (result.error, failures)


def test_generator_is_deterministic(tmp_path):
    case = next(c for c in make_cases.build_cases() if c.name == "ip-fragments-overlap-benign-first")
    first = [bytes(frame) for frame in make_cases.packets_for(case)]
    second = [bytes(frame) for frame in make_cases.packets_for(case)]
    assert first == second
    make_cases.write_cases(tmp_path)
    for folder in CASE_DIRS:
        assert (tmp_path / folder.name / "input.pcap").read_bytes() == (folder / "input.pcap").read_bytes()


def test_cases_use_documentation_addresses_only():
    from scapy.layers.inet import IP
    from scapy.utils import rdpcap
    for folder in CASE_DIRS:
        for frame in rdpcap(str(folder / "input.pcap")):
            for address in (frame[IP].src, frame[IP].dst):
                assert any(ipaddress.ip_address(address) in net for net in DOCUMENTATION), address
