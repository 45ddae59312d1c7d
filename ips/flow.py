"""Flow table: bidirectional 5-tuple tracking, TCP state, timeouts, memory cap.

Theory of operation
-------------------
A flow is keyed by (source address, source port, destination address,
destination port, protocol, VLAN ids). Both directions of a flow are entered
in one dict, under the client-first key and under the reversed key, so a
lookup is one tuple build and one dict probe whatever the direction. The
direction of a packet is then "does it come from the client side".

Who is the client: the sender of the first packet, except that a first TCP
packet carrying SYN+ACK comes from the server (we missed the SYN).

TCP state, per flow (one state for the session, named from the client's
point of view, as Suricata's flow log does):

    none ──SYN──▶ syn_sent ──SYN/ACK──▶ syn_recv ──ACK──▶ established
    (simultaneous open, as Suricata's 4-way handshake: a SYN from the server
    in syn_sent, then the SYN/ACK from the client and the ACK from the server)
    established ──first FIN from client──▶ fin_wait   (server FIN: close_wait)
    fin_wait/close_wait ──FIN from the other side──▶ closed
    any ──RST──▶ closed

A flow whose first packet is not a SYN stays in "none" and never becomes
`established` unless `config.stream_midstream` is on; then it is picked up as
established at once (`midstream = True`). `Flow.state` is the coarse
Suricata vocabulary: "new" until established, "closed" after closed/reset.
UDP, ICMP and other flows become "established" (and `established = True`)
once both directions have been seen, which is what Suricata's
`flow:established` means for them.

A SYN without ACK on a closed or reset flow starts a new session on the same
tuple (port reuse): the old flow ends with reason "forced" and a new flow is
created.

Time is packet time. Flows sit in a heap ordered by a deadline that is never
later than their real expiry; `expire(now)` pops entries whose deadline has
passed, and either expires the flow or pushes it back with its real deadline
(`last` + the timeout of its current state). So a busy flow costs nothing
per packet, and the heap work is proportional to flows that went quiet.
`expire` does this at most once per second of packet time.

Memory cap: the table holds at most min(flow_max, flow_memcap / FLOW_COST)
flows. When a new flow would exceed it, the flow nearest to its timeout is
evicted (end_reason "forced"); with equal timeouts that is the least recently
used one, and under a SYN flood it evicts half-open flows (30 s timeout)
before established ones (300 s), which is what an IPS wants. Evicted flows
are kept in `evicted` and returned by the next `expire()` call, so the worker
never loses a flow record.
"""
from __future__ import annotations

import heapq

from ips.config import Config
from ips.packet import PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP, TH_ACK, TH_FIN, TH_RST, TH_SYN, Packet

__all__ = ["Flow", "FlowTable", "FLOW_COST"]

# Approximate bytes one flow costs in the table: the Flow object, its empty
# app/detect dicts and flowbits set, two key tuples, two dict entries and a
# heap entry. Stream buffers are accounted by the stream stage.
FLOW_COST = 1024

_ID_MULTIPLIER = 0x9E3779B97F4A7C15 & ((1 << 52) - 1) | 1   # odd: a bijection mod 2**52
_ID_MASK = (1 << 52) - 1
_ID_HIGH_BIT = 1 << 52                                      # keeps ids positive and < 2**53

_SYN_ACK = TH_SYN | TH_ACK
_STATE_CHANGING_FLAGS = TH_SYN | TH_FIN | TH_RST
_EXPIRE_INTERVAL = 1.0


# IP protocols that get flows: TCP, UDP, ICMP, ICMPv6, SCTP.
FLOW_PROTOCOLS = frozenset({6, 17, 1, 58, 132})


class Flow:
    """One bidirectional conversation. Stages own their own slots: `app`
    (applayer), `stream` (stream), `detect` and `flowbits` (detection)."""

    __slots__ = (
        "id", "key", "proto", "client_ip", "client_port", "server_ip", "server_port",
        "start", "last", "pkts_toserver", "pkts_toclient", "bytes_toserver", "bytes_toclient",
        "state", "tcp_state", "tcp_flags_ts", "tcp_flags_tc", "established", "midstream",
        "app_proto", "app", "stream", "detect", "flowbits", "alerted", "action",
        "client_mac", "server_mac", "end_reason", "four_way",
        # the deadline of this flow's live entry in the table's expiry heap
        "queued_deadline",
    )

    def __init__(self, flow_id: int, key: tuple, proto: int, client_ip: str, client_port: int,
                 server_ip: str, server_port: int, ts: float) -> None:
        self.id = flow_id
        self.key = key
        self.proto = proto
        self.client_ip = client_ip
        self.client_port = client_port
        self.server_ip = server_ip
        self.server_port = server_port
        self.start = ts
        self.last = ts
        self.pkts_toserver = self.pkts_toclient = 0
        self.bytes_toserver = self.bytes_toclient = 0
        self.state = "new"
        self.tcp_state = "none"
        self.tcp_flags_ts = self.tcp_flags_tc = 0
        self.established = False
        self.midstream = False
        self.app_proto = None
        self.app = {}
        self.stream = None
        self.detect = {}
        self.flowbits = set()
        self.alerted = False
        self.action = "pass"
        self.client_mac = self.server_mac = None
        self.end_reason = None
        self.four_way = False      # simultaneous open: the server sent a SYN of its own
        self.queued_deadline = 0.0

    def __repr__(self) -> str:
        return (f"Flow(id={self.id} {self.client_ip}:{self.client_port} -> "
                f"{self.server_ip}:{self.server_port} proto={self.proto} {self.state}/{self.tcp_state})")


class FlowTable:
    """The flows of one worker. Not thread-safe: one table per worker."""

    __slots__ = ("config", "stats", "evicted", "capacity", "_flows", "_heap", "_next_check",
                 "_counter", "_worker_id", "_midstream", "_min_timeout")

    def __init__(self, config: Config | None = None, worker_id: int = 0) -> None:
        self.config = config if config is not None else Config()
        self.stats = {"active": 0, "created": 0, "evicted": 0, "timed_out": 0, "reused": 0}
        self.evicted: list[Flow] = []
        self.capacity = max(1, min(self.config.flow_max, self.config.flow_memcap // FLOW_COST))
        self._flows: dict[tuple, Flow] = {}
        self._heap: list[tuple[float, int, Flow]] = []
        self._next_check = float("-inf")
        self._counter = 0
        # Ids from different workers must not collide: the worker id is
        # folded into the counter before mixing.
        self._worker_id = worker_id & 0xFF
        self._midstream = self.config.stream_midstream

    def __len__(self) -> int:
        return self.stats["active"]

    # -- per packet -------------------------------------------------------------

    def lookup(self, pkt: Packet) -> Flow | None:
        """Find or create the flow of a decoded packet, update it, and set
        `pkt.flow` / `pkt.to_server`. Returns None for packets that cannot
        have a flow (not decoded to IP, or an unreassembled fragment).
        Call it only for packets `decode` accepted."""
        if not pkt.ip_version or pkt.is_fragment:
            return None
        proto = pkt.proto
        if proto not in FLOW_PROTOCOLS:
            # As Suricata: IGMP, ESP, GRE, ... are inspected packet by packet
            # (`ip` rules still see them) but get no flow or flow record.
            return None
        key = (pkt.src, pkt.sport, pkt.dst, pkt.dport, proto, pkt.vlan)
        flow = self._flows.get(key)
        if flow is None:
            flow = self._create(pkt, key)
        elif proto == PROTO_TCP and (pkt.tcp_flags & _SYN_ACK) == TH_SYN and \
                (flow.tcp_state == "closed" or flow.tcp_state == "reset"):
            flow = self._reuse(flow, pkt, key)
        ts = pkt.ts
        if ts > flow.last:
            flow.last = ts
        to_server = pkt.sport == flow.client_port and pkt.src == flow.client_ip
        if to_server:
            flow.pkts_toserver += 1
            flow.bytes_toserver += len(pkt.data)
        else:
            flow.pkts_toclient += 1
            flow.bytes_toclient += len(pkt.data)
            if flow.server_mac is None:
                flow.server_mac = pkt.src_mac
        pkt.flow = flow
        pkt.to_server = to_server
        if proto == PROTO_TCP:
            flags = pkt.tcp_flags
            if to_server:
                flow.tcp_flags_ts |= flags
            else:
                flow.tcp_flags_tc |= flags
            if flags & _STATE_CHANGING_FLAGS or not flow.established:
                self._tcp_state(flow, flags, to_server)
        elif not flow.established and flow.pkts_toserver and flow.pkts_toclient:
            flow.established = True
            flow.state = "established"
        return flow

    def _create(self, pkt: Packet, key: tuple) -> Flow:
        if self.stats["active"] >= self.capacity:
            self._evict_one()
        self._counter += 1
        mixed = (((self._counter << 8) | self._worker_id) * _ID_MULTIPLIER) & _ID_MASK
        flags = pkt.tcp_flags if pkt.proto == PROTO_TCP else 0
        if flags & _SYN_ACK == _SYN_ACK:
            # We missed the SYN: the sender of a SYN/ACK is the server.
            reverse = (pkt.dst, pkt.dport, pkt.src, pkt.sport, pkt.proto, pkt.vlan)
            flow = Flow(mixed | _ID_HIGH_BIT, reverse, pkt.proto, pkt.dst, pkt.dport, pkt.src,
                        pkt.sport, pkt.ts)
            flow.server_mac = pkt.src_mac
        else:
            reverse = (pkt.dst, pkt.dport, pkt.src, pkt.sport, pkt.proto, pkt.vlan)
            flow = Flow(mixed | _ID_HIGH_BIT, key, pkt.proto, pkt.src, pkt.sport, pkt.dst,
                        pkt.dport, pkt.ts)
            flow.client_mac = pkt.src_mac
        self._flows[key] = flow
        self._flows[reverse] = flow
        if pkt.proto == PROTO_TCP:
            if flags & _SYN_ACK == TH_SYN:
                flow.tcp_state = "syn_sent"
            elif self._midstream:
                flow.midstream = True
                flow.established = True
                flow.state = "established"
                flow.tcp_state = "established"
        stats = self.stats
        stats["active"] += 1
        stats["created"] += 1
        deadline = pkt.ts + self._timeout(flow)
        flow.queued_deadline = deadline
        heapq.heappush(self._heap, (deadline, flow.id, flow))
        return flow

    def _reuse(self, old: Flow, pkt: Packet, key: tuple) -> Flow:
        """A fresh SYN on a finished TCP session: retire the old flow."""
        self._remove(old, "forced")
        self.evicted.append(old)
        self.stats["reused"] += 1
        return self._create(pkt, key)

    def _tcp_state(self, flow: Flow, flags: int, to_server: bool) -> None:
        if flags & TH_RST:
            # Suricata's vocabulary: a reset session is "closed" (EVE tcp.state).
            if flow.tcp_state != "closed":
                flow.tcp_state = "closed"
                self._closed(flow)
            return
        state = flow.tcp_state
        if flags & TH_SYN:
            if flags & TH_ACK:
                # A SYN/ACK comes from the server, or from the client in a
                # simultaneous open (the "4-way handshake" Suricata accepts).
                if state == "syn_sent" and to_server == flow.four_way:
                    flow.tcp_state = "syn_recv"
            elif state == "syn_sent" and not to_server:
                flow.four_way = True
            return
        if flags & TH_FIN:
            if state == "closed" or state == "reset":
                return
            other_side_fin = flow.tcp_flags_tc & TH_FIN if to_server else flow.tcp_flags_ts & TH_FIN
            if other_side_fin:
                flow.tcp_state = "closed"
                self._closed(flow)
            else:
                flow.tcp_state = "fin_wait" if to_server else "close_wait"
            return
        if state == "syn_recv" and to_server != flow.four_way and flags & TH_ACK:
            flow.tcp_state = "established"
            flow.established = True
            flow.state = "established"

    def _closed(self, flow: Flow) -> None:
        flow.state = "closed"
        # The closed timeout is usually shorter than the one the flow is
        # queued with: queue it again so it leaves on time.
        deadline = flow.last + self.config.flow_timeout_closed
        if deadline < flow.queued_deadline:
            flow.queued_deadline = deadline
            heapq.heappush(self._heap, (deadline, flow.id, flow))

    # -- timeouts and eviction --------------------------------------------------

    def _timeout(self, flow: Flow) -> float:
        config = self.config
        if flow.state == "closed":
            return config.flow_timeout_closed
        proto = flow.proto
        if proto == PROTO_UDP:
            return config.flow_timeout_udp
        if proto == PROTO_ICMP or proto == PROTO_ICMPV6:
            return config.flow_timeout_icmp
        if flow.established:
            return config.flow_timeout_established
        return config.flow_timeout_new

    def _remove(self, flow: Flow, reason: str) -> None:
        flow.end_reason = reason
        flows = self._flows
        key = flow.key
        if flows.get(key) is flow:
            del flows[key]
        client_ip, client_port, server_ip, server_port, proto, vlan = key
        reverse = (server_ip, server_port, client_ip, client_port, proto, vlan)
        if flows.get(reverse) is flow:
            del flows[reverse]
        self.stats["active"] -= 1

    def _evict_one(self) -> None:
        heap = self._heap
        while heap:
            deadline, flow_id, flow = heapq.heappop(heap)
            if flow.end_reason is not None or deadline != flow.queued_deadline:
                continue                      # already gone, or a superseded entry
            real = flow.last + self._timeout(flow)
            if real > deadline:
                flow.queued_deadline = real
                heapq.heappush(heap, (real, flow_id, flow))
                continue
            self._remove(flow, "forced")
            self.evicted.append(flow)
            self.stats["evicted"] += 1
            return

    def expire(self, now: float) -> list[Flow]:
        """Flows that ended: evicted or reused ones since the last call, and
        (at most once per second of packet time) those whose timeout elapsed
        by `now` (end_reason "timeout"). Cheap enough to call per packet."""
        if now < self._next_check:
            if not self.evicted:
                return []
            ended, self.evicted = self.evicted, []
            return ended
        self._next_check = now + _EXPIRE_INTERVAL
        ended, self.evicted = self.evicted, []
        heap = self._heap
        timed_out = 0
        while heap and heap[0][0] <= now:
            deadline, flow_id, flow = heapq.heappop(heap)
            if flow.end_reason is not None or deadline != flow.queued_deadline:
                continue
            real = flow.last + self._timeout(flow)
            if real > now:
                flow.queued_deadline = real
                heapq.heappush(heap, (real, flow_id, flow))
                continue
            self._remove(flow, "timeout")
            ended.append(flow)
            timed_out += 1
        self.stats["timed_out"] += timed_out
        return ended

    def flush(self) -> list[Flow]:
        """End every flow (end of input), oldest first, plus any evicted ones
        not yet collected. Leaves the table empty."""
        ended, self.evicted = self.evicted, []
        remaining = self.flows()
        remaining.sort(key=lambda flow: (flow.start, flow.id))
        for flow in remaining:
            flow.end_reason = "shutdown"
        ended.extend(remaining)
        self._flows.clear()
        self._heap.clear()
        self.stats["active"] = 0
        return ended

    def flows(self) -> list[Flow]:
        """The live flows (each once), for stats pages and tests."""
        # Each flow is entered twice; keep the entry under its own key. (`==`,
        # not `is`: a flow between one address:port and itself has one entry.)
        return [flow for key, flow in self._flows.items() if key == flow.key]
