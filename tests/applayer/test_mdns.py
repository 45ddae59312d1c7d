"""mDNS: service discovery answers become device observations."""
from __future__ import annotations

import struct

from hypothesis import given, settings, strategies as st

from ips.applayer.mdns import MdnsParser

from tests.applayer.test_dns import name


def announcement() -> bytes:
    header = struct.pack(">HHHHHH", 0, 0x8400, 0, 4, 0, 0)
    instance = name("Living Room._googlecast._tcp.local")
    ptr = name("_googlecast._tcp.local") + struct.pack(">HHIH", 12, 1, 120, len(instance)) + instance
    srv_target = name("chromecast-1.local")
    srv = instance + struct.pack(">HHIH", 33, 0x8001, 120, 6 + len(srv_target)) + \
        struct.pack(">HHH", 0, 0, 8009) + srv_target
    txt_data = b"\x09md=Chrome" + b"\x0bfn=Kitchen!"
    txt = instance + struct.pack(">HHIH", 16, 0x8001, 4500, len(txt_data)) + txt_data
    address = srv_target + struct.pack(">HHIH", 1, 0x8001, 120, 4) + bytes([192, 0, 2, 33])
    return header + ptr + srv + txt + address


def test_service_announcement():
    [tx] = MdnsParser().feed(announcement(), False)
    record = tx.record
    assert tx.complete and record["type"] == "response"
    assert record["service_types"] == ["_googlecast._tcp.local"]
    assert record["instances"] == ["Living Room._googlecast._tcp.local"]
    assert record["names"] == ["chromecast-1.local"]
    assert record["txt"] == ["md=Chrome", "fn=Kitchen!"]
    assert record["addresses"] == ["192.0.2.33"]


def test_query():
    message = struct.pack(">HHHHHH", 0, 0, 1, 0, 0, 0) + name("_hap._tcp.local") + struct.pack(">HH", 12, 1)
    [tx] = MdnsParser().feed(message, True)
    assert tx.record == {"type": "query", "queries": ["_hap._tcp.local"]}
    assert tx.buffers["dns.query"] == [b"_hap._tcp.local"]


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_mutated_never_raises(data):
    message = bytearray(announcement())
    for _ in range(data.draw(st.integers(1, 8))):
        message[data.draw(st.integers(0, len(message) - 1))] = data.draw(st.integers(0, 255))
    MdnsParser().feed(bytes(message), False)


def test_mdns_rule_keywords_read_each_section():
    # Suricata 8's mdns.queries/answers/authorities/additionals.rrname.
    from tests.detect.factories import FakeFlow, loaded, packet, sids
    eng = loaded(
        'alert mdns any any -> any any (msg:"a"; mdns.answers.rrname; content:"_googlecast"; sid:1;)',
        'alert mdns any any -> any any (msg:"b"; mdns.answers.rrname; content:"chromecast-1.local"; '
        'startswith; endswith; sid:2;)',
        'alert mdns any any -> any any (msg:"c"; mdns.queries.rrname; content:"_hap"; sid:3;)',
        'alert mdns any any -> any any (msg:"d"; mdns.additionals.rrname; content:"x"; sid:4;)')
    flow = FakeFlow(app_proto="mdns", proto=17)
    [answer] = MdnsParser().feed(announcement(), False)
    reply = packet(b"x", proto=17, sport=5353, dport=5353, to_server=False)
    assert sids(eng.inspect(reply, flow, None, [answer])) == [1, 2]
    query = struct.pack(">HHHHHH", 1, 0, 1, 0, 0, 0) + name("_hap._tcp.local") + struct.pack(">HH", 12, 1)
    [asked] = MdnsParser().feed(query, True)
    assert sids(eng.inspect(packet(b"x", proto=17, sport=5353, dport=5353), flow, None, [asked])) == [3]
