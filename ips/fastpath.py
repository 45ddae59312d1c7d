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
  so does one inspecting the IP or TCP header as a buffer (`ipv4.hdr`,
  `tcp.hdr`, ...): sequence numbers, flags and window change per packet;
* a rule on addresses, ports and flow direction alone matches every packet
  of the flow in that direction alike: it has already matched (and dropped,
  if it drops) on an earlier packet of that direction, so skipping the pure
  ACKs changes neither its verdict nor, with `threshold: type limit`, its
  alerts. It does not need them. A decode-event or stream-event keyword
  varies per packet: such a rule needs them.

One rule that needs pure ACKs turns the fast path off for the whole box; the
service reports which rules did it.

ICMP echo (ping) gets the same treatment by size: `icmp_echo_limit` is the
largest echo payload no loaded rule can match on an established echo flow
(type 8/0 or 0/0; ICMPv6 128/0, 129/0). A rule's smallest matching payload
comes from its `dsize` lower bound and its longest positive content; a rule
that could match any size (a pcre or byte_test alone, an `icmp_seq` check,
a counting threshold) makes the limit -1 and the fast path stays off for
ping. Echo packets up to the limit stay in the kernel (an `-m length`
bound: IP options only shrink the payload for a given length); bigger ones,
and every other ICMP type, go to a worker as before.
"""
from __future__ import annotations

from typing import Iterable

from ips.packet import PROTO_TCP

PROTO_ICMP, PROTO_ICMPV6 = 1, 58
ECHO_TYPES = (0, 8, 128, 129)
MAX_ECHO_LIMIT = 1400   # beyond a typical MTU the bound is not worth computing

ACK = 0x10

# Header keywords whose value on a pure ACK we can compute exactly, and those
# that are the same for every packet of a flow direction; any other packet
# check might match a pure ACK that earlier packets did not.
_EVALUATED = frozenset({"flags", "dsize"})
_PER_FLOW = frozenset({"ip_proto", "sameip"})


class _PureAck:
    """What a `flags` check sees on a pure ACK."""

    __slots__ = ("proto", "tcp_flags")

    def __init__(self) -> None:
        self.proto = PROTO_TCP
        self.tcp_flags = ACK


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
    header_buffers = rule.packet_buffers
    if (len(rule.buffers) > len(header_buffers) or rule.tx_buffers or rule.app_proto
            or rule.app_layer_protocol):
        return False
    if rule.flow_established is False:
        return False
    checks = list(rule.packet_checks)
    if not all(_admits_pure_ack(check) for check in checks):
        return False
    varying = [c for c in checks if _check_name(c) not in _EVALUATED | _PER_FLOW]
    if varying or header_buffers or rule.flowbit_checks or rule.xbit_checks or rule.detection_filter:
        return True
    if rule.packet_events:
        return True   # decode/stream events differ packet by packet (tcp.invalid_optlen)
    if any(_check_name(c) in _EVALUATED for c in checks):
        # flags / dsize that a pure ACK passes: the rule picks these packets
        return True
    threshold = rule.threshold or {}
    if threshold and threshold.get("type") != "limit":
        return True   # counts packets: a skipped ACK would change the count
    return False


def rules_needing_pure_acks(rules: Iterable) -> list:
    return [rule for rule in rules if needs_pure_acks(rule)]


def describe(rules: list) -> str:
    """One line for the log and status: on, or off and because of which rules."""
    if not rules:
        return "on"
    sids = ", ".join(str(rule.sid) for rule in rules[:5])
    more = f" and {len(rules) - 5} more" if len(rules) > 5 else ""
    return f"off: {len(rules)} rule(s) can match a pure ACK (sid {sids}{more})"


def _smallest_echo_payload(rule) -> int:
    """The fewest payload bytes of an established ICMP echo packet `rule`
    could match, MAX_ECHO_LIMIT + 1 when it cannot match one at all, 0 when
    any size might do."""
    never = MAX_ECHO_LIMIT + 1
    if rule.transports is not None and not ({PROTO_ICMP, PROTO_ICMPV6} & set(rule.transports)):
        return never
    if rule.tx_buffers or rule.app_proto or rule.app_layer_protocol:
        return never
    if rule.flow_established is False:
        return never
    smallest = 0
    varying = bool(rule.flowbit_checks or rule.xbit_checks or rule.detection_filter
                   or rule.packet_events)
    threshold = rule.threshold or {}
    if threshold and threshold.get("type") != "limit":
        varying = True
    for check in rule.packet_checks:
        name = _check_name(check)
        if name == "itype":
            if not any(check.compare(t) for t in ECHO_TYPES):
                return never
        elif name == "icode":
            if not check.compare(0):
                return never
        elif name == "flags":
            return never
        elif name == "ip_proto":
            if not (check.compare(PROTO_ICMP) or check.compare(PROTO_ICMPV6)):
                return never
        elif name == "dsize":
            size = next((n for n in range(never) if check.compare(n)), never)
            smallest = max(smallest, size)
        elif name != "sameip":
            varying = True
    payload = [matcher for name, matchers in rule.buffers.items() for matcher in matchers]
    if not payload and not varying and smallest == 0:
        return never     # addresses / ports / type alone: matched the flow's earlier packets
    if len(rule.buffers) > 1 or any(name != "payload" for name in rule.buffers):
        return 0         # a buffer we do not size: assume any payload
    contents = [len(m.pattern) for m in payload
                if hasattr(m, "pattern") and not getattr(m, "negated", False)]
    if contents:
        smallest = max(smallest, max(contents))
    return smallest


def icmp_echo_limit(rules: Iterable) -> tuple[int, list]:
    """(largest echo payload no rule can match, the rules that bound it):
    -1 when some rule could match an echo of any size."""
    limit, bounding = MAX_ECHO_LIMIT, []
    for rule in rules:
        smallest = _smallest_echo_payload(rule)
        if smallest - 1 < limit:
            limit, bounding = smallest - 1, [rule]
        elif smallest - 1 == limit and smallest <= MAX_ECHO_LIMIT:
            bounding.append(rule)
    return limit, bounding


class Analysis:
    """What the loaded rules allow the kernel to keep."""

    __slots__ = ("pure_ack_rules", "icmp_echo_limit", "icmp_bounding")

    def __init__(self, pure_ack_rules: list, icmp_echo_limit: int, icmp_bounding: list) -> None:
        self.pure_ack_rules = pure_ack_rules
        self.icmp_echo_limit = icmp_echo_limit
        self.icmp_bounding = icmp_bounding

    @classmethod
    def of(cls, rules: list) -> "Analysis":
        """`rules` fully parsed: a cached engine holds None for rules not yet
        used (pass `[engine.rule(i) for i in range(len(engine.rules))]`); a
        None here raises rather than being skipped, so the service keeps the
        fast path off instead of judging on part of the set."""
        limit, bounding = icmp_echo_limit(rules)
        return cls(rules_needing_pure_acks(rules), limit, bounding)

    @property
    def pure_ack(self) -> bool:
        return not self.pure_ack_rules

    def describe_pure_ack(self) -> str:
        return describe(self.pure_ack_rules)

    def describe_icmp_echo(self) -> str:
        if self.icmp_echo_limit < 0:
            sids = ", ".join(str(rule.sid) for rule in self.icmp_bounding[:5])
            return f"off: a rule can match an echo of any size (sid {sids})"
        bound = (f" (bounded by sid {', '.join(str(r.sid) for r in self.icmp_bounding[:5])})"
                 if self.icmp_bounding else "")
        return f"on: echo payloads up to {self.icmp_echo_limit} bytes{bound}"
