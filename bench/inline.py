"""Inline benchmark over the namespace lab: the box versus the plain bridge.

Everything is measured in one run, on the same topology: first with
`reefguard run` inline (real pipeline, virtual patches + ET Open exploit rules
when the detection engine loads them), then after stopping it, when the same
bridge forwards with no rules (the baseline).

    sudo /tmp/probe/bin/python bench/inline.py [--seconds 5] [--no-et]

Figures: bulk TCP (iperf3), request/response latency (UDP echo on one flow,
p50/p99), new connections per second (short HTTP requests), and a 64-byte UDP
flood from random source ports in fail-open mode: legitimate requests must
keep working and the uninspected counter must show the overflow.
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

from appliance.lab import CLOUD, LabTopology  # noqa: E402

PY = sys.executable
ET_EXPLOIT = Path("/work/shared/data/rules/et-open/emerging-exploit.rules")

CLIENT = r"""
import json, socket, sys, time, random, struct
mode = sys.argv[1]
if mode == "latency":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1)
    s.connect((sys.argv[2], 7)); samples = []
    for _ in range(30): s.send(b"w" * 32); s.recv(64)          # warm-up: let the flow be judged
    for _ in range(int(sys.argv[3])):
        t = time.perf_counter(); s.send(b"x" * 32); s.recv(64)
        samples.append((time.perf_counter() - t) * 1e6)
    samples.sort(); print(json.dumps({"p50": samples[len(samples)//2], "p99": samples[int(len(samples)*0.99)]}))
elif mode == "cps":
    end = time.time() + float(sys.argv[3]); done = failed = 0
    while time.time() < end:
        try:
            c = socket.create_connection((sys.argv[2], 80), timeout=2)
            c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            while c.recv(4096): pass
            c.close(); done += 1
        except OSError:
            failed += 1
    print(json.dumps({"cps": done / float(sys.argv[3]), "failed": failed}))
elif mode == "flood":
    # 64-byte IP packets (UDP, checksum 0) from random source ports
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    src, dst = socket.inet_aton(sys.argv[2]), socket.inet_aton(sys.argv[3])
    packets = []
    for _ in range(4096):
        udp = struct.pack("!HHHH", random.randint(1024, 65535), 9, 44, 0) + b"\0" * 36
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 64, 0, 0, 64, 17, 0, src, dst)
        packets.append(ip + udp)
    end = time.time() + float(sys.argv[4]); sent = 0; address = (sys.argv[3], 0)
    while time.time() < end:
        for p in packets[:512]:
            try: s.sendto(p, address); sent += 1
            except OSError: pass
        packets = packets[512:] + packets[:512]
    print(json.dumps({"sent": sent}))
"""


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


def measure(lab: LabTopology, seconds: float, label: str) -> dict:
    result = {"label": label}
    result["gbps"] = iperf(lab, seconds)
    result.update(client(lab, "thermo", "latency", CLOUD, "2000"))
    result.update(client(lab, "plug", "cps", CLOUD, "3"))
    return result


def flood(lab: LabTopology, data_dir: Path, seconds: float) -> dict:
    before = json.loads((data_dir / "status.json").read_text())["totals"]
    flooder = lab.start("cam", [PY, "-c", CLIENT, "flood", "192.0.2.10", "203.0.113.123",
                                str(seconds)], stdout=subprocess.PIPE, text=True)
    time.sleep(0.5)
    legit = client(lab, "plug", "cps", CLOUD, str(max(1.0, seconds - 1.5)))
    sent = json.loads(flooder.communicate(timeout=seconds + 30)[0].strip().splitlines()[-1])
    time.sleep(1.5)
    after = json.loads((data_dir / "status.json").read_text())["totals"]
    return {"flood_packets": sent["sent"], "legit_cps": legit["cps"],
            "legit_failed": legit["failed"],
            "inspected": after["inspected"] - before["inspected"],
            "uninspected": after["uninspected"] - before["uninspected"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=1)
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
    try:
        lab.create()
        lab.start_services()
        lab.start("inet", ["iperf3", "-s", "-B", CLOUD])
        time.sleep(0.5)
        started = time.time()
        box = lab.start_box(str(data_dir), rules, workers=args.workers, policy="fail-open",
                            inspect=args.inspect)
        info = json.loads((data_dir / "status.json").read_text())["workers_info"][0]
        print(f"box up in {time.time() - started:.1f} s; pipeline: {info.get('pipeline')} "
              f"(rules: {', '.join(Path(r).name for r in rules)}); fail-open flag set: "
              f"{info.get('fail_open_flag')}")
        inline = measure(lab, args.seconds, "box")
        flooded = flood(lab, data_dir, 5.0)
        totals = json.loads((data_dir / "status.json").read_text())["totals"]
        lab.stop_box(box)          # the bridge stays: now it is the plain baseline
        plain = measure(lab, args.seconds, "plain bridge")
    finally:
        lab.destroy()
        shutil.rmtree(data_dir, ignore_errors=True)
    print(f"\n{'':24}{'plain bridge':>14}{'box':>14}{'ratio / delta':>16}   target")
    print(f"{'bulk TCP (Gbit/s)':24}{plain['gbps']:14.2f}{inline['gbps']:14.2f}"
          f"{inline['gbps'] / plain['gbps']:15.2f}x   >= 0.85x")
    print(f"{'latency p50 (us)':24}{plain['p50']:14.0f}{inline['p50']:14.0f}"
          f"{inline['p50'] - plain['p50']:+15.0f}    <= +100 us")
    print(f"{'latency p99 (us)':24}{plain['p99']:14.0f}{inline['p99']:14.0f}"
          f"{inline['p99'] - plain['p99']:+15.0f}    <= +500 us")
    print(f"{'new connections/s':24}{plain['cps']:14.0f}{inline['cps']:14.0f}"
          f"{inline['cps'] / plain['cps']:15.2f}x   >= 0.5x")
    print(f"\n64-byte UDP flood, random source ports, fail-open, 5 s: "
          f"{flooded['flood_packets']:,} packets sent; legitimate HTTP meanwhile "
          f"{flooded['legit_cps']:.0f} conn/s with {flooded['legit_failed']} failures; "
          f"inspected {flooded['inspected']:,}, uninspected (queue full -> fail-open) "
          f"{flooded['uninspected']:,}")
    print(f"box totals: {json.dumps(totals)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
