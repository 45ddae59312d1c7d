"""Detection benchmark: load/compile time, cached load, inspect throughput, worst case.

    python bench/detect.py [RULES_DIR]

Runs the cold load and the cached load in child processes so each figure
(and the peak RSS) is that of a fresh engine.
"""
from __future__ import annotations

import glob
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEFAULT_RULES = os.path.join(ROOT, "..", "shared", "data", "rules", "et-open")


def _child(rules_dir: str, cache_dir: str) -> dict:
    sys.path.insert(0, ROOT)
    from ips.config import Config
    from ips.detect import DetectEngine
    from ips.packet import Packet

    paths = sorted(glob.glob(os.path.join(rules_dir, "*.rules")))
    started = time.perf_counter()
    cpu_started = time.process_time()
    engine, report = DetectEngine.load(paths, Config(), cache_dir=cache_dir)
    load_seconds = time.perf_counter() - started
    load_cpu_seconds = time.process_time() - cpu_started

    def packet(payload: bytes, dport: int = 80) -> Packet:
        pkt = Packet(b"", ts=1.0)
        pkt.ip_version, pkt.proto = 4, 6
        pkt.src, pkt.dst, pkt.sport, pkt.dport = "192.168.1.10", "198.51.100.7", 40000, dport
        pkt.payload = payload
        return pkt

    worst = packet(b"A" * 1400)
    rounds = 2000
    started = time.perf_counter()
    for _ in range(rounds):
        engine.inspect(worst, None, None, [])
    worst_us = (time.perf_counter() - started) / rounds * 1e6

    mixed = [packet(b"GET /index.html HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8\r\n\r\n"),
             packet(bytes(range(256)) * 5), packet(b"\x00" * 512, dport=445),
             packet(b"SSH-2.0-OpenSSH_8.9\r\n", dport=22)]
    started = time.perf_counter()
    total_bytes = 0
    for _ in range(rounds // len(mixed)):
        for pkt in mixed:
            engine.inspect(pkt, None, None, [])
            total_bytes += len(pkt.payload)
    elapsed = time.perf_counter() - started
    return {
        "loaded": report.loaded, "skipped": len(report.skipped) + len(report.errors),
        "load_seconds": round(load_seconds, 2), "load_cpu_seconds": round(load_cpu_seconds, 2), "worst_1400xA_us": round(worst_us, 1),
        "mixed_pkts_per_s": round((rounds // len(mixed)) * len(mixed) / elapsed),
        "mixed_mbit_per_s": round(total_bytes * 8 / elapsed / 1e6, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        print(json.dumps(_child(sys.argv[2], sys.argv[3])))
        return 0
    rules_dir = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_RULES
    with tempfile.TemporaryDirectory() as cache_dir:
        results = {}
        for label in ("cold", "cached"):
            output = subprocess.run([sys.executable, __file__, "--child", rules_dir, cache_dir],
                                    check=True, capture_output=True, text=True).stdout
            results[label] = json.loads(output.strip().splitlines()[-1])
    cold, cached = results["cold"], results["cached"]
    print(f"rules: {cold['loaded']} loaded, {cold['skipped']} skipped")
    # CPU time is printed too: on a shared 2-core machine wall time includes other load.
    print(f"load+compile cold:   {cold['load_seconds']:.2f} s wall, {cold['load_cpu_seconds']:.2f} s CPU (target <= 13 s)")
    print(f"load from cache:     {cached['load_seconds']:.2f} s wall, {cached['load_cpu_seconds']:.2f} s CPU (target <= 2 s)")
    print(f"1400 x 'A' payload:  {cold['worst_1400xA_us']:.1f} us per inspect")
    print(f"mixed payloads:      {cold['mixed_pkts_per_s']} pkt/s, {cold['mixed_mbit_per_s']} Mbit/s")
    print(f"peak RSS cold:       {cold['peak_rss_mb']} MB (target <= 400 MB)")
    print(f"peak RSS cached:     {cached['peak_rss_mb']} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
