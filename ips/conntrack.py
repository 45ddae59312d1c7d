"""Volume of flows bypassed in the kernel, from conntrack accounting.

Theory of operation
-------------------
Once a worker judges a flow it answers with the bypass mark; the kernel saves
the mark in the conntrack entry and accepts the rest of the connection
without queueing it (`ips.nfq`). The worker's flow record for such a flow
therefore counts only the packets before the bypass, and it is written when
the worker's flow times out, long before the connection really ends. The
device profiler would be blind to the volume of exactly the flows that carry
most of it (bulk transfers are bypassed at the inspection depth).

The kernel still counts every packet of the connection when
`net.netfilter.nf_conntrack_acct` is on (and records its start and end times
when `net.netfilter.nf_conntrack_timestamp` is on); both are switched on in
the box's network namespace before the rules exist, because the kernel
attaches the counters to an entry only when it is created. When the entry is
destroyed (TCP TIME_WAIT or CLOSE over, UDP timeout, table flush), ctnetlink
multicasts a DESTROY message with the counters and the connmark. So:

    kernel ─DESTROY (netlink group 3)─▶ DestroyListener (control process, I/O)
                                          │ parse_messages / to_flow_end (sans-IO)
                                          │ only entries whose connmark has MARK_BYPASS
                                          ▼ ConntrackEnd, over the events queue
    worker ─BypassNote, FlowEnd──────▶ BypassLedger (collector process, sans-IO)
                                          │ one FlowEnd per bypassed connection
                                          ▼
                                       Collector (EVE, store, inventory, profiler)

The one rule (`BypassLedger`): for a connection the kernel bypassed, the
conntrack record is the flow record, and its counters are the volume (they
include the packets the worker saw before the bypass). The worker's own
FlowEnd with action "bypass" is not written while the listener is active;
what only the worker knows (flow id, MACs, app_proto, alerted, TCP flags) is
merged into the conntrack record, from the `BypassNote` the worker sends
when it bypasses (so the MACs are there even when the connection ends
before the worker's flow times out) and from the worker's FlowEnd if that
comes first. Without an active listener the worker's FlowEnd is written as
before (partial volume): never nothing, never twice. This holds for TCP and
UDP; other protocols (ICMPv6 neighbour discovery, ICMP errors) may have no
conntrack entry to carry the mark, so for them the worker's record stays the
record and the kernel's is ignored. A worker record absorbed for a
connection whose kernel record never came (events lost) is written at the
end of the run, after the service has reported every connection still open
(`DestroyListener.dump_open`: counters read and zeroed in one operation).

Times: `start`/`end` come from the timestamp extension (wall clock, ns).
The kernel stamps `end` when it destroys the entry, which is after the
state's timeout (TIME_WAIT 120 s, UDP 30/120 s by default), not at the last
packet. Without the extension, `start` is the worker's note's start (else
the time the message was received) and `end` is the time it was received.

The parser walks netlink attributes with bounds checks only; a truncated or
malformed message is counted and skipped, never raised.
"""
from __future__ import annotations

import errno
import logging
import os
import select
import socket
import struct
import threading
import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterator

from ips import events
from ips.nfq import MARK_BYPASS, MARK_MASK

log = logging.getLogger("reefguard.conntrack")

# --- netlink / ctnetlink constants (linux/netfilter/nfnetlink_conntrack.h) ---
NETLINK_NETFILTER = 12
NFNLGRP_CONNTRACK_DESTROY = 3
NFNL_SUBSYS_CTNETLINK = 1
IPCTNL_MSG_CT_NEW = 0
IPCTNL_MSG_CT_DELETE = 2
IPCTNL_MSG_CT_GET_CTRZERO = 3
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x01
NLM_F_DUMP = 0x300
NLA_TYPE_MASK = 0x3FFF   # strips NLA_F_NESTED / NLA_F_NET_BYTEORDER

CTA_TUPLE_ORIG = 1
CTA_STATUS = 3
CTA_PROTOINFO = 4
CTA_MARK = 8
CTA_COUNTERS_ORIG = 9
CTA_COUNTERS_REPLY = 10
CTA_ID = 12
CTA_TIMESTAMP = 20
CTA_MARK_MASK = 21
CTA_TUPLE_IP = 1
CTA_TUPLE_PROTO = 2
CTA_IP_V4_SRC, CTA_IP_V4_DST, CTA_IP_V6_SRC, CTA_IP_V6_DST = 1, 2, 3, 4
CTA_PROTO_NUM, CTA_PROTO_SRC_PORT, CTA_PROTO_DST_PORT = 1, 2, 3
CTA_PROTO_ICMP_TYPE, CTA_PROTO_ICMP_CODE = 5, 6
CTA_PROTO_ICMPV6_TYPE, CTA_PROTO_ICMPV6_CODE = 8, 9
CTA_COUNTERS_PACKETS, CTA_COUNTERS_BYTES = 1, 2
CTA_COUNTERS32_PACKETS, CTA_COUNTERS32_BYTES = 3, 4
CTA_TIMESTAMP_START, CTA_TIMESTAMP_STOP = 1, 2
CTA_PROTOINFO_TCP = 1
CTA_PROTOINFO_TCP_STATE = 1
IPS_SEEN_REPLY = 1 << 1

_NLMSG_HEADER = struct.Struct("=IHHII")
_NLA_HEADER = struct.Struct("=HH")
_NFGEN_HEADER_SIZE = 4
MAX_ATTRIBUTE_DEPTH = 4   # ctnetlink nests three deep; deeper is malformed

# Sysctls of the box's namespace that make the kernel count and stamp entries.
ACCOUNTING_SYSCTLS = ("nf_conntrack_acct", "nf_conntrack_timestamp")
SYSCTL_DIR = "/proc/sys/net/netfilter/"

PROTO_NAMES = {1: "ICMP", 6: "TCP", 17: "UDP", 58: "IPv6-ICMP"}
# conntrack TCP states (enum tcp_conntrack) in the worker's vocabulary (ips.flow)
TCP_STATES = {0: "none", 1: "syn_sent", 2: "syn_recv", 3: "established", 4: "fin_wait",
              5: "close_wait", 6: "closed", 7: "closed", 8: "closed", 9: "syn_sent"}

DEFAULT_RECEIVE_BUFFER = 8 << 20   # a burst of destroys (table flush) fits
MAX_DATAGRAM = 1 << 16
KERNEL_FLOW_ID_BIT = 1 << 51
DEFAULT_MAX_PENDING = 65536        # notes of bypassed connections still open
# Protocols whose every bypassed flow has a conntrack entry to carry the mark
# and the counters. ICMPv6 neighbour discovery / MLD and ICMP errors are not
# tracked as connections, so for anything but TCP and UDP the worker's record
# stays the flow record (and the kernel's is ignored, so nothing counts twice).
ACCOUNTED_PROTOCOLS = frozenset({"TCP", "UDP"})


# ----------------------------------------------------------------------
# what crosses the events queue

@events.quick_pickle
@dataclass(frozen=True, slots=True)
class ConntrackEntry:
    """One decoded ctnetlink conntrack message (a DESTROY event or a dump line)."""
    conntrack_id: int
    """The kernel's id of the entry (unique among live entries)."""
    destroyed: bool
    """True for a DESTROY event; False for an entry read from a dump (still alive)."""
    proto: int
    """IP protocol number."""
    src_ip: str
    """Original direction: the side that sent the first packet."""
    src_port: int
    """Original source port (ICMP: type)."""
    dest_ip: str
    dest_port: int
    """Original destination port (ICMP: code)."""
    mark: int
    """The connmark."""
    status: int
    """IPS_* status bits."""
    packets_orig: int | None
    """Packets in the original direction; None when the entry had no counters."""
    bytes_orig: int | None
    """Bytes (whole IP packets) in the original direction."""
    packets_reply: int | None
    bytes_reply: int | None
    start_ns: int | None
    """Timestamp extension: creation time (ns since the epoch), if on."""
    stop_ns: int | None
    """Timestamp extension: destruction time; absent for a live entry."""
    tcp_state: int | None
    """enum tcp_conntrack, TCP only."""


@events.quick_pickle
@dataclass(frozen=True, slots=True)
class ConntrackEnd:
    """A bypassed connection's record from the kernel, on its way to the ledger."""
    flow_end: events.FlowEnd
    """The record with the kernel's counters; MACs unknown (None)."""
    conntrack_id: int
    """Kernel id of the entry; flow_id is derived from it when no note matches."""
    accounted: bool
    """False when the entry had no counters (created before accounting was on)."""
    timestamped: bool
    """False when the entry had no timestamp extension (times are receive times)."""


@events.quick_pickle
@dataclass(frozen=True, slots=True)
class BypassNote:
    """Sent by a worker when it hands a flow to the kernel: what only it knows."""
    tuple: events.FiveTuple
    """The worker's flow key, client first."""
    flow_id: int
    """The worker's flow id, so the record keeps the id alerts carry."""
    start: float
    """Time of the flow's first packet."""
    app_proto: str | None
    client_mac: str | None
    server_mac: str | None
    alerted: bool
    tcp_flags_ts: int = 0
    tcp_flags_tc: int = 0
    pkts_toserver: int = 0
    """Counters at bypass time: the volume if the kernel entry has no counters."""
    pkts_toclient: int = 0
    bytes_toserver: int = 0
    bytes_toclient: int = 0


@events.quick_pickle
@dataclass(frozen=True, slots=True)
class ListenerState:
    """The control process tells the ledger whether kernel records will come."""
    active: bool
    reason: str = ""


def note_from_flow(flow) -> BypassNote:
    """The note for an `ips.flow.Flow` that was just bypassed."""
    from ips.packet import PROTO_NAMES as PACKET_PROTO_NAMES
    return BypassNote(
        tuple=events.FiveTuple(flow.client_ip, flow.client_port, flow.server_ip,
                               flow.server_port, PACKET_PROTO_NAMES.get(flow.proto, str(flow.proto))),
        flow_id=flow.id, start=flow.start, app_proto=flow.app_proto,
        client_mac=flow.client_mac, server_mac=flow.server_mac, alerted=flow.alerted,
        tcp_flags_ts=flow.tcp_flags_ts, tcp_flags_tc=flow.tcp_flags_tc,
        pkts_toserver=flow.pkts_toserver, pkts_toclient=flow.pkts_toclient,
        bytes_toserver=flow.bytes_toserver, bytes_toclient=flow.bytes_toclient)


# ----------------------------------------------------------------------
# sans-IO: netlink bytes -> entries -> FlowEnd

class Malformed(Exception):
    """Internal: a message that does not decode (never leaves this module)."""


def iter_messages(data: bytes) -> Iterator[tuple[int, int, memoryview]]:
    """(message type, flags, payload) for each netlink message in a datagram.
    Raises Malformed at the first message whose header does not fit."""
    view = memoryview(data)
    offset = 0
    while offset + _NLMSG_HEADER.size <= len(view):
        length, msg_type, flags, _seq, _pid = _NLMSG_HEADER.unpack_from(view, offset)
        if length < _NLMSG_HEADER.size or offset + length > len(view):
            raise Malformed("netlink length")
        yield msg_type, flags, view[offset + _NLMSG_HEADER.size: offset + length]
        offset += (length + 3) & ~3
    if offset < len(view) and any(view[offset:]):
        raise Malformed("trailing bytes")


def _attributes(view: memoryview) -> dict[int, memoryview]:
    """Top-level attributes of one nest (last one wins on repeats)."""
    found: dict[int, memoryview] = {}
    offset = 0
    while offset + _NLA_HEADER.size <= len(view):
        length, attr_type = _NLA_HEADER.unpack_from(view, offset)
        if length < _NLA_HEADER.size or offset + length > len(view):
            raise Malformed("attribute length")
        found[attr_type & NLA_TYPE_MASK] = view[offset + _NLA_HEADER.size: offset + length]
        offset += (length + 3) & ~3
    return found


def _be(view: memoryview | None, size: int) -> int | None:
    if view is None:
        return None
    if len(view) < size:
        raise Malformed("short integer")
    return int.from_bytes(view[:size], "big")


def _address(view: memoryview | None, size: int) -> str | None:
    if view is None:
        return None
    if len(view) < size:
        raise Malformed("short address")
    family = socket.AF_INET if size == 4 else socket.AF_INET6
    return socket.inet_ntop(family, bytes(view[:size]))


def _counters(view: memoryview | None) -> tuple[int | None, int | None]:
    if view is None:
        return None, None
    nest = _attributes(view)
    packets = _be(nest.get(CTA_COUNTERS_PACKETS), 8)
    octets = _be(nest.get(CTA_COUNTERS_BYTES), 8)
    if packets is None:
        packets = _be(nest.get(CTA_COUNTERS32_PACKETS), 4)
    if octets is None:
        octets = _be(nest.get(CTA_COUNTERS32_BYTES), 4)
    return packets, octets


def decode_entry(msg_type: int, payload: memoryview) -> ConntrackEntry | None:
    """One ctnetlink message -> entry; None for messages that are not
    conntrack NEW/DELETE (errors, DONE, expectations). Raises Malformed."""
    if msg_type >> 8 != NFNL_SUBSYS_CTNETLINK or (msg_type & 0xFF) not in (
            IPCTNL_MSG_CT_NEW, IPCTNL_MSG_CT_DELETE):
        return None
    if len(payload) < _NFGEN_HEADER_SIZE:
        raise Malformed("nfgenmsg")
    top = _attributes(payload[_NFGEN_HEADER_SIZE:])
    orig = top.get(CTA_TUPLE_ORIG)
    if orig is None:
        raise Malformed("no original tuple")
    tuple_nest = _attributes(orig)
    ip_nest = _attributes(tuple_nest.get(CTA_TUPLE_IP, memoryview(b"")))
    proto_nest = _attributes(tuple_nest.get(CTA_TUPLE_PROTO, memoryview(b"")))
    src = _address(ip_nest.get(CTA_IP_V4_SRC), 4) or _address(ip_nest.get(CTA_IP_V6_SRC), 16)
    dst = _address(ip_nest.get(CTA_IP_V4_DST), 4) or _address(ip_nest.get(CTA_IP_V6_DST), 16)
    proto = _be(proto_nest.get(CTA_PROTO_NUM), 1)
    if src is None or dst is None or proto is None:
        raise Malformed("incomplete tuple")
    if proto in (1, 58):
        # Flow records of ICMP carry type/code where other protocols have ports.
        type_key, code_key = ((CTA_PROTO_ICMP_TYPE, CTA_PROTO_ICMP_CODE) if proto == 1
                              else (CTA_PROTO_ICMPV6_TYPE, CTA_PROTO_ICMPV6_CODE))
        sport = _be(proto_nest.get(type_key), 1) or 0
        dport = _be(proto_nest.get(code_key), 1) or 0
    else:
        sport = _be(proto_nest.get(CTA_PROTO_SRC_PORT), 2) or 0
        dport = _be(proto_nest.get(CTA_PROTO_DST_PORT), 2) or 0
    packets_orig, bytes_orig = _counters(top.get(CTA_COUNTERS_ORIG))
    packets_reply, bytes_reply = _counters(top.get(CTA_COUNTERS_REPLY))
    start_ns = stop_ns = None
    if CTA_TIMESTAMP in top:
        stamps = _attributes(top[CTA_TIMESTAMP])
        start_ns = _be(stamps.get(CTA_TIMESTAMP_START), 8)
        stop_ns = _be(stamps.get(CTA_TIMESTAMP_STOP), 8)
    tcp_state = None
    if CTA_PROTOINFO in top:
        tcp = _attributes(top[CTA_PROTOINFO]).get(CTA_PROTOINFO_TCP)
        if tcp is not None:
            tcp_state = _be(_attributes(tcp).get(CTA_PROTOINFO_TCP_STATE), 1)
    return ConntrackEntry(
        conntrack_id=_be(top.get(CTA_ID), 4) or 0,
        destroyed=(msg_type & 0xFF) == IPCTNL_MSG_CT_DELETE,
        proto=proto, src_ip=src, src_port=sport, dest_ip=dst, dest_port=dport,
        mark=_be(top.get(CTA_MARK), 4) or 0, status=_be(top.get(CTA_STATUS), 4) or 0,
        packets_orig=packets_orig, bytes_orig=bytes_orig,
        packets_reply=packets_reply, bytes_reply=bytes_reply,
        start_ns=start_ns, stop_ns=stop_ns, tcp_state=tcp_state)


def parse_messages(data: bytes) -> tuple[list[ConntrackEntry], int]:
    """All conntrack entries in a netlink datagram, and how many messages
    were malformed (skipped). Never raises."""
    entries: list[ConntrackEntry] = []
    malformed = 0
    try:
        for msg_type, _flags, payload in iter_messages(data):
            try:
                entry = decode_entry(msg_type, payload)
            except (Malformed, ValueError, struct.error):
                malformed += 1
                continue
            if entry is not None:
                entries.append(entry)
    except (Malformed, struct.error):
        malformed += 1
    return entries, malformed


def is_bypassed(mark: int) -> bool:
    """Whether a connmark says ReefGuard handed the connection to the kernel."""
    return mark & MARK_MASK == MARK_BYPASS


def to_flow_end(entry: ConntrackEntry, received_at: float,
                reason: str = "bypass_end") -> ConntrackEnd:
    """The flow record of a bypassed connection, client -> server being the
    original direction. MACs are unknown here (the ledger adds them)."""
    accounted = entry.bytes_orig is not None or entry.bytes_reply is not None
    timestamped = entry.start_ns is not None
    start = entry.start_ns / 1e9 if entry.start_ns is not None else received_at
    end = entry.stop_ns / 1e9 if entry.stop_ns is not None else received_at
    end = max(end, start)
    if entry.proto == 6:
        tcp_state = TCP_STATES.get(entry.tcp_state or 0, "none")
        state = ("closed" if tcp_state == "closed" else
                 "established" if tcp_state in ("established", "fin_wait", "close_wait") else "new")
    else:
        tcp_state = None
        state = "established" if entry.status & IPS_SEEN_REPLY else "new"
    flow_end = events.FlowEnd(
        timestamp=end,
        # Used only when no worker note matches. Workers' ids all have bit 52
        # set (ips.flow); below it, with bit 51 set, these cannot collide with
        # them and stay exact in JSON consumers (< 2**53).
        flow_id=KERNEL_FLOW_ID_BIT | (entry.conntrack_id & 0xFFFFFFFF),
        tuple=events.FiveTuple(entry.src_ip, entry.src_port, entry.dest_ip, entry.dest_port,
                               PROTO_NAMES.get(entry.proto, str(entry.proto))),
        app_proto=None, start=start, end=end,
        pkts_toserver=entry.packets_orig or 0, pkts_toclient=entry.packets_reply or 0,
        bytes_toserver=entry.bytes_orig or 0, bytes_toclient=entry.bytes_reply or 0,
        state=state, reason=reason, alerted=False, action="bypass",
        tcp_state=tcp_state)
    return ConntrackEnd(flow_end, entry.conntrack_id, accounted, timestamped)


def translate(data: bytes, received_at: float) -> tuple[list[ConntrackEnd], int, int]:
    """A datagram of DESTROY events -> records of bypassed connections.
    Returns (records, entries skipped because not bypassed, malformed)."""
    entries, malformed = parse_messages(data)
    records = []
    skipped = 0
    for entry in entries:
        if not is_bypassed(entry.mark) or PROTO_NAMES.get(entry.proto) not in ACCOUNTED_PROTOCOLS:
            skipped += 1
            continue
        records.append(to_flow_end(entry, received_at,
                                   "bypass_end" if entry.destroyed else "shutdown"))
    return records, skipped, malformed


# ----------------------------------------------------------------------
# sans-IO: the ledger (collector process)

def _key(five: events.FiveTuple) -> tuple:
    return (five.src_ip, five.src_port, five.dest_ip, five.dest_port, five.proto)


def _reversed_key(five: events.FiveTuple) -> tuple:
    return (five.dest_ip, five.dest_port, five.src_ip, five.src_port, five.proto)


class BypassLedger:
    """Makes one flow record per bypassed connection (see the module docstring).

    `feed(message)` takes whatever arrives on the events queue and returns the
    events for the Collector: other events pass through unchanged; a worker's
    FlowEnd with action "bypass" is absorbed while the listener is active; a
    `ConntrackEnd` becomes the FlowEnd, merged with the worker's note.
    Notes of connections still open are bounded (`max_pending`, oldest
    forgotten first, counted)."""

    __slots__ = ("active", "max_pending", "pending", "held", "counters")

    def __init__(self, active: bool = False, max_pending: int = DEFAULT_MAX_PENDING) -> None:
        self.active = active
        self.max_pending = max_pending
        self.pending: dict[tuple, BypassNote] = {}
        self.held: dict[tuple, events.FlowEnd] = {}
        """Worker records absorbed while their connection is still open
        (keys are a subset of `pending`): the fallback at `done()`."""
        self.counters = {"records": 0, "merged": 0, "without_note": 0, "unaccounted": 0,
                         "worker_records_absorbed": 0, "worker_records_passed": 0,
                         "notes_evicted": 0}

    def feed(self, message: Any) -> list[Any]:
        if isinstance(message, ConntrackEnd):
            return [self._conntrack_end(message)]
        if isinstance(message, BypassNote):
            if self.active and message.tuple.proto in ACCOUNTED_PROTOCOLS:
                self._remember(message)
            return []
        if isinstance(message, ListenerState):
            self.active = message.active
            if not message.active:
                # No kernel record will come: the held worker records are the
                # flow records after all.
                flows = list(self.held.values())
                self.pending.clear()
                self.held.clear()
                self.counters["worker_records_passed"] += len(flows)
                return flows
            return []
        if isinstance(message, events.FlowEnd) and message.action == "bypass":
            return self._worker_flow_end(message)
        if isinstance(message, events.Stats):
            counters = dict(message.counters)
            counters["bypass_accounting"] = dict(self.counters, pending=len(self.pending),
                                                 active=int(self.active))
            return [replace(message, counters=counters)]
        return [message]

    def _remember(self, note: BypassNote) -> None:
        key = _key(note.tuple)
        if key not in self.pending and len(self.pending) >= self.max_pending:
            oldest = next(iter(self.pending))
            del self.pending[oldest]
            self.held.pop(oldest, None)
            self.counters["notes_evicted"] += 1
        self.pending[key] = note

    def _worker_flow_end(self, flow: events.FlowEnd) -> list[events.FlowEnd]:
        if not self.active or flow.tuple.proto not in ACCOUNTED_PROTOCOLS:
            self.counters["worker_records_passed"] += 1
            return [flow]
        self.counters["worker_records_absorbed"] += 1
        key = _key(flow.tuple)
        if key in self.pending:
            # The connection is still open in the kernel: keep the final
            # metadata (alerted, flags) for the kernel's record.
            note = self.pending[key]
            self.pending[key] = replace(
                note, app_proto=flow.app_proto or note.app_proto,
                client_mac=flow.client_mac or note.client_mac,
                server_mac=flow.server_mac or note.server_mac,
                alerted=flow.alerted or note.alerted,
                tcp_flags_ts=flow.tcp_flags_ts | note.tcp_flags_ts,
                tcp_flags_tc=flow.tcp_flags_tc | note.tcp_flags_tc)
            self.held[key] = flow
        return []

    def _conntrack_end(self, record: ConntrackEnd) -> events.FlowEnd:
        self.counters["records"] += 1
        flow = record.flow_end
        note = self.pending.pop(_key(flow.tuple), None)
        self.held.pop(_key(flow.tuple), None)
        swapped = False
        if note is None:
            note = self.pending.pop(_reversed_key(flow.tuple), None)
            self.held.pop(_reversed_key(flow.tuple), None)
            swapped = note is not None
        if swapped:
            # The worker took the other side as the client (it saw a SYN/ACK
            # first): keep its orientation so alerts and flows agree.
            five = flow.tuple
            flow = replace(flow, tuple=events.FiveTuple(five.dest_ip, five.dest_port,
                                                        five.src_ip, five.src_port, five.proto),
                           pkts_toserver=flow.pkts_toclient, pkts_toclient=flow.pkts_toserver,
                           bytes_toserver=flow.bytes_toclient, bytes_toclient=flow.bytes_toserver)
        if not record.accounted:
            self.counters["unaccounted"] += 1
        if note is None:
            self.counters["without_note"] += 1
            return flow
        self.counters["merged"] += 1
        changes: dict[str, Any] = dict(
            flow_id=note.flow_id, app_proto=note.app_proto, client_mac=note.client_mac,
            server_mac=note.server_mac, alerted=note.alerted,
            tcp_flags_ts=note.tcp_flags_ts, tcp_flags_tc=note.tcp_flags_tc)
        if not record.timestamped:
            changes["start"] = min(note.start, flow.start)
        if not record.accounted:
            # An entry created before accounting was on: the worker's counts
            # at bypass time are the best (lower) bound there is.
            changes.update(pkts_toserver=note.pkts_toserver, pkts_toclient=note.pkts_toclient,
                           bytes_toserver=note.bytes_toserver,
                           bytes_toclient=note.bytes_toclient)
        return replace(flow, **changes)

    def done(self) -> list[Any]:
        """End of the run. The service has reported every bypassed connection
        still open (`DestroyListener.dump_open`) before this, so a worker
        record still held belongs to a connection whose kernel record was lost
        (events dropped for a full socket buffer): it is written, partial,
        rather than nothing."""
        flows = list(self.held.values())
        self.counters["worker_records_passed"] += len(flows)
        self.counters["kernel_records_missing"] = len(flows)
        self.pending.clear()
        self.held.clear()
        return flows


# ----------------------------------------------------------------------
# I/O: sysctls and the netlink listener (control process)

def enable_accounting(sysctl_dir: str = SYSCTL_DIR) -> dict[str, str]:
    """Switch conntrack accounting and timestamps on in this network
    namespace; return the previous values (for `restore_accounting`).
    A sysctl that cannot be set is left out (and logged)."""
    before: dict[str, str] = {}
    for name in ACCOUNTING_SYSCTLS:
        path = os.path.join(sysctl_dir, name)
        try:
            with open(path) as handle:
                previous = handle.read().strip()
            with open(path, "w") as handle:
                handle.write("1\n")
            before[name] = previous
        except OSError as exc:
            log.warning("could not enable net.netfilter.%s (%s)", name, exc)
    return before


def restore_accounting(before: dict[str, str], sysctl_dir: str = SYSCTL_DIR) -> None:
    for name, value in before.items():
        if name not in ACCOUNTING_SYSCTLS:
            continue   # a state file is input: write only our own switches
        try:
            with open(os.path.join(sysctl_dir, name), "w") as handle:
                handle.write(value + "\n")
        except OSError:
            log.warning("could not restore net.netfilter.%s", name)


def _dump_request(sequence: int, mark: int, mask: int) -> bytes:
    attributes = b""
    for attr_type, value in ((CTA_MARK, mark), (CTA_MARK_MASK, mask)):
        attributes += _NLA_HEADER.pack(8, attr_type) + struct.pack("!I", value)
    body = struct.pack("=BBH", socket.AF_UNSPEC, 0, 0) + attributes
    msg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET_CTRZERO
    return _NLMSG_HEADER.pack(_NLMSG_HEADER.size + len(body), msg_type,
                              NLM_F_REQUEST | NLM_F_DUMP, sequence, 0) + body


class DestroyListener:
    """Receives conntrack DESTROY events of this network namespace and sends
    a `ConntrackEnd` for each bypassed connection to `sink` (the events
    queue). Runs in a daemon thread of the control process."""

    def __init__(self, sink: Callable[[Any], None], *,
                 receive_buffer: int = DEFAULT_RECEIVE_BUFFER,
                 clock: Callable[[], float] = time.time) -> None:
        self.sink = sink
        self.receive_buffer = receive_buffer
        self.clock = clock
        self.sock: socket.socket | None = None
        self.thread: threading.Thread | None = None
        self.stopping = threading.Event()
        self.counters = {"messages": 0, "bypassed": 0, "other": 0, "malformed": 0,
                         "lost": 0, "errors": 0, "shutdown_records": 0}

    def open(self) -> None:
        """Bind the destroy group. Raises OSError when not permitted."""
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        try:
            try:
                # Root may exceed net.core.rmem_max: a table flush is a burst.
                sock.setsockopt(socket.SOL_SOCKET, 33, self.receive_buffer)  # SO_RCVBUFFORCE
            except OSError:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.receive_buffer)
            sock.bind((0, 1 << (NFNLGRP_CONNTRACK_DESTROY - 1)))
        except BaseException:
            sock.close()
            raise
        self.sock = sock

    def start(self) -> None:
        self.thread = threading.Thread(target=self.serve, daemon=True, name="conntrack")
        self.thread.start()

    def serve(self) -> None:
        while not self.stopping.is_set() and self.sock is not None:
            try:
                ready, _, _ = select.select([self.sock], [], [], 0.25)
                if ready:
                    self.handle(self.sock.recv(MAX_DATAGRAM))
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    # The kernel dropped events for us: those connections'
                    # volume is lost. Counted; the socket stays usable.
                    self.counters["lost"] += 1
                    continue
                if self.stopping.is_set():
                    break
                self.counters["errors"] += 1
                log.exception("conntrack listener failed")
                time.sleep(0.25)   # a persistent error must not spin

    def handle(self, data: bytes) -> None:
        self.counters["messages"] += 1
        records, skipped, malformed = translate(data, self.clock())
        self.counters["other"] += skipped
        self.counters["malformed"] += malformed
        for record in records:
            self.counters["bypassed"] += 1
            self.sink(record)

    def stop(self) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(2)
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def dump_open(self, timeout: float = 5.0) -> int:
        """Report bypassed connections still open (service shutdown): read
        their counters and zero them in one kernel operation, so a later run
        that hears the DESTROY reports only what came after. Returns the
        number of records sent (reason "shutdown")."""
        sequence = int(time.monotonic() * 1000) & 0x7FFFFFFF
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        sent = 0
        try:
            sock.bind((0, 0))
            sock.send(_dump_request(sequence, MARK_BYPASS, MARK_MASK))
            deadline = time.monotonic() + timeout
            finished = False
            while not finished and time.monotonic() < deadline:
                ready, _, _ = select.select([sock], [], [], max(0.0, deadline - time.monotonic()))
                if not ready:
                    break
                data = sock.recv(MAX_DATAGRAM)
                try:
                    finished = any(kind in (NLMSG_DONE, NLMSG_ERROR)
                                   for kind, _flags, _payload in iter_messages(data))
                except Malformed:
                    finished = True
                records, _skipped, malformed = translate(data, self.clock())
                self.counters["malformed"] += malformed
                for record in records:
                    self.sink(record)
                    sent += 1
        except OSError as exc:
            log.warning("could not read open bypassed connections (%s)", exc)
        finally:
            sock.close()
        self.counters["shutdown_records"] += sent
        return sent
