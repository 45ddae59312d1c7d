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
