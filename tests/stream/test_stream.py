"""TcpReassembler: ordering, overlaps (first data wins / inline normalisation),
gaps, depth, midstream, bounds."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from ips.config import Config
from ips.packet import TH_ACK, TH_FIN
from ips.stream import RETAIN_BYTES, WINDOW_BYTES, TcpReassembler
from tests.applayer.applayer_helpers import FakeFlow, handshake, tcp_packet

CLIENT_ISN = 1000
SERVER_ISN = 5000


def make(**settings_) -> tuple[TcpReassembler, FakeFlow]:
    config = Config()
    for key, value in settings_.items():
        setattr(config, key, value)
    reassembler = TcpReassembler(config)
    flow = FakeFlow()
    handshake(reassembler, flow, CLIENT_ISN, SERVER_ISN)
    return reassembler, flow


def send(reassembler, flow, offset: int, data: bytes, to_server=True, flags=TH_ACK, ack=0):
    isn = CLIENT_ISN if to_server else SERVER_ISN
    packet = tcp_packet(seq=isn + 1 + offset, payload=data, flags=flags, ack=ack, to_server=to_server)
    return packet, reassembler.on_packet(flow, packet)


def delivered(chunks) -> bytes:
    return b"".join(c.data for c in chunks if c is not None)


def test_in_order_segments_are_delivered_with_window():
    reassembler, flow = make()
    _, first = send(reassembler, flow, 0, b"GET /ind")
    _, second = send(reassembler, flow, 8, b"ex.html HTTP/1.1\r\n")
    assert first.data == b"GET /ind" and not first.gap
    assert second.data == b"ex.html HTTP/1.1\r\n"
    assert second.window == b"GET /index.html HTTP/1.1\r\n"
    assert second.window[second.new_offset:] == second.data


def test_directions_are_independent():
    reassembler, flow = make()
    send(reassembler, flow, 0, b"request")
    _, chunk = send(reassembler, flow, 0, b"response", to_server=False)
    assert chunk.data == b"response" and chunk.window == b"response"


def test_out_of_order_segments_are_held_until_the_hole_fills():
    reassembler, flow = make()
    _, late = send(reassembler, flow, 5, b"world")
    # in the stream, nothing new in order: raw rules must not see "world" alone
    assert late.in_stream and late.data == b"" and late.window[late.new_offset:] == b""
    assert flow.stream.to_server.pending_bytes == 5
    _, chunk = send(reassembler, flow, 0, b"hello")
    assert chunk.data == b"helloworld"
    assert flow.stream.to_server.pending_bytes == 0


def test_uri_split_over_many_reordered_segments():
    reassembler, flow = make()
    request = b"GET /cgi-bin/../../etc/passwd HTTP/1.1\r\n\r\n"
    pieces = [(i, request[i:i + 3]) for i in range(0, len(request), 3)]
    chunks = [send(reassembler, flow, offset, piece)[1] for offset, piece in reversed(pieces)]
    assert delivered(chunks) == request


@pytest.mark.parametrize("inline", [False, True])
def test_conflicting_retransmission_first_data_wins(inline):
    reassembler, flow = make(stream_inline=inline)
    send(reassembler, flow, 0, b"GET /safe HTTP/1.1\r\n")
    packet, chunk = send(reassembler, flow, 0, b"GET /evil HTTP/1.1\r\n")
    # nothing new for detection: the window is the first copy, all of it old
    assert chunk.data == b"" and chunk.window == b"GET /safe HTTP/1.1\r\n"
    assert chunk.new_offset == len(chunk.window)
    assert "stream.reassembly_overlap_different_data" in packet.anomalies
    if inline:
        # the receiver gets exactly what was inspected
        assert packet.payload == b"GET /safe HTTP/1.1\r\n"
        assert reassembler.normalised(packet)
    else:
        assert packet.payload == b"GET /evil HTTP/1.1\r\n"
        assert not reassembler.normalised(packet)


def test_identical_retransmission_is_silent():
    reassembler, flow = make(stream_inline=True)
    send(reassembler, flow, 0, b"abcdef")
    packet, chunk = send(reassembler, flow, 0, b"abcdef")
    assert chunk.data == b"" and packet.anomalies is None and not reassembler.normalised(packet)


@pytest.mark.parametrize("inline", [False, True])
def test_partial_overlap_keeps_old_bytes_and_delivers_new(inline):
    reassembler, flow = make(stream_inline=inline)
    send(reassembler, flow, 0, b"AAAA")
    packet, chunk = send(reassembler, flow, 2, b"XXBB")
    assert chunk.data == b"BB"
    assert "stream.reassembly_overlap_different_data" in packet.anomalies
    assert packet.payload == (b"AABB" if inline else b"XXBB")


@pytest.mark.parametrize("inline", [False, True])
def test_overlapping_out_of_order_segments_first_held_wins(inline):
    reassembler, flow = make(stream_inline=inline)
    send(reassembler, flow, 4, b"evil")           # held first
    packet, _ = send(reassembler, flow, 4, b"good")  # conflicting copy, later
    assert "stream.reassembly_overlap_different_data" in packet.anomalies
    _, chunk = send(reassembler, flow, 0, b"GET ")
    assert chunk.data == b"GET evil"
    if inline:
        assert packet.payload == b"evil"


def test_later_segment_overlapping_held_one_only_adds_new_bytes():
    reassembler, flow = make()
    send(reassembler, flow, 4, b"BBBB")
    send(reassembler, flow, 2, b"xxBBBBCC")
    _, chunk = send(reassembler, flow, 0, b"AA")
    assert chunk.data == b"AAxxBBBBCC"


def test_ack_of_unseen_bytes_reports_gap_and_resumes():
    reassembler, flow = make()
    send(reassembler, flow, 0, b"first ")
    send(reassembler, flow, 20, b"after the hole")            # held; bytes 6..20 lost
    ack_packet, _ = send(reassembler, flow, 0, b"", to_server=False, ack=CLIENT_ISN + 1 + 34)
    assert "stream.reassembly_seq_gap" in ack_packet.anomalies
    _, chunk = send(reassembler, flow, 34, b"!")
    assert chunk.gap and chunk.data == b"after the hole!"
    assert chunk.window == chunk.data   # no bytes from before the hole


def test_pending_bound_forces_a_gap():
    reassembler, flow = make(stream_max_pending=10)
    send(reassembler, flow, 10, b"123456")
    packet, chunk = send(reassembler, flow, 16, b"7890abcd")
    assert "stream.reassembly_memcap" in packet.anomalies
    assert chunk.gap and chunk.data == b"123456"
    assert flow.stream.to_server.pending_bytes <= 10


def test_depth_stops_delivery_and_is_reported():
    reassembler, flow = make(stream_depth=10)
    _, chunk = send(reassembler, flow, 0, b"0123456789abcdef")
    assert chunk.data == b"0123456789"
    assert reassembler.depth_reached(flow, to_server=True)
    assert not reassembler.depth_reached(flow)       # server side still open
    _, after = send(reassembler, flow, 16, b"more")
    assert after is None
    send(reassembler, flow, 0, b"x" * 12, to_server=False)
    assert reassembler.depth_reached(flow)


def test_no_handshake_without_midstream_is_not_reassembled():
    reassembler = TcpReassembler(Config())
    flow = FakeFlow()
    assert reassembler.on_packet(flow, tcp_packet(seq=777, payload=b"GET / HTTP/1.1\r\n")) is None


def test_midstream_pickup_starts_at_first_seen_sequence():
    config = Config()
    config.stream_midstream = True
    reassembler = TcpReassembler(config)
    flow = FakeFlow()
    chunk = reassembler.on_packet(flow, tcp_packet(seq=777, payload=b"GET / HTTP/1.1\r\n"))
    assert chunk.data == b"GET / HTTP/1.1\r\n"
    chunk = reassembler.on_packet(flow, tcp_packet(seq=777 + 16, payload=b"Host: x\r\n"))
    assert chunk.data == b"Host: x\r\n"


def test_sequence_wraparound():
    reassembler = TcpReassembler(Config())
    flow = FakeFlow()
    handshake(reassembler, flow, client_isn=0xFFFFFFF0)
    chunks = [reassembler.on_packet(flow, tcp_packet(seq=0xFFFFFFF1 + i * 8, payload=bytes([65 + i]) * 8))
              for i in range(4)]
    assert delivered(chunks) == b"A" * 8 + b"B" * 8 + b"C" * 8 + b"D" * 8


def test_fin_and_old_data_are_harmless():
    reassembler, flow = make()
    send(reassembler, flow, 0, b"data")
    packet, chunk = send(reassembler, flow, 4, b"", flags=TH_ACK | TH_FIN)
    assert chunk is None and flow.stream.to_server.fin_seen
    packet, chunk = send(reassembler, flow, -100, b"x" * 10)
    assert chunk is None and "stream.pkt_before_stream_start" in packet.anomalies


def test_window_is_bounded():
    reassembler, flow = make()
    for i in range(10):
        _, chunk = send(reassembler, flow, i * 1000, b"z" * 1000)
    assert len(chunk.window) == WINDOW_BYTES + 1000
    assert len(flow.stream.to_server.retained) <= RETAIN_BYTES


segments = st.lists(st.tuples(st.integers(0, 400), st.binary(min_size=0, max_size=60),
                              st.booleans(), st.integers(0, 500)), max_size=40)


@settings(max_examples=200, deadline=None)
@given(segments, st.booleans())
def test_random_segments_never_raise_and_stay_bounded(items, inline):
    reassembler, flow = make(stream_inline=inline, stream_max_pending=128, stream_depth=300)
    for offset, data, to_server, ack in items:
        packet = tcp_packet(seq=(CLIENT_ISN if to_server else SERVER_ISN) + 1 + offset,
                            payload=data, ack=(SERVER_ISN if to_server else CLIENT_ISN) + ack,
                            to_server=to_server)
        chunk = reassembler.on_packet(flow, packet)
        assert packet.anomalies is None or "stream.internal_error" not in packet.anomalies
        if chunk is not None:
            assert chunk.window[chunk.new_offset:] == chunk.data
        for side in (flow.stream.to_server, flow.stream.to_client):
            # The sorted index of held segments (found by bisection) is
            # exactly the held segments, and they never overlap.
            assert side.held_starts == sorted(side.pending)
            ends = [start + len(side.pending[start]) for start in side.held_starts]
            assert all(end <= later for end, later in zip(ends, side.held_starts[1:]))
    for side in (flow.stream.to_server, flow.stream.to_client):
        assert side.pending_bytes == sum(len(v) for v in side.pending.values())
        assert side.pending_bytes <= 128 + 60    # the bound plus one segment
        assert len(side.retained) <= RETAIN_BYTES
        assert side.next_offset <= 300


@settings(max_examples=150, deadline=None)
@given(st.binary(min_size=1, max_size=300), st.data())
def test_any_in_window_permutation_reassembles_exactly(stream_bytes, data):
    """Cut a stream into segments (possibly overlapping, with identical
    bytes), deliver in any order: the output is the stream, once."""
    cuts = sorted(set(data.draw(st.lists(st.integers(1, len(stream_bytes)), max_size=12))))
    bounds = [0] + cuts + [len(stream_bytes)]
    pieces = [(a, stream_bytes[a:b]) for a, b in zip(bounds, bounds[1:]) if b > a]
    extra = data.draw(st.lists(st.tuples(st.integers(0, len(stream_bytes) - 1), st.integers(1, 20)),
                               max_size=5))
    pieces += [(a, stream_bytes[a:a + n]) for a, n in extra]
    order = data.draw(st.permutations(pieces))
    reassembler, flow = make()
    chunks = [send(reassembler, flow, offset, piece)[1] for offset, piece in order]
    assert delivered(chunks) == stream_bytes
    assert not any(c.gap for c in chunks if c is not None)


# -- app-layer delivery: on ACK in IDS mode, at once inline ----------------------

def test_ids_mode_releases_request_to_parsers_when_the_server_acks_it():
    reassembler, flow = make()
    _, chunk = send(reassembler, flow, 0, b"GET / HTTP/1.1\r\n\r\n")
    assert chunk.data == b"GET / HTTP/1.1\r\n\r\n" and chunk.app == ()   # raw now, parsers later
    _, partial = send(reassembler, flow, 0, b"", to_server=False, ack=CLIENT_ISN + 1 + 4)
    assert partial.app == ((True, b"GET ", False),) and not partial.in_stream
    _, rest = send(reassembler, flow, 0, b"", to_server=False, ack=CLIENT_ISN + 1 + 18)
    assert rest.app == ((True, b"/ HTTP/1.1\r\n\r\n", False),)
    _, again = send(reassembler, flow, 0, b"", to_server=False, ack=CLIENT_ISN + 1 + 18)
    assert again is None      # a duplicate ACK releases nothing and costs no chunk


def test_inline_mode_gives_parsers_the_bytes_at_once():
    reassembler, flow = make(stream_inline=True)
    _, chunk = send(reassembler, flow, 0, b"GET / HTTP/1.1\r\n")
    assert chunk.app == ((True, b"GET / HTTP/1.1\r\n", False),)


def test_rst_releases_the_senders_unacknowledged_bytes():
    from ips.packet import TH_RST
    reassembler, flow = make()
    send(reassembler, flow, 0, b"abc")
    _, chunk = send(reassembler, flow, 3, b"", flags=TH_RST)
    assert chunk.app == ((True, b"abc", False),)


def test_flush_hands_over_never_acknowledged_bytes_client_first():
    reassembler, flow = make()
    send(reassembler, flow, 0, b"request")
    send(reassembler, flow, 0, b"response", to_server=False)
    assert reassembler.flush(flow) == [(True, b"request", False), (False, b"response", False)]
    assert reassembler.flush(flow) == []
    assert reassembler.tail(flow, True) == b"request"


def test_unacknowledged_bytes_are_bounded():
    from ips.stream import UNACKED_APP_BYTES
    reassembler, flow = make(stream_max_pending=1 << 20)
    block = b"x" * 65536
    released = 0
    for index in range(UNACKED_APP_BYTES // len(block) + 2):
        _, chunk = send(reassembler, flow, index * len(block), block)
        released += sum(len(data) for _, data, _ in chunk.app)
        assert len(flow.stream.to_server.app_held) <= UNACKED_APP_BYTES
    assert released > 0


def test_gap_is_reported_to_parsers_after_the_bytes_before_it():
    reassembler, flow = make(stream_max_pending=8)
    send(reassembler, flow, 0, b"head")
    _, lost = send(reassembler, flow, 10, b"0123456789")   # beyond the bound: hole lost
    _, chunk = send(reassembler, flow, 0, b"", to_server=False, ack=CLIENT_ISN + 1 + 20)
    releases = list(lost.app) + list(chunk.app) + reassembler.flush(flow)
    assert releases[0] == (True, b"head", False)
    assert releases[1] == (True, b"0123456789", True)
