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
        action = match.rule.action
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
