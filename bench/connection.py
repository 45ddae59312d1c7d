"""Per-connection cost of the inline pipeline, offline: what a worker spends
on one short HTTP connection, without the kernel.

    python bench/connection.py [--count 3000] [--rounds 3] [--no-et]

A short HTTP connection queues six packets to a worker (SYN, SYN/ACK, the
request, the response, two FINs; pure ACKs stay in the kernel fast path).
This replays that many distinct connections through `Worker.process` with
`stream.inline` on, as the box does, once with no rules (the baseline) and
once with the inline bench's rules (virtual patches + ET exploit rules),
and prints CPU microseconds per connection and the ratio, best of
--rounds. For a figure that does not drift with the machine, count
instructions instead:

    valgrind --tool=cachegrind --cache-sim=no python bench/connection.py --count 0
    valgrind --tool=cachegrind --cache-sim=no python bench/connection.py --count 1500

(the difference of the two totals / 1500 is instructions per connection).
"""
from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ips.cli import load_engine  # noqa: E402
from ips.config import Config  # noqa: E402
from ips.packet import LINKTYPE_RAW, Packet  # noqa: E402
from ips.worker import PacedCollector, Worker  # noqa: E402

ET_EXPLOIT = ROOT.parent / "shared" / "data" / "rules" / "et-open" / "emerging-exploit.rules"
CLIENT, SERVER = "192.0.2.30", "203.0.113.10"
REQUEST = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
BODY = b"<html>camera cloud</html>\n"
RESPONSE = (b"HTTP/1.0 200 OK\r\nServer: SimpleHTTP/0.6 Python/3.11.2\r\n"
            b"Date: Thu, 26 Nov 2026 22:00:00 GMT\r\nContent-type: text/html\r\n"
            b"Content-Length: %d\r\n\r\n" % len(BODY)) + BODY


def connections(count: int) -> list[list[bytes]]:
    """The six queued packets of `count` short connections (distinct ports)."""
    from scapy.all import IP, TCP, raw
    made = []
    for index in range(count):
        port, cseq, sseq = 20000 + index % 40000, 1000, 5000
        req_end, resp_end = cseq + 1 + len(REQUEST), sseq + 1 + len(RESPONSE)
        made.append([raw(p) for p in (
            IP(src=CLIENT, dst=SERVER) / TCP(sport=port, dport=80, flags="S", seq=cseq),
            IP(src=SERVER, dst=CLIENT) / TCP(sport=80, dport=port, flags="SA", seq=sseq, ack=cseq + 1),
            IP(src=CLIENT, dst=SERVER) / TCP(sport=port, dport=80, flags="PA", seq=cseq + 1,
                                             ack=sseq + 1) / REQUEST,
            IP(src=SERVER, dst=CLIENT) / TCP(sport=80, dport=port, flags="PA", seq=sseq + 1,
                                             ack=req_end) / RESPONSE,
            IP(src=SERVER, dst=CLIENT) / TCP(sport=80, dport=port, flags="FA", seq=resp_end,
                                             ack=req_end),
            IP(src=CLIENT, dst=SERVER) / TCP(sport=port, dport=80, flags="FA", seq=req_end,
                                             ack=resp_end + 1))])
    return made


def run(engine, config: Config, made: list[list[bytes]], warm: int) -> float:
    """CPU microseconds per connection, after `warm` warm-up connections."""
    events: list = []
    worker = Worker(config, engine, events.append)
    ts = 1_700_000_000.0

    def replay(batch) -> None:
        nonlocal ts
        for packets in batch:
            for data in packets:
                ts += 0.0001
                worker.process(Packet(data=data, ts=ts, pcap_cnt=0, linktype=LINKTYPE_RAW))
            events.clear()

    replay(made[:warm])
    pacing = PacedCollector()
    pacing.start()
    try:
        started = time.process_time()
        replay(made[warm:])
        spent = time.process_time() - started
    finally:
        pacing.stop()
    return spent / max(1, len(made) - warm) * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=3000, help="measured connections")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-et", action="store_true", help="virtual patches only")
    args = parser.parse_args()
    config = Config()
    config.stream_inline = True
    config.checksum_mode = "none"
    rules = [str(ROOT / "signatures" / "virtual-patches.rules")]
    if ET_EXPLOIT.exists() and not args.no_et:
        rules.append(str(ET_EXPLOIT))
    with tempfile.TemporaryDirectory() as cache:
        engine, report = load_engine(rules, config, cache, quiet=True)
    warm = 300
    made = connections(warm + args.count)
    if args.count == 0:
        run(engine, config, made, warm)      # load and warm-up only (cachegrind baseline)
        return 0
    best = {"no rules": float("inf"), "rules": float("inf")}
    for _ in range(args.rounds):
        for label, eng in (("no rules", None), ("rules", engine)):
            gc.collect()
            best[label] = min(best[label], run(eng, config, made, warm))
    print(f"{args.count} short HTTP connections (6 queued packets each), inline mode, "
          f"best of {args.rounds}; rules: {report.loaded} loaded")
    print(f"{'':12}{'µs CPU/conn':>14}{'vs baseline':>14}")
    for label, value in best.items():
        print(f"{label:12}{value:14.1f}{value / best['no rules']:13.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
