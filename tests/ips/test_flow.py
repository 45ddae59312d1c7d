"""ips.flow: bidirectional lookup, TCP state, midstream, timeouts, memory cap;
and the whole front (capture → decode → defrag → flow) on every shared capture."""
from __future__ import annotations

import functools
import random

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.all import ICMP, IP, TCP, UDP, Ether, IPv6, conf, raw

from ips.capture import PcapReader
from ips.config import Config
from ips.decode import decode
from ips.defrag import Defragmenter
from ips.flow import FLOW_COST, FlowTable
from ips.packet import TH_ACK, TH_FIN, TH_RST, TH_SYN, Packet

conf.verb = 0
CLIENT, SERVER = "192.0.2.10", "198.51.100.20"
CLIENT_MAC, SERVER_MAC = "02:00:00:00:00:01", "02:00:00:00:00:02"


@functools.lru_cache(maxsize=None)
def tcp_frame(flags: str, to_server: bool, payload: bytes, sport: int) -> bytes:
    src, dst, ports = (CLIENT, SERVER, (sport, 80)) if to_server else (SERVER, CLIENT, (80, sport))
    macs = (CLIENT_MAC, SERVER_MAC) if to_server else (SERVER_MAC, CLIENT_MAC)
    return raw(Ether(src=macs[0], dst=macs[1]) / IP(src=src, dst=dst) /
               TCP(sport=ports[0], dport=ports[1], flags=flags) / payload)


def tcp(flags: str, to_server: bool = True, ts: float = 1.0, payload: bytes = b"", sport: int = 40000) -> Packet:
    pkt = Packet(tcp_frame(flags, to_server, payload, sport), ts, 1)
    assert decode(pkt)
    return pkt


def udp(to_server: bool = True, ts: float = 1.0, sport: int = 5000, payload: bytes = b"q") -> Packet:
    src, dst, ports = (CLIENT, SERVER, (sport, 53)) if to_server else (SERVER, CLIENT, (53, sport))
    pkt = Packet(raw(Ether(src=CLIENT_MAC, dst=SERVER_MAC) / IP(src=src, dst=dst) / UDP(sport=ports[0], dport=ports[1]) / payload), ts, 1)
    assert decode(pkt)
    return pkt


def table(**settings_) -> FlowTable:
    return FlowTable(Config(**settings_))


def handshake(flows: FlowTable, ts: float = 1.0):
    flows.lookup(tcp("S", True, ts))
    flows.lookup(tcp("SA", False, ts + 0.01))
    return flows.lookup(tcp("A", True, ts + 0.02))


# -- lookup and direction ------------------------------------------------------------

def test_both_directions_map_to_one_flow_with_counters():
    flows = table()
    request, reply = tcp("S", True, payload=b""), tcp("SA", False, ts=1.5)
    first, second = flows.lookup(request), flows.lookup(reply)
    assert first is second and request.flow is first and request.to_server and not reply.to_server
    assert (first.client_ip, first.client_port, first.server_ip, first.server_port) == (CLIENT, 40000, SERVER, 80)
    assert (first.pkts_toserver, first.pkts_toclient) == (1, 1)
    # Suricata counts the captured frame, link header included.
    assert (first.bytes_toserver, first.bytes_toclient) == (len(request.data), len(reply.data)) == (54, 54)
    assert (first.start, first.last) == (1.0, 1.5)
    assert (first.client_mac, first.server_mac) == (CLIENT_MAC, SERVER_MAC)
    assert flows.stats["active"] == 1 and flows.stats["created"] == 1


def test_flow_ids_are_unique_positive_and_below_2_53():
    flows = table()
    ids = {flows.lookup(tcp("S", sport=port)).id for port in range(1000, 1500)}
    assert len(ids) == 500 and all(0 < flow_id < 2 ** 53 for flow_id in ids)


def test_undecoded_and_fragment_packets_have_no_flow():
    flows = table()
    assert flows.lookup(Packet(b"\x00" * 10)) is None
    fragment = Packet(raw(Ether(src=CLIENT_MAC, dst=SERVER_MAC) / IP(src=CLIENT, dst=SERVER, flags="MF") / UDP() / (b"x" * 16)))
    assert decode(fragment) and fragment.is_fragment
    assert flows.lookup(fragment) is None and fragment.flow is None


def test_vlans_separate_flows():
    flows = table()
    plain = udp()
    tagged = udp()
    tagged.vlan = (7,)
    assert flows.lookup(plain) is not flows.lookup(tagged)


# -- TCP state ------------------------------------------------------------------------

def test_three_way_handshake_establishes():
    flows = table()
    flow = flows.lookup(tcp("S"))
    assert (flow.state, flow.tcp_state, flow.established) == ("new", "syn_sent", False)
    flows.lookup(tcp("SA", False))
    assert flow.tcp_state == "syn_recv" and not flow.established
    flows.lookup(tcp("A"))
    assert (flow.state, flow.tcp_state, flow.established, flow.midstream) == \
        ("established", "established", True, False)
    assert flow.tcp_flags_ts == TH_SYN | TH_ACK and flow.tcp_flags_tc == TH_SYN | TH_ACK


def test_simultaneous_open_establishes_as_suricatas_four_way_handshake():
    # SYN, SYN from the server, SYN/ACK from the client, ACK from the server:
    # a flow left short of "established" would blind every established rule.
    flows = table()
    flow = flows.lookup(tcp("S"))
    flows.lookup(tcp("S", False))
    assert flow.tcp_state == "syn_sent" and flow.four_way
    flows.lookup(tcp("SA", True))
    assert flow.tcp_state == "syn_recv" and not flow.established
    flows.lookup(tcp("A", True))            # the client's own ACK does not finish it
    assert not flow.established
    flows.lookup(tcp("A", False))
    assert (flow.state, flow.tcp_state, flow.established) == ("established", "established", True)
    assert flow.client_ip == CLIENT


def test_fin_both_ways_closes():
    flows = table()
    flow = handshake(flows)
    flows.lookup(tcp("FA", True, 2.0))
    assert flow.tcp_state == "fin_wait" and flow.state == "established"
    flows.lookup(tcp("FA", False, 2.1))
    assert (flow.tcp_state, flow.state) == ("closed", "closed")
    assert flow.tcp_flags_ts & TH_FIN and flow.tcp_flags_tc & TH_FIN


def test_server_fin_first_is_close_wait():
    flows = table()
    flow = handshake(flows)
    flows.lookup(tcp("FA", False, 2.0))
    assert flow.tcp_state == "close_wait"


def test_rst_resets():
    flows = table()
    flow = handshake(flows)
    flows.lookup(tcp("R", False, 2.0))
    assert (flow.tcp_state, flow.state) == ("closed", "closed") and flow.tcp_flags_tc & TH_RST


def test_without_midstream_a_non_syn_start_is_tracked_but_never_established():
    flows = table(stream_midstream=False)
    flow = flows.lookup(tcp("PA", payload=b"data"))
    flows.lookup(tcp("A", False))
    flows.lookup(tcp("PA", True, payload=b"more"))
    assert flow is not None and not flow.established and flow.tcp_state == "none" and flow.state == "new"
    assert flow.client_ip == CLIENT


def test_midstream_pickup_establishes_and_guesses_direction():
    flows = table(stream_midstream=True)
    flow = flows.lookup(tcp("PA", payload=b"data"))
    assert flow.established and flow.midstream and flow.tcp_state == "established" and flow.client_ip == CLIENT
    flow = flows.lookup(tcp("SA", to_server=False, sport=41000))
    assert flow.established and flow.midstream
    assert (flow.client_ip, flow.client_port, flow.server_port) == (CLIENT, 41000, 80)


def test_syn_ack_first_makes_the_sender_the_server_even_without_midstream():
    flows = table()
    reply = tcp("SA", to_server=False)
    flow = flows.lookup(reply)
    assert flow.client_ip == CLIENT and not reply.to_server and not flow.established


def test_new_syn_on_closed_flow_starts_a_new_flow():
    flows = table()
    old = handshake(flows)
    flows.lookup(tcp("R", True, 2.0))
    new = flows.lookup(tcp("S", True, 3.0))
    assert new is not old and new.tcp_state == "syn_sent"
    ended = flows.expire(3.0)
    assert old in ended and old.end_reason == "forced" and flows.stats["reused"] == 1
    assert flows.stats["active"] == 1


def test_udp_becomes_established_after_both_directions():
    flows = table()
    flow = flows.lookup(udp())
    assert flow.state == "new" and not flow.established
    flows.lookup(udp(to_server=False))
    assert flow.state == "established" and flow.established


def test_icmp_flows_have_no_ports():
    flows = table()
    request = Packet(raw(Ether(src=CLIENT_MAC, dst=SERVER_MAC) / IP(src=CLIENT, dst=SERVER) / ICMP(type=8) / b"x"))
    reply = Packet(raw(Ether(src=CLIENT_MAC, dst=SERVER_MAC) / IP(src=SERVER, dst=CLIENT) / ICMP(type=0) / b"x"))
    assert decode(request) and decode(reply)
    assert flows.lookup(request) is flows.lookup(reply)


def test_ipv6_flow():
    flows = table()
    pkt = Packet(raw(Ether(src=CLIENT_MAC, dst=SERVER_MAC) / IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(sport=1, dport=2)))
    assert decode(pkt)
    flow = flows.lookup(pkt)
    assert flow.client_ip == "2001:db8::1" and flow.bytes_toserver == 62  # frame length, as Suricata counts


# -- timeouts, eviction, flush -------------------------------------------------------------

def test_timeouts_by_packet_time_and_state():
    flows = table(flow_timeout_new=30, flow_timeout_established=300, flow_timeout_udp=60, flow_timeout_closed=10)
    established = handshake(flows, ts=0.0)
    half_open = flows.lookup(tcp("S", ts=0.0, sport=41000))
    datagram = flows.lookup(udp(ts=0.0))
    assert flows.expire(29.0) == []
    assert flows.expire(31.0) == [half_open] and half_open.end_reason == "timeout"
    assert flows.expire(61.0) == [datagram]
    assert flows.expire(250.0) == []
    flows.lookup(tcp("A", ts=250.0))            # activity pushes the deadline on
    assert flows.expire(400.0) == []
    assert flows.expire(551.0) == [established]
    assert flows.stats["timed_out"] == 3 and flows.stats["active"] == 0 and len(flows) == 0


def test_closed_flow_times_out_with_the_closed_timeout():
    flows = table(flow_timeout_established=300, flow_timeout_closed=10)
    flow = handshake(flows, ts=0.0)
    flows.lookup(tcp("R", ts=1.0))
    assert flows.expire(5.0) == []
    assert flows.expire(11.5) == [flow]


def test_expire_checks_at_most_once_per_second():
    flows = table(flow_timeout_udp=1)
    flows.expire(0.0)
    flows.lookup(udp(ts=0.0))
    assert flows.expire(0.5) == []
    assert flows.expire(1.5) != []


def test_memory_cap_evicts_and_hands_back_the_evicted_flows():
    flows = table(flow_max=3)
    made = [flows.lookup(udp(ts=float(i), sport=1000 + i)) for i in range(5)]
    assert flows.stats["active"] == 3 and flows.stats["evicted"] == 2
    ended = flows.expire(5.0)
    assert ended == made[:2] and all(flow.end_reason == "forced" for flow in ended)
    assert flows.expire(5.0) == []


def test_memcap_limits_capacity():
    assert table(flow_memcap=10 * FLOW_COST, flow_max=1000).capacity == 10


def test_eviction_prefers_flows_nearest_to_timeout():
    flows = table(flow_max=2, flow_timeout_new=30, flow_timeout_established=300)
    established = handshake(flows, ts=0.0)
    half_open = flows.lookup(tcp("S", ts=5.0, sport=41000))
    flows.lookup(tcp("S", ts=6.0, sport=42000))
    assert half_open.end_reason == "forced" and established.end_reason is None


def test_flush_returns_every_flow_once_oldest_first():
    flows = table()
    second = flows.lookup(udp(ts=2.0, sport=2))
    first = flows.lookup(udp(ts=1.0, sport=1))
    flows.lookup(udp(to_server=False, ts=3.0, sport=1))
    assert flows.flush() == [first, second]
    assert all(flow.end_reason == "shutdown" for flow in (first, second))
    assert flows.stats["active"] == 0 and flows.flows() == []


# -- robustness --------------------------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["S", "SA", "A", "PA", "FA", "R", "F", ""]), st.booleans(),
                          st.floats(0, 1000)), max_size=30), st.booleans())
def test_any_tcp_sequence_keeps_the_table_consistent(steps, midstream):
    flows = table(stream_midstream=midstream, flow_max=4)
    for flags, to_server, ts in steps:
        flow = flows.lookup(tcp(flags, to_server, ts, sport=40000 + int(ts) % 3))
        assert flow is not None and flow.state in ("new", "established", "closed")
        flows.expire(ts)
    ended = flows.flush()
    assert len({flow.id for flow in ended}) == len(ended)
    assert flows.stats["active"] == 0


def all_capture_paths(shared_data):
    return sorted(list((shared_data / "pcaps").rglob("*.pcap")) + list((shared_data / "pcaps").rglob("*.pcapng")) +
                  list((shared_data / "throughput" / "ndpi-all").glob("*.pcap*")))


def test_every_shared_capture_reads_decodes_and_flows(shared_data):
    """~112k packets through capture → decode → defrag → flow. Any exception,
    or the decoder's internal-error event, fails."""
    paths = all_capture_paths(shared_data)
    assert len(paths) > 500
    packets = flows_seen = 0
    for path in paths:
        flows = FlowTable(Config())
        defrag = Defragmenter()
        reader = PcapReader(path)
        for pkt in reader:
            packets += 1
            ok = decode(pkt)
            assert "decoder.internal_error" not in (pkt.anomalies or ()), (path, pkt.pcap_cnt)
            if not ok:
                continue
            if pkt.is_fragment:
                pkt = defrag.add(pkt)
                if pkt is None:
                    continue
            flows.lookup(pkt)
            flows.expire(pkt.ts)
        flows_seen += len(flows.flush())
        reader.close()
    assert packets > 100_000 and flows_seen > 5_000


def test_mutated_real_frames_never_raise(shared_data):
    """Flip bytes in real frames of several link types and push them through
    decode, defrag and flow."""
    rng = random.Random(1234)
    frames = []
    for path in all_capture_paths(shared_data)[::25]:
        with PcapReader(path) as reader:
            frames.extend((pkt.data, pkt.linktype) for _, pkt in zip(range(20), reader))
    flows, defrag = FlowTable(Config(flow_max=100)), Defragmenter(max_bytes=1 << 16)
    for round_ in range(4000):
        data, linktype = rng.choice(frames)
        mutated = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            if mutated:
                mutated[rng.randrange(min(len(mutated), 80))] = rng.randrange(256)
        if rng.random() < 0.3:
            mutated = mutated[:rng.randrange(len(mutated) + 1)]
        pkt = Packet(bytes(mutated), float(round_), round_, linktype)
        if not decode(pkt, checksums=rng.random() < 0.5):
            continue
        assert "decoder.internal_error" not in (pkt.anomalies or ())
        if pkt.is_fragment:
            pkt = defrag.add(pkt)
        if pkt is not None:
            flows.lookup(pkt)
        flows.expire(float(round_))
