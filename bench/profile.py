"""Cost of device profiling: replay throughput on vs off, and memory.

    python bench/profile.py [PCAP_OR_DIR ...] [--repeat N] [--devices N] [--flows N]

1. Throughput: the same captures replayed through Worker + Collector twice,
   once with only a counting consumer and once with the inventory and the
   profiler added. Target: profiling on >= 0.8x the packet rate of off.
   Default input: the 8-day scenario capture (rendered on the fly) and the
   nDPI throughput set (first 100 files).
2. Memory (tracemalloc, the profiler and inventory only): bytes per device
   after a realistic learning load, and bytes per 10,000 flows spread over
   those devices.
"""
from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "scenarios"))

from ips import events  # noqa: E402
from ips.collector import Collector  # noqa: E402
from ips.config import Config  # noqa: E402
from ips.profile import make_consumers  # noqa: E402

NDPI = ROOT.parent / "shared" / "data" / "throughput" / "ndpi-all"


class Count:
    def __init__(self):
        self.n = 0

    def flow_end(self, _):
        self.n += 1


def replay(paths: list[Path], profiling: bool, repeat: int) -> tuple[int, float, int]:
    from ips.capture import CaptureError, PcapReader
    from ips.worker import Worker
    best = None
    packets = anomalies = 0
    for _ in range(repeat):
        config = Config()
        config.learning_days = 7
        consumers = [Count()]
        found = []

        class Sink:
            def device_anomaly(self, anomaly):
                found.append(anomaly)
        if profiling:
            consumers = [*make_consumers(config), *consumers, Sink()]
        collector = Collector(consumers)
        worker = Worker(config, None, collector)
        packets = 0
        next_tick = None
        gc.collect()
        # CPU time of this process: wall time on a shared machine mostly
        # measures the neighbours.
        start = time.process_time()
        for path in paths:
            try:
                reader = PcapReader(path)
            except (CaptureError, OSError):
                continue
            with reader:
                for packet in reader:
                    packets += 1
                    worker.process(packet)
                    if next_tick is None or packet.ts >= next_tick:
                        collector.tick(packet.ts)
                        next_tick = packet.ts + 60
        worker.finish()
        collector.done()
        elapsed = time.process_time() - start
        best = elapsed if best is None else min(best, elapsed)
        anomalies = len(found)
    return packets, best, anomalies


def memory(devices: int, flows: int) -> tuple[float, float]:
    """(bytes per device, bytes per 10,000 flows) held by inventory + profiler."""
    config = Config()
    config.home_net = "[10.0.0.0/8]"
    config.learning_days = 7

    def feed(consumers, count, spread):
        t0 = 1704067200.0
        for i in range(count):
            device = i % spread
            mac = f"44:47:cc:{device >> 16 & 255:02x}:{device >> 8 & 255:02x}:{device & 255:02x}"
            ts = t0 + i * (7 * 86400 / max(count, 1))
            flow = events.FlowEnd(
                timestamp=ts + 1, flow_id=i,
                tuple=events.FiveTuple(f"10.{device >> 16 & 255}.{device >> 8 & 255}.{device & 255}",
                                       40000 + i % 20000, f"198.51.{(i // 7) % 256}.{i % 64}",
                                       (443, 80, 123, 53, 8883)[i % 5], "TCP"),
                app_proto=None, start=ts, end=ts + 1, pkts_toserver=5, pkts_toclient=5,
                bytes_toserver=1500, bytes_toclient=3000, state="closed", reason="tcp_closed",
                alerted=False, client_mac=mac, server_mac="02:00:5e:00:00:01")
            for consumer in consumers:
                consumer.flow_end(flow)

    tracemalloc.start()
    base = tracemalloc.take_snapshot()
    consumers = make_consumers(config)
    feed(consumers, devices * 50, devices)
    per_device = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(base, "filename")) / devices
    del consumers
    gc.collect()
    base = tracemalloc.take_snapshot()
    consumers = make_consumers(config)
    feed(consumers, flows, 50)
    used = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(base, "filename"))
    tracemalloc.stop()
    return per_device, used / flows * 10_000


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("inputs", nargs="*", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--devices", type=int, default=500)
    parser.add_argument("--flows", type=int, default=100_000)
    args = parser.parse_args(argv)

    inputs: list[tuple[str, list[Path]]] = []
    for item in args.inputs:
        files = sorted(p for p in item.iterdir() if p.suffix in (".pcap", ".pcapng")) if item.is_dir() else [item]
        inputs.append((str(item), files))
    temp = None
    if not inputs:
        import generate
        temp = tempfile.TemporaryDirectory()
        scenario = Path(temp.name) / "exfil_volume.pcap"
        flows, _ = generate.build("exfil_volume")
        generate.write_pcap(flows, scenario)
        inputs.append(("scenario exfil_volume (8 days)", [scenario]))
        if NDPI.is_dir():
            files = sorted(p for p in NDPI.iterdir() if p.suffix in (".pcap", ".pcapng"))[:100]
            inputs.append(("nDPI throughput set, first 100 files", files))

    # One-off start-up cost, not per packet: the IEEE registry (~46,000 rows)
    # loads on the first vendor lookup. Pay it before timing and report it.
    from ips import oui
    start = time.perf_counter()
    oui.vendor("c4:29:96:00:00:01")
    print(f"OUI registry load (once per process): {time.perf_counter() - start:.2f} s")
    for label, files in inputs:
        # Interleaved, best of N: the machine is shared, and a slow moment
        # must not land on one side only.
        off_seconds = on_seconds = float("inf")
        for _ in range(args.repeat):
            off_packets, seconds, _ = replay(files, False, 1)
            off_seconds = min(off_seconds, seconds)
            on_packets, seconds, found = replay(files, True, 1)
            on_seconds = min(on_seconds, seconds)
        off_rate, on_rate = off_packets / off_seconds, on_packets / on_seconds
        ratio = on_rate / off_rate
        print(f"{label}: {off_packets} packets; profiling off {off_rate:,.0f} pkt/s, "
              f"on {on_rate:,.0f} pkt/s -> {ratio:.2f}x "
              f"({'meets' if ratio >= 0.8 else 'MISSES'} the 0.8x target); {found} anomalies")
    per_device, per_10k = memory(args.devices, args.flows)
    print(f"memory: {per_device / 1024:.1f} KiB per device ({args.devices} devices, 50 flows each); "
          f"{per_10k / 1024:.1f} KiB per 10,000 flows ({args.flows} flows over 50 devices)")
    if temp is not None:
        temp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
