"""Inline benchmark over the namespace lab: the box versus the plain bridge.

Everything is measured in one run, on the same topology, in alternating
rounds: `reefguard run` inline (real pipeline, virtual patches + ET Open
exploit rules), then after stopping it the same bridge forwarding with no
rules (the baseline); the table shows the median of the rounds. Bulk TCP
is also shown as the median of the ratios of bulk runs that follow each
other (`bulk_ratios`): the VM's speed drifts by ±25 % within minutes, and
two runs seconds apart see the same speed where two medians may not.

    sudo .venv/bin/python bench/inline.py [--seconds 5] [--rounds 4] [--no-et]

Figures: bulk TCP (iperf3 -t SECONDS), latency at idle (iputils ping on one
ICMP flow, 2 ms interval, and a UDP echo on one flow; p50/p99 of --pings
samples each), new connections per second (serial short HTTP requests with
`Connection: close`), and a 64-byte UDP flood in fail-open mode in which
every packet is a new flow: legitimate requests must keep working and the
uninspected counter must show the overflow.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from appliance.lab import CLOUD, TRAFFIC_PROGRAM as CLIENT, LabTopology  # noqa: E402

PY = sys.executable
ET_EXPLOIT = Path("/work/shared/data/rules/et-open/emerging-exploit.rules")



def client(lab: LabTopology, role: str, *args: str, timeout: float = 120) -> dict:
    done = lab.run(role, [PY, "-c", CLIENT, *args], timeout=timeout)
    try:
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise RuntimeError(f"client {args[0]} failed: {done.stderr[-800:]}") from None


def iperf(lab: LabTopology, seconds: float) -> float:
    done = lab.run("cam", ["iperf3", "-c", CLOUD, "-t", str(seconds), "-J"], timeout=seconds + 30)
    data = json.loads(done.stdout)
    return data["end"]["sum_received"]["bits_per_second"] / 1e9


def measure(lab: LabTopology, args, label: str) -> dict:
    """One round of the three figures. Bulk TCP drifts most with the VM's
    speed, so it runs first and last: the box's last run and the plain
    bridge's first are seconds apart, and so are the plain bridge's last and
    the next box's first (one start-up apart); `bulk_ratios` pairs them."""
    result = {"label": label, "gbps_first": iperf(lab, args.seconds)}
    if shutil.which("ping"):
        result.update(client(lab, "thermo", "ping", CLOUD, str(args.pings), "0.002"))
    result.update(client(lab, "thermo", "latency", CLOUD, str(args.pings)))
    result.update(client(lab, "plug", "cps", CLOUD, str(args.seconds)))
    result["gbps_last"] = iperf(lab, args.seconds)
    result["gbps"] = (result["gbps_first"] + result["gbps_last"]) / 2
    return result


def flood(lab: LabTopology, data_dir: Path, seconds: float) -> dict:
    before = _totals(data_dir)
    flooder = lab.start("cam", [PY, "-c", CLIENT, "flood", "192.0.2.10", "203.0.113.123",
                                str(seconds)], stdout=subprocess.PIPE, text=True)
    time.sleep(0.5)
    legit = client(lab, "plug", "cps", CLOUD, str(max(1.0, seconds - 1.5)))
    sent = json.loads(flooder.communicate(timeout=seconds + 30)[0].strip().splitlines()[-1])
    time.sleep(2.5)   # worker counters reach status.json about once a second
    after = _totals(data_dir)
    delta = {key: after[key] - before[key]
             for key in ("inspected", "uninspected", "sent_to_queue", "bypassed", "over_flow_limit")}
    return {"flood_packets": sent["sent"], "legit_cps": legit["cps"],
            "legit_failed": legit["failed"], **delta}


def _totals(data_dir: Path) -> dict:
    return json.loads((data_dir / "status.json").read_text())["totals"]


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2] if len(ordered) % 2 else (
        ordered[len(ordered) // 2 - 1] + ordered[len(ordered) // 2]) / 2


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0,
                        help="length of the iperf3 and new-connection runs")
    parser.add_argument("--pings", type=int, default=2000, help="latency samples per round")
    parser.add_argument("--rounds", type=int, default=4,
                        help="box / plain bridge alternations (the machine is shared: "
                             "alternating keeps a slow spell from favouring one side)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--worker-priority", default="realtime",
                        choices=["realtime", "high", "normal"])
    parser.add_argument("--no-et", action="store_true", help="virtual patches only")
    parser.add_argument("--inspect", choices=["full", "bypass", "accept"], default="full",
                        help="full pipeline, or trivial verdicts (bypass every flow on its "
                             "first packet: the kernel fast path's upper bound)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench/inline.py: needs root")
    rules = [str(ROOT / "signatures" / "virtual-patches.rules")]
    if ET_EXPLOIT.exists() and not args.no_et:
        rules.append(str(ET_EXPLOIT))
    data_dir = Path(tempfile.mkdtemp(prefix="reefguard-bench-"))
    lab = LabTopology()
    boxes: list[dict] = []
    plains: list[dict] = []
    flooded = totals = None
    try:
        lab.create()
        lab.start_services()
        lab.start("inet", ["iperf3", "-s", "-B", CLOUD])
        time.sleep(0.5)
        for round_number in range(args.rounds):
            started = time.time()
            box = lab.start_box(str(data_dir), rules, workers=args.workers, policy="fail-open",
                                inspect=args.inspect,
                                extra=["--worker-priority", args.worker_priority])
            if round_number == 0:
                info = json.loads((data_dir / "status.json").read_text())["workers_info"][0]
                print(f"box up in {time.time() - started:.1f} s; pipeline: "
                      f"{info.get('pipeline')} (rules: {', '.join(Path(r).name for r in rules)});"
                      f" fail-open flag set: {info.get('fail_open_flag')}; "
                      f"{args.workers} worker(s), {args.worker_priority} priority", flush=True)
            if round_number == 0:
                flooded = flood(lab, data_dir, 5.0)
                totals = _totals(data_dir)
            boxes.append(measure(lab, args, "box"))
            lab.stop_box(box)          # the bridge stays: now it is the plain baseline
            plains.append(measure(lab, args, "plain bridge"))
            print(f"round {round_number + 1}: box {json.dumps(boxes[-1])}\n"
                  f"         plain {json.dumps(plains[-1])}", flush=True)
    finally:
        lab.destroy()
        shutil.rmtree(data_dir, ignore_errors=True)
    report(boxes, plains, flooded, totals)
    return 0


def bulk_ratios(boxes: list[dict], plains: list[dict]) -> list[float]:
    """Box / plain bulk throughput of every two bulk runs that follow each
    other: the box's last run of round i with the plain bridge's first of
    round i, and the plain bridge's last of round i with the box's first of
    round i+1. Each ratio compares two runs under the same machine speed, and
    the pairs alternate which side ran first."""
    ratios = []
    for i, box in enumerate(boxes):
        ratios.append(box["gbps_last"] / plains[i]["gbps_first"])
        if i + 1 < len(boxes):
            ratios.append(boxes[i + 1]["gbps_first"] / plains[i]["gbps_last"])
    return ratios


def report(boxes: list[dict], plains: list[dict], flooded: dict | None, totals: dict | None) -> None:
    def pair(key: str) -> tuple[float, float]:
        return (_median([r[key] for r in plains]), _median([r[key] for r in boxes]))

    print(f"\nmedian of {len(boxes)} alternating round(s)")
    print(f"{'':26}{'plain bridge':>14}{'box':>14}{'ratio / delta':>16}   target")
    plain, box = pair("gbps")
    print(f"{'bulk TCP (Gbit/s)':26}{plain:14.2f}{box:14.2f}{box / plain:15.2f}x   >= 0.85x")
    ratios = bulk_ratios(boxes, plains)
    print(f"{'  adjacent-run ratios':26}{'':28}{_median(ratios):15.2f}x   "
          f"(median of {', '.join(f'{r:.2f}' for r in ratios)})")
    for key, name in (("ping", "ping (ICMP)"), ("", "UDP echo")):
        prefix = f"{key}_" if key else ""
        if prefix + "p50" not in boxes[0]:
            continue
        for quantile, target in (("p50", "<= +100 us"), ("p99", "<= +500 us")):
            if not key:
                # Never judged (no depth reached, no bypass keyword): every
                # packet of this flow goes through a worker. Shown, no bar.
                target = "(no bar)"
            plain, box = pair(prefix + quantile)
            print(f"{name + ' ' + quantile + ' (us)':26}{plain:14.0f}{box:14.0f}"
                  f"{box - plain:+15.0f}    {target}")
    plain, box = pair("cps")
    print(f"{'new connections/s':26}{plain:14.0f}{box:14.0f}{box / plain:15.2f}x   >= 0.5x")
    noise = [r.get("ping_p99", r["p99"]) for r in plains]
    print(f"plain-bridge p99 across rounds (noise): {', '.join(f'{v:.0f}' for v in noise)} us")
    if flooded:
        print(f"\n64-byte UDP flood, a new flow per packet, fail-open, 5 s: "
              f"{flooded['flood_packets']:,} packets sent; legitimate HTTP meanwhile "
              f"{flooded['legit_cps']:.0f} conn/s with {flooded['legit_failed']} failures; "
              f"new flows over the per-source limit (not queued, fail-open) "
              f"{flooded['over_flow_limit']:,}; reached the queue rule "
              f"{flooded['sent_to_queue']:,}: inspected {flooded['inspected']:,}; "
              f"uninspected in all {flooded['uninspected']:,}")
    if totals:
        print(f"box totals (round 1): {json.dumps(totals)}")


if __name__ == "__main__":
    sys.exit(main())
