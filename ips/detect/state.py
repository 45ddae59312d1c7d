"""Detection state that outlives one packet: flowbits, xbits and thresholds.

Flowbits live on the flow (`flow.flowbits`, a set of names). Xbits live per
host or host pair (`XBits`, bounded, each bit with its expiry). Thresholds and
detection filters keep counters keyed by what the rule tracks; `by_flow`
counters live in the flow's own detect dict so they die with the flow, the
others in a bounded table here. Time is the packet timestamp, never the wall
clock, so a pcap replays the same way every time.
"""
from __future__ import annotations

from collections import OrderedDict

MAX_THRESHOLD_ENTRIES = 65536   # tracked (rule, address) pairs; oldest evicted first


def flowbits_match(rule, flow) -> bool:
    """All of the rule's isset/isnotset conditions hold on this flow."""
    if not rule.flowbit_checks:
        return True
    if flow is None:
        return False
    bits = flow.flowbits
    for command, names, combinator in rule.flowbit_checks:
        if command == "isset":
            hits = [name in bits for name in names]
        else:
            hits = [name not in bits for name in names]
        if combinator == "or":
            if not any(hits):
                return False
        elif not all(hits):
            return False
    return True


def apply_flowbits(rule, flow) -> None:
    """Run the rule's set/unset/toggle actions after it matched."""
    if flow is None or not rule.flowbit_actions:
        return
    bits = flow.flowbits
    for command, name in rule.flowbit_actions:
        if command == "set":
            bits.add(name)
        elif command == "unset":
            bits.discard(name)
        elif name in bits:
            bits.discard(name)
        else:
            bits.add(name)


MAX_XBITS = 65536   # (track, address(es), name) entries; oldest evicted first


class XBits:
    """`xbits` kept per source, destination or address pair, across flows,
    each expiring `expire` seconds (packet time) after it was set."""

    __slots__ = ("_bits",)

    def __init__(self) -> None:
        self._bits: OrderedDict = OrderedDict()    # ("host"|"pair", key, name) -> expiry

    @staticmethod
    def _key(track: str, name: str, pkt) -> tuple:
        # As Suricata's host bits: a bit lives on the host under its name;
        # `track ip_src`/`ip_dst` only says which address of this packet is
        # the host (set on the destination, checked on the source later).
        if track == "ip_src":
            return ("host", pkt.src, name)
        if track == "ip_dst":
            return ("host", pkt.dst, name)
        low, high = sorted((str(pkt.src), str(pkt.dst)))
        return ("pair", (low, high), name)

    def _isset(self, key: tuple, now: float) -> bool:
        expiry = self._bits.get(key)
        return expiry is not None and expiry > now

    def match(self, rule, pkt) -> bool:
        """All of the rule's xbits isset/isnotset conditions hold."""
        for command, name, track in rule.xbit_checks:
            if self._isset(self._key(track, name, pkt), pkt.ts) != (command == "isset"):
                return False
        return True

    def apply(self, rule, pkt) -> None:
        """Run the rule's xbits set/unset/toggle after it matched."""
        bits = self._bits
        for command, name, track, expire in rule.xbit_actions:
            key = self._key(track, name, pkt)
            if command == "unset" or (command == "toggle" and self._isset(key, pkt.ts)):
                bits.pop(key, None)
                continue
            bits[key] = pkt.ts + expire
            bits.move_to_end(key)
            if len(bits) > MAX_XBITS:
                bits.popitem(last=False)


class _Counter:
    __slots__ = ("start", "count", "active_since", "next_alert")

    def __init__(self, start: float) -> None:
        self.start = start
        self.count = 0
        # rate_filter: when its new action took over (None: not in force)
        self.active_since: float | None = None
        # backoff: the match number that alerts next (None: not started)
        self.next_alert: int | None = None


class Thresholds:
    """Counters for `threshold` and `detection_filter`, Suricata's semantics.

    * limit N: alert on the first N matches in each period.
    * threshold N: alert on every N-th match in the period.
    * both N: alert once per period, on the N-th match.
    * detection_filter N: alert on every match after the N-th in the period.
    * backoff N, multiplier M (by_flow): alert on the N-th match, then the
      N*M-th, N*M*M-th, ... of the flow.
    * rate_filter (threshold.config): once more than N matches came within
      `seconds`, the rule's action becomes `new_action` for `timeout`
      seconds, from that match on; after the timeout counting starts afresh.
    A period starts at the first match and lasts `seconds`; the next match
    after it starts a new period.

    The rule's action is not the alert: as in Suricata, a `limit` rule acts
    (drops, rejects) on every match and only its alerts are capped, a `both`
    rule acts on every match from the N-th on; `threshold` and
    `detection_filter` act exactly when they alert. `check` returns both.
    """

    __slots__ = ("_table",)

    def __init__(self) -> None:
        self._table: OrderedDict = OrderedDict()

    def check(self, rule, spec: dict, pkt, flow, kind: str) -> tuple[bool, bool]:
        """(alert, act) for this match (counts it): whether it is logged, and
        whether the rule's action (drop, reject, pass) applies."""
        counter = self._count(rule, spec, pkt, flow, kind)
        if counter is None:
            return True, True
        count = counter.count
        limit = spec["count"]
        if kind == "detection_filter":
            return (count > limit,) * 2
        mode = spec["type"]
        if mode == "limit":
            return count <= limit, True
        if mode == "backoff":
            if counter.next_alert is None:
                counter.next_alert = limit
            alert = count == counter.next_alert
            if alert:
                counter.next_alert *= spec["multiplier"]
            # Suricata 8: the action applies to every match but the first
            # when the first alert waits for a later one.
            return alert, not (count == 1 and limit > 1)
        if mode == "threshold":
            if count >= limit:
                counter.count = 0
                return True, True
            return False, False
        return count == limit, count >= limit  # both

    def rate(self, rule, spec: dict, pkt, flow) -> str | None:
        """A rate_filter's new action for this match (counts it), or None
        while the rule's own action stands."""
        table = self._table_for(spec, flow)
        if table is None:
            return None
        key = self._key(rule, spec, pkt, "rate_filter")
        counter = table.get(key)
        if counter is not None and counter.active_since is not None:
            if pkt.ts - counter.active_since <= spec["timeout"]:
                return spec["new_action"]
            del table[key]              # the timeout is over: count afresh
        counter = self._count(rule, spec, pkt, flow, "rate_filter")
        if counter.count > spec["count"]:
            counter.active_since = pkt.ts
            return spec["new_action"]
        return None

    def _table_for(self, spec: dict, flow):
        """Where the counters of a spec live; None for a `by_flow` spec
        without a flow (nothing to count against)."""
        if spec["track"] != "by_flow":
            return self._table
        if flow is None:
            return None
        return flow.detect.setdefault("thresholds", {})

    def _count(self, rule, spec: dict, pkt, flow, kind: str) -> _Counter | None:
        """This match counted in its period (a new one when the last ended)."""
        table = self._table_for(spec, flow)
        if table is None:
            return None
        key = self._key(rule, spec, pkt, kind)
        now = pkt.ts
        counter = table.get(key)
        if counter is None or now - counter.start > spec["seconds"]:
            counter = _Counter(now)
            table[key] = counter
            if table is self._table:
                self._table.move_to_end(key)
                while len(self._table) > MAX_THRESHOLD_ENTRIES:
                    self._table.popitem(last=False)
        counter.count += 1
        return counter

    @staticmethod
    def _key(rule, spec: dict, pkt, kind: str):
        track = spec["track"]
        base = (kind, rule.gid, rule.sid)
        if track == "by_src":
            return base + (pkt.src,)
        if track == "by_dst":
            return base + (pkt.dst,)
        if track == "by_both":
            # One count per address pair, whichever way the packet goes
            # (Suricata's global-thresholds documentation).
            low, high = sorted((str(pkt.src), str(pkt.dst)))
            return base + (low, high)
        return base
