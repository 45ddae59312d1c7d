"""Shared test settings. Slow soak runs need REEFGUARD_SLOW=1."""
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT))


def _no_arp(_l2, l3):
    raise AssertionError(f"a test frame to {l3.dst} names no MAC: scapy would resolve one "
                         "by ARP or neighbour discovery on the host's own interface")


# Test frames are built, never sent, from the test process: one that leaves
# Ether's addresses to scapy would send a request out of this machine.
from scapy.layers.inet import IP  # noqa: E402
from scapy.layers.inet6 import IPv6  # noqa: E402
from scapy.layers.l2 import Ether  # noqa: E402
from scapy.config import conf as _scapy_conf  # noqa: E402

_scapy_conf.neighbor.register_l3(Ether, IP, _no_arp)
_scapy_conf.neighbor.register_l3(Ether, IPv6, _no_arp)


def pytest_collection_modifyitems(config, items):
    if os.environ.get("REEFGUARD_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow; set REEFGUARD_SLOW=1 (make test-all)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA
