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


# -- libhtp's request-line, host, folding and response-matching events ----------
#
# Each is raised where Suricata 8's htp raises it, on the same transaction;
# each test pairs a message that raises it with a close one that does not.

def _request_events(request_bytes: bytes) -> set:
    txs = HttpParser().feed(request_bytes, True)
    assert len(txs) == 1
    return set(txs[0].events)


@pytest.mark.parametrize("request_line, raised", [
    (b" GET / HTTP/1.1", True),
    (b"\tGET / HTTP/1.1", True),
    (b"\x0bGET / HTTP/1.1", True),          # libhtp's blanks include VT and FF
    (b"GET / HTTP/1.1", False),
])
def test_request_line_leading_whitespace(request_line, raised):
    events = _request_events(request_line + b"\r\nHost: a\r\n\r\n")
    assert ("http.request_line_leading_whitespace" in events) is raised


def test_empty_lines_before_a_request_are_not_leading_whitespace():
    # libhtp ignores empty lines between requests; they are not the request line
    parser = HttpParser()
    parser.feed(b"GET /a HTTP/1.1\r\nHost: a\r\n\r\n", True)
    txs = parser.feed(b"\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n", True)
    assert [(tx.buffers["http.uri"], tx.events) for tx in txs] == [(b"/b", ())]


def test_leading_whitespace_is_skipped_before_the_method():
    txs = HttpParser().feed(b"\x0b GET /x HTTP/1.1\r\nHost: a\r\n\r\n", True)
    assert (txs[0].buffers["http.method"], txs[0].buffers["http.uri"]) == (b"GET", b"/x")


@pytest.mark.parametrize("request_line, raised", [
    (b"GET\t/ HTTP/1.1", True),
    (b"GET \t/ HTTP/1.1", True),            # any non-space byte in the run
    (b"GET\x0c/ HTTP/1.1", True),
    (b"GET  / HTTP/1.1", False),            # several spaces are fine
    (b"GET / HTTP/1.1", False),
])
def test_method_delim_non_compliant(request_line, raised):
    events = _request_events(request_line + b"\r\nHost: a\r\n\r\n")
    assert ("http.method_delim_non_compliant" in events) is raised


@pytest.mark.parametrize("request_line, raised", [
    (b"GET /a\tHTTP/1.1", True),            # no space after the target: libhtp splits at the tab
    (b"GET /a\x0bHTTP/1.1", True),
    (b"GET /a\tb HTTP/1.1", False),         # a space ends the target first
    (b"GET /a HTTP/1.1\t", False),          # trailing blanks are trimmed
    (b"GET /a", False),
])
def test_uri_delim_non_compliant(request_line, raised):
    events = _request_events(request_line + b"\r\nHost: a\r\n\r\n")
    assert ("http.uri_delim_non_compliant" in events) is raised


def test_target_cut_at_a_tab_is_the_uri_libhtp_reads():
    txs = HttpParser().feed(b"GET /cgi-bin/a.cgi\tHTTP/1.1\r\nHost: a\r\n\r\n", True)
    assert (txs[0].buffers["http.uri"], txs[0].buffers["http.protocol"]) == (
        b"/cgi-bin/a.cgi", b"HTTP/1.1")


@pytest.mark.parametrize("request_bytes, raised", [
    (b"GET / HTTP/1.1\r\n\r\n", True),
    (b"GET / HTTP/01.1\r\n\r\n", True),             # libhtp reads it as 1.1
    (b"GET / HTTP/1.1\r\nX-Host: a\r\n\r\n", True),
    (b"GET / HTTP/1.1\r\nhost: a\r\n\r\n", False),
    (b"GET / HTTP/1.1\r\nHo\x00st: a\r\n\r\n", False),   # libhtp ignores NULs in names
    (b"GET / HTTP/1.0\r\n\r\n", False),
    (b"GET /\r\n", False),                          # HTTP/0.9
])
def test_missing_host_header(request_bytes, raised):
    assert ("http.missing_host_header" in _request_events(request_bytes)) is raised


@pytest.mark.parametrize("host, raised", [
    (b"a b", True),                  # a blank inside the name
    (b"a..b", True),
    (b".a", True),
    (b"a:0", True),                  # port 0 is no port
    (b"a:99999", True),
    (b"a:", True),
    (b"a:http", True),
    (b"a/x", True),                  # something after the host that is no port
    (b"[::1", True),
    (b"[::g]", True),
    (b"a" * 64 + b".com", True),     # a label over 63 bytes
    (b"a, b", True),                 # two Host headers, joined as libhtp does
    (b"a", False),
    (b"a.", False),
    (b"a_b-c.example", False),
    (b"A.Example:8080", False),
    (b"a:80/x", False),              # libhtp reads the port's run and stops
    (b"a:+80", False),
    (b"[::1]:8080", False),
    (b"192.0.2.1", False),
    (b"\xe9t\xe9.example", False),   # Latin-1 letters pass libhtp's check
    (b"", False),                    # no host at all is not judged
    (b":80", False),
])
def test_request_header_host_invalid(host, raised):
    events = _request_events(b"GET / HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
    assert ("http.request_header_host_invalid" in events) is raised


def test_host_value_fast_path_agrees_with_the_full_check():
    from ips.applayer.http import _host_and_port, _hostport_valid, _port_number, _valid_hostname
    for text in (b"a", b"a.b.c", b"a.", b"a:1", b"a:0009", b"a:65535", b"a-b_c.d:80", b"a" * 63,
                 b"a" * 64, b"%s.%s" % (b"a" * 63, b"b" * 63)):
        host, port, rest = _host_and_port(text)
        full = (_port_number(port) is not None and _valid_hostname(host) if port is not None
                else not rest and _valid_hostname(host))
        assert _hostport_valid(text) is full, text


@pytest.mark.parametrize("request_line, raised", [
    (b"GET http://a..b/x HTTP/1.1", True),
    (b"GET http://a_b%20c/ HTTP/1.1", True),     # judged %-decoded
    (b"GET http://a.b:99999/ HTTP/1.1", True),
    (b"GET http://a.b:x/ HTTP/1.1", True),
    (b"GET http://user@[::1/ HTTP/1.1", True),
    (b"CONNECT a..b:443 HTTP/1.1", True),
    (b"CONNECT a.b:0 HTTP/1.1", True),
    (b"CONNECT a.b HTTP/1.1", False),
    (b"CONNECT a.b:443 HTTP/1.1", False),
    (b"GET http://A.B.:8080/x HTTP/1.1", False), # trailing dots are dropped first
    (b"GET http://%61.b/ HTTP/1.1", False),
    (b"GET http://user:pw@a.b/ HTTP/1.1", False),
    (b"GET http://[::1]:80/ HTTP/1.1", False),
    (b"GET /http://a..b/ HTTP/1.1", False),      # a path, not an authority
    (b"GET * HTTP/1.1", False),
])
def test_request_uri_host_invalid(request_line, raised):
    events = _request_events(request_line + b"\r\nHost: a\r\n\r\n")
    assert ("http.request_uri_host_invalid" in events) is raised


def test_uri_host_is_judged_when_the_request_line_is_complete():
    # as libhtp, before the headers arrive (inline, the request line's own packet)
    txs = HttpParser().feed(b"GET http://a..b/ HTTP/1.1\r\nHost: a\r\n", True)
    assert "http.request_uri_host_invalid" in txs[0].events


@pytest.mark.parametrize("headers, raised", [
    (b" Host: a\r\n", True),
    (b"\tX-A: 1\r\nHost: a\r\n", True),
    (b"Host: a\r\nX-A: 1\r\n 2\r\n", False),     # a fold of X-A, which libhtp accepts
    (b" junk\r\nHost: a\r\n", False),            # no colon: missing colon, not folding
])
def test_invalid_request_field_folding(headers, raised):
    events = _request_events(b"GET / HTTP/1.1\r\n" + headers + b"\r\n")
    assert ("http.invalid_request_field_folding" in events) is raised


@pytest.mark.parametrize("headers, raised", [
    (b" Server: x\r\nContent-Length: 0\r\n", True),
    (b"Server: x\r\n y\r\nContent-Length: 0\r\n", False),
])
def test_invalid_response_field_folding(headers, raised):
    parser = HttpParser()
    request = parser.feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", True)[0]
    txs = parser.feed(b"HTTP/1.1 200 OK\r\n" + headers + b"\r\n", False)
    assert txs == [request]
    assert ("http.invalid_response_field_folding" in request.events) is raised
    assert "http.invalid_request_field_folding" not in request.events


def test_invalid_folding_in_trailers():
    parser = HttpParser()
    txs = parser.feed(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"0\r\n X-Sum: 1\r\n\r\n", True)
    assert "http.invalid_request_field_folding" in txs[0].events


@pytest.mark.parametrize("interim, raised", [
    (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n", True),
    (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 100 Continue\r\nContent-Length: 0\r\n\r\n", True),
    (b"HTTP/1.1 100 Continue\r\n\r\n", False),
    (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n", False),
])
def test_100_continue_already_seen(interim, raised):
    parser = HttpParser()
    request = parser.feed(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nab", True)[0]
    parser.feed(interim + b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", False)
    assert ("http.100_continue_already_seen" in request.events) is raised
    assert request.status == 200


def test_each_request_may_have_its_own_100_continue():
    parser = HttpParser()
    txs = parser.feed(b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n", True)
    continued = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    parser.feed(continued * 2, False)
    assert [tx.events for tx in txs] == [(), ()]


def test_unable_to_match_response_to_request():
    parser = HttpParser()
    request = parser.feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", True)[0]
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    assert parser.feed(ok, False) == [request]
    assert request.events == ()
    extra = parser.feed(ok, False)          # a second response, no request left
    assert [tx.events for tx in extra] == [("http.unable_to_match_response_to_request",)]
    assert extra[0] is not request


def test_response_before_any_request_is_unmatched():
    txs = HttpParser().feed(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", False)
    assert txs[0].events == ("http.unable_to_match_response_to_request",)


def test_pipelined_responses_are_matched():
    parser = HttpParser()
    parser.feed(b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n", True)
    txs = parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n" * 2, False)
    assert [tx.events for tx in txs] == [(), ()]
