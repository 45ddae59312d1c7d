"""HTTP parser: buffers, framing, pipelining, normalisation, evasions, bounds."""
from __future__ import annotations

import gzip

import pytest
from hypothesis import given, settings, strategies as st

from tests.applayer.applayer_helpers import DATA, PCAPS, Pipeline, feed_all

from ips.applayer import http as http_module
from ips.applayer.http import HttpParser, normalise_uri
from ips.config import Config

REQUEST = (b"GET /a/../b//c/%2e%2e/d.php?x=%41&y=1 HTTP/1.1\r\n"
           b"Host: Example.COM:8080\r\n"
           b"User-Agent: Mozilla/5.0 (IoT)\r\n"
           b"Cookie: session=1\r\n"
           b"X-Folded: one\r\n two\r\n"
           b"\r\n")
RESPONSE = (b"HTTP/1.1 200 OK\r\nServer: Boa/0.94\r\nContent-Type: text/html; charset=utf-8\r\n"
            b"Set-Cookie: s=2\r\nContent-Length: 5\r\n\r\nhello")


def test_request_buffers():
    [tx] = HttpParser().feed(REQUEST, True)
    buffers = tx.buffers
    assert buffers["http.method"] == b"GET"
    assert buffers["http.uri.raw"] == b"/a/../b//c/%2e%2e/d.php?x=%41&y=1"
    assert buffers["http.uri"] == b"/b/d.php?x=A&y=1"
    assert buffers["http.protocol"] == b"HTTP/1.1"
    assert buffers["http.request_line"] == REQUEST.split(b"\r\n")[0]
    assert buffers["http.host"] == b"example.com"
    assert buffers["http.host.raw"] == b"Example.COM:8080"
    assert buffers["http.user_agent"] == b"Mozilla/5.0 (IoT)"
    assert buffers["http.cookie"] == b"session=1"
    # Cookie is excluded from the normalised header buffer but kept in raw
    assert b"Cookie" not in buffers["http.header"]
    assert b"Cookie: session=1\r\n" in buffers["http.header.raw"]
    assert b"X-Folded: one two\r\n" in buffers["http.header"]
    assert buffers["http.header"].endswith(b"\r\n\r\n")
    assert buffers["http.header_names"] == b"\r\nHost\r\nUser-Agent\r\nCookie\r\nX-Folded\r\n\r\n"
    assert buffers["http.start"] == REQUEST
    assert not tx.complete and tx.record is None


def test_response_completes_transaction_with_eve_record():
    parser = HttpParser()
    parser.feed(REQUEST, True)
    [tx] = parser.feed(RESPONSE, False)
    assert tx.complete and not tx.to_server
    assert tx.buffers["http.stat_code"] == b"200"
    assert tx.buffers["http.stat_msg"] == b"OK"
    assert tx.buffers["http.server"] == b"Boa/0.94"
    assert tx.buffers["http.response_body"] == b"hello" == tx.buffers["file.data"]
    assert tx.buffers["http.cookie"] == b"s=2"     # response side: Set-Cookie
    assert b"Set-Cookie" not in tx.buffers["http.header"]
    assert tx.buffers["http.uri"] == b"/b/d.php?x=A&y=1"   # request buffers stay visible
    assert tx.record == {"hostname": "example.com", "http_port": 8080,
                         "url": "/a/../b//c/%2e%2e/d.php?x=%41&y=1",
                         "http_user_agent": "Mozilla/5.0 (IoT)", "http_content_type": "text/html",
                         "http_method": "GET", "protocol": "HTTP/1.1", "status": 200, "length": 5}


def test_pipelined_requests_are_matched_in_order():
    parser = HttpParser()
    txs = parser.feed(b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nHEAD /2 HTTP/1.1\r\nHost: a\r\n\r\n"
                      b"POST /3 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc", True)
    assert [tx.tx_id for tx in txs] == [0, 1, 2]
    assert txs[2].buffers["http.request_body"] == b"abc"
    responses = (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                 b"HTTP/1.1 200 OK\r\nContent-Length: 999\r\n\r\n"    # HEAD: no body
                 b"HTTP/1.1 100 Continue\r\n\r\n"
                 b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
    done = [tx for tx in parser.feed(responses, False) if tx.complete]
    assert [(tx.tx_id, tx.record["status"]) for tx in done] == [(0, 200), (1, 200), (2, 404)]


def test_chunked_bodies_byte_by_byte():
    parser = HttpParser()
    body = b"POST /up HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nwiki\r\n5\r\npedia\r\n0\r\nTrailer: x\r\n\r\n"
    for index in range(len(body)):
        txs = parser.feed(body[index:index + 1], True)
    assert txs[0].buffers["http.request_body"] == b"wikipedia"
    response = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    [tx] = parser.feed(response, False)
    assert tx.complete and tx.buffers["http.response_body"] == b"abc"
    assert tx.record["length"] == len(b"3\r\nabc\r\n0\r\n\r\n")


def test_gzip_response_body_is_decompressed():
    parser = HttpParser()
    parser.feed(b"GET / HTTP/1.1\r\n\r\n", True)
    payload = gzip.compress(b"<html>secret</html>")
    [tx] = parser.feed(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n"
                       % len(payload) + payload, False)
    assert tx.buffers["file.data"] == b"<html>secret</html>"


def _raw_deflate(data: bytes) -> bytes:
    import zlib
    packer = zlib.compressobj(wbits=-15)
    return packer.compress(data) + packer.flush()


@pytest.mark.parametrize("headers,body", [
    (b"Content-Encoding: gzip\r\n", _raw_deflate(b"<html>secret</html>")),      # mislabelled
    (b"Content-Encoding: deflate\r\n", gzip.compress(b"<html>secret</html>")),  # mislabelled
    (b"Content-Encoding: deflate\r\n", _raw_deflate(b"<html>secret</html>")),
    # two layers, as two headers and as one list: gzip applied first
    (b"Content-Encoding: gzip\r\nContent-Encoding: deflate\r\n",
     _raw_deflate(gzip.compress(b"<html>secret</html>"))),
    (b"Content-Encoding: gzip, deflate\r\n", _raw_deflate(gzip.compress(b"<html>secret</html>"))),
])
def test_encodings_are_undone_like_libhtp(headers, body):
    parser = HttpParser()
    parser.feed(b"GET / HTTP/1.1\r\n\r\n", True)
    [tx] = parser.feed(b"HTTP/1.1 200 OK\r\n" + headers + b"Content-Length: %d\r\n\r\n" % len(body)
                       + body, False)
    assert tx.buffers["file.data"] == b"<html>secret</html>"
    assert "http.body_decompression_failed" not in parser.events


ELF = b"\x7fELF\x01\x02\x01\x00" + bytes(range(64))


def _response_body(pieces: list[bytes]) -> bytes:
    """file.data of the one response to a GET, the response fed in `pieces`."""
    parser = HttpParser()
    parser.feed(b"GET /x HTTP/1.1\r\nHost: d\r\n\r\n", True)
    txs = [tx for piece in pieces for tx in parser.feed(piece, False)] + parser.finish()
    [tx] = list({id(tx): tx for tx in txs}.values())
    return tx.response_buffers.get("file.data", b"")


@pytest.mark.parametrize("split", ["whole", "bytewise"])
def test_a_response_without_status_line_is_all_body(split):
    # libhtp, browsers, curl --http0.9 and GNU wget read it as the body to
    # the close: an executable sent with no status line is still file.data.
    pieces = [ELF] if split == "whole" else [ELF[i:i + 1] for i in range(len(ELF))]
    assert _response_body(pieces) == ELF


@pytest.mark.parametrize("pieces", [[b"h", b"ttp/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"],
                                    [b" \x00HT", b"TP/1.0 200 OK\r\n\r\nok"],
                                    [b"\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"]])
def test_a_status_line_is_known_by_its_first_letters_however_cut(pieces):
    assert _response_body(pieces) == b"ok"


@pytest.mark.parametrize("body", [
    [ELF[:1], ELF[1:]],                                      # the magic's first byte alone
    [b"1\r\n" + ELF[:1] + b"\r\n", b"%x\r\n%s\r\n0\r\n\r\n" % (len(ELF) - 1, ELF[1:])],
])
def test_a_lying_content_encoding_keeps_the_bytes_it_held(body):
    # The label says gzip, the body is plain: what the client saves is the
    # body as sent, every byte of it, including those held while the
    # decoder tried gzip, zlib and raw deflate.
    framing = (b"Transfer-Encoding: chunked" if body[0].startswith(b"1\r\n")
               else b"Content-Length: %d" % len(ELF))
    head = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n" + framing + b"\r\n\r\n"
    assert _response_body([head, *body]) == ELF


def test_body_until_close_and_flow_end_flush():
    parser = HttpParser()
    parser.feed(b"GET / HTTP/1.0\r\n\r\nGET /never-answered HTTP/1.0\r\n\r\n", True)
    [tx] = parser.feed(b"HTTP/1.0 200 OK\r\n\r\nstreaming", False)
    # a short body is published to detection when it ends (here: flow end)
    assert not tx.complete and "http.response_body" not in tx.buffers
    flushed = parser.finish()
    assert [t.tx_id for t in flushed] == [0, 1]
    assert flushed[0].buffers["http.response_body"] == b"streaming"
    assert flushed[0].record["length"] == 9 and "status" not in flushed[1].record


def test_request_line_without_newline_is_taken_at_close():
    # As libhtp: "GET /x" then FIN or RST is a request for /x, not nothing.
    parser = HttpParser()
    assert parser.feed(b"GET /cgi-bin/;reboot", True) == []
    [tx] = parser.finish()
    assert tx.buffers["http.method"] == b"GET" and tx.buffers["http.uri"] == b"/cgi-bin/;reboot"
    assert tx.record["url"] == "/cgi-bin/;reboot"
    assert HttpParser().finish() == []


def test_status_code_buffer_is_the_raw_token_as_libhtp_reads_it():
    for line, code, message, status in ((b"HTTP/1.0 2000123 xxxxABC", b"2000123", b"xxxxABC", None),
                                        (b"HTTP/1.0 FAIL OK", b"FAIL", b"OK", None),
                                        (b"HTTP/1.1 404 Not Found", b"404", b"Not Found", 404)):
        parser = HttpParser()
        parser.feed(b"GET / HTTP/1.1\r\nHost: cam\r\n\r\n", True)
        [tx] = parser.feed(line + b"\r\nContent-Length: 0\r\n\r\n", False)
        assert (tx.buffers["http.stat_code"], tx.buffers["http.stat_msg"]) == (code, message)
        assert tx.record.get("status") == status


def test_chunked_trailers_join_the_headers():
    parser = HttpParser()
    [tx] = parser.feed(b"POST /up HTTP/1.1\r\nHost: cam\r\nTransfer-Encoding: chunked\r\n\r\n"
                       b"3\r\nabc\r\n0\r\nX-Trailer: kaboom\r\n\r\n", True)
    assert b"X-Trailer: kaboom\r\n" in tx.buffers["http.header"]
    assert tx.buffers["http.header.raw"].endswith(b"X-Trailer: kaboom\r\n\r\n")
    assert tx.buffers["http.request_body"] == b"abc"


def test_absolute_uri_host_wins_and_a_different_host_header_is_ambiguous():
    # libhtp: the absolute URI names the host (http.host, http.host.raw);
    # a Host header saying otherwise raises http.host_header_ambiguous.
    parser = HttpParser()
    [tx] = parser.feed(b"GET http://Cam.example:8080/x HTTP/1.1\r\nHost: other.example:8080\r\n\r\n",
                       True)
    assert tx.buffers["http.host"] == b"cam.example" and tx.buffers["http.host.raw"] == b"Cam.example"
    assert tx.events == ("http.host_header_ambiguous",)
    for host in (b"cam.example", b"CAM.example:8080"):
        [same] = HttpParser().feed(b"GET http://cam.example:8080/x HTTP/1.1\r\nHost: " + host
                                   + b"\r\n\r\n", True)
        assert same.events == ()
    [port] = HttpParser().feed(b"GET http://cam.example:8080/x HTTP/1.1\r\nHost: cam.example:81"
                               b"\r\n\r\n", True)
    assert port.events == ("http.host_header_ambiguous",)


@pytest.mark.parametrize("line,method,uri,protocol", [
    (b" GET /?p=%20 HTTP/1.0", b"GET", b"/?p=%20", b"HTTP/1.0"),       # libhtp IDS: blanks skipped
    (b"\tGET /cgi-bin/x HTTP/1.1", b"GET", b"/cgi-bin/x", b"HTTP/1.1"),
    (b"GET / JUNK/1.0", b"GET", b"/", b"JUNK/1.0"),                   # the URI must not go blank
    (b"GET /x http/1.1", b"GET", b"/x", b"http/1.1"),
    (b"GET /x HTTP/1.1 x", b"GET", b"/x", b"HTTP/1.1 x"),
])
def test_request_lines_read_as_libhtp_reads_them(line, method, uri, protocol):
    [tx] = HttpParser().feed(line + b"\r\nHost: cam\r\n\r\n", True)
    assert (tx.buffers["http.method"], tx.buffers["http.uri.raw"], tx.buffers["http.protocol"]) == (
        method, uri, protocol)


def test_an_empty_line_before_a_chunk_size_does_not_hide_the_body():
    parser = HttpParser()
    parser.feed(b"GET /fw.bin HTTP/1.1\r\nHost: cam\r\n\r\n", True)
    [tx] = parser.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                       b"\n5\r\n\x7fELF\x01\r\n0\r\n\r\n", False)
    assert tx.buffers["file.data"] == b"\x7fELF\x01" and tx.complete


def test_connect_and_upgrade_stop_parsing():
    parser = HttpParser()
    parser.feed(b"GET /chat HTTP/1.1\r\nUpgrade: websocket\r\n\r\n", True)
    [tx] = parser.feed(b"HTTP/1.1 101 Switching Protocols\r\n\r\n\x81\x05hello", False)
    assert tx.complete and tx.record["status"] == 101
    assert parser.feed(b"GET /not-http-anymore HTTP/1.1\r\n\r\n", True) == []


def test_gap_stops_direction_with_event():
    parser = HttpParser()
    parser.feed(b"POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\nabc", True)
    assert parser.feed(b"GET /smuggled HTTP/1.1\r\n\r\n", True, True) == []
    assert "http.gap" in parser.events


def test_header_section_bound():
    parser = HttpParser()
    parser.feed(b"GET / HTTP/1.1\r\n", True)
    for _ in range(100):
        parser.feed(b"X-Pad: " + b"a" * 1000 + b"\r\n", True)
        assert parser.buffered_bytes <= http_module.MAX_HEADER_BYTES
    assert "http.request_header_too_large" in parser.events


@pytest.mark.parametrize("inline, published", [
    (False, {4096, 8192, 12288, 16384, 20000}),
    # inline, every byte of the head (a body's start decides many rules)
    (True, set(range(1, http_module.BODY_INLINE_HEAD + 1)) | {5120, 9216, 13312, 17408, 20000}),
])
def test_trickled_body_is_published_in_steps_not_per_byte(inline, published):
    parser = HttpParser(Config(stream_inline=inline))
    parser.feed(b"POST / HTTP/1.1\r\nContent-Length: 20000\r\n\r\n", True)
    versions = set()
    for _ in range(20000):
        [tx] = parser.feed(b"b", True)
        body = tx.buffers.get("http.request_body")
        if body is not None:
            versions.add(len(body))
    assert versions == published


def test_gzip_bomb_is_capped():
    import zlib
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    bomb = compressor.compress(b"\0" * (50 << 20)) + compressor.flush()
    parser = HttpParser()
    parser.feed(b"GET / HTTP/1.1\r\n\r\n", True)
    [tx] = parser.feed(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n"
                       % len(bomb) + bomb, False)
    assert len(tx.buffers["file.data"]) == http_module.RESPONSE_BODY_LIMIT
    assert tx.record["length"] == len(bomb)


def test_body_inspection_bound():
    parser = HttpParser()
    parser.feed(b"POST / HTTP/1.1\r\nContent-Length: 10000000\r\n\r\n", True)
    for _ in range(300):
        [tx] = parser.feed(b"z" * 1000, True)
    assert len(tx.buffers["http.request_body"]) == http_module.REQUEST_BODY_LIMIT
    assert parser.buffered_bytes <= http_module.REQUEST_BODY_LIMIT


@pytest.mark.parametrize("raw, expected", [
    (b"/cgi-bin/../../../etc/passwd", b"/etc/passwd"),
    (b"/a/./b/.", b"/a/b/"),
    (b"/..%2f..%2fetc%2fpasswd", b"/etc/passwd"),          # encoded separators decoded, then folded
    (b"/%2e%2e/%2e%2e/etc/passwd", b"/etc/passwd"),
    # libhtp decodes once: a double-encoded traversal stays encoded (and
    # unfolded) in http.uri, as in Suricata with double-decode-path: no.
    (b"/%252e%252e/etc/passwd", b"/%2e%2e/etc/passwd"),
    (b"/a\\..\\b", b"/b"),                                 # backslashes are separators
    (b"/%u002e%u002e/x", b"/x"),                            # %u best-fit decoding
    (b"/bad%zzescape", b"/bad%zzescape"),                   # invalid escapes preserved
    (b"http://evil.example/a/../b?q=%20", b"/b?q= "),       # absolute form: path + query
    (b"/x?a=../../y", b"/x?a=../../y"),                     # the query is not path-folded
    # libhtp: the path ends at '?' or '#'; Suricata's http.uri keeps the
    # fragment (decoded), so what a server that ignores '#' runs is seen
    (b"/cgi-bin/#/../;wget%20x", b"/cgi-bin/#/../;wget x"),
    (b"/a?b=1#c?d", b"/a?b=1#c?d"),
    (b"/a#c?d", b"/a#c?d"),
    (b"/a/../b#", b"/b#"),
])
def test_uri_normalisation(raw, expected):
    assert normalise_uri(raw) == expected


def test_absolute_uri_supplies_host():
    [tx] = HttpParser().feed(b"GET http://Camera.Local:81/snapshot.cgi HTTP/1.1\r\n\r\n", True)
    assert tx.buffers["http.host"] == b"camera.local"
    assert tx.buffers["http.uri"] == b"/snapshot.cgi"


def test_upnp_device_description_is_observed():
    parser = HttpParser()
    parser.feed(b"GET /description.xml HTTP/1.1\r\nHost: 192.0.2.5:49152\r\n\r\n", True)
    xml = (b'<?xml version="1.0"?><root xmlns="urn:schemas-upnp-org:device-1-0"><device>'
           b"<deviceType>urn:schemas-upnp-org:device:MediaRenderer:1</deviceType>"
           b"<friendlyName>Living Room TV</friendlyName><manufacturer>ACME</manufacturer>"
           b"<modelName>TV-3000</modelName></device></root>")
    [tx] = parser.feed(b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: %d\r\n\r\n"
                       % len(xml) + xml, False)
    assert tx.record["upnp"]["friendlyName"] == "Living Room TV"
    assert tx.record["upnp"]["manufacturer"] == "ACME"
    assert tx.record["upnp"]["modelName"] == "TV-3000"


def test_suricata_verify_http_chunked_header_buffers():
    """suricata-verify http-chunked: http.header has Host, X-Qlik-User,
    User-Agent, Content-Length, Transfer-Encoding but not Cookie (sid 22 has
    no expected alert); http.header.raw has all six."""
    pipeline = Pipeline().run(DATA / "suricata-verify/tests/http-chunked/input.pcap")
    [tx] = {id(tx): tx for _, tx in pipeline.txs}.values()
    for name in (b"Host", b"X-Qlik-User", b"User-Agent", b"Content-Length", b"Transfer-Encoding"):
        assert name in tx.buffers["http.header"]
        assert name in tx.buffers["http.header.raw"]
    assert b"Cookie" not in tx.buffers["http.header"]
    assert b"Cookie" in tx.buffers["http.header.raw"]


def test_suricata_verify_bug_78_record():
    pipeline = Pipeline().run(DATA / "suricata-verify/tests/bug-78-uricontent/input.pcap")
    [record] = pipeline.records("http")
    expected = {"hostname": "www.google.com", "http_content_type": "text/html", "http_method": "GET",
                "http_user_agent": "Wget/1.11.4", "protocol": "HTTP/1.0", "status": 404, "url": "/blah/"}
    assert {key: record[key] for key in expected} == expected


def test_suricata_verify_uri_with_space():
    pipeline = Pipeline().run(DATA / "suricata-verify/tests/http-uri-spaces/input.pcap")
    uris = [tx.buffers["http.uri"] for _, tx in pipeline.txs]
    assert b"/uri afterspace" in uris


def test_boa_web_server_capture():
    pipeline = Pipeline().run(PCAPS / "benign/corelight-boa/boa.pcap")
    records = pipeline.records("http")
    assert [(r["url"], r["status"]) for r in records] == [("/", 200), ("/", 200), ("/favicon.ico", 404)]
    # the Zeek baseline shipped with the capture flags this header in both flows
    servers = {tx.buffers.get("http.server") for _, tx in pipeline.txs if tx.complete}
    assert servers == {b"Boa/0.94.14rc21"}


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.binary(max_size=200), st.booleans()), max_size=20))
def test_random_input_never_raises_and_stays_bounded(pieces):
    parser = HttpParser()
    feed_all(parser, pieces)
    parser.finish()
    assert parser.buffered_bytes <= 2 * http_module.MAX_HEADER_BYTES


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_mutated_requests_never_raise(data):
    message = bytearray(REQUEST + b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(0, len(message) - 1))
        message[position] = data.draw(st.integers(0, 255))
    parser = HttpParser()
    split = data.draw(st.integers(0, len(message)))
    feed_all(parser, [(True, bytes(message[:split])), (True, bytes(message[split:])),
                      (False, bytes(message))])


def test_request_line_buffers_come_before_the_headers_end():
    # UriTestSig19/21: the header section never ends; http.uri is still inspectable.
    parser = HttpParser()
    assert parser.feed(b"POST /this_is_big HT", True) == []
    [tx] = parser.feed(b"TP/1.0\r\nUser-Agent: x\r\n", True)
    assert tx.buffers["http.uri"] == b"/this_is_big" and tx.buffers["http.method"] == b"POST"
    assert "http.header" not in tx.buffers and tx.record is None
    [same] = parser.feed(b"Host: a\r\n\r\n", True)
    assert same is tx and tx.buffers["http.host"] == b"a" and parser.next_tx_id == 1


@pytest.mark.parametrize("line, method, uri, protocol", [
    (b"POST\t/cgi-bin/x\tHTTP/1.1", b"POST", b"/cgi-bin/x", b"HTTP/1.1"),
    (b"GET    /a    HTTP/1.1", b"GET", b"/a", b"HTTP/1.1"),       # libhtp skips the run
    (b"GET /a b HTTP/1.0", b"GET", b"/a b", b"HTTP/1.0"),         # spaces inside stay
    (b"GET /index.html", b"GET", b"/index.html", b""),            # HTTP/0.9
])
def test_request_line_separators_as_libhtp_reads_them(line, method, uri, protocol):
    parser = HttpParser()
    [tx] = parser.feed(line + b"\r\nHost: d\r\n\r\n", True)
    assert (tx.buffers["http.method"], tx.buffers["http.uri.raw"], tx.buffers["http.protocol"]) == (
        method, uri, protocol)
    assert "http.request_line_invalid" not in parser.events


def test_request_line_without_a_uri_is_invalid():
    parser = HttpParser()
    parser.feed(b"GET\r\nHost: d\r\n\r\n", True)
    assert "http.request_line_invalid" in parser.events


def test_extra_crlf_between_pipelined_requests_is_tolerated():
    # detect-pcre-03: libhtp skips empty lines before a request line.
    parser = HttpParser()
    txs = parser.feed(b"GET /one/ HTTP/1.1\r\nHost: one\r\n\r\n\r\nGET /two/ HTTP/1.1\r\n"
                      b"Host: two\r\n\r\n", True)
    assert [tx.buffers["http.uri"] for tx in txs] == [b"/one/", b"/two/"]
    assert "http.request_line_invalid" not in parser.events


def test_partial_record_shows_response_state_before_the_body_ends():
    parser = HttpParser()
    [tx] = parser.feed(b"GET /x HTTP/1.0\r\nHost: h\r\n\r\n", True)
    parser.feed(b"HTTP/1.0 404 Not Found\r\nContent-Length: 10\r\n\r\nabcd", False)
    assert tx.record is None
    assert tx.partial_record() == {"hostname": "h", "url": "/x", "http_method": "GET",
                                   "protocol": "HTTP/1.0", "status": 404, "length": 4}


def test_http_tx_starts_as_a_tx():
    """_HttpTx sets Tx's fields itself (no Tx.__init__ frame): same values."""
    import dataclasses

    from ips.applayer import Tx
    from ips.applayer.http import _HttpTx

    made, expected = _HttpTx(7), Tx(app_proto="http", tx_id=7, to_server=True)
    for item in dataclasses.fields(Tx):
        assert getattr(made, item.name) == getattr(expected, item.name), item.name


@pytest.mark.parametrize("data, requests", [
    # a request line without a protocol has no headers unless a header
    # line follows (libhtp): the next request line is a request
    (b"GET /a\r\nGET /cgi-bin/;wget HTTP/1.1\r\nHost: a\r\n\r\n",
     [(b"/a", b"\r\n"), (b"/cgi-bin/;wget", b"Host: a\r\n\r\n")]),
    (b"GET /a\r\nGET /b\r\nGET /c\r\n\r\n", [(b"/a", b"\r\n"), (b"/b", b"\r\n"), (b"/c", b"\r\n")]),
    (b"GET /a\r\nHost: a\r\n\r\n", [(b"/a", b"Host: a\r\n\r\n")]),      # protocol missing, headers
    (b"GET /a\r\nX-Name  : 1\r\n\r\n", [(b"/a", b"X-Name: 1\r\n\r\n")]),
    # with a protocol, whatever follows is the header section
    (b"GET /a HTTP/1.1\r\nGET /b\r\n\r\n", [(b"/a", b": GET /b\r\n\r\n")]),
])
def test_http09_request_line_ends_its_request(data, requests):
    txs = HttpParser().feed(data, True)
    assert [(tx.buffers["http.uri"], tx.buffers["http.header"]) for tx in txs] == requests


def test_http09_request_line_split_from_what_follows():
    parser = HttpParser()
    first = parser.feed(b"GET /a\r\n", True)
    rest = parser.feed(b"GET /cgi-bin/;wget HTTP/1.1\r\n\r\n", True)
    assert [tx.buffers["http.uri"] for tx in first] == [b"/a"]
    assert [tx.buffers["http.uri"] for tx in rest] == [b"/a", b"/cgi-bin/;wget"]
