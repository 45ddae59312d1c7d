"""Send one evasion case's client segments with scapy (run inside the lab's
attacker namespace by tests/evasion/test_inline_evasion.py).

    python -m tests.evasion.inline_sender CASE SOURCE SOURCE_PORT TARGET PORT

Does its own handshake from raw sockets, so the namespace's kernel must not
answer the SYN/ACK with a RST: an OUTPUT rule dropping our RSTs is added for
the duration (the namespace is the test's own). Prints one JSON line:
{"handshake": bool, "answered": bool} -- answered means the server sent any
payload back (an HTTP response: it received a complete request)."""
from __future__ import annotations

import json
import subprocess
import sys


ACK_ONLY = "ack-only-12"


def main(case_name: str, source: str, sport: int, target: str, port: int) -> dict:
    from scapy.all import IP, TCP, conf, send, sniff, sr1  # noqa: PLC0415 - heavy import
    from tests.evasion.make_cases import build_cases

    conf.verb = 0
    flags = "PA"
    if case_name == ACK_ONLY:
        # The exploit in 12-byte segments with only the ACK flag: the same
        # length as a pure ACK with timestamps, so only the exact header
        # shape keeps it out of the kernel fast path (ips.fastpath).
        from tests.evasion.make_cases import NETGEAR, split
        case = next(c for c in build_cases() if c.name == "uri-split-2")
        case.client_segments = split(NETGEAR, -(-len(NETGEAR) // 12))
        flags = "A"
    else:
        case = next(c for c in build_cases() if c.name == case_name)
    rule = ["OUTPUT", "-p", "tcp", "--tcp-flags", "RST", "RST", "-s", source, "-j", "DROP"]
    subprocess.run(["iptables", "-I", *rule], check=True)
    try:
        isn = 1_000_000
        syn_ack = sr1(IP(src=source, dst=target) / TCP(sport=sport, dport=port, flags="S", seq=isn),
                      timeout=3)
        if syn_ack is None or TCP not in syn_ack:
            return {"handshake": False, "answered": False}
        server_next = syn_ack[TCP].seq + 1
        base = IP(src=source, dst=target)
        send(base / TCP(sport=sport, dport=port, flags="A", seq=isn + 1, ack=server_next))
        for offset, data in case.client_segments:
            segment = base / TCP(sport=sport, dport=port, flags=flags, seq=isn + 1 + offset,
                                 ack=server_next) / data
            if case.fragment:
                # the same 64-byte fragments as the offline case, sent at L3
                for piece in _fragments(segment, case.fragment, isn + 1 + offset, server_next):
                    send(piece)
            else:
                send(segment)
        replies = sniff(filter=f"tcp and src host {target} and src port {port} and dst port {sport}",
                        timeout=2.5)
        answered = any(TCP in r and len(r[TCP].payload) > 0 for r in replies)
        send(base / TCP(sport=sport, dport=port, flags="R", seq=isn + 1 + len(case.payload)))
        return {"handshake": True, "answered": answered}
    finally:
        subprocess.run(["iptables", "-D", *rule], check=False)


def _fragments(segment, mode: str, seq: int, ack: int) -> list:
    from scapy.all import IP, TCP, Ether  # noqa: PLC0415
    from tests.evasion.make_cases import NETGEAR_BENIGN, _Clock, _fragments as cut

    ip = segment[IP]
    ip.id = 4242
    frame = Ether() / IP(bytes(ip))          # lengths and checksums fixed
    benign = Ether() / IP(bytes(IP(src=ip.src, dst=ip.dst, id=4242)
                                / TCP(sport=ip[TCP].sport, dport=ip[TCP].dport, flags="PA",
                                      seq=seq, ack=ack) / NETGEAR_BENIGN))
    return [piece[IP] for piece in cut(frame, mode, benign, _Clock())]


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5]))))
