"""The packet header buffers (ips.detect.packet_buffers): which bytes each is,
and which packets have none."""
from __future__ import annotations

from hypothesis import given, settings, strategies as st
from scapy.all import (ICMP, IP, TCP, UDP, Ether, ICMPv6EchoRequest, ICMPv6ND_NS, IPOption_RR, IPv6,
                       IPv6ExtHdrHopByHop, Raw)

from ips.decode import decode
from ips.detect import packet_buffers
from ips.packet import LINKTYPE_PSEUDO, LINKTYPE_RAW, Packet
from tests.detect.factories import decoded

ETHER = Ether(src="02:00:00:00:00:0a", dst="02:00:00:00:00:14")
V4 = IP(src="192.0.2.1", dst="198.51.100.1")
V6 = IPv6(src="2001:db8::1", dst="2001:db8::2")


def buffers(pkt) -> dict:
    return {name: packet_buffers.read(pkt, name) for name in packet_buffers.SCOPES}


def test_tcp_and_ipv4_headers_with_their_options():
    frame = ETHER / IP(src="192.0.2.1", dst="198.51.100.1", options=[IPOption_RR()]) / TCP(
        sport=5000, dport=80, flags="S", options=[("NOP", None), ("MSS", 8)]) / Raw(b"data")
    frame = Ether(bytes(frame))                 # lengths and offsets filled in
    found = buffers(decoded(frame))
    assert found["ipv4.hdr"] == bytes(frame[IP])[:frame[IP].ihl * 4] and frame[IP].ihl == 6
    assert found["tcp.hdr"] == bytes(frame[TCP])[:frame[TCP].dataofs * 4] and frame[TCP].dataofs == 7
    assert found["udp.hdr"] is found["ipv6.hdr"] is found["icmpv4.hdr"] is None


def test_udp_header_is_eight_bytes():
    frame = ETHER / V4 / UDP(sport=5000, dport=53) / Raw(b"payload")
    found = buffers(decoded(frame))
    assert found["udp.hdr"] == bytes(frame[UDP])[:8]
    assert found["tcp.hdr"] is None


def test_ipv6_header_is_the_fixed_forty_bytes_even_with_extension_headers():
    # Suricata adds an extension header length its decoder never sets.
    frame = ETHER / V6 / IPv6ExtHdrHopByHop() / UDP(sport=1, dport=2)
    found = buffers(decoded(frame))
    assert found["ipv6.hdr"] == bytes(frame[IPv6])[:40]
    assert found["udp.hdr"] == bytes(frame[UDP])[:8]
    assert found["ipv4.hdr"] is None


def test_icmp_header_lengths_are_suricatas():
    echo = ETHER / V4 / ICMP(type=8, id=7, seq=9) / Raw(b"x" * 32)
    assert packet_buffers.read(decoded(echo), "icmpv4.hdr") == bytes(echo[ICMP])[:8]
    # Timestamp request: its three timestamps belong to the header...
    stamp = ETHER / V4 / Raw(b"\x0d\x00\x00\x00\x00\x07\x00\x09" + b"\x01" * 12 + b"tail")
    stamp[IP].proto = 1
    assert packet_buffers.read(decoded(stamp), "icmpv4.hdr") == bytes(stamp[Raw])[:20]
    # ... unless the message is too short to hold them.
    short = ETHER / V4 / Raw(b"\x0d\x00\x00\x00\x00\x07\x00\x09" + b"\x01" * 4)
    short[IP].proto = 1
    assert packet_buffers.read(decoded(short), "icmpv4.hdr") == bytes(short[Raw])[:8]
    # Router advertisement: 2 addresses of 2 words each follow the 8 bytes.
    advert = ETHER / IP(src="192.0.2.1", dst="198.51.100.1", proto=1) / Raw(
        b"\x09\x00\x00\x00\x02\x02\x07\x08" + b"\xc0\x00\x02\x01\x00\x00\x00\x01" * 2 + b"pad")
    assert len(packet_buffers.read(decoded(advert), "icmpv4.hdr")) == 24
    # ICMPv6: always 8, whether the type has 4 or 8 header bytes.
    for layer in (ICMPv6EchoRequest(id=1, seq=2) / Raw(b"ping"), ICMPv6ND_NS(tgt="2001:db8::9")):
        frame = ETHER / V6 / layer
        assert packet_buffers.read(decoded(frame), "icmpv6.hdr") == bytes(frame[IPv6].payload)[:8]


def test_no_buffer_where_the_packet_has_no_such_header():
    # A first fragment: the TCP header is in it, but only the reassembled
    # datagram's is decoded (as Suricata).
    fragment = ETHER / IP(src="192.0.2.1", dst="198.51.100.1", flags="MF", proto=6) / Raw(bytes(
        TCP(sport=1, dport=2, flags="S")) + b"x" * 16)
    found = buffers(decoded(fragment))
    assert found["ipv4.hdr"] is not None and found["tcp.hdr"] is None
    # The flow-end pseudo packet has header fields but no bytes.
    pseudo = Packet(b"", linktype=LINKTYPE_PSEUDO)
    pseudo.ip_version, pseudo.proto = 4, 6
    assert set(buffers(pseudo).values()) == {None}
    # ICMPv4 carried over IPv6 is not decoded as ICMPv4.
    odd = ETHER / IPv6(src="2001:db8::1", dst="2001:db8::2", nh=1) / Raw(bytes(ICMP(type=8)))
    assert packet_buffers.read(decoded(odd), "icmpv4.hdr") is None


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=120))
def test_random_packets_only_give_slices_of_their_bytes(data):
    pkt = Packet(b"\x45" + data, linktype=LINKTYPE_RAW)
    decode(pkt, False)
    for name in packet_buffers.SCOPES:
        value = packet_buffers.read(pkt, name)
        assert value is None or (value and value in pkt.data)
