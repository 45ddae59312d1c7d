"""The packet as it travels through the worker pipeline.

A `Packet` is the one mutable working object of the capture plane: the source
fills the raw fields, `decode` fills the header fields, `flow` attaches the
flow and direction, and `verdict` records what happens to it. Every stage after
decode reads these slots instead of re-parsing bytes, so a field is computed
once per packet. Events that leave the worker are frozen dataclasses
(`ips.events`); packets never do.
"""
from __future__ import annotations

# Link types (pcap LINKTYPE_* values) the decoder understands.
LINKTYPE_NULL = 0          # BSD loopback: 4-byte host-order address family
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101         # raw IPv4/IPv6, no link header
LINKTYPE_LOOP = 108        # OpenBSD loopback: 4-byte network-order family
LINKTYPE_LINUX_SLL = 113
LINKTYPE_LINUX_SLL2 = 276
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_PSEUDO = -1       # not a captured frame: the worker's flow-end pseudo packet

# IP protocol numbers used throughout.
PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17
PROTO_ICMPV6 = 58

PROTO_NAMES = {PROTO_ICMP: "ICMP", PROTO_TCP: "TCP", PROTO_UDP: "UDP", PROTO_ICMPV6: "IPv6-ICMP"}

# TCP flag bits.
TH_FIN, TH_SYN, TH_RST, TH_PUSH, TH_ACK, TH_URG, TH_ECE, TH_CWR = 1, 2, 4, 8, 16, 32, 64, 128

# Verdicts a packet can receive (see ips.verdict).
ACCEPT = 0
DROP = 1
REJECT = 2
BYPASS = 3  # accept, and let the kernel pass the rest of the flow


class Packet:
    """One captured frame and everything the pipeline learned about it."""

    __slots__ = (
        # filled by the source
        "ts", "pcap_cnt", "data", "linktype",
        # filled by decode
        "src_mac", "dst_mac", "vlan", "ip_version", "src", "dst", "proto",
        "ttl", "ip_id", "ip_len", "ip_offset", "l4_offset",
        "is_fragment", "frag_offset", "more_fragments",
        "sport", "dport", "tcp_flags", "seq", "ack", "window", "tcp_options",
        "icmp_type", "icmp_code", "payload", "checksum_ok",
        "anomalies",
        "events",
        # filled by flow
        "flow", "to_server",
        # filled by detection / verdict
        "verdict", "alerts", "rewritten",
    )

    def __init__(self, data: bytes, ts: float = 0.0, pcap_cnt: int = 0,
                 linktype: int = LINKTYPE_ETHERNET) -> None:
        self.ts = ts
        self.pcap_cnt = pcap_cnt
        self.data = data
        self.linktype = linktype
        self.src_mac = self.dst_mac = None
        self.vlan = ()
        self.ip_version = 0
        self.src = self.dst = None
        self.proto = 0
        self.ttl = 0
        self.ip_id = 0
        self.ip_len = 0
        self.ip_offset = 0
        self.l4_offset = 0
        self.is_fragment = False
        self.frag_offset = 0
        self.more_fragments = False
        self.sport = self.dport = 0
        self.tcp_flags = 0
        self.seq = self.ack = 0
        self.window = 0
        self.tcp_options = b""
        self.icmp_type = self.icmp_code = -1
        self.payload = b""
        self.checksum_ok = True
        self.anomalies = None      # list[str] of decoder event names, or None
        self.events = ()           # every anomaly name recorded, kept for detection
        self.flow = None
        self.to_server = True
        self.verdict = ACCEPT
        self.alerts = None         # list of ips.detect matches, or None
        self.rewritten = None      # bytes: new L3 packet the inline source must send instead

    def anomaly(self, name: str) -> None:
        """Record a decoder event (e.g. "ipv4.trunc_pkt") on this packet."""
        if self.anomalies is None:
            self.anomalies = [name]
        else:
            self.anomalies.append(name)
        # The worker empties `anomalies` once logged; detection (decode-event,
        # stream-event) still needs them, so the names are kept here too.
        self.events += (name,)

    @property
    def proto_name(self) -> str:
        return PROTO_NAMES.get(self.proto, str(self.proto))

    def __repr__(self) -> str:
        return (f"Packet(#{self.pcap_cnt} {self.src}:{self.sport} -> "
                f"{self.dst}:{self.dport} proto={self.proto} len={len(self.payload)})")
