"""ips.decode: link layers, IP, transport, anomalies, and never raising."""
from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.all import (
    AH, ARP, ICMP, IP, TCP, UDP, CookedLinux, Dot1AD, Dot1Q, Ether, ICMPv6EchoRequest, IPv6,
    IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, IPv6ExtHdrRouting, Loopback, conf, raw,
)

from ips.decode import ETHERTYPE_ARP, decode, ethertype_of
from ips.packet import (
    LINKTYPE_ETHERNET, LINKTYPE_IPV4, LINKTYPE_IPV6, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP, LINKTYPE_NULL, LINKTYPE_RAW, TH_SYN, Packet,
)

conf.verb = 0
CLIENT_MAC, SERVER_MAC = "02:00:00:00:00:01", "02:00:00:00:00:02"


def eth(payload, **kw) -> bytes:
    return raw(Ether(src=CLIENT_MAC, dst=SERVER_MAC, **kw) / payload)


def tcp_frame(payload=b"", flags="PA", **ip) -> bytes:
    return eth(IP(src="192.0.2.10", dst="198.51.100.20", **ip) / TCP(sport=40000, dport=80, flags=flags,
                                                                   seq=1000, ack=2000) / payload)


def decoded(data: bytes, linktype: int = LINKTYPE_ETHERNET, checksums: bool = True) -> tuple[bool, Packet]:
    pkt = Packet(data, 1.5, 1, linktype)
    return decode(pkt, checksums), pkt


# -- Ethernet / IPv4 / TCP ---------------------------------------------------

def test_tcp_over_ethernet_fills_every_field():
    ok, pkt = decoded(tcp_frame(b"GET / HTTP/1.1\r\n\r\n", flags="PA", ttl=33, id=777))
    assert ok and pkt.anomalies is None and pkt.checksum_ok
    assert (pkt.src_mac, pkt.dst_mac) == (CLIENT_MAC, SERVER_MAC)
    assert (pkt.ip_version, pkt.src, pkt.dst, pkt.proto) == (4, "192.0.2.10", "198.51.100.20", 6)
    assert (pkt.sport, pkt.dport, pkt.seq, pkt.ack) == (40000, 80, 1000, 2000)
    assert pkt.tcp_flags == 0x18 and pkt.ttl == 33 and pkt.ip_id == 777
    assert pkt.payload == b"GET / HTTP/1.1\r\n\r\n"
    assert pkt.ip_offset == 14 and pkt.l4_offset == 34 and pkt.ip_len == 20 + 20 + 18


def test_ethernet_padding_is_not_payload():
    frame = tcp_frame(b"", flags="A") + b"\x00" * 6     # minimum frame size padding
    ok, pkt = decoded(frame)
    assert ok and pkt.payload == b"" and pkt.anomalies is None


def test_tcp_options_are_kept_raw():
    frame = eth(IP(src="192.0.2.1", dst="192.0.2.2") / TCP(flags="S", options=[("MSS", 1460), ("NOP", None),
                                                                                ("WScale", 7)]))
    ok, pkt = decoded(frame)
    assert ok and pkt.tcp_flags == TH_SYN
    assert pkt.tcp_options[:4] == b"\x02\x04\x05\xb4"


def test_ipv4_options_are_skipped():
    frame = eth(IP(src="192.0.2.1", dst="192.0.2.2", options=b"\x94\x04\x00\x00") / UDP(sport=1, dport=2) / b"x")
    ok, pkt = decoded(frame)
    assert ok and pkt.l4_offset == 14 + 24 and pkt.payload == b"x" and pkt.anomalies is None


def test_bad_tcp_checksum_is_flagged_but_decoded():
    frame = eth(IP(src="192.0.2.1", dst="192.0.2.2") / TCP(chksum=0x1234) / b"data")
    ok, pkt = decoded(frame)
    assert ok and not pkt.checksum_ok and pkt.anomalies == ["tcp.invalid_checksum"]
    assert pkt.payload == b"data"
    ok, pkt = decoded(frame, checksums=False)
    assert ok and pkt.checksum_ok and pkt.anomalies is None


def test_bad_ipv4_header_checksum_is_flagged():
    ok, pkt = decoded(eth(IP(src="192.0.2.1", dst="192.0.2.2", chksum=1) / UDP() / b"x"))
    assert ok and not pkt.checksum_ok and pkt.anomalies == ["ipv4.invalid_checksum"]


@pytest.mark.parametrize("payload", [b"", b"a", b"ab", b"abc" * 333])
def test_valid_checksums_of_odd_and_even_lengths_pass(payload):
    for layer in (TCP(sport=1, dport=2), UDP(sport=1, dport=2), ICMP()):
        ok, pkt = decoded(eth(IP(src="192.0.2.1", dst="203.0.113.9") / layer / payload))
        assert ok and pkt.checksum_ok, (layer.name, pkt.anomalies)
    for layer in (TCP(sport=1, dport=2), UDP(sport=1, dport=2), ICMPv6EchoRequest()):
        ok, pkt = decoded(eth(IPv6(src="2001:db8::1", dst="2001:db8::2") / layer / payload))
        assert ok and pkt.checksum_ok, (layer.name, pkt.anomalies)


def test_udp_checksum_zero_means_absent_on_ipv4_only():
    ok, pkt = decoded(eth(IP(src="192.0.2.1", dst="192.0.2.2") / UDP(chksum=0) / b"abc"))
    assert ok and pkt.checksum_ok
    ok, pkt = decoded(eth(IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(chksum=0) / b"abc"))
    assert ok and not pkt.checksum_ok and pkt.anomalies == ["udp.invalid_checksum"]


def test_udp_fields_and_length_field_bounds_payload():
    frame = eth(IP(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=5353, dport=53, len=8 + 3) / b"abcdef")
    ok, pkt = decoded(frame, checksums=False)
    assert ok and (pkt.sport, pkt.dport, pkt.proto) == (5353, 53, 17) and pkt.payload == b"abc"


def test_udp_length_beyond_datagram_is_an_anomaly():
    ok, pkt = decoded(eth(IP(src="192.0.2.1", dst="192.0.2.2") / UDP(len=200) / b"abc"))
    assert not ok and pkt.anomalies == ["udp.pkt_too_small"]


def test_icmp_echo_payload_starts_after_eight_bytes():
    ok, pkt = decoded(eth(IP(src="192.0.2.1", dst="192.0.2.2") / ICMP(type=8, id=7, seq=9) / b"ping-data"))
    assert ok and (pkt.icmp_type, pkt.icmp_code, pkt.proto) == (8, 0, 1)
    assert pkt.payload == b"ping-data" and pkt.sport == 0


def test_icmp_unknown_type_is_reported():
    ok, pkt = decoded(eth(IP(src="192.0.2.1", dst="192.0.2.2") / ICMP(type=99) / b"x"))
    assert ok and pkt.anomalies == ["icmpv4.unknown_type"]


# -- malformed IPv4 / TCP ------------------------------------------------------

def test_truncated_ipv4_datagram():
    ok, pkt = decoded(tcp_frame(b"x" * 40)[:-10])
    assert not ok and pkt.anomalies == ["ipv4.trunc_pkt"]


def test_ipv4_header_length_too_small():
    frame = bytearray(tcp_frame(b"abc"))
    frame[14] = 0x44
    ok, pkt = decoded(bytes(frame))
    assert not ok and pkt.anomalies == ["ipv4.hlen_too_small"]


def test_ipv4_total_length_smaller_than_header():
    frame = bytearray(tcp_frame(b"abc"))
    frame[16:18] = (10).to_bytes(2, "big")
    ok, pkt = decoded(bytes(frame))
    assert not ok and pkt.anomalies == ["ipv4.iplen_smaller_than_hlen"]


def test_wrong_ip_version_under_ipv4_ethertype():
    frame = bytearray(tcp_frame())
    frame[14] = 0x65
    ok, pkt = decoded(bytes(frame))
    assert not ok and pkt.anomalies == ["ipv4.wrong_ip_version"]


def test_short_ethernet_frame():
    ok, pkt = decoded(b"\x00" * 13)
    assert not ok and pkt.anomalies == ["ethernet.pkt_too_small"]


def test_tcp_data_offset_under_five_is_an_invalid_option_length():
    # Suricata's names: hlen - 20 underflows into an invalid option length.
    ok, pkt = decoded(eth(IP(src="192.0.2.1", dst="192.0.2.2") / TCP(dataofs=4) / b"abcd"))
    assert not ok and pkt.anomalies == ["tcp.invalid_optlen"]


def test_tcp_segment_too_small():
    ok, pkt = decoded(eth(IP(src="192.0.2.1", dst="192.0.2.2", proto=6) / b"short"))
    assert not ok and pkt.anomalies == ["tcp.pkt_too_small"]


def test_tcp_header_length_beyond_segment():
    # ... and a segment too small for its header length is hlen_too_small.
    ok, pkt = decoded(eth(IP(src="192.0.2.1", dst="192.0.2.2") / TCP(dataofs=15)))
    assert not ok and pkt.anomalies == ["tcp.hlen_too_small"]


def test_icmpv6_info_messages_have_a_four_byte_header():
    from scapy.all import IPv6, ICMPv6ND_RS, ICMPv6EchoRequest
    ok, pkt = decoded(eth(IPv6(src="2001:db8::1", dst="2001:db8::2") / ICMPv6ND_RS()))
    assert ok and pkt.icmp_type == 133 and len(pkt.payload) == 4      # the reserved word
    ok, pkt = decoded(eth(IPv6(src="2001:db8::1", dst="2001:db8::2") / ICMPv6EchoRequest(data=b"ping")))
    assert ok and pkt.payload == b"ping"
    for icmp_type, event in ((0, "icmpv6.unknown_type"), (50, "icmpv6.unassigned_type"),
                             (100, "icmpv6.experimentation_type"), (170, "icmpv6.unassigned_type")):
        frame = eth(IPv6(src="2001:db8::1", dst="2001:db8::2", nh=58) / bytes([icmp_type, 0, 0, 0, 0, 0, 0, 0]))
        assert event in decoded(frame)[1].events


# -- fragments ---------------------------------------------------------------

def test_ipv4_fragments_are_not_decoded_past_ip():
    ok, pkt = decoded(eth(IP(src="192.0.2.1", dst="192.0.2.2", flags="MF", frag=0, id=42) / UDP() / (b"x" * 16)))
    assert ok and pkt.is_fragment and pkt.more_fragments and pkt.frag_offset == 0
    assert pkt.sport == 0 and pkt.proto == 17 and len(pkt.payload) == 24 and pkt.ip_id == 42
    ok, pkt = decoded(eth(IP(src="192.0.2.1", dst="192.0.2.2", frag=3, proto=17) / (b"y" * 8)))
    assert ok and pkt.is_fragment and not pkt.more_fragments and pkt.frag_offset == 24


def test_ipv6_fragment_header_marks_fragment():
    frame = eth(IPv6(src="2001:db8::1", dst="2001:db8::2") /
                IPv6ExtHdrFragment(offset=2, m=1, id=0xDEADBEEF, nh=17) / (b"z" * 16))
    ok, pkt = decoded(frame)
    assert ok and pkt.is_fragment and pkt.more_fragments and pkt.frag_offset == 16
    assert pkt.ip_id == 0xDEADBEEF and pkt.proto == 17 and pkt.payload == b"z" * 16


# -- IPv6 ---------------------------------------------------------------------

def test_ipv6_extension_chain_is_walked():
    frame = eth(IPv6(src="2001:db8::1", dst="2001:db8::2") / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt() /
                IPv6ExtHdrRouting(type=2) / TCP(sport=1234, dport=443, flags="S"))
    ok, pkt = decoded(frame)
    assert ok and pkt.anomalies is None
    assert (pkt.ip_version, pkt.src, pkt.dst, pkt.proto, pkt.sport, pkt.dport) == \
        (6, "2001:db8::1", "2001:db8::2", 6, 1234, 443)
    assert pkt.l4_offset == 14 + 40 + 8 + 8 + 8


def test_ipv6_authentication_header_is_skipped():
    frame = eth(IPv6(src="2001:db8::1", dst="2001:db8::2") / AH(nh=17, payloadlen=4, icv=b"\0" * 12) /
                UDP(sport=1, dport=2) / b"hi")
    ok, pkt = decoded(frame, checksums=False)
    assert ok and pkt.proto == 17 and pkt.payload == b"hi"


def test_truncated_ipv6_extension_header():
    frame = eth(IPv6(src="2001:db8::1", dst="2001:db8::2", nh=0, plen=4) / b"\x06\x05\x00\x00")
    ok, pkt = decoded(frame)
    assert not ok and pkt.anomalies == ["ipv6.trunc_exthdr"]


def test_ipv6_routing_header_type_0_is_flagged():
    frame = eth(IPv6(src="2001:db8::1", dst="2001:db8::2") / IPv6ExtHdrRouting(type=0) / UDP() / b"a")
    ok, pkt = decoded(frame)
    assert ok and "ipv6.rh_type_0" in pkt.anomalies


# -- link layers ----------------------------------------------------------------

def test_vlan_and_qinq_tags_are_collected():
    ok, pkt = decoded(raw(Ether(src=CLIENT_MAC, dst=SERVER_MAC) / Dot1AD(vlan=100) / Dot1Q(vlan=200) /
                          IP(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=1, dport=2)))
    assert ok and pkt.vlan == (100, 200) and pkt.sport == 1
    ok, pkt = decoded(raw(Ether(src=CLIENT_MAC, dst=SERVER_MAC, type=0x9100) / Dot1Q(vlan=5) / IP(src="192.0.2.1", dst="192.0.2.2") / UDP()))
    assert ok and pkt.vlan == (5,)


def test_too_many_vlan_layers():
    frame = raw(Ether(src=CLIENT_MAC, dst=SERVER_MAC) / Dot1Q(vlan=1) / Dot1Q(vlan=2) / Dot1Q(vlan=3) / Dot1Q(vlan=4) / IP() / UDP())
    ok, pkt = decoded(frame)
    assert not ok and pkt.anomalies == ["vlan.too_many_layers"]


def test_linux_sll():
    frame = raw(CookedLinux(pkttype=0, lladdrtype=1, lladdrlen=6, src=bytes.fromhex("020000000001") + b"\0\0",
                            proto=0x0800) / IP(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=7, dport=8))
    ok, pkt = decoded(frame, LINKTYPE_LINUX_SLL)
    assert ok and pkt.src == "192.0.2.1" and pkt.sport == 7 and pkt.src_mac == CLIENT_MAC


def test_linux_sll2():
    header = struct.pack("!HHIHBB8s", 0x86DD, 0, 3, 1, 0, 6, bytes.fromhex("020000000001") + b"\0\0")
    frame = header + raw(IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(sport=7, dport=8))
    ok, pkt = decoded(frame, LINKTYPE_LINUX_SLL2)
    assert ok and pkt.src == "2001:db8::1" and pkt.dport == 8 and pkt.src_mac == CLIENT_MAC


@pytest.mark.parametrize("linktype", [LINKTYPE_RAW, 12, 14])
def test_raw_ip_linktypes_dispatch_on_version(linktype):
    ok, pkt = decoded(raw(IP(src="192.0.2.1", dst="192.0.2.2") / UDP()), linktype)
    assert ok and pkt.ip_version == 4 and pkt.ip_offset == 0
    ok, pkt = decoded(raw(IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP()), linktype)
    assert ok and pkt.ip_version == 6


def test_ipv4_and_ipv6_linktypes():
    assert decoded(raw(IP(src="192.0.2.1", dst="192.0.2.2") / UDP()), LINKTYPE_IPV4)[1].ip_version == 4
    assert decoded(raw(IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP()), LINKTYPE_IPV6)[1].ip_version == 6


@pytest.mark.parametrize("linktype", [LINKTYPE_NULL, LINKTYPE_LOOP])
@pytest.mark.parametrize("order", ["<", ">"])
def test_bsd_loopback_in_both_byte_orders(linktype, order):
    for family, ip_layer, version in ((2, IP(src="192.0.2.1", dst="192.0.2.2"), 4),
                                      (30, IPv6(src="2001:db8::1", dst="2001:db8::2"), 6)):
        ok, pkt = decoded(struct.pack(order + "I", family) + raw(ip_layer / UDP()), linktype)
        assert ok and pkt.ip_version == version


def test_scapy_loopback_frame():
    ok, pkt = decoded(raw(Loopback(type=2) / IP(src="192.0.2.1", dst="192.0.2.2") / TCP()), LINKTYPE_NULL)
    assert ok and pkt.proto == 6


def test_unknown_linktype():
    ok, pkt = decoded(b"\x00" * 40, 9999)
    assert not ok and pkt.anomalies == ["decoder.unknown_linktype"]


def test_arp_is_not_malformed_and_keeps_macs():
    ok, pkt = decoded(raw(Ether(src=CLIENT_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(psrc="192.0.2.1")))
    assert not ok and pkt.anomalies is None
    assert pkt.src_mac == CLIENT_MAC and pkt.dst_mac == "ff:ff:ff:ff:ff:ff" and pkt.proto == 0
    assert ethertype_of(pkt) == ETHERTYPE_ARP


def test_ethertype_of_behind_vlan():
    pkt = Packet(raw(Ether(src=CLIENT_MAC, dst=SERVER_MAC) / Dot1Q(vlan=3) / ARP()))
    assert not decode(pkt) and pkt.vlan == (3,) and ethertype_of(pkt) == ETHERTYPE_ARP


def test_address_strings_are_shared_between_packets():
    _, first = decoded(tcp_frame(b"a"))
    _, second = decoded(tcp_frame(b"b"))
    assert first.src is second.src and first.src_mac is second.src_mac


# -- never raises ------------------------------------------------------------------

LINKTYPES = [LINKTYPE_ETHERNET, LINKTYPE_RAW, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, LINKTYPE_NULL,
             LINKTYPE_LOOP, LINKTYPE_IPV4, LINKTYPE_IPV6, 12, 14, 147]


def assert_decodes_cleanly(data: bytes, linktype: int) -> None:
    for checksums in (True, False):
        pkt = Packet(data, 0.0, 1, linktype)
        result = decode(pkt, checksums)
        assert result in (True, False)
        assert "decoder.internal_error" not in (pkt.anomalies or ())


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200), st.sampled_from(LINKTYPES))
def test_random_bytes_never_raise(data, linktype):
    assert_decodes_cleanly(data, linktype)


SEED_FRAMES = [
    tcp_frame(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
    eth(IP(src="192.0.2.1", dst="192.0.2.2", options=b"\x94\x04\x00\x00") / UDP() / b"dns?"),
    eth(IP(src="192.0.2.1", dst="192.0.2.2", flags="MF") / UDP() / (b"f" * 16)),
    eth(IPv6(src="2001:db8::1", dst="2001:db8::2") / IPv6ExtHdrHopByHop() / IPv6ExtHdrFragment(m=1, nh=6) /
        (b"t" * 24)),
    eth(IPv6(src="2001:db8::1", dst="2001:db8::2") / AH(nh=58, payloadlen=4, icv=b"\0" * 12) /
        ICMPv6EchoRequest() / b"x"),
    raw(Ether(src=CLIENT_MAC, dst=SERVER_MAC) / Dot1Q(vlan=1) / Dot1Q(vlan=2) / IP() / ICMP() / b"ping"),
]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SEED_FRAMES), st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=8),
       st.integers(0, 200))
def test_mutated_frames_never_raise(frame, flips, cut):
    mutated = bytearray(frame)
    for position, value in flips:
        if position < len(mutated):
            mutated[position] = value
    assert_decodes_cleanly(bytes(mutated[:len(mutated) - cut] if cut < len(mutated) else mutated),
                           LINKTYPE_ETHERNET)
