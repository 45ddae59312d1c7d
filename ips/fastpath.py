"""Which packets of unjudged flows the kernel may forward without asking a worker.

Theory of operation
-------------------
A short connection is about ten packets and each one that goes through the
queue adds a worker wake-up and a pipeline run to its latency; four of those
ten are pure ACKs: TCP segments of an established connection with only the
ACK flag and no payload. They carry nothing a parser or a content match can
use, so when no loaded rule can match one, the kernel accepts them itself
(`appliance.firewall.render_fastpath`).

"No payload" must be exact, or an attacker sends data in ACK-only segments
under the size limit. iptables cannot subtract header lengths, so each kernel
rule pins the whole shape: IPv4 header of 20 bytes (no options), a given TCP
data offset, and a total length of exactly those two headers; IPv6 with TCP
as the first next header and a payload length equal to the TCP header. Any
other shape (IP options, SACK blocks, a segment with one byte of data) goes
to the queue as before.

Which rules need pure ACKs (`rules_needing_pure_acks`), decided per rule
and conservatively:

* rules that cannot apply to TCP, that inspect a payload or app-layer buffer,
  that need an app protocol, or that only apply before the handshake
  completes (`flow:not_established`) cannot match a pure ACK;
* a header keyword that a pure ACK fails (`flags:S`, `dsize:>0`, `itype`,
  `ip_proto:41`) rules it out; `ip_proto` and `sameip` that it passes hold
  for the whole flow, like addresses; any other per-packet keyword (ttl, window, seq, ack,
  flowbits checks, counting thresholds) might match one: the rule needs them;
* a rule on addresses, ports and flow direction alone matches every packet
  of the flow in that direction alike: it has already matched (and dropped,
  if it drops) on an earlier packet of that direction, so skipping the pure
  ACKs changes neither its verdict nor, with `threshold: type limit`, its
  alerts. It does not need them.

One rule that needs pure ACKs turns the fast path off for the whole box; the
service reports which rules did it.
"""
from __future__ import annotations

from typing import Iterable

from ips.packet import PROTO_TCP

ACK = 0x10

# Header keywords whose value on a pure ACK we can compute exactly, and those
# that are the same for every packet of a flow direction; any other packet
# check might match a pure ACK that earlier packets did not.
_EVALUATED = frozenset({"flags", "dsize"})
_PER_FLOW = frozenset({"ip_proto", "sameip"})


class _PureAck:
    """What a rule's header checks see on a pure ACK."""

    __slots__ = ("proto", "tcp_flags", "payload", "icmp_type")

    def __init__(self) -> None:
        self.proto = PROTO_TCP
        self.tcp_flags = ACK
        self.payload = b""
        self.icmp_type = None


def _check_name(check) -> str:
    name = getattr(check, "name", None)
    if name:
        return name
    return type(check).__name__.lower()


def _admits_pure_ack(check) -> bool:
    """False only when the check certainly fails on every pure ACK."""
    name = _check_name(check)
    if name in ("itype", "icode", "icmp_id", "icmp_seq"):
        return False
    if name == "flags":
        return check.match(_PureAck())
    if name == "dsize":
        return bool(check.compare(0))
    if name == "ip_proto":
        return bool(check.compare(PROTO_TCP))
    return True


def needs_pure_acks(rule) -> bool:
    """Whether skipping the pure ACKs of established TCP flows could change
    what `rule` does (see the module docstring)."""
    if rule.transports is not None and PROTO_TCP not in rule.transports:
        return False
    if rule.buffers or rule.tx_buffers or rule.app_proto or rule.app_layer_protocol:
        return False
    if rule.flow_established is False:
        return False
    checks = list(rule.packet_checks)
    if not all(_admits_pure_ack(check) for check in checks):
        return False
    varying = [c for c in checks if _check_name(c) not in _EVALUATED | _PER_FLOW]
    if varying or rule.flowbit_checks or rule.detection_filter:
        return True
    if any(_check_name(c) in _EVALUATED for c in checks):
        # flags / dsize that a pure ACK passes: the rule picks these packets
        return True
    threshold = rule.threshold or {}
    if threshold and threshold.get("type") != "limit":
        return True   # counts packets: a skipped ACK would change the count
    return False


def rules_needing_pure_acks(rules: Iterable) -> list:
    return [rule for rule in rules if rule is not None and needs_pure_acks(rule)]


def describe(rules: list) -> str:
    """One line for the log and status: on, or off and because of which rules."""
    if not rules:
        return "on"
    sids = ", ".join(str(rule.sid) for rule in rules[:5])
    more = f" and {len(rules) - 5} more" if len(rules) > 5 else ""
    return f"off: {len(rules)} rule(s) can match a pure ACK (sid {sids}{more})"
