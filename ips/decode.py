"""Decode a captured frame into the header fields of `ips.packet.Packet`.

Theory of operation
-------------------
`decode(pkt)` walks link layer → IP → transport once, filling the packet's
slots, and returns whether there is anything left to inspect. It is the
hottest function of the engine after the capture loop, so it is written as a
few flat functions with precompiled `struct.Struct` objects, no per-layer
objects, and caches for the strings every packet needs (addresses, MACs):
building "192.0.2.1" from four bytes costs more than a dict lookup.

Malformed input never raises. Every problem becomes a Suricata-named decoder
event on the packet (`pkt.anomaly("ipv4.trunc_pkt")`). `decode` returns False
when the packet cannot be inspected further (a link or IP header too broken
to trust, or a frame that is not IP at all); such packets get no flow.

Decisions, so that later stages can rely on them:

* Link layers: Ethernet with any number (up to 3) of 802.1Q / 802.1ad / 0x9100
  tags (ids in `pkt.vlan`, outermost first) and PPPoE session frames; Linux
  SLL and SLL2; raw IP (101, 12, 14, 228, 229); BSD null and OpenBSD loop (0,
  108; the address family is accepted in either byte order, because writers
  disagree about "host order").
* Non-IP frames (ARP, LLDP, 802.3/LLC, ...) return False without an anomaly:
  they are not malformed. `src_mac`/`dst_mac` stay set for the inventory and
  `ethertype_of(pkt)` tells what they were (no Packet slot is spent on it).
* `ip_offset` is where the IP header starts in `pkt.data`, `l4_offset` where
  the transport header (or, for fragments, the fragment data) starts, and
  `ip_len` the IP datagram length from the header (IPv6: 40 + payload
  length). Link padding after the datagram is ignored.
* Fragments (IPv4 MF/offset, IPv6 fragment header) are decoded at the IP
  layer only: `is_fragment`, `frag_offset` (in BYTES), `more_fragments`,
  `ip_id` (the 32-bit identification for IPv6), `proto` (the protocol of the
  datagram), and `payload` = the fragment's data. The transport header is not
  decoded even in the first fragment — as Suricata does — because only the
  reassembled datagram (`ips.defrag`) has a trustworthy one. `decode` returns
  True for fragments so the worker hands them to the defragmenter.
* ICMP/ICMPv6: `icmp_type`/`icmp_code` from the 4-byte header, `payload`
  starts after the 8-byte header (type, code, checksum, and the 4-byte
  rest-of-header such as echo id/sequence) for every type. This matches
  Suricata (ICMPV4_HEADER_LEN = 8), so `content` on an echo request matches
  the echo data, not the identifier.
* Checksums (when `checksums=True`): IPv4 header, TCP, UDP (0 = absent on
  IPv4; mandatory on IPv6), ICMP, ICMPv6. A bad one sets
  `pkt.checksum_ok = False` and records "<layer>.invalid_checksum"; decoding
  continues (the stream stage and the checksum "auto" policy decide what a
  bad checksum means). Checksums use the fact that the ones' complement sum
  of 16-bit words is congruent to the big-endian integer modulo 0xFFFF, which
  lets `int.from_bytes` do the summing in C.
* TCP options are kept as raw bytes in `tcp_options`; they are not validated
  here (the stream stage parses the few it needs).
"""
from __future__ import annotations

import socket
from struct import Struct

from ips.packet import (
    LINKTYPE_ETHERNET, LINKTYPE_IPV4, LINKTYPE_IPV6, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP, LINKTYPE_NULL, LINKTYPE_RAW, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP,
    Packet,
)

__all__ = ["decode", "ethertype_of", "ETHERTYPE_IPV4", "ETHERTYPE_IPV6", "ETHERTYPE_ARP"]

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_ARP = 0x0806
ETHERTYPE_IPV6 = 0x86DD
ETHERTYPE_PPPOE_SESSION = 0x8864
_VLAN_ETHERTYPES = frozenset((0x8100, 0x88A8, 0x9100))
_MAX_VLAN_LAYERS = 3

# Raw-IP link types other than the ones named in ips.packet (OpenBSD/BSD DLT_RAW).
_RAW_LINKTYPES = frozenset((LINKTYPE_RAW, 12, 14))
# BSD address families that mean IPv6 (NetBSD/OpenBSD 24, FreeBSD 28, macOS 30).
_NULL_FAMILY_IPV4 = 2
_NULL_FAMILIES_IPV6 = frozenset((24, 28, 30))

_ETHERNET_HEADER = Struct("!12sH")
_IPV4_HEADER = Struct("!BBHHHBBH8s")
_IPV6_HEADER = Struct("!IHBB16s16s")
_TCP_HEADER = Struct("!HHIIBBH")
_UDP_HEADER = Struct("!HHHH")
_U16 = Struct("!H")
_U32 = Struct("!I")

# IPv6 extension headers with the generic (next header, length in 8-octet
# units beyond the first) layout. AH and fragment differ and are handled apart.
_IPV6_HOP_BY_HOP = 0
_IPV6_ROUTING = 43
_IPV6_FRAGMENT = 44
_IPV6_ESP = 50
_IPV6_AH = 51
_IPV6_NO_NEXT = 59
_IPV6_DESTINATION = 60
_IPV6_GENERIC_EXTENSIONS = frozenset((_IPV6_HOP_BY_HOP, _IPV6_ROUTING, _IPV6_DESTINATION, 135, 139, 140))
_IPV6_DUPLICATE_EVENT = {
    _IPV6_HOP_BY_HOP: "ipv6.exthdr_dupl_hh",
    _IPV6_ROUTING: "ipv6.exthdr_dupl_rh",
    _IPV6_FRAGMENT: "ipv6.exthdr_dupl_fh",
    _IPV6_AH: "ipv6.exthdr_dupl_ah",
}
# A chain longer than this is an evasion attempt, not a datagram.
_IPV6_MAX_EXTENSIONS = 16

_ICMPV4_KNOWN_TYPES = frozenset((0, 3, 4, 5, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18))
_ICMPV6_KNOWN_TYPES = frozenset(list(range(1, 5)) + list(range(128, 162)))


def _icmpv6_type_event(icmp_type: int) -> str:
    """Suricata's event for an ICMPv6 type it does not decode (IANA ranges)."""
    if icmp_type in (100, 101, 200, 201):
        return "icmpv6.experimentation_type"
    if 4 < icmp_type < 127 or 161 < icmp_type < 255:
        return "icmpv6.unassigned_type"
    return "icmpv6.unknown_type"          # 0, 127, 255

# Bounded string caches: a capture has few distinct hosts, so most packets hit.
# Clearing on overflow keeps the bound without LRU bookkeeping per packet.
_CACHE_LIMIT = 1 << 16
_ipv4_strings: dict[bytes, str] = {}
_ipv6_strings: dict[bytes, str] = {}
_mac_strings: dict[bytes, str] = {}
# Keyed by both addresses at once: one slice and one probe per packet instead
# of two. A conversation's packets share the pair (in two orders).
_mac_pairs: dict[bytes, tuple[str, str]] = {}
_ipv4_pairs: dict[bytes, tuple[str, str]] = {}


def _ipv4_string(raw: bytes) -> str:
    text = _ipv4_strings.get(raw)
    if text is None:
        if len(_ipv4_strings) >= _CACHE_LIMIT:
            _ipv4_strings.clear()
        text = _ipv4_strings[raw] = socket.inet_ntop(socket.AF_INET, raw)
    return text


def _ipv6_string(raw: bytes) -> str:
    text = _ipv6_strings.get(raw)
    if text is None:
        if len(_ipv6_strings) >= _CACHE_LIMIT:
            _ipv6_strings.clear()
        text = _ipv6_strings[raw] = socket.inet_ntop(socket.AF_INET6, raw)
    return text


def _mac_pair(raw: bytes) -> tuple[str, str]:
    """(destination, source) strings of an Ethernet header's first 12 bytes."""
    if len(_mac_pairs) >= _CACHE_LIMIT:
        _mac_pairs.clear()
    pair = _mac_pairs[raw] = (_mac_string(raw[0:6]), _mac_string(raw[6:12]))
    return pair


def _ipv4_pair(raw: bytes) -> tuple[str, str]:
    """(source, destination) strings of an IPv4 header's 8 address bytes."""
    if len(_ipv4_pairs) >= _CACHE_LIMIT:
        _ipv4_pairs.clear()
    pair = _ipv4_pairs[raw] = (_ipv4_string(raw[0:4]), _ipv4_string(raw[4:8]))
    return pair


def _mac_string(raw: bytes) -> str:
    text = _mac_strings.get(raw)
    if text is None:
        if len(_mac_strings) >= _CACHE_LIMIT:
            _mac_strings.clear()
        text = _mac_strings[raw] = raw.hex(":")
    return text


def decode(pkt: Packet, checksums: bool = True) -> bool:
    """Fill `pkt`'s header slots from `pkt.data`. Returns False when there is
    nothing to inspect further (not IP, or too malformed); never raises."""
    try:
        data = pkt.data
        linktype = pkt.linktype
        if linktype == LINKTYPE_ETHERNET:
            if len(data) < 14:
                pkt.anomaly("ethernet.pkt_too_small")
                return False
            # One unpack yields the cache key of both MACs and the ethertype;
            # indexing bytes twice costs more than that.
            raw, ethertype = _ETHERNET_HEADER.unpack_from(data)
            pair = _mac_pairs.get(raw)
            if pair is None:
                pair = _mac_pair(raw)
            pkt.dst_mac, pkt.src_mac = pair
            if ethertype == ETHERTYPE_IPV4:
                return _decode_ipv4(pkt, data, 14, checksums)
            offset = 14
            if ethertype in _VLAN_ETHERTYPES or ethertype == ETHERTYPE_PPPOE_SESSION:
                ethertype, offset = _ethernet_extras(pkt, data, ethertype, offset)
        elif linktype in _RAW_LINKTYPES:
            # Inline (NFQUEUE) packets: raw IP, nearly always IPv4.
            if data and data[0] >> 4 == 4:
                return _decode_ipv4(pkt, data, 0, checksums)
            offset = 0
            ethertype = _ethertype_from_version(data)
        elif linktype == LINKTYPE_LINUX_SLL:
            if len(data) < 16:
                pkt.anomaly("sll.pkt_too_small")
                return False
            if data[4] == 0 and data[5] == 6:
                pkt.src_mac = _mac_string(data[6:12])
            ethertype = (data[14] << 8) | data[15]
            offset = 16
        elif linktype == LINKTYPE_LINUX_SLL2:
            if len(data) < 20:
                pkt.anomaly("sll2.pkt_too_small")
                return False
            if data[11] == 6:
                pkt.src_mac = _mac_string(data[12:18])
            ethertype = (data[0] << 8) | data[1]
            offset = 20
        elif linktype == LINKTYPE_IPV4:
            offset, ethertype = 0, ETHERTYPE_IPV4
        elif linktype == LINKTYPE_IPV6:
            offset, ethertype = 0, ETHERTYPE_IPV6
        elif linktype == LINKTYPE_NULL or linktype == LINKTYPE_LOOP:
            if len(data) < 4:
                pkt.anomaly("ltnull.pkt_too_small")
                return False
            ethertype = _ethertype_from_null_family(data)
            if ethertype == 0:
                pkt.anomaly("ltnull.unsupported_type")
                return False
            offset = 4
        else:
            pkt.anomaly("decoder.unknown_linktype")
            return False

        if ethertype == ETHERTYPE_IPV4:
            return _decode_ipv4(pkt, data, offset, checksums)
        if ethertype == ETHERTYPE_IPV6:
            return _decode_ipv6(pkt, data, offset, checksums)
        return False
    except Exception:
        # Every malformation has an explicit check above; reaching this means
        # a check is missing. The worker must survive it, and the tests
        # assert this event never appears.
        pkt.anomaly("decoder.internal_error")
        return False


def _ethertype_from_version(data: bytes) -> int:
    if not data:
        return 0
    version = data[0] >> 4
    if version == 4:
        return ETHERTYPE_IPV4
    if version == 6:
        return ETHERTYPE_IPV6
    return 0


def _ethertype_from_null_family(data: bytes) -> int:
    family = int.from_bytes(data[0:4], "little")
    if family > 0xFFFF:
        family = int.from_bytes(data[0:4], "big")
    if family == _NULL_FAMILY_IPV4:
        return ETHERTYPE_IPV4
    if family in _NULL_FAMILIES_IPV6:
        return ETHERTYPE_IPV6
    return 0


def _ethernet_extras(pkt: Packet, data: bytes, ethertype: int, offset: int) -> tuple[int, int]:
    """Strip VLAN tags and a PPPoE session header. Returns (ethertype, offset);
    ethertype 0 means 'nothing decodable follows' (an anomaly was recorded if
    that is a malformation)."""
    vlans = []
    while ethertype in _VLAN_ETHERTYPES:
        if len(data) < offset + 4:
            pkt.anomaly("vlan.header_too_small")
            pkt.vlan = tuple(vlans)
            return 0, offset
        if len(vlans) == _MAX_VLAN_LAYERS:
            pkt.anomaly("vlan.too_many_layers")
            pkt.vlan = tuple(vlans)
            return 0, offset
        vlans.append(((data[offset] << 8) | data[offset + 1]) & 0x0FFF)
        ethertype = (data[offset + 2] << 8) | data[offset + 3]
        offset += 4
    pkt.vlan = tuple(vlans)
    if ethertype == ETHERTYPE_PPPOE_SESSION:
        # version/type, code, session id, length, then the 2-byte PPP protocol.
        if len(data) < offset + 8:
            pkt.anomaly("pppoe.pkt_too_small")
            return 0, offset
        ppp_protocol = (data[offset + 6] << 8) | data[offset + 7]
        offset += 8
        if ppp_protocol == 0x0021:
            return ETHERTYPE_IPV4, offset
        if ppp_protocol == 0x0057:
            return ETHERTYPE_IPV6, offset
        return 0, offset
    return ethertype, offset


def ethertype_of(pkt: Packet) -> int:
    """The ethertype (after VLAN/PPPoE) the frame carried, or 0 if unknown.

    For non-IP frames that `decode` declined (ARP, LLDP, ...). Re-parses the
    link header instead of spending a Packet slot on a value almost nobody
    reads.
    """
    data = pkt.data
    linktype = pkt.linktype
    try:
        if linktype == LINKTYPE_ETHERNET:
            if len(data) < 14:
                return 0
            ethertype = (data[12] << 8) | data[13]
            if ethertype in _VLAN_ETHERTYPES or ethertype == ETHERTYPE_PPPOE_SESSION:
                scratch = Packet(data, linktype=linktype)
                ethertype = _ethernet_extras(scratch, data, ethertype, 14)[0] or (
                    ethertype if ethertype == ETHERTYPE_PPPOE_SESSION else 0)
            return ethertype
        if linktype == LINKTYPE_LINUX_SLL:
            return (data[14] << 8) | data[15] if len(data) >= 16 else 0
        if linktype == LINKTYPE_LINUX_SLL2:
            return (data[0] << 8) | data[1] if len(data) >= 20 else 0
        if linktype in _RAW_LINKTYPES:
            return _ethertype_from_version(data)
        if linktype == LINKTYPE_IPV4:
            return ETHERTYPE_IPV4
        if linktype == LINKTYPE_IPV6:
            return ETHERTYPE_IPV6
        if linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
            return _ethertype_from_null_family(data) if len(data) >= 4 else 0
    except Exception:
        return 0
    return 0


# -- IPv4 ---------------------------------------------------------------------

def _decode_ipv4(pkt: Packet, data: bytes, offset: int, checksums: bool) -> bool:
    available = len(data) - offset
    if available < 20:
        pkt.anomaly("ipv4.pkt_too_small")
        return False
    (version_ihl, _tos, total_length, ident, fragment, ttl, proto, _checksum,
     addresses) = _IPV4_HEADER.unpack_from(data, offset)
    if version_ihl >> 4 != 4:
        pkt.anomaly("ipv4.wrong_ip_version")
        return False
    header_length = (version_ihl & 0x0F) << 2
    if header_length < 20:
        pkt.anomaly("ipv4.hlen_too_small")
        return False
    if total_length < header_length:
        pkt.anomaly("ipv4.iplen_smaller_than_hlen")
        return False
    if available < total_length:
        pkt.anomaly("ipv4.trunc_pkt")
        return False
    pkt.ip_version = 4
    pair = _ipv4_pairs.get(addresses)
    if pair is None:
        pair = _ipv4_pair(addresses)
    pkt.src, pkt.dst = pair
    pkt.proto = proto
    pkt.ttl = ttl
    pkt.ip_id = ident
    pkt.ip_len = total_length
    pkt.ip_offset = offset
    l4 = offset + header_length
    end = offset + total_length
    pkt.l4_offset = l4
    if header_length > 20:
        _check_ipv4_options(pkt, data, offset + 20, l4)
    if checksums and int.from_bytes(data[offset:l4], "big") % 0xFFFF:
        pkt.checksum_ok = False
        pkt.anomaly("ipv4.invalid_checksum")
    if fragment & 0x3FFF:
        pkt.is_fragment = True
        pkt.more_fragments = bool(fragment & 0x2000)
        pkt.frag_offset = (fragment & 0x1FFF) << 3
        pkt.payload = data[l4:end]
        return True
    if proto == PROTO_TCP:
        return _decode_tcp(pkt, data, l4, end, checksums, addresses)
    if proto == PROTO_UDP:
        return _decode_udp(pkt, data, l4, end, checksums, addresses, 4)
    if proto == PROTO_ICMP:
        return _decode_icmp(pkt, data, l4, end, checksums, None)
    if proto == PROTO_ICMPV6:
        pkt.anomaly("ipv4.icmpv6")
    pkt.payload = data[l4:end]
    return True


def _check_ipv4_options(pkt: Packet, data: bytes, start: int, end: int) -> None:
    """Validate the option TLVs (rare on real traffic, so not tuned)."""
    position = start
    while position < end:
        kind = data[position]
        if kind == 0:            # end of option list
            return
        if kind == 1:            # no-operation
            position += 1
            continue
        if position + 1 >= end:
            pkt.anomaly("ipv4.opt_malformed")
            return
        length = data[position + 1]
        if length < 2:
            pkt.anomaly("ipv4.opt_invalid_len")
            return
        if position + length > end:
            pkt.anomaly("ipv4.opt_malformed")
            return
        position += length


# -- IPv6 ---------------------------------------------------------------------

def _decode_ipv6(pkt: Packet, data: bytes, offset: int, checksums: bool) -> bool:
    available = len(data) - offset
    if available < 40:
        pkt.anomaly("ipv6.pkt_too_small")
        return False
    first_word, payload_length, next_header, hop_limit, raw_src, raw_dst = \
        _IPV6_HEADER.unpack_from(data, offset)
    if first_word >> 28 != 6:
        pkt.anomaly("ipv6.wrong_ip_version")
        return False
    if available < 40 + payload_length:
        pkt.anomaly("ipv6.trunc_pkt")
        return False
    pkt.ip_version = 6
    text = _ipv6_strings.get(raw_src)
    pkt.src = text if text is not None else _ipv6_string(raw_src)
    text = _ipv6_strings.get(raw_dst)
    pkt.dst = text if text is not None else _ipv6_string(raw_dst)
    pkt.ttl = hop_limit
    pkt.ip_len = 40 + payload_length
    pkt.ip_offset = offset
    end = offset + 40 + payload_length
    l4 = offset + 40
    if next_header not in (PROTO_TCP, PROTO_UDP, PROTO_ICMPV6):
        next_header, l4 = _ipv6_extensions(pkt, data, next_header, l4, end)
        if l4 < 0:
            return False
    pkt.proto = next_header
    pkt.l4_offset = l4
    if pkt.is_fragment:
        pkt.payload = data[l4:end]
        return True
    pseudo_addresses = raw_src + raw_dst
    if next_header == PROTO_TCP:
        return _decode_tcp(pkt, data, l4, end, checksums, pseudo_addresses)
    if next_header == PROTO_UDP:
        return _decode_udp(pkt, data, l4, end, checksums, pseudo_addresses, 6)
    if next_header == PROTO_ICMPV6:
        return _decode_icmp(pkt, data, l4, end, checksums, pseudo_addresses)
    if next_header == PROTO_ICMP:
        pkt.anomaly("ipv6.icmpv4")
    pkt.payload = data[l4:end]
    return True


def _ipv6_extensions(pkt: Packet, data: bytes, next_header: int, position: int,
                     end: int) -> tuple[int, int]:
    """Walk the extension header chain. Returns (upper protocol, its offset),
    offset -1 when the chain is truncated."""
    seen = set()
    for _ in range(_IPV6_MAX_EXTENSIONS):
        if next_header in _IPV6_GENERIC_EXTENSIONS:
            if position + 8 > end:
                pkt.anomaly("ipv6.trunc_exthdr")
                return next_header, -1
            length = (data[position + 1] + 1) << 3
            if position + length > end:
                pkt.anomaly("ipv6.trunc_exthdr")
                return next_header, -1
            if next_header in seen and next_header != _IPV6_DESTINATION:
                pkt.anomaly(_IPV6_DUPLICATE_EVENT.get(next_header, "ipv6.exthdr_dupl_eh"))
            if next_header == _IPV6_ROUTING and data[position + 2] == 0:
                pkt.anomaly("ipv6.rh_type_0")
        elif next_header == _IPV6_FRAGMENT:
            if position + 8 > end:
                pkt.anomaly("ipv6.trunc_exthdr")
                return next_header, -1
            if next_header in seen:
                pkt.anomaly("ipv6.exthdr_dupl_fh")
            fragment = (data[position + 2] << 8) | data[position + 3]
            offset_bytes = fragment & 0xFFF8
            more = bool(fragment & 1)
            if offset_bytes == 0 and not more:
                # An atomic fragment: a fragment header on a whole datagram.
                pkt.anomaly("ipv6.exthdr_useless_fh")
            else:
                pkt.is_fragment = True
                pkt.frag_offset = offset_bytes
                pkt.more_fragments = more
                pkt.ip_id = _U32.unpack_from(data, position + 4)[0]
            length = 8
        elif next_header == _IPV6_AH:
            if position + 8 > end:
                pkt.anomaly("ipv6.trunc_exthdr")
                return next_header, -1
            length = (data[position + 1] + 2) << 2
            if position + length > end:
                pkt.anomaly("ipv6.trunc_exthdr")
                return next_header, -1
            if next_header in seen:
                pkt.anomaly("ipv6.exthdr_dupl_ah")
            if data[position + 2] or data[position + 3]:
                pkt.anomaly("ipv6.exthdr_ah_res_not_null")
        else:
            # ESP, no-next-header, or an upper protocol: the chain ends here.
            if next_header == _IPV6_NO_NEXT and position < end:
                pkt.anomaly("ipv6.data_after_none_header")
            return next_header, position
        seen.add(next_header)
        next_header = data[position]
        position += length
        if pkt.is_fragment:
            # Headers after the fragment header belong to the fragmentable
            # part; only the reassembled datagram can be walked further.
            return next_header, position
    pkt.anomaly("ipv6.exthdr_too_many")
    return next_header, -1


# -- transport ----------------------------------------------------------------

def _pseudo_sum(addresses: bytes, proto: int, length: int) -> int:
    """Sum of the pseudo-header words (big-endian), modulo nothing yet."""
    return int.from_bytes(addresses, "big") + proto + length


def _segment_sum_is_valid(segment: bytes, pseudo: int) -> bool:
    # Reading the segment little-endian byte-swaps every 16-bit word, which
    # multiplies the ones' complement sum by 256 modulo 0xFFFF; 256 is a unit
    # modulo 0xFFFF, so "sum == 0" is unchanged. Little-endian also pads an
    # odd final byte with zero on the correct side for free.
    return (int.from_bytes(segment, "little") + (pseudo << 8)) % 0xFFFF == 0


def _decode_tcp(pkt: Packet, data: bytes, l4: int, end: int, checksums: bool,
                addresses: bytes) -> bool:
    length = end - l4
    if length < 20:
        pkt.anomaly("tcp.pkt_too_small")
        return False
    sport, dport, seq, ack, data_offset, flags, window = _TCP_HEADER.unpack_from(data, l4)
    header_length = (data_offset >> 4) << 2
    # Suricata's names: a header longer than the segment is
    # hlen_too_small (the segment is too small for it), a data offset
    # under 5 makes the option length negative: invalid_optlen.
    if header_length > length:
        pkt.anomaly("tcp.hlen_too_small")
        return False
    if header_length < 20:
        pkt.anomaly("tcp.invalid_optlen")
        return False
    pkt.sport = sport
    pkt.dport = dport
    pkt.seq = seq
    pkt.ack = ack
    pkt.tcp_flags = flags
    pkt.window = window
    if header_length > 20:
        pkt.tcp_options = data[l4 + 20:l4 + header_length]
    pkt.payload = data[l4 + header_length:end]
    if checksums and not _segment_sum_is_valid(data[l4:end], _pseudo_sum(addresses, PROTO_TCP, length)):
        pkt.checksum_ok = False
        pkt.anomaly("tcp.invalid_checksum")
    return True


def _decode_udp(pkt: Packet, data: bytes, l4: int, end: int, checksums: bool,
                addresses: bytes, ip_version: int) -> bool:
    length = end - l4
    if length < 8:
        pkt.anomaly("udp.hlen_too_small")
        return False
    sport, dport, udp_length, checksum = _UDP_HEADER.unpack_from(data, l4)
    if udp_length > length:
        pkt.anomaly("udp.pkt_too_small")
        return False
    if udp_length < 8:
        pkt.anomaly("udp.len_invalid")
        return False
    pkt.sport = sport
    pkt.dport = dport
    pkt.payload = data[l4 + 8:l4 + udp_length]
    if checksums and (checksum or ip_version == 6):
        if not _segment_sum_is_valid(data[l4:l4 + udp_length],
                                     _pseudo_sum(addresses, PROTO_UDP, udp_length)):
            pkt.checksum_ok = False
            pkt.anomaly("udp.invalid_checksum")
    return True


def _decode_icmp(pkt: Packet, data: bytes, l4: int, end: int, checksums: bool,
                 ipv6_addresses: bytes | None) -> bool:
    """ICMPv4 when `ipv6_addresses` is None, else ICMPv6 (whose checksum
    covers a pseudo-header)."""
    layer = "icmpv4" if ipv6_addresses is None else "icmpv6"
    length = end - l4
    if length < 8:
        pkt.anomaly(layer + ".pkt_too_small")
        return False
    icmp_type = data[l4]
    pkt.icmp_type = icmp_type
    pkt.icmp_code = data[l4 + 1]
    if ipv6_addresses is None:
        pkt.payload = data[l4 + 8:end]
        if icmp_type not in _ICMPV4_KNOWN_TYPES:
            pkt.anomaly("icmpv4.unknown_type")
    else:
        # ICMPv6 errors and echo carry 4 more header bytes; for the other
        # messages (ND, MLD, ...) Suricata's header is 4 bytes and the
        # payload, which content and dsize see, starts right after it.
        pkt.payload = data[l4 + (8 if icmp_type <= 4 or icmp_type in (128, 129) else 4):end]
        if icmp_type not in _ICMPV6_KNOWN_TYPES:
            pkt.anomaly(_icmpv6_type_event(icmp_type))
    if checksums:
        pseudo = 0 if ipv6_addresses is None else _pseudo_sum(ipv6_addresses, PROTO_ICMPV6, length)
        if not _segment_sum_is_valid(data[l4:end], pseudo):
            pkt.checksum_ok = False
            pkt.anomaly(layer + ".invalid_checksum")
    return True
