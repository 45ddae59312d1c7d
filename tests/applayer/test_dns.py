"""DNS parser: UDP and TCP framing, compression, loop protection, records."""
from __future__ import annotations

import struct

from hypothesis import given, settings, strategies as st

from tests.applayer.applayer_helpers import PCAPS, Pipeline, feed_all

from ips.applayer.dns import DnsParser, parse_message, read_name


def name(text: str) -> bytes:
    return b"".join(bytes([len(p)]) + p.encode() for p in text.split(".")) + b"\x00"


def query(message_id=0x1234, qname="camera.example.com", qtype=1) -> bytes:
    return struct.pack(">HHHHHH", message_id, 0x0100, 1, 0, 0, 0) + name(qname) + struct.pack(">HH", qtype, 1)


def response(message_id=0x1234) -> bytes:
    header = struct.pack(">HHHHHH", message_id, 0x8180, 1, 2, 0, 0)
    question = name("camera.example.com") + struct.pack(">HH", 1, 1)
    cname = b"\xc0\x0c" + struct.pack(">HHIH", 5, 1, 60, 6) + b"\x03cdn\xc0\x13"   # cdn.example.com
    answer = b"\xc0\x30" + struct.pack(">HHIH", 1, 1, 300, 4) + bytes([203, 0, 113, 7])
    return header + question + cname + answer


def test_query_and_response_are_each_logged_under_one_tx_id():
    parser = DnsParser()
    [request_tx] = parser.feed(query(), True)
    assert request_tx.buffers["dns.query"] == [b"camera.example.com"]
    # Suricata 8 logs the request when it arrives (bug-5197: 2 dns records).
    assert request_tx.record["type"] == "request" and not request_tx.complete
    [tx] = parser.feed(response(), False)
    assert tx.tx_id == request_tx.tx_id and tx.complete and request_tx.complete
    assert "dns.query" not in tx.buffers and tx.buffers["dns.query.name"] == [b"camera.example.com"]
    assert tx.record["type"] == "response" and tx.record["rcode"] == "NOERROR"
    assert tx.record["queries"] == [{"rrname": "camera.example.com", "rrtype": "A"}]
    assert tx.record["answers"] == [
        {"rrname": "camera.example.com", "rrtype": "CNAME", "ttl": 60, "rdata": "cdn.example.com"},
        {"rrname": "cdn.example.com", "rrtype": "A", "ttl": 300, "rdata": "203.0.113.7"}]


def test_unanswered_query_is_not_logged_twice_at_flow_end():
    parser = DnsParser()
    [tx] = parser.feed(query(), True)
    assert parser.finish() == []
    assert tx.complete and tx.record["type"] == "request"


def test_tcp_length_prefixed_messages_split_anywhere():
    parser = DnsParser(tcp=True)
    stream = b"".join(struct.pack(">H", len(m)) + m for m in (query(1), query(2, "b.example")))
    txs = []
    for index in range(len(stream)):
        txs += parser.feed(stream[index:index + 1], True)
    assert [tx.buffers["dns.query"] for tx in txs] == [[b"camera.example.com"], [b"b.example"]]
    assert parser.buffered_bytes == 0


def test_compression_loop_is_stopped():
    # A pointer to itself is Suricata's infinite_loop; two pointers pointing
    # at each other run into the 255-step bound, Suricata's too_many_labels.
    assert read_name(b"\x00" * 12 + b"\xc0\x0e\xc0\x0e", 12)[2] == "dns.infinite_loop"
    # ... reached with no pointer followed before it, the name never ends
    assert read_name(b"\x00" * 12 + b"\xc0\x0c", 12)[2] == "dns.malformed_data"
    data = b"\x00" * 12 + b"\x01a\xc0\x10" + b"\xc0\x0c"
    assert read_name(data, 16)[2] == "dns.too_many_labels"


def _labels(name: bytes) -> bytes:
    return b"".join(bytes([len(part)]) + part for part in name.split(b".")) + b"\x00"


def _query(qname_wire: bytes, trailer: bytes = b"") -> bytes:
    return struct.pack(">6H", 7, 0x0100, 1, 0, 0, 0) + qname_wire + b"\x00\x01\x00\x01" + trailer


def test_forward_pointer_is_followed_as_a_resolver_does():
    # The question's name is a pointer to bytes after the question: a name
    # a resolver reads must not hide from dns.query (Suricata follows it).
    target = 12 + 2 + 4
    message = _query(bytes([0xC0, target]), _labels(b"c2.example.com"))
    [question] = parse_message(message).questions
    assert question.name == b"c2.example.com" and (question.rrtype, question.rrclass) == (1, 1)


def test_long_names_are_read_whole_and_cut_past_suricatas_limit():
    long = b".".join([b"z" * 60] * 4) + b".zzzend.example.com"          # 262 bytes
    [question] = parse_message(_query(_labels(long))).questions
    assert question.name == long and question.rrtype == 1
    huge = b".".join([b"y" * 63] * 20)                                    # 1279 bytes
    message = parse_message(_query(_labels(huge)))
    [question] = message.questions
    assert len(question.name) <= 1025 and question.rrtype == 1
    assert "dns.name_too_long" in message.problems


def test_eve_record_is_written_as_suricatas_dns_v3():
    from ips.applayer.dns import message_record
    request = message_record(parse_message(struct.pack(">6H", 9, 0x0140, 1, 0, 0, 0)
                                           + _labels(b"cam.example") + b"\x00\x01\x00\x01"))
    # flags in unpadded hex, the Z bit, and the rcode on requests too
    assert (request["flags"], request.get("z"), request["rcode"]) == ("140", True, "NOERROR")
    answers = (b"\xc0\x0c" + struct.pack(">HHIH", 28, 1, 60, 16) + bytes.fromhex("20010db8" + "00" * 11 + "01")
               + b"\xc0\x0c" + struct.pack(">HHIH", 16, 1, 60, 8) + b"\x03one\x03two")
    response = message_record(parse_message(struct.pack(">6H", 9, 0x8180, 1, 2, 0, 0)
                                            + _labels(b"cam.example") + b"\x00\x1c\x00\x01" + answers))
    assert [(a["rrtype"], a["rdata"]) for a in response["answers"]] == [
        ("AAAA", "2001:0db8:0000:0000:0000:0000:0000:0001"), ("TXT", "one"), ("TXT", "two")]


def test_hostile_pointer_chains_cost_a_bounded_number_of_steps():
    # Question k's name points at question k-1's: 200 questions cost
    # 200 * 201 / 2 = 20,100 name steps. The message's budget stops the
    # walk long before, and says so.
    body = bytearray(b"\x01a\x00\x00\x01\x00\x01")           # question 1 at offset 12
    starts = [12]
    for _ in range(199):
        starts.append(12 + len(body))
        previous = starts[-2]
        body += bytes([0xC0 | (previous >> 8), previous & 0xFF]) + b"\x00\x01\x00\x01"
    message = parse_message(struct.pack(">6H", 1, 0x0100, 200, 0, 0, 0) + bytes(body))
    assert 50 < len(message.questions) < 200 and "dns.malformed_data" in message.problems
    assert all(q.name == b"a" for q in message.questions)


def test_truncated_message_is_an_event_not_an_exception():
    parser = DnsParser()
    parser.feed(query()[:-3], True)
    assert "dns.malformed_data" in parser.events


def test_real_capture():
    pipeline = Pipeline().run(PCAPS / "benign/ndpi/dns.pcap")
    names = {q["rrname"] for r in pipeline.records("dns") for q in r["queries"]}
    assert "www.example.com" in names


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.binary(max_size=200)), max_size=10), st.booleans())
def test_random_input_never_raises(pieces, tcp):
    parser = DnsParser(tcp=tcp)
    feed_all(parser, pieces)
    parser.finish()
    assert parser.buffered_bytes <= 2 * (65535 + 2)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_mutated_response_never_raises(data):
    message = bytearray(response())
    for _ in range(data.draw(st.integers(1, 6))):
        message[data.draw(st.integers(0, len(message) - 1))] = data.draw(st.integers(0, 255))
    parse_message(bytes(message))
    DnsParser().feed(bytes(message), False)
