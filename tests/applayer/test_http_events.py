"""HTTP events on the transaction: libhtp's invalid Transfer-Encoding
(Suricata's http.invalid_transfer_encoding_value_in_request)."""
import pytest

from ips.applayer.http import HttpParser

INVALID_TE = "http.invalid_transfer_encoding_value_in_request"


@pytest.mark.parametrize("value, protocol, raised", [
    (b"chunked", b"HTTP/1.1", False),
    (b"CHUNKED", b"HTTP/1.1", False),
    (b"chunked, identity", b"HTTP/1.1", True),
    (b"xchunked", b"HTTP/1.1", True),
    (b"gzip", b"HTTP/1.1", True),
    (b"chunked", b"HTTP/1.0", True),
])
def test_http_invalid_transfer_encoding_follows_libhtp(value, protocol, raised):
    parser = HttpParser()
    request = (b"POST / " + protocol + b"\r\nHost: a\r\nTransfer-Encoding: " + value
               + b"\r\n\r\n0\r\n\r\n")
    txs = parser.feed(request, True)
    assert (INVALID_TE in txs[0].events) is raised
    assert (INVALID_TE in parser.events) is raised


def test_repeated_transfer_encoding_headers_are_joined_as_libhtp_does():
    parser = HttpParser()
    txs = parser.feed(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
                      b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", True)
    assert INVALID_TE in txs[0].events


def test_response_twin_is_on_the_response_transaction():
    parser = HttpParser()
    parser.feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", True)
    txs = parser.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", False)
    assert "http.invalid_transfer_encoding_value_in_response" in txs[0].events


# -- body framing a server may read otherwise (request smuggling) -------------------

SMUGGLING = "http.request_smuggling"
DUPLICATE_CL = "http.duplicate_content_length_field_in_request"
INVALID_CL = "http.invalid_content_length_field_in_request"
HIDDEN = b"GET /shell?wget HTTP/1.1\r\nHost: a\r\n\r\n"


def _post(length_headers: bytes, body: bytes):
    parser = HttpParser()
    txs = parser.feed(b"POST /form HTTP/1.1\r\nHost: a\r\n" + length_headers + b"\r\n" + body, True)
    return parser, txs


@pytest.mark.parametrize("length_headers, events, requests", [
    # libhtp keeps the first of two differing lengths: the GET is a body here,
    # a request for a server that takes the last one
    (b"Content-Length: %d\r\nContent-Length: 0\r\n" % len(HIDDEN),
     {SMUGGLING, DUPLICATE_CL}, [b"/form"]),
    (b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n", {SMUGGLING}, [b"/form"]),
    # chunked for libhtp, no body for a server that wants exactly "chunked"
    (b"Transfer-Encoding: xchunked\r\n", {SMUGGLING}, [b"/form"]),
    (b"Transfer-Encoding: chunked, identity\r\n", {SMUGGLING}, [b"/form"]),
    (b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", {SMUGGLING}, [b"/form"]),
    (b"Transfer-Encoding: Chunked\r\n", set(), [b"/form"]),
    # a name a server may or may not take for Content-Length
    (b"Content-Length : %d\r\n" % len(HIDDEN), {SMUGGLING}, [b"/form"]),
    (b"Content-Length\x00: 0\r\n", {SMUGGLING}, [b"/form", b"/shell?wget"]),
    (b"Content-Length: +0\r\n", {SMUGGLING}, [b"/form", b"/shell?wget"]),
    (b"Content-Length: 0x10\r\n", {SMUGGLING}, [b"/form", b"/shell?wget"]),
    (b"Content-Length: 0\r\n 5\r\n", {SMUGGLING}, [b"/form", b"/shell?wget"]),     # folded
    # no digits: libhtp gives up on the connection; here the request is
    # bodiless and the next one is still parsed
    (b"Content-Length: none\r\n", {SMUGGLING, INVALID_CL}, [b"/form", b"/shell?wget"]),
    # not ambiguous: the same length twice, or one plain length
    (b"Content-Length: 0\r\nContent-Length: 0\r\n", set(), [b"/form", b"/shell?wget"]),
    (b"Content-Length: 0\r\n", set(), [b"/form", b"/shell?wget"]),
])
def test_ambiguous_body_length_is_an_event_on_the_request(length_headers, events, requests):
    body = HIDDEN
    if b"chunked" in length_headers.lower():
        body = b"%x\r\n" % len(HIDDEN) + HIDDEN + b"\r\n0\r\n\r\n"
    parser, txs = _post(length_headers, body)
    assert [tx.buffers["http.uri"] for tx in txs] == requests
    framing = {SMUGGLING, DUPLICATE_CL, INVALID_CL}
    assert set(txs[0].events) & framing == events
    assert all(not set(tx.events) & framing for tx in txs[1:])


def test_repeated_content_length_keeps_the_first_value_unmerged():
    # libhtp ignores a repeated Content-Length instead of joining it with ", "
    _, txs = _post(b"Content-Length: 3\r\nContent-Length: 3\r\n", b"a=b")
    assert txs[0].buffers["http.content_len"] == b"3"
    assert txs[0].buffers["http.header"].count(b"Content-Length") == 1
    assert txs[0].buffers["http.request_body"] == b"a=b"


def test_response_with_differing_lengths_is_flagged_on_the_response():
    parser = HttpParser()
    parser.feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", True)
    txs = parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 9\r\n\r\nok", False)
    assert {"http.response_smuggling", "http.duplicate_content_length_field_in_response"} <= set(txs[0].events)
    assert txs[0].buffers["http.response_body"] == b"ok"


def test_response_length_without_digits_reads_until_close():
    parser = HttpParser()
    parser.feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", True)
    txs = parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: many\r\n\r\nall of it", False)
    assert "http.invalid_content_length_field_in_response" in txs[0].events
    parser.feed(b" and more", False)
    ended = parser.finish()
    assert [tx.buffers["http.response_body"] for tx in ended] == [b"all of it and more"]


def test_header_line_without_colon_stays_inspectable():
    # libhtp: a header with an empty name and the whole line as its value
    parser = HttpParser()
    txs = parser.feed(b"GET / HTTP/1.1\r\nHost: a\r\nX-Cmd ;wget 198.51.100.9\r\n\r\n", True)
    assert "http.request_field_missing_colon" in txs[0].events
    assert b": X-Cmd ;wget 198.51.100.9\r\n" in txs[0].buffers["http.header"]


@pytest.mark.parametrize("line, invalid", [
    (b"X-Ok: 1", False),
    (b"X-Ok : 1", True),          # blanks before the colon
    (b"X Y: 1", True),            # not a token
    (b": 1", True),               # empty name
    (b"X\x00: 1", True),
])
def test_malformed_header_name_is_suricatas_request_header_invalid(line, invalid):
    parser = HttpParser()
    txs = parser.feed(b"GET / HTTP/1.1\r\nHost: a\r\n" + line + b"\r\n\r\n", True)
    assert ("http.request_header_invalid" in txs[0].events) is invalid
    assert "http.request_smuggling" not in txs[0].events


# -- found by replaying the same streams to busybox httpd, mini_httpd,
#    lighttpd and nginx (a request a server ran that no http.uri showed) ----------

CHUNKED_POST = b"POST /form HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"


def _feed_in(parser: HttpParser, data: bytes, pieces: int) -> list:
    seen: dict[int, object] = {}
    step = -(-len(data) // pieces)
    for start in range(0, len(data), step):
        for tx in parser.feed(data[start:start + step], True):
            seen[id(tx)] = tx
    return list(seen.values())


@pytest.mark.parametrize("pieces", [1, 2, 3, 7])
@pytest.mark.parametrize("last_chunk", [
    b"0" * 17,                       # leading zeros: the parser gave up at 16 digits
    b"0;" + b"a" * 1100,             # an extension longer than the old 1,024-byte line bound
    b"0;" + b" " * 100_000,          # ... of any length, kept to a bounded prefix
    b"0 ;ext=1",
])
def test_chunk_lines_servers_accept_are_read_however_they_are_cut(last_chunk, pieces):
    parser = HttpParser()
    txs = _feed_in(parser, CHUNKED_POST + last_chunk + b"\r\n\r\n" + HIDDEN, pieces)
    assert [tx.buffers["http.uri"] for tx in txs] == [b"/form", b"/shell?wget"]
    assert not any(SMUGGLING in tx.events for tx in txs)
    assert parser.buffered_bytes < 70_000


@pytest.mark.parametrize("body, events, requests", [
    # libhtp reads "0x1" as 0 (digits up to the x); a server reads 1 or fails
    (b"0x1\r\n\r\n" + HIDDEN, {SMUGGLING}, [b"/form", b"/shell?wget"]),
    # bytes where the CRLF after chunk data belongs: libhtp skips them, a
    # server may read a chunk size there
    (b"2\r\nab;junk\r\n0\r\n\r\n" + HIDDEN, {SMUGGLING}, [b"/form", b"/shell?wget"]),
    # no digits, or over 2**31 - 1: libhtp gives up on the connection, so
    # does the parser, and what follows is unseen: the request is flagged
    (b"zz\r\n" + HIDDEN, {SMUGGLING, "http.invalid_request_chunk_len"}, [b"/form"]),
    (b"80000000\r\n" + HIDDEN, {SMUGGLING, "http.invalid_request_chunk_len"}, [b"/form"]),
])
def test_chunked_bodies_a_server_may_read_otherwise_are_flagged(body, events, requests):
    parser = HttpParser()
    txs = _feed_in(parser, CHUNKED_POST + body, 1)
    assert [tx.buffers["http.uri"] for tx in txs] == requests
    assert set(txs[0].events) == events


@pytest.mark.parametrize("request_bytes", [
    b"GET /cgi-bin/m.c\rgi?id=1 HTTP/1.0\r\n\r\n",     # busybox deletes the CR: runs m.cgi
    b"P\rOST /x HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /x HTTP/1.1\r\nHost: a\rX-Y: 1\r\n\r\n",
])
def test_cr_inside_a_line_is_flagged(request_bytes):
    txs = HttpParser().feed(request_bytes, True)
    assert SMUGGLING in txs[0].events


def test_crlf_and_lf_line_ends_are_not_flagged():
    for request_bytes in (b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n", b"GET /x HTTP/1.1\nHost: a\n\n"):
        assert not HttpParser().feed(request_bytes, True)[0].events


def test_cleartext_http2_preface_is_flagged_and_ends_http1_parsing():
    from tests.evasion.make_cases import SHELL_PATH, _h2c_preface
    parser = HttpParser()
    txs = parser.feed(_h2c_preface(SHELL_PATH), True)
    assert [(tx.buffers["http.method"], tx.events) for tx in txs] == [
        (b"PRI", ("http.http2_cleartext",))]
    assert parser.feed(b"GET /more HTTP/1.1\r\n\r\n", True) == []      # frames, not requests


def test_upgrade_to_cleartext_http2_is_flagged():
    txs = HttpParser().feed(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n"
                            b"Upgrade: h2c\r\n\r\n", True)
    assert "http.http2_cleartext" in txs[0].events
    txs = HttpParser().feed(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n"
                            b"Upgrade: websocket\r\n\r\n", True)
    assert "http.http2_cleartext" not in txs[0].events


def test_cleartext_http2_preface_is_taken_for_http_by_protocol_detection():
    from ips.applayer import _looks_like_http_request
    assert _looks_like_http_request(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") == "http"


@pytest.mark.parametrize("pieces", [1, 50])
def test_header_section_over_the_bound_flags_its_request(pieces):
    # Parsing stops past MAX_HEADER_BYTES; a request hidden after the huge
    # header would go unseen, so the request itself is flagged.
    parser = HttpParser()
    data = b"GET /a HTTP/1.1\r\nX: " + b"a" * 70_000 + b"\r\n\r\n" + HIDDEN
    txs = _feed_in(parser, data, pieces)
    assert [(tx.buffers["http.uri"], SMUGGLING in tx.events) for tx in txs] == [(b"/a", True)]
    assert "http.request_header_too_large" in parser.events


def test_response_header_section_over_the_bound_stops_the_response_side_only():
    parser = HttpParser()
    parser.feed(b"GET /a HTTP/1.1\r\nHost: a\r\n\r\n", True)
    assert parser.feed(b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70_000 + b"\r\n\r\n", False) == []
    assert "http.response_header_too_large" in parser.events
    assert [tx.buffers["http.uri"] for tx in parser.feed(HIDDEN, True)] == [b"/shell?wget"]
