"""ips.defrag: IPv4/IPv6 reassembly, first-data-wins overlaps, bounds, timeouts."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.all import IP, TCP, UDP, Ether, IPv6, IPv6ExtHdrFragment, conf, fragment, fragment6, raw

from ips.decode import decode
from ips.defrag import Defragmenter
from ips.packet import LINKTYPE_IPV4, Packet

conf.verb = 0
MACS = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}
PAYLOAD = bytes(range(256)) * 12


def decoded(frame, ts: float = 1.0, count: int = 1) -> Packet:
    pkt = Packet(raw(frame), ts, count)
    assert decode(pkt)
    return pkt


def ipv4_fragment(offset: int, data: bytes, more: bool, ident: int = 7, ts: float = 1.0, count: int = 1) -> Packet:
    """A hand-made fragment: `offset` in bytes (multiple of 8)."""
    return decoded(Ether(**MACS) / IP(src="192.0.2.1", dst="198.51.100.2", id=ident, proto=17,
                                      flags="MF" if more else 0, frag=offset // 8) / data, ts, count)


def udp_datagram_bytes(payload: bytes) -> bytes:
    return raw(UDP(sport=1000, dport=2000) / payload)


def feed(defrag: Defragmenter, packets):
    results = [defrag.add(pkt) for pkt in packets]
    done = [result for result in results if result is not None]
    return done[0] if done else None


def test_ipv4_in_order():
    frames = fragment(Ether(**MACS) / IP(src="192.0.2.1", dst="198.51.100.2") / UDP(sport=1, dport=2) / PAYLOAD,
                      fragsize=1000)
    packets = [decoded(frame, ts=10.0 + index, count=index + 1) for index, frame in enumerate(frames)]
    defrag = Defragmenter()
    whole = feed(defrag, packets)
    assert whole is not None and whole.payload == PAYLOAD and whole.checksum_ok and whole.anomalies is None
    assert (whole.sport, whole.dport, whole.src, whole.ip_len) == (1, 2, "192.0.2.1", 20 + 8 + len(PAYLOAD))
    assert (whole.ts, whole.pcap_cnt, whole.linktype) == (10.0 + len(frames) - 1, len(frames), LINKTYPE_IPV4)
    assert whole.src_mac == MACS["src"] and not whole.is_fragment
    assert len(defrag) == 0 and defrag.bytes_held == 0 and defrag.stats["reassembled"] == 1


def test_ipv4_out_of_order_and_duplicates():
    frames = fragment(Ether(**MACS) / IP(src="192.0.2.1", dst="198.51.100.2") / TCP(sport=1, dport=2) / PAYLOAD,
                      fragsize=512)
    packets = [decoded(frame) for frame in frames]
    order = list(reversed(packets)) + [packets[1]]
    defrag = Defragmenter()
    results = [defrag.add(pkt) for pkt in order[:-1]]
    assert results[:-1] == [None] * (len(packets) - 1)
    whole = results[-1]
    assert whole.payload == PAYLOAD and whole.proto == 6 and whole.checksum_ok


def test_overlap_keeps_the_first_data_and_is_flagged():
    datagram = udp_datagram_bytes(b"A" * 24)                      # 32 bytes
    first = ipv4_fragment(0, datagram[:16], True)
    overlapping = ipv4_fragment(8, b"X" * 16, True)                # rewrites bytes 8..24
    last = ipv4_fragment(16, datagram[16:], False)
    defrag = Defragmenter()
    assert defrag.add(first) is None and defrag.add(overlapping) is None
    assert overlapping.anomalies == ["ipv4.frag_overlap"]
    whole = defrag.add(last)
    assert whole is not None and "ipv4.frag_overlap" in whole.anomalies
    # bytes 0..16 from the first fragment, the hole 16..24 from the overlapping
    # one, 24..32 from the last; `payload` starts after the 8-byte UDP header.
    assert whole.payload == (datagram[:16] + b"X" * 8 + datagram[24:])[8:]
    assert defrag.stats["overlaps"] >= 1


def test_first_data_wins_over_later_full_overlap():
    datagram = udp_datagram_bytes(b"B" * 24)
    defrag = Defragmenter()
    defrag.add(ipv4_fragment(8, datagram[8:24], True))
    defrag.add(ipv4_fragment(8, b"Z" * 16, True))                  # complete rewrite, must lose
    assert defrag.add(ipv4_fragment(0, datagram[:8], True)) is None
    whole = defrag.add(ipv4_fragment(24, datagram[24:], False))
    assert whole is not None and whole.payload == b"B" * 24 and whole.checksum_ok


def test_ipv6_reassembly():
    frames = fragment6(Ether(**MACS) / IPv6(src="2001:db8::1", dst="2001:db8::2") / IPv6ExtHdrFragment() /
                       UDP(sport=3, dport=4) / PAYLOAD, 1280)
    packets = [decoded(frame) for frame in frames]
    assert all(pkt.is_fragment for pkt in packets)
    whole = feed(Defragmenter(), packets)
    assert whole is not None and whole.ip_version == 6 and whole.payload == PAYLOAD and whole.checksum_ok
    assert (whole.sport, whole.dport, whole.proto) == (3, 4, 17)


def test_ipv6_non_last_fragment_must_be_a_multiple_of_eight():
    pkt = decoded(Ether(**MACS) / IPv6(src="2001:db8::1", dst="2001:db8::2") / IPv6ExtHdrFragment(m=1, nh=17) /
                  (b"x" * 13))
    assert Defragmenter().add(pkt) is None and pkt.anomalies == ["ipv6.frag_invalid_length"]


def test_datagram_over_65535_is_refused():
    pkt = ipv4_fragment(65528, b"y" * 16, False)
    defrag = Defragmenter()
    assert defrag.add(pkt) is None and pkt.anomalies == ["ipv4.frag_pkt_too_large"] and len(defrag) == 0


def test_incomplete_datagrams_time_out_by_packet_time():
    defrag = Defragmenter(timeout=30.0)
    defrag.add(ipv4_fragment(0, b"a" * 16, True, ident=1, ts=0.0))
    defrag.add(ipv4_fragment(0, b"b" * 16, True, ident=2, ts=20.0))
    assert len(defrag) == 2
    defrag.add(ipv4_fragment(0, b"c" * 16, True, ident=3, ts=31.0))
    assert len(defrag) == 2 and defrag.stats["timeouts"] == 1
    # the timed-out datagram cannot be completed any more
    assert defrag.add(ipv4_fragment(16, b"a" * 8, False, ident=1, ts=32.0)) is None


def test_memory_bound_evicts_oldest():
    defrag = Defragmenter(max_bytes=4000)
    for ident in range(20):
        defrag.add(ipv4_fragment(0, b"q" * 800, True, ident=ident, ts=float(ident)))
        assert defrag.bytes_held <= 4000
    assert defrag.stats["evicted"] > 0 and len(defrag) < 20


def test_non_fragments_are_ignored():
    pkt = decoded(Ether(**MACS) / IP(src="192.0.2.1", dst="192.0.2.2") / UDP())
    assert Defragmenter().add(pkt) is None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40), st.integers(0, 40), st.booleans(), st.integers(0, 2)), max_size=20))
def test_arbitrary_fragment_sequences_never_raise_and_stay_bounded(pieces):
    defrag = Defragmenter(max_bytes=2000)
    for index, (offset_units, length, more, ident) in enumerate(pieces):
        if offset_units == 0 and not more:
            continue                                    # not a fragment at all
        pkt = ipv4_fragment(offset_units * 8, bytes([index]) * length, more, ident=ident, ts=float(index))
        whole = defrag.add(pkt)
        if whole is not None:
            assert whole.ip_version == 4 and not whole.is_fragment
        assert defrag.bytes_held <= 2000


def test_many_tiny_fragments_in_reverse_order_reassemble():
    # The worst order for keeping held ranges sorted: every fragment goes in
    # front. 8-byte fragments of a 4 KB datagram, last one first.
    datagram = udp_datagram_bytes(PAYLOAD[:4088])
    offsets = list(range(0, len(datagram), 8))
    packets = [ipv4_fragment(offset, datagram[offset:offset + 8], offset != offsets[-1], ident=99)
               for offset in reversed(offsets)]
    defrag = Defragmenter()
    whole = feed(defrag, packets)
    assert whole is not None and whole.payload == PAYLOAD[:4088] and whole.anomalies is None
    assert len(defrag) == 0 and defrag.bytes_held == 0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40), st.integers(0, 6)), min_size=1, max_size=30))
def test_held_ranges_stay_sorted_disjoint_and_first_data_wins(pieces):
    from ips.defrag import _Tracker
    tracker = _Tracker(0.0)
    truth: dict[int, int] = {}
    for index, (block, blocks) in enumerate(pieces):
        start, end = block * 8, (block + blocks) * 8
        data = bytes([index]) * (end - start)
        added = Defragmenter._insert(tracker, start, end, data)
        new = [position for position in range(start, end) if position not in truth]
        for position in new:
            truth[position] = index
        assert added == len(new)
        ranges = tracker.ranges
        assert all(a[1] <= b[0] for a, b in zip(ranges, ranges[1:]))
        assert all(len(piece) == piece_end - piece_start for piece_start, piece_end, piece in ranges)
        held = {piece_start + i: value for piece_start, _, piece in ranges for i, value in enumerate(piece)}
        assert held == truth and tracker.held == len(truth)
