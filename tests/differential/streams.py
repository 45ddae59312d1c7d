"""The crafted request streams of the differential test.

Each entry of `STREAMS` is `(name, family, builder)`. `builder(marker)`
returns the byte chunks sent on one connection (one `send` each, with a
pause between them); `marker(letter)` is the request target
`/cgi-bin/m.cgi?id=x<stream><server><letter>x`, the same length for every
server, so one stream has the same framing whichever server it goes to.
The CGI logs its query string, so the log says which requests a server ran:

* A: the cover request, the one a reader sees first;
* H, I (and B): hidden requests, which only a server framing the bytes
  otherwise than the cover suggests would run;
* C: a final control request after everything else.

Why these families. An inline IPS only protects a device if its parser sees
every request the device's web server runs. Embedded servers read HTTP/1.x
loosely, each in its own way, so the streams are ambiguities a server may
resolve otherwise than the parser:

* content-length value / name / duplicate / fold / method: request
  smuggling through Content-Length (`+5`, `0x5`, `5 0`, two values, odd
  header names, folded lines, a body on GET or CONNECT): the hidden request
  sits where one reader sees a body and the other the next request.
* transfer-encoding: Transfer-Encoding values and placements (`xchunked`,
  `chunked, identity`, TE with CL both ways, TE on HTTP/1.0).
* chunk syntax: chunked framing (leading zeros, long extensions, `0x`,
  signs, overflow, missing CRLF, trailers): where the chunked body ends.
* line endings / header section end: bare CR or LF line ends and odd blank
  lines, which decide where the header section (and so the request) ends.
* request line / http 0.9: odd request lines (tabs, CR inside the path or
  method, absolute and scheme-relative targets, dot segments, `%` escapes,
  HTTP/0.9 lines with no protocol, junk before the request).
* pipelining / expect / header size: bodies split across writes,
  `Expect: 100-continue`, a large header section.
* http2 cleartext / upgrade: the HTTP/2 preface and `Upgrade: h2c`, which
  lighttpd accepts on its HTTP/1 port: the requests inside are HTTP/2
  frames that no `http.uri` rule sees (the parser flags the switch).
* minimal: the shortest reproducers of what the first run found.

Stream names are stable (the first run's report refers to them); a stream's
index in `STREAMS` is part of its markers, so append new streams at the end.
"""
from __future__ import annotations

import struct
from collections.abc import Callable

SCRIPT = b"/cgi-bin/m.cgi"
"""The marker CGI, as every stream names it."""

Marker = Callable[[str], bytes]
Builder = Callable[[Marker], list[bytes]]
Stream = tuple[str, str, Builder]


# -- building blocks ---------------------------------------------------------------

def get(marker: Marker, letter: str, proto: bytes = b"HTTP/1.1") -> bytes:
    """A plain, complete GET for `letter`."""
    return b"GET " + marker(letter) + b" " + proto + b"\r\nHost: x\r\n\r\n"


def query(marker: Marker, letter: str) -> bytes:
    """The marker's query string alone (`id=x...x`), for targets that spell
    the path their own way."""
    return marker(letter).partition(b"?")[2]


def one(build: Callable[[Marker], bytes]) -> Builder:
    """A builder sending its stream in a single write."""
    return lambda marker: [build(marker)]


def then_control(first: Callable[[Marker], bytes]) -> Builder:
    """`first`, then the hidden request H and the control request C."""
    return one(lambda marker: first(marker) + get(marker, "H") + get(marker, "C"))


# -- baseline ----------------------------------------------------------------------

def _baseline_post(marker: Marker) -> bytes:
    body = b"x=" * 10
    return (b"POST " + marker("A") + b" HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
            + body + get(marker, "C"))


BASELINE = "baseline_pipeline"
"""Two plain pipelined GETs: every server must run A (the sanity check)."""


def _baseline() -> list[Stream]:
    return [
        (BASELINE, "baseline", one(lambda m: get(m, "A") + get(m, "C"))),
        ("baseline_post_body", "baseline", one(_baseline_post)),
    ]


# -- Content-Length ----------------------------------------------------------------

def cl_stream(value: Callable[[int], bytes], name: bytes = b"Content-Length: ", before: bytes = b"",
              method: bytes = b"POST", proto: bytes = b"HTTP/1.1") -> Builder:
    """A request whose body, if the server takes `value(L)` as L, is exactly
    the hidden request H (L bytes); then C."""
    def build(marker: Marker) -> list[bytes]:
        hidden = get(marker, "H")
        return [method + b" " + marker("A") + b" " + proto + b"\r\nHost: x\r\n" + before + name
                + value(len(hidden)) + b"\r\n\r\n" + hidden + get(marker, "C")]
    return build


def _digits(length: int) -> bytes:
    return b"%d" % length


CL_VALUES: dict[str, Callable[[int], bytes]] = {
    "L": _digits,
    "zero": lambda n: b"0",
    "plusL": lambda n: b"+%d" % n,
    "hexL": lambda n: b"0x%x" % n,
    "L_space_0": lambda n: b"%d 0" % n,
    "0_space_L": lambda n: b"0 %d" % n,
    "spaceL": lambda n: b" %d" % n,
    "L_space": lambda n: b"%d " % n,
    "tabL": lambda n: b"\t%d" % n,
    "leading0": lambda n: b"000%d" % n,
    "L_comma_L": lambda n: b"%d,%d" % (n, n),
    "L_comma_0": lambda n: b"%d,0" % n,
    "0_comma_L": lambda n: b"0,%d" % n,
    "L_comma_space_L": lambda n: b"%d, %d" % (n, n),
    "minus1": lambda n: b"-1",
    "minusL": lambda n: b"-%d" % n,
    "empty": lambda n: b"",
    "huge": lambda n: b"99999999999999999999",
    "huge19": lambda n: b"9999999999999999999",
    "L_nul": lambda n: b"%d\x00" % n,
    "L_vt": lambda n: b"%d\x0b" % n,
    "vt_L": lambda n: b"\x0b%d" % n,
    "L_semicolon": lambda n: b"%d;" % n,
    "L_dot0": lambda n: b"%d.0" % n,
    "L_letters": lambda n: b"%dabc" % n,
    "letters_L": lambda n: b"abc%d" % n,
    "L_cr": lambda n: b"%d\r" % n,
    "fullwidth": lambda n: ("%d" % n).translate({48 + i: 0xFF10 + i for i in range(10)}).encode(),
    "L_plus0": lambda n: b"%d+0" % n,
    "0_L_overflowwrap": lambda n: b"%d" % (2**64 + n),
    "0_L_overflow32": lambda n: b"%d" % (2**32 + n),
}
"""Content-Length values, as functions of the hidden request's length L."""

CL_METHODS = (b"GET", b"HEAD", b"OPTIONS", b"DELETE", b"PUT", b"TRACE", b"CONNECT", b"connect",
              b"get", b"FOO")
"""Methods that do not usually carry a body (or are unknown), with one."""

CL_NAMES = {
    "space_colon": b"Content-Length : ", "tab_colon": b"Content-Length\t: ",
    "lower": b"content-length: ", "upper": b"CONTENT-LENGTH: ", "underscore": b"Content_Length: ",
    "nul": b"Content-Length\x00: ", "vt": b"Content-Length\x0b: ", "lead_space": b" Content-Length: ",
    "lead_tab": b"\tContent-Length: ", "double_colon": b"Content-Length:: ",
    "nospace": b"Content-Length:", "tabvalue": b"Content-Length:\t",
    "x_prefix": b"X-Content-Length: ", "suffix": b"Content-Lengthx: ",
    "cr_in_name": b"Content-\rLength: ", "nul_prefix": b"\x00Content-Length: ",
}
"""Spellings of the Content-Length header name (the only length header)."""


def _cl_duplicate(first: Callable[[int], bytes], second: Callable[[int], bytes],
                  first_name: bytes = b"Content-Length: ") -> Builder:
    """Two Content-Length headers: which one a server believes decides
    whether H is a body or a request."""
    def build(marker: Marker) -> list[bytes]:
        hidden = get(marker, "H")
        size = len(hidden)
        return [b"POST " + marker("A") + b" HTTP/1.1\r\nHost: x\r\n" + first_name + first(size)
                + b"\r\nContent-Length: " + second(size) + b"\r\n\r\n" + hidden + get(marker, "C")]
    return build


def _lf_ended_cl(marker: Marker) -> list[bytes]:
    """The Content-Length line alone ends in a bare LF."""
    hidden = get(marker, "H")
    return [b"POST " + marker("A") + b" HTTP/1.1\r\nHost: x\r\nContent-Length: %d\n\r\n" % len(hidden)
            + hidden + get(marker, "C")]


def _cl_first_header_folded(marker: Marker) -> list[bytes]:
    hidden = get(marker, "H")
    return [b"POST " + marker("A") + b" HTTP/1.1\r\n Content-Length: %d\r\nHost: x\r\n\r\n" % len(hidden)
            + hidden + get(marker, "C")]


def _content_length() -> list[Stream]:
    value = "content-length value"
    streams: list[Stream] = [("cl_value_" + name, value, cl_stream(fn)) for name, fn in CL_VALUES.items()]
    method = "content-length method"
    streams += [("cl_method_" + verb.decode(), method, cl_stream(_digits, method=verb))
                for verb in CL_METHODS]
    streams += [
        ("cl_http10", method, cl_stream(_digits, proto=b"HTTP/1.0\r\nConnection: keep-alive")),
        ("cl_http09ish", method, cl_stream(_digits, proto=b"HTTP/0.9")),
        ("cl_http12", method, cl_stream(_digits, proto=b"HTTP/1.2")),
        ("cl_http2", method, cl_stream(_digits, proto=b"HTTP/2.0")),
    ]
    zero, empty, leading0 = CL_VALUES["zero"], CL_VALUES["empty"], CL_VALUES["leading0"]
    pairs = [("L", _digits, "L", _digits), ("0", zero, "L", _digits), ("L", _digits, "0", zero),
             ("L", _digits, "Lp1", lambda n: b"%d" % (n + 1)), ("L", _digits, "empty", empty),
             ("empty", empty, "L", _digits), ("L", _digits, "0L", leading0)]
    duplicate = "content-length duplicate"
    streams += [(f"cl_dup_{a}_{b}", duplicate, _cl_duplicate(first, second))
                for a, first, b, second in pairs]
    streams += [
        ("cl_dup_case_0_L", duplicate, _cl_duplicate(zero, _digits, b"content-length: ")),
        ("cl_dup_case_L_0", duplicate, _cl_duplicate(_digits, zero, b"content-length: ")),
    ]
    name = "content-length name"
    streams += [("cl_name_" + key, name, cl_stream(_digits, name=spelling))
                for key, spelling in CL_NAMES.items()]
    streams.append(("cl_name_lf_only_line", name, _lf_ended_cl))
    # a real "Content-Length: 0" too, before the odd one carrying L
    streams += [("cl_name0_" + key, name,
                 cl_stream(_digits, name=CL_NAMES[key], before=b"Content-Length: 0\r\n"))
                for key in ("space_colon", "lead_space", "underscore", "nul")]
    fold = "content-length fold"
    streams += [
        ("cl_fold_into_prev", fold, cl_stream(_digits, name=b" Content-Length: ", before=b"X-A: b\r\n")),
        ("cl_folded_value", fold, cl_stream(lambda n: b"\r\n %d" % n)),
        ("cl_folded_value_tab", fold, cl_stream(lambda n: b"\r\n\t%d" % n)),
        ("cl_fold_0_then_L", fold, cl_stream(lambda n: b"0\r\n %d" % n)),
        ("cl_first_header_space", fold, _cl_first_header_folded),
    ]
    return streams


# -- line endings and the end of the header section -------------------------------

def _post_with_head(head: bytes) -> Builder:
    """POST A with the header section `head` % L (L = the hidden request's
    length), then H and C."""
    def build(marker: Marker) -> list[bytes]:
        hidden = get(marker, "H")
        return [b"POST " + marker("A") + head % len(hidden) + hidden + get(marker, "C")]
    return build


HEADER_ENDS = {
    "crlf_cr_crlf": b"\r\n\r\r\n", "lf_crlf": b"\n\r\n", "crlf_lf": b"\r\n\n", "crlf_sp_crlf": b"\r\n \r\n",
    "crlf_tab_crlf": b"\r\n\t\r\n", "cr_cr": b"\r\r", "crlf_cr": b"\r\n\r", "crlf_nul_crlf": b"\r\n\x00\r\n",
}
"""Byte runs after the Host line that some reader may take for the blank
line ending the header section."""


def _line_endings() -> list[Stream]:
    family = "line endings"
    streams: list[Stream] = [
        ("cl_bare_cr_before", family, _post_with_head(b" HTTP/1.1\r\nHost: x\rContent-Length: %d\r\n\r\n")),
        ("cl_bare_cr_after", family,
         _post_with_head(b" HTTP/1.1\r\nHost: x\r\nContent-Length: %d\rX: y\r\n\r\n")),
        ("cl_lf_lines", family, _post_with_head(b" HTTP/1.1\nHost: x\nContent-Length: %d\n\n")),
        ("cl_crcrlf_lines", family,
         _post_with_head(b" HTTP/1.1\r\r\nHost: x\r\r\nContent-Length: %d\r\r\n\r\r\n")),
    ]
    for name, end in HEADER_ENDS.items():
        # a Content-Length after the odd end: a header for one reader, body for the other
        streams.append((f"hdr_end_{name}_then_cl", "header section end",
                        _post_with_head(b" HTTP/1.1\r\nHost: x" + end + b"Content-Length: %d\r\n\r\n")))
        # a request right after the odd end: the next request, or more headers
        streams.append((f"hdr_end_{name}_then_req", "header section end",
                        then_control(lambda m, end=end: b"GET " + m("A") + b" HTTP/1.1\r\nHost: x" + end)))
    return streams


# -- Transfer-Encoding -------------------------------------------------------------

def te_stream(te_header: bytes, shape: str, proto: bytes = b"HTTP/1.1") -> Builder:
    """POST A with the Transfer-Encoding header line(s) `te_header`; `shape`
    says where H hides:

    * te_only: after an empty chunked body (a server not reading chunked
      sees the body as junk, then H);
    * te_chunkwrap: inside the only chunk (a server not reading chunked
      takes the chunk for requests);
    * te_cl: TE.CL, the Content-Length covers the chunk-size line only, H is
      the chunk data;
    * cl_te: CL.TE, the Content-Length covers the chunked end and H.
    """
    def build(marker: Marker) -> list[bytes]:
        hidden = get(marker, "H")
        start = b"POST " + marker("A") + b" " + proto + b"\r\nHost: x\r\n"
        if shape == "te_only":
            return [start + te_header + b"\r\n0\r\n\r\n" + hidden + get(marker, "C")]
        if shape == "te_chunkwrap":
            body = b"%x\r\n" % len(hidden) + hidden + b"\r\n0\r\n\r\n"
            return [start + te_header + b"\r\n" + body + get(marker, "C")]
        if shape == "te_cl":
            size_line = b"%x\r\n" % len(hidden)
            return [start + b"Content-Length: %d\r\n" % len(size_line) + te_header + b"\r\n"
                    + size_line + hidden + b"\r\n0\r\n\r\n" + get(marker, "C")]
        if shape == "cl_te":
            body = b"0\r\n\r\n" + hidden
            return [start + b"Content-Length: %d\r\n" % len(body) + te_header + b"\r\n" + body
                    + get(marker, "C")]
        raise ValueError(f"unknown shape {shape!r}")
    return build


TE_SHAPES = ("te_only", "te_chunkwrap", "te_cl", "cl_te")

TE_VALUES = {
    "chunked": b"Transfer-Encoding: chunked\r\n",
    "xchunked": b"Transfer-Encoding: xchunked\r\n",
    "chunked_identity": b"Transfer-Encoding: chunked, identity\r\n",
    "identity_chunked": b"Transfer-Encoding: identity, chunked\r\n",
    "sp_chunked": b"Transfer-Encoding:  chunked\r\n",
    "Chunked": b"Transfer-Encoding: Chunked\r\n",
    "CHUNKED": b"Transfer-Encoding: CHUNKED\r\n",
    "chunked_vt": b"Transfer-Encoding: chunked\x0b\r\n",
    "chunked_sp": b"Transfer-Encoding: chunked \r\n",
    "tab_chunked": b"Transfer-Encoding:\tchunked\r\n",
    "chunked_param": b"Transfer-Encoding: chunked;q=1\r\n",
    "gzip_chunked": b"Transfer-Encoding: gzip, chunked\r\n",
    "chunked_chunked": b"Transfer-Encoding: chunked, chunked\r\n",
    "dup": b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
    "dup_identity": b"Transfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n",
    "folded": b"Transfer-Encoding:\r\n chunked\r\n",
    "name_space": b"Transfer-Encoding : chunked\r\n",
    "name_underscore": b"Transfer_Encoding: chunked\r\n",
    "lower": b"transfer-encoding: chunked\r\n",
    "identity": b"Transfer-Encoding: identity\r\n",
    "chunked_nul": b"Transfer-Encoding: chunked\x00\r\n",
    "name_lead_space": b" Transfer-Encoding: chunked\r\n",
    "cr_value": b"Transfer-Encoding: \rchunked\r\n",
    "quoted": b'Transfer-Encoding: "chunked"\r\n',
    "chunkedx": b"Transfer-Encoding: chunkedx\r\n",
}
"""Transfer-Encoding header lines, each tried in every shape."""


def _transfer_encoding() -> list[Stream]:
    family = "transfer-encoding"
    streams: list[Stream] = [(f"te_{name}_{shape}", family, te_stream(line, shape))
                             for name, line in TE_VALUES.items() for shape in TE_SHAPES]
    streams += [("te_http10_" + shape, family, te_stream(TE_VALUES["chunked"], shape, proto=b"HTTP/1.0"))
                for shape in ("te_only", "te_chunkwrap", "cl_te")]
    return streams


# -- chunk syntax ------------------------------------------------------------------

CHUNKED_POST = b" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"


def chunk_stream(body: bytes) -> Builder:
    """POST A with the chunked body `body`, then H and C: H runs only where
    the body ends where it seems to."""
    return then_control(lambda marker: b"POST " + marker("A") + CHUNKED_POST + body)


CHUNK_BODIES = {
    "plain": b"5\r\nhello\r\n0\r\n\r\n",
    "lead0_4": b"0005\r\nhello\r\n0\r\n\r\n",
    "lead0_16": b"0" * 15 + b"5\r\nhello\r\n0\r\n\r\n",
    "lead0_17": b"0" * 16 + b"5\r\nhello\r\n0\r\n\r\n",
    "lead0_20": b"0" * 19 + b"5\r\nhello\r\n0\r\n\r\n",
    "lead0_40": b"0" * 39 + b"5\r\nhello\r\n0\r\n\r\n",
    "last_lead0_20": b"5\r\nhello\r\n" + b"0" * 20 + b"\r\n\r\n",
    "size_sp": b"5 \r\nhello\r\n0\r\n\r\n",
    "sp_size": b" 5\r\nhello\r\n0\r\n\r\n",
    "size_tab": b"5\t\r\nhello\r\n0\r\n\r\n",
    "ext": b"5;a=b\r\nhello\r\n0\r\n\r\n",
    "ext_sp": b"5 ; a=b\r\nhello\r\n0\r\n\r\n",
    "ext_quoted": b'5;a="x;y"\r\nhello\r\n0\r\n\r\n',
    "ext_1000": b"5;" + b"a" * 1000 + b"\r\nhello\r\n0\r\n\r\n",
    "ext_1030": b"5;" + b"a" * 1030 + b"\r\nhello\r\n0\r\n\r\n",
    "ext_4000": b"5;" + b"a" * 4000 + b"\r\nhello\r\n0\r\n\r\n",
    "last_ext_2000": b"5\r\nhello\r\n0;" + b"a" * 2000 + b"\r\n\r\n",
    "upper_hex": b"A\r\nhellohello\r\n0\r\n\r\n",
    "lower_hex": b"a\r\nhellohello\r\n0\r\n\r\n",
    "0x": b"0x5\r\nhello\r\n0\r\n\r\n",
    "plus": b"+5\r\nhello\r\n0\r\n\r\n",
    "minus": b"-5\r\nhello\r\n0\r\n\r\n",
    "underscore": b"1_0\r\n" + b"h" * 16 + b"\r\n0\r\n\r\n",
    "overflow16f": b"ffffffffffffffff\r\nhello\r\n0\r\n\r\n",
    "overflow_wrap": b"10000000000000005\r\nhello\r\n0\r\n\r\n",
    "lf_only": b"5\nhello\n0\n\n",
    "cr_only": b"5\rhello\r0\r\r",
    "missing_crlf": b"5\r\nhello0\r\n\r\n",
    "data_longer": b"3\r\nhello\r\n0\r\n\r\n",
    "data_shorter": b"7\r\nhello\r\n0\r\n\r\n",
    "trailer": b"5\r\nhello\r\n0\r\nX: y\r\n\r\n",
    "trailer_cl": b"5\r\nhello\r\n0\r\nContent-Length: 99\r\n\r\n",
    "last_ext": b"5\r\nhello\r\n0;x=y\r\n\r\n",
    "empty_size_line": b"\r\n5\r\nhello\r\n0\r\n\r\n",
    "nul_size": b"5\x00\r\nhello\r\n0\r\n\r\n",
    "size_vt": b"5\x0b\r\nhello\r\n0\r\n\r\n",
    "size_ff": b"5\x0c\r\nhello\r\n0\r\n\r\n",
    "crcrlf": b"5\r\r\nhello\r\n0\r\n\r\n",
    "last_0_no_final": b"5\r\nhello\r\n0\r\n",
    "last_00": b"5\r\nhello\r\n00\r\n\r\n",
    "space_in_size": b"1 0\r\n" + b"h" * 16 + b"\r\n0\r\n\r\n",
    "nbsp_size": b"5\xa0\r\nhello\r\n0\r\n\r\n",
    "fullwidth": "５".encode() + b"\r\nhello\r\n0\r\n\r\n",
    "size_unicode_digit": "٥".encode() + b"\r\nhello\r\n0\r\n\r\n",
}
"""Chunked bodies; each is followed by H and C."""


def _hidden_in_trailer(marker: Marker) -> list[bytes]:
    return [b"POST " + marker("A") + CHUNKED_POST + b"0\r\n" + get(marker, "H") + get(marker, "C")]


def _hidden_in_chunk_data(marker: Marker) -> list[bytes]:
    """A chunk two bytes longer than H, starting with CRLF: a server that
    counts the size line's CRLF differently reads H as a request."""
    hidden = get(marker, "H")
    return [b"POST " + marker("A") + CHUNKED_POST + b"%x\r\n" % (len(hidden) + 2) + b"\r\n" + hidden
            + b"\r\n0\r\n\r\n" + get(marker, "C")]


def _chunk_syntax() -> list[Stream]:
    family = "chunk syntax"
    streams: list[Stream] = [("chunk_" + name, family, chunk_stream(body))
                             for name, body in CHUNK_BODIES.items()]
    streams += [
        ("chunk_hidden_in_trailer", family, _hidden_in_trailer),
        ("chunk_hidden_in_data_short", family, _hidden_in_chunk_data),
    ]
    return streams


# -- request line ------------------------------------------------------------------

def _path_and_query(path: bytes, tail: bytes = b" HTTP/1.1\r\nHost: x\r\n\r\n") -> Callable[[Marker], bytes]:
    """GET `path` + "?" + A's query: the target spelled another way."""
    return lambda marker: b"GET " + path + b"?" + query(marker, "A") + tail


def _target(before: bytes, after: bytes = b"", tail: bytes = b" HTTP/1.1\r\nHost: x\r\n\r\n"
            ) -> Callable[[Marker], bytes]:
    """`before` + A's target + `after` + the rest of the request."""
    return lambda marker: before + marker("A") + after + tail


REQUEST_LINES: dict[str, Callable[[Marker], bytes]] = {
    "tabs": lambda m: b"GET\t" + m("A") + b"\tHTTP/1.1\r\nHost: x\r\n\r\n",
    "multispace": lambda m: b"GET   " + m("A") + b"   HTTP/1.1\r\nHost: x\r\n\r\n",
    "leading_space": _target(b" GET "),
    "lower_method": _target(b"get "),
    "unknown_method": _target(b"FOO "),
    "absolute": _target(b"GET http://x"),
    "absolute_upper": _target(b"GET HTTP://x"),
    "absolute_https": _target(b"GET https://x"),
    "absolute_noslash": lambda m: b"GET http://x?" + query(m, "A") + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    "absolute_userinfo": _target(b"GET http://u@x"),
    "scheme_relative": _target(b"GET //x"),
    "fragment_before_query": _path_and_query(SCRIPT + b"#frag"),
    "fragment_after": _target(b"GET ", b"#/../x"),
    "double_q": _path_and_query(SCRIPT + b"?"),
    "pct00_path": _path_and_query(SCRIPT + b"%00.html"),
    "nul_in_uri": _target(b"GET ", b"\x00x"),
    "nul_after_path": _path_and_query(SCRIPT + b"\x00/x"),
    "backslash": _path_and_query(b"\\cgi-bin\\m.cgi"),
    "dotdot_beyond": _path_and_query(b"/../.." + SCRIPT),
    "dotdot_inner": _path_and_query(b"/x/../cgi-bin/./m.cgi"),
    "pct_dotdot": _path_and_query(b"/x/%2e%2e" + SCRIPT),
    "pct_2f": _path_and_query(b"/cgi-bin%2fm.cgi"),
    "pct_path": _path_and_query(b"/cgi-bin/%6d.cgi"),
    "pct_u": _path_and_query(b"/cgi-bin/%u006d.cgi"),
    "double_slash": _path_and_query(b"//cgi-bin//m.cgi"),
    "pathinfo_dotdot": _path_and_query(SCRIPT + b"/.."),
    "pathinfo_pct_dotdot": _path_and_query(SCRIPT + b"/%2e%2e"),
    "pathinfo_2f_dotdot": _path_and_query(SCRIPT + b"%2f.."),
    "pathinfo_dot": _path_and_query(SCRIPT + b"/."),
    "pathinfo_extra": _path_and_query(SCRIPT + b"/a/b"),
    "semicolon_path": _path_and_query(SCRIPT + b";x"),
    "cr_in_path": _path_and_query(b"/cgi-bin/m.c\rgi"),
    "cr_in_dir": _path_and_query(b"/cgi-\rbin/m.cgi"),
    "cr_before_proto": _target(b"GET ", b"\r"),
    "cr_in_method": _target(b"G\rET "),
    "cr_between": _target(b"GET\r"),
    "tab_in_path": _path_and_query(b"/cgi-bin/m.c\tgi"),
    "space_in_uri": _target(b"GET /x "),
    "space_in_uri2": _target(b"GET ", b" /x"),
    "proto_lower": _target(b"GET ", tail=b" http/1.1\r\nHost: x\r\n\r\n"),
    "proto_junk": _target(b"GET ", tail=b" JUNK/1.1\r\nHost: x\r\n\r\n"),
    "proto_trailing_space": _target(b"GET ", tail=b" HTTP/1.1 \r\nHost: x\r\n\r\n"),
    "long_uri_8k": _target(b"GET ", b"&p=" + b"a" * 8000),
    "long_uri_2k": _target(b"GET ", b"&p=" + b"a" * 2000),
    "no_host": _target(b"GET ", tail=b" HTTP/1.1\r\n\r\n"),
    "http10_ka": _target(b"GET ", tail=b" HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"),
    "conn_close": _target(b"GET ", tail=b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    "junk_lines_before": lambda m: b"\r\n\r\n\n" + get(m, "A"),
    "cr_lines_before": lambda m: b"\r\r\r" + get(m, "A"),
    "space_line_before": lambda m: b" \r\n" + get(m, "A"),
    "junk_line_before": lambda m: b"x\r\n" + get(m, "A"),
    "nul_line_before": lambda m: b"\x00\r\n" + get(m, "A"),
    "bare_cr_request": _target(b"GET ", tail=b" HTTP/1.1\rHost: x\r\r"),
    "bare_cr_mixed": _target(b"GET ", tail=b" HTTP/1.1\rHost: x\r\n\r\n"),
    "cr_cr_lf": _target(b"GET ", tail=b" HTTP/1.1\r\r\nHost: x\r\r\n\r\r\n"),
    "lf_only": _target(b"GET ", tail=b" HTTP/1.1\nHost: x\n\n"),
    "expect_nobody": _target(b"GET ", tail=b" HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n"),
    # a request line where a header should be: B is a header, not a request
    "hdr_space_name": lambda m: (b"GET " + m("A") + b" HTTP/1.1\r\nHost: x\r\nGET " + m("B")
                                 + b" HTTP/1.1\r\n\r\n"),
}
"""Odd first requests ("rl_" streams); each is followed by H and C."""

HTTP09_LINES: dict[str, Callable[[Marker], bytes]] = {
    "http09": _target(b"GET ", tail=b"\r\n"),
    "http09_lf": _target(b"GET ", tail=b"\n"),
    "http09_then_hdrs": _target(b"GET ", tail=b"\r\nHost: x\r\n\r\n"),
}
"""HTTP/0.9 request lines (no protocol): one request, or a line and more."""


def _request_lines() -> list[Stream]:
    streams: list[Stream] = [("rl_" + name, "request line", then_control(first))
                             for name, first in REQUEST_LINES.items()]
    streams += [("rl_" + name, "http 0.9", then_control(first)) for name, first in HTTP09_LINES.items()]
    return streams


def _cr_ended(marker: Marker, letter: str) -> bytes:
    """A request whose lines end in a bare CR."""
    return b"GET " + marker(letter) + b" HTTP/1.1\rHost: x\r\r"


def _cr_separated() -> list[Stream]:
    family = "line endings"
    return [
        ("crsep_pipeline", family, one(lambda m: _cr_ended(m, "A") + _cr_ended(m, "H") + get(m, "C"))),
        ("crsep_in_headers_req", family, then_control(lambda m: b"GET " + m("A")
                                                      + b" HTTP/1.1\r\nHost: x\r\nX: a\r\r")),
        ("http09_then_req_cr", family, then_control(lambda m: b"GET " + m("A") + b"\r")),
        ("reqline_cr_then_req", family, then_control(lambda m: b"GET " + m("A") + b" HTTP/1.1\r")),
    ]


# -- pipelining, Expect, header size --------------------------------------------

def _expect_body_in_second_write(marker: Marker) -> list[bytes]:
    hidden = get(marker, "H")
    return [b"POST " + marker("A") + b" HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
            b"Content-Length: %d\r\n\r\n" % len(hidden), hidden + get(marker, "C")]


def _expect_body_never_sent(marker: Marker) -> list[bytes]:
    return [b"POST " + marker("A") + b" HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
            b"Content-Length: 5\r\n\r\n", get(marker, "H") + get(marker, "C")]


def _many_headers(marker: Marker) -> list[bytes]:
    headers = b"".join(b"X-%d: %s\r\n" % (i, b"v" * 90) for i in range(80))
    return [b"GET " + marker("A") + b" HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n" + get(marker, "H")
            + get(marker, "C")]


def _pipelining() -> list[Stream]:
    return [
        ("expect_body_2writes", "expect", _expect_body_in_second_write),
        ("expect_nobody_sent", "expect", _expect_body_never_sent),
        ("conn_close_then_more", "pipelining", then_control(
            lambda m: b"POST " + m("A") + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"Content-Length: 3\r\n\r\nabc")),
        ("pipeline_after_body_2writes", "pipelining", lambda m: [
            b"POST " + m("A") + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n", b"abc" + get(m, "H"),
            get(m, "C")]),
        ("body_short_then_close", "pipelining", then_control(
            lambda m: b"POST " + m("A") + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n")),
        ("many_headers_80", "header size", _many_headers),
    ]


# -- HTTP/2 cleartext --------------------------------------------------------------

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
"""The HTTP/2 connection preface (RFC 9113 3.4)."""
H2C_SETTINGS = b"AAMAAABkAAQCAAAAAAIAAAAA"


def h2_frame(frame_type: int, flags: int, stream_id: int, payload: bytes) -> bytes:
    """One HTTP/2 frame: 24-bit length, type, flags, 31-bit stream id."""
    return (struct.pack(">I", len(payload))[1:] + bytes([frame_type, flags]) + struct.pack(">I", stream_id)
            + payload)


def hpack_get(path: bytes) -> bytes:
    """An HPACK header block for GET `path` with no Huffman coding:
    :method GET and :scheme http (static table 2 and 6), :path as a literal
    (name index 4), :authority x (name index 1)."""
    return b"\x82\x86\x04" + bytes([len(path)]) + path + b"\x01\x01x"


def _settings() -> bytes:
    return h2_frame(4, 0, 0, b"")


def _headers(stream_id: int, path: bytes) -> bytes:
    """A HEADERS frame with END_STREAM | END_HEADERS: one complete GET."""
    return h2_frame(1, 5, stream_id, hpack_get(path))


def _h2c_upgrade(method: bytes, headers: bytes) -> Builder:
    """An HTTP/1.1 request A asking for h2c, then HTTP/2 frames carrying H
    (stream 3; stream 1 is the upgraded request itself)."""
    return one(lambda m: method + b" " + m("A") + b" HTTP/1.1\r\n" + headers + PREFACE + _settings()
               + _headers(3, m("H")))


def _http2_cleartext() -> list[Stream]:
    family = "http2 cleartext"
    upgrade = (b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
               b"HTTP2-Settings: " + H2C_SETTINGS + b"\r\n\r\n")
    return [
        ("h2_prior_knowledge", family, one(lambda m: PREFACE + _settings() + _headers(1, m("H"))
                                           + _headers(3, m("I")))),
        ("h2c_upgrade", family, _h2c_upgrade(b"GET", b"Host: x\r\n" + upgrade)),
        ("h2c_upgrade_post_body", family,
         _h2c_upgrade(b"POST", b"Host: x\r\nContent-Length: 0\r\n" + upgrade)),
        ("ws_upgrade_then_req", "upgrade", then_control(
            lambda m: b"GET " + m("A") + b" HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
            b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")),
    ]


# -- minimal reproducers and the second round ---------------------------------------

def _min_chunked(last_chunk: bytes) -> Builder:
    """POST A whose chunked body is the single line `last_chunk`, then H alone."""
    return one(lambda m: b"POST " + m("A") + CHUNKED_POST + last_chunk + b"\r\n\r\n" + get(m, "H"))


def _min_ext_two_writes(marker: Marker) -> list[bytes]:
    """The 1100-byte chunk extension split over two writes."""
    return [b"POST " + marker("A") + CHUNKED_POST + b"0;" + b"a" * 600,
            b"a" * 500 + b"\r\n\r\n" + get(marker, "H")]


def _lead0_then_hidden_in_data(marker: Marker) -> list[bytes]:
    hidden = get(marker, "H")
    return [b"POST " + marker("A") + CHUNKED_POST + b"0" * 17 + b"%x\r\n" % len(hidden) + hidden
            + b"\r\n0\r\n\r\n" + get(marker, "C")]


def _te_with_lf_lines(marker: Marker) -> list[bytes]:
    return [b"POST " + marker("A") + b" HTTP/1.1\nHost: x\nTransfer-Encoding: chunked\n\n0\n\n"
            + get(marker, "H") + get(marker, "C")]


def _second_round() -> list[Stream]:
    minimal = "minimal"
    h2 = "http2 cleartext"
    return [
        ("min_lastchunk_17zeros", minimal, _min_chunked(b"0" * 17)),
        ("min_lastchunk_16zeros_ok", minimal, _min_chunked(b"0" * 16)),
        ("min_lastchunk_ext_1100", minimal, _min_chunked(b"0;" + b"a" * 1100)),
        ("min_lastchunk_ext_1020_ok", minimal, _min_chunked(b"0;" + b"a" * 1020)),
        ("min_lastchunk_ext_100k", minimal, _min_chunked(b"0;" + b"a" * 100_000)),
        ("min_lastchunk_sp_padding_1100", minimal, _min_chunked(b"0" + b" " * 1100)),
        ("min_lastchunk_tab_padding_1100", minimal, _min_chunked(b"0" + b"\t" * 1100)),
        ("min_lastchunk_ext_1100_2writes", minimal, _min_ext_two_writes),
        ("min_h2_preface_only_headers", minimal, one(lambda m: PREFACE + _headers(1, m("H")))),
        ("min_h2_preface_settings_headers", minimal,
         one(lambda m: PREFACE + _settings() + _headers(1, m("H")))),
        ("h2_after_h1_request", h2, one(lambda m: get(m, "A") + PREFACE + _settings() + _headers(1, m("H")))),
        ("h2_preface_lf", h2, one(lambda m: b"PRI * HTTP/2.0\n\nSM\n\n" + _settings() + _headers(1, m("H")))),
        ("h2c_upgrade_lowercase", h2, _h2c_upgrade(
            b"GET", b"Host: x\r\nconnection: upgrade, http2-settings\r\nupgrade: H2C\r\n"
            b"http2-settings: \r\n\r\n")),
        ("min_busybox_cr_in_path", minimal,
         one(lambda m: b"GET /cgi-bin/m.c\rgi?" + query(m, "H") + b" HTTP/1.0\r\n\r\n")),
        ("min_busybox_cr_in_query_name", minimal,
         one(lambda m: b"GET " + SCRIPT + b"?i\r" + query(m, "H")[1:] + b" HTTP/1.0\r\n\r\n")),
        ("min_busybox_cr_in_method", minimal,
         one(lambda m: b"P\rOST " + m("H") + b" HTTP/1.0\r\nContent-Length: 0\r\n\r\n")),
        ("busybox_cr_only_line_end", "line endings", one(lambda m: b"GET " + m("H") + b" HTTP/1.0\r\r\r\r")),
        ("chunk_lead0_then_hidden_in_data", "chunk syntax", _lead0_then_hidden_in_data),
        ("cl_leading0_22", "content-length value", cl_stream(lambda n: b"0" * 20 + b"%d" % n)),
        ("cl_leading0_22_zero", "content-length value", cl_stream(lambda n: b"0" * 22)),
        ("te_chunked_lf_only_headers", "transfer-encoding", _te_with_lf_lines),
    ]


STREAMS: list[Stream] = [
    *_baseline(), *_content_length(), *_line_endings(), *_transfer_encoding(), *_chunk_syntax(),
    *_request_lines(), *_cr_separated(), *_pipelining(), *_http2_cleartext(), *_second_round(),
]
"""Every stream, in a fixed order (the index is part of the markers)."""
