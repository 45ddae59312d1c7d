"""Per-flow state is freed by reference counting, not by the cyclic GC.

The packet loops pace CPython's full collections (ips.worker.PacedCollector)
because a flow table's churn made the default policy walk every live flow
about once a second for nothing. That is only sound while a finished flow
leaves no reference cycle behind: this test replays real traffic through
every parser with the collector off and asserts that nothing of the engine's
is left for the collector to find.
"""
import gc
from collections import Counter
from pathlib import Path

import pytest

from ips.capture import PcapReader
from ips.cli import load_engine
from ips.config import Config
from ips.worker import PacedCollector, Worker

ROOT = Path(__file__).resolve().parents[2]


def _pcaps(shared: Path | None) -> list[Path]:
    paths = sorted((ROOT / "tests" / "evasion" / "cases").glob("*/*.pcap"))
    paths += sorted((ROOT / "pcaps").glob("*.pcap"))
    if shared is not None:
        # DNS, TLS, DHCP, mDNS, SSDP, MQTT, Modbus, telnet and more
        paths += sorted((shared / "pcaps" / "benign" / "ndpi").glob("*.pcap*"))[:40]
        paths += sorted((shared / "pcaps" / "attack" / "ndpi").glob("*.pcap*"))[:40]
    return paths


def _engine_garbage(pcaps: list[Path], rules: list[Path]) -> Counter:
    config = Config()
    config.checksum_mode = "none"
    engine, _ = load_engine([str(r) for r in rules], config, None, quiet=True)
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        worker = Worker(config, engine, lambda event: None)
        for path in pcaps:
            with PcapReader(str(path)) as reader:
                for pkt in reader:
                    worker.process(pkt)
        worker.finish()            # every flow ends, every parser is let go
        del worker
        gc.collect()
        found = Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.garbage
                        if type(o).__module__.startswith(("ips", "appliance")))
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        if was_enabled:
            gc.enable()
    return found


def test_finished_flows_leave_no_reference_cycles(shared_data_optional):
    rules = [ROOT / "signatures" / "virtual-patches.rules",
             *sorted((ROOT / "tests" / "evasion" / "cases").glob("*/test.rules"))]
    pcaps = _pcaps(shared_data_optional)
    assert len(pcaps) >= 16
    garbage = _engine_garbage(pcaps, rules)
    assert not garbage, f"objects only the cyclic GC can free: {garbage.most_common(10)}"


def test_paced_collector_holds_full_collections_and_restores():
    before = gc.get_threshold()
    pacing = PacedCollector()
    pacing.start()
    try:
        assert gc.get_threshold()[2] == PacedCollector.NEVER
        assert gc.get_threshold()[:2] == before[:2]
        assert gc.get_freeze_count() > 0
        pacing.tick(idle=True)
        pacing.tick(idle=False)
        assert pacing.full_collections == 0                 # not due yet
        pacing._last_full -= PacedCollector.IDLE_INTERVAL   # as if time had passed
        pacing.tick(idle=False)
        assert pacing.full_collections == 0                 # busy: waits longer
        cycle = []
        cycle.append(cycle)
        marker = id(cycle)
        del cycle
        gc.set_debug(gc.DEBUG_SAVEALL)
        pacing.tick(idle=True)                              # idle and due: it runs
        assert pacing.full_collections == 1
        assert any(id(o) == marker for o in gc.garbage)
        pacing._last_full -= PacedCollector.BUSY_INTERVAL
        pacing.tick(idle=False)                             # long enough: even busy
        assert pacing.full_collections == 2
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        pacing.stop()
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


@pytest.fixture
def shared_data_optional():
    from tests.conftest import SHARED_DATA
    return SHARED_DATA if SHARED_DATA.exists() else None
