"""Packet header sticky buffers: `ipv4.hdr`, `ipv6.hdr`, `tcp.hdr`,
`udp.hdr`, `icmpv4.hdr`, `icmpv6.hdr`.

Each is a slice of `pkt.data` at the offsets `decode` recorded, as long as
Suricata makes it (detect-*hdr.c, decode-icmpv4.c):

* ipv4.hdr: the IPv4 header with its options (IHL x 4 bytes);
* ipv6.hdr: the fixed 40-byte header. Suricata adds the extension headers'
  length, but nothing in its decoder sets that length, so its buffer is the
  40 bytes alone;
* tcp.hdr: the TCP header with its options (data offset x 4 bytes);
* udp.hdr: the 8-byte header;
* icmpv4.hdr: 8 bytes; for a timestamp request or reply the 12 bytes of
  timestamps too, and for a router advertisement its address entries, when
  the message is long enough to hold them;
* icmpv6.hdr: 8 bytes, whatever the type.

A packet that does not carry the header has no such buffer (`read` returns
None) and a rule inspecting it does not match: tcp.hdr on a UDP packet, a
transport header in a fragment (decoded only once reassembled), or the
flow-end pseudo packet, which has no bytes at all.
"""
from __future__ import annotations

from ips.packet import PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP

# Buffer -> (the IP protocols that carry it, None for any; the IP version
# it implies, 0 for either). The parser refuses a rule whose protocol
# cannot carry the header, and narrows the others to the ones that can.
SCOPES: dict[str, tuple[frozenset | None, int]] = {
    "ipv4.hdr": (None, 4),
    "ipv6.hdr": (None, 6),
    "tcp.hdr": (frozenset({PROTO_TCP}), 0),
    "udp.hdr": (frozenset({PROTO_UDP}), 0),
    "icmpv4.hdr": (frozenset({PROTO_ICMP}), 4),
    "icmpv6.hdr": (frozenset({PROTO_ICMPV6}), 6),
}

_IPV6_HEADER = 40
_ICMP_HEADER = 8
_ICMPV4_TIMESTAMP_TYPES = (13, 14)
_ICMPV4_TIMESTAMPS = 12
_ICMPV4_ROUTER_ADVERTISEMENT = 9


def is_packet_buffer(name: str) -> bool:
    """Whether a rule's buffer name (transforms included) is a packet header."""
    return name.split("|", 1)[0] in SCOPES


def _ipv4(pkt) -> bytes | None:
    if pkt.ip_version != 4:
        return None
    start, end = pkt.ip_offset, pkt.l4_offset
    if end - start < 20 or end > len(pkt.data):
        return None
    return pkt.data[start:end]


def _ipv6(pkt) -> bytes | None:
    if pkt.ip_version != 6:
        return None
    start = pkt.ip_offset
    if start + _IPV6_HEADER > len(pkt.data):
        return None
    return pkt.data[start:start + _IPV6_HEADER]


def _transport_start(pkt, proto: int) -> int:
    """Where the transport header of `proto` starts, -1 when the packet has
    none decoded."""
    if pkt.proto != proto or pkt.is_fragment or not pkt.ip_version:
        return -1
    return pkt.l4_offset


def _tcp(pkt) -> bytes | None:
    start = _transport_start(pkt, PROTO_TCP)
    data = pkt.data
    if start < 0 or start + 20 > len(data):
        return None
    end = start + ((data[start + 12] >> 4) << 2)
    if end - start < 20 or end > len(data):
        return None
    return data[start:end]


def _udp(pkt) -> bytes | None:
    start = _transport_start(pkt, PROTO_UDP)
    if start < 0 or start + 8 > len(pkt.data):
        return None
    return pkt.data[start:start + 8]


def _icmpv4(pkt) -> bytes | None:
    if pkt.ip_version != 4:
        return None
    start = _transport_start(pkt, PROTO_ICMP)
    data = pkt.data
    # The message ends with the datagram, not with the frame (link padding).
    length = min(pkt.ip_offset + pkt.ip_len, len(data)) - start
    if start < 0 or length < _ICMP_HEADER:
        return None
    size = _ICMP_HEADER
    kind = data[start]
    if kind in _ICMPV4_TIMESTAMP_TYPES:
        if length >= _ICMP_HEADER + _ICMPV4_TIMESTAMPS:
            size += _ICMPV4_TIMESTAMPS
    elif kind == _ICMPV4_ROUTER_ADVERTISEMENT:
        # Number of addresses x words per entry x 4 bytes.
        entries = data[start + 4] * data[start + 5] * 4
        if length >= _ICMP_HEADER + entries:
            size += entries
    return data[start:start + size]


def _icmpv6(pkt) -> bytes | None:
    if pkt.ip_version != 6:
        return None
    start = _transport_start(pkt, PROTO_ICMPV6)
    if start < 0 or start + _ICMP_HEADER > len(pkt.data):
        return None
    return pkt.data[start:start + _ICMP_HEADER]


_READERS = {"ipv4.hdr": _ipv4, "ipv6.hdr": _ipv6, "tcp.hdr": _tcp, "udp.hdr": _udp,
            "icmpv4.hdr": _icmpv4, "icmpv6.hdr": _icmpv6}


def read(pkt, name: str) -> bytes | None:
    """The bytes of header buffer `name` in `pkt`, None when it has none."""
    return _READERS[name](pkt)
