"""Throughput of the front of the capture plane: capture → decode → flow.

    python bench/decode_flow.py [PCAP] [--rounds N] [--no-checksums]

Prints packets per second for (a) reading only, (b) read + decode, (c) read +
decode + flow lookup (+ expire per packet, as the worker does), and a
dpkt-based decode of the same packets for comparison. Every variant runs
`--rounds` times, interleaved, and the best round counts: on a shared machine
the best round is the one least disturbed by other processes. CPU time of
this process is measured, not wall time.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from ips.capture import read_packets  # noqa: E402
from ips.config import Config  # noqa: E402
from ips.decode import decode  # noqa: E402
from ips.flow import FlowTable  # noqa: E402

DEFAULT_PCAP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared",
                            "data", "throughput", "ndpi-eth-mono.pcap")


def read_only(path: str) -> int:
    count = 0
    for _packet in read_packets(path):
        count += 1
    return count


def read_decode(path: str, checksums: bool) -> int:
    count = 0
    for packet in read_packets(path):
        decode(packet, checksums)
        count += 1
    return count


def read_decode_flow(path: str, checksums: bool) -> int:
    table = FlowTable(Config())
    count = 0
    for packet in read_packets(path):
        count += 1
        if decode(packet, checksums):
            table.lookup(packet)
        table.expire(packet.ts)
    table.flush()
    return count


def dpkt_decode(path: str) -> int:
    """The same work done the conventional way with dpkt objects."""
    import dpkt
    count = 0
    with open(path, "rb") as handle:
        try:
            reader = dpkt.pcap.Reader(handle)
        except ValueError:
            handle.seek(0)
            reader = dpkt.pcapng.Reader(handle)
        for _ts, frame in reader:
            count += 1
            try:
                ethernet = dpkt.ethernet.Ethernet(frame)
                ip = ethernet.data
                if isinstance(ip, (dpkt.ip.IP, dpkt.ip6.IP6)):
                    transport = ip.data
                    if isinstance(transport, (dpkt.tcp.TCP, dpkt.udp.UDP)):
                        _ = (transport.sport, transport.dport, transport.data)
            except (dpkt.UnpackError, IndexError, ValueError):
                pass
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pcap", nargs="?", default=DEFAULT_PCAP)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-checksums", action="store_true", help="only run without checksum validation")
    args = parser.parse_args(argv)
    path = os.path.normpath(args.pcap)

    variants = [("read only", lambda: read_only(path))]
    checksum_modes = [False] if args.no_checksums else [False, True]
    for checksums in checksum_modes:
        label = "checksums on" if checksums else "checksums off"
        variants.append((f"read+decode ({label})", lambda c=checksums: read_decode(path, c)))
        variants.append((f"read+decode+flow ({label})", lambda c=checksums: read_decode_flow(path, c)))
    variants.append(("dpkt read+decode", lambda: dpkt_decode(path)))

    best = {label: float("inf") for label, _ in variants}
    packets = 0
    for _ in range(args.rounds):
        for label, run in variants:
            started = time.process_time()
            packets = run()
            best[label] = min(best[label], time.process_time() - started)

    print(f"{path}: {packets} packets, best of {args.rounds} rounds (CPU time)")
    baseline = packets / best["read only"]
    for label, _ in variants:
        rate = packets / best[label]
        print(f"  {label:34s} {rate:10,.0f} pkt/s  {best[label] / packets * 1e6:6.2f} us/pkt"
              f"  {rate / baseline:5.2f}x of read-only")
    return 0


if __name__ == "__main__":
    sys.exit(main())
