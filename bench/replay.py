"""Replay benchmark: the whole offline pipeline, with and without rules.

    python bench/replay.py [PCAP] [--rules DIR] [--rounds N]

Every figure comes from this run: the capture is first replayed with no
rules (the baseline: decode, flow, stream, app-layer, EVE), then with all
rules loaded from the compiled cache (start-up excluded, as the issue asks),
and the script prints packets/s on one core (CPU time, so the machine's
other load does not halve the figure), wall-clock packets/s, peak RSS and
the ratio to the baseline.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DATA = os.path.join(ROOT, "..", "shared", "data")
DEFAULT_PCAP = os.path.join(DATA, "throughput", "ndpi-eth-mono.pcap")
DEFAULT_RULES = os.path.join(DATA, "rules", "et-open")


def _child(pcap: str, rules: str | None, cache_dir: str) -> dict:
    sys.path.insert(0, ROOT)
    from ips.cli import load_engine
    from ips.config import Config
    from ips.replay import replay

    config = Config()
    config.checksum_mode = "none"
    engine = None
    load_seconds = 0.0
    if rules:
        started = time.perf_counter()
        engine, _report = load_engine([rules], config, cache_dir, quiet=True)
        load_seconds = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as out:
        summary = replay([pcap], engine, out, config, progress=False)
    return {
        "packets": summary.packets, "cpu_seconds": summary.cpu_seconds,
        "seconds": summary.seconds, "alerts": summary.alerts,
        "load_seconds": load_seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run(pcap: str, rules: str | None, cache_dir: str) -> dict:
    code = ("import json, sys; sys.path.insert(0, %r); from bench.replay import _child; "
            "print(json.dumps(_child(%r, %r, %r)))" % (ROOT, pcap, rules, cache_dir))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pcap", nargs="?", default=DEFAULT_PCAP)
    parser.add_argument("--rules", default=DEFAULT_RULES)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    cache_dir = tempfile.mkdtemp(prefix="reefguard-bench-cache-")
    # Warm the rule cache so the measured rounds exclude compilation.
    run(args.pcap, args.rules, cache_dir)
    best: dict[str, dict] = {}
    for _ in range(args.rounds):
        for name, rules in (("no rules", None), ("all rules", args.rules)):
            result = run(args.pcap, rules, cache_dir)
            if name not in best or result["cpu_seconds"] < best[name]["cpu_seconds"]:
                best[name] = result
    base = best["no rules"]
    print(f"capture: {args.pcap} ({base['packets']:,} packets); best of {args.rounds} rounds")
    print(f"{'run':<10} {'pkt/s/core':>11} {'pkt/s wall':>11} {'alerts':>7} "
          f"{'rss MB':>7} {'vs baseline':>11}")
    for name, r in best.items():
        per_core = r["packets"] / r["cpu_seconds"]
        wall = r["packets"] / r["seconds"]
        ratio = per_core / (base["packets"] / base["cpu_seconds"])
        print(f"{name:<10} {per_core:>11,.0f} {wall:>11,.0f} {r['alerts']:>7} "
              f"{r['peak_rss_mb']:>7.0f} {ratio:>10.2f}x")
    print(f"rule load from cache: {best['all rules']['load_seconds']:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
