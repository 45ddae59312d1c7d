"""Verdict: from rule matches to what happens to the packet and its flow.

Inline and offline share this module, so a replay's `alert.action` is exactly
the verdict the inline box would have given.

* `pass` match        → accept; the engine stops evaluating for that packet.
* `drop` match        → drop this packet and block the flow (kernel drop mark).
* `reject` match      → as drop, plus TCP RST / ICMP unreachable both ways.
* `bypass` keyword    → accept and hand the rest of the flow to the kernel.
* `alert` only        → accept.
"""
from __future__ import annotations

from ips.packet import ACCEPT, BYPASS, DROP, REJECT

__all__ = ["decide", "exception_verdict", "ACCEPT", "DROP", "REJECT", "BYPASS"]


def decide(pkt, flow, matches, config) -> int:
    verdict = ACCEPT
    for match in matches:
        action = match.action
        if action == "pass":
            return ACCEPT
        if action == "reject":
            verdict = REJECT
        elif action == "drop" and verdict != REJECT:
            verdict = DROP
        elif getattr(match.rule, "bypass", False) and verdict == ACCEPT and flow is not None:
            flow.action = "bypass"
    if verdict != ACCEPT and flow is not None:
        flow.action = "drop"
    pkt.verdict = verdict
    return verdict


def exception_verdict(config, pkt) -> int:
    """What the engine does with a packet it could not handle."""
    return DROP if config.exception_policy == "drop" else ACCEPT


def bypass_reason(flow, *, depth_reached: bool, encrypted: bool) -> str | None:
    """Whether a judged flow can leave userspace (kernel bypass), and why.

    A flow is judged when nothing the engine could still do would change its
    verdict: a `pass` rule passed it; the inspection depth is reached in the
    packet's direction (as Suricata's stream.bypass, an attacker who pads
    the first megabyte is out of reach either way); or TLS is past its
    handshake so the rest is ciphertext. Flows with flowbits set stay
    inspected, because a later rule may still test them.
    """
    detect = flow.detect
    if detect and detect.get("pass"):
        return "pass_rule"
    if flow.flowbits:
        return None
    if depth_reached:
        return "depth"
    if encrypted:
        return "encrypted"
    return None


def rewrite_tcp_payload(pkt) -> bytes | None:
    """Rebuild the IP packet with `pkt.payload` (normalised by the stream
    stage) in place of the bytes on the wire, fixing the TCP checksum.

    Only for sources that deliver L3 packets (NFQUEUE); the IP header is
    copied unchanged since the length does not change.
    """
    import struct

    data = pkt.data
    start = pkt.ip_offset
    l4 = pkt.l4_offset
    if not data or l4 <= start:
        return None
    tcp_header_len = (data[l4 + 12] >> 4) * 4
    payload_at = l4 + tcp_header_len
    end = payload_at + len(pkt.payload)
    if end > len(data):
        return None
    segment = bytearray(data[l4:payload_at] + bytes(pkt.payload))
    segment[16:18] = b"\0\0"
    if pkt.ip_version == 4:
        pseudo = data[start + 12:start + 20] + struct.pack("!BBH", 0, 6, len(segment))
    else:
        pseudo = data[start + 8:start + 40] + struct.pack("!IxxxB", len(segment), 6)
    total = 0
    blob = pseudo + segment + (b"\0" if len(segment) % 2 else b"")
    for (word,) in struct.iter_unpack("!H", blob):
        total += word
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    struct.pack_into("!H", segment, 16, ~total & 0xFFFF)
    return bytes(data[start:l4]) + bytes(segment) + bytes(data[end:])
