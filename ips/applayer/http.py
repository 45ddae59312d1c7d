"""HTTP/1.x parser (sans-IO), filling Suricata's http.* sticky buffers.

Theory of operation
-------------------
Each direction is a small state machine over the reassembled byte stream:

    START_LINE -> HEADERS -> BODY (length | chunked | until close) -> START_LINE
                                                 \\-> DONE (CONNECT/101 tunnel, error)

Header sections are collected in a bytearray bounded by MAX_HEADER_BYTES; the
end-of-section search resumes where the previous one stopped, so a header
trickling in one byte per segment is still parsed in O(bytes). Bodies are not
buffered beyond the inspection limits (REQUEST_BODY_LIMIT /
RESPONSE_BODY_LIMIT, Suricata's 100 KiB defaults); the rest is counted and
skipped. Requests are queued (at most MAX_OPEN_TRANSACTIONS) and responses are
matched to them in order, which handles pipelining.

URI normalisation follows libhtp as Suricata configures it (personality IDS,
`double-decode-path: no`): `%XX` is decoded exactly once in path and query
(so `%252e` stays `%2e` -- a double-encoded traversal is *not* folded, as in
Suricata), `%uXXXX` is decoded with best-fit to one byte, backslashes become
slashes, `//` is compressed, and `.`/`..` segments are removed (RFC 3986).
Invalid `%` escapes are preserved. A `#fragment` stays in http.uri, after
the query, as in Suricata.

A gap in a direction ends parsing of that direction with an
"http.gap" event: resynchronising inside an unknown body would let an
attacker choose what we take for a request line.

What libhtp flags on a message (a request line with odd blanks, a Host that
is no host, a second "100 Continue", a response to no request, ...) becomes
an event on that message's transaction, under Suricata's name, where
Suricata 8's htp raises it (ips/event_names.py lists them); the parser's
own conditions (a gap, a bound reached) are logged on the connection.
"""
from __future__ import annotations

import ipaddress
import re
import zlib

from ips.applayer import Tx

MAX_HEADER_BYTES = 64 * 1024
"""Start line plus header section; larger is an event and ends parsing."""
REQUEST_BODY_LIMIT = 100 * 1024
RESPONSE_BODY_LIMIT = 100 * 1024
"""Body bytes kept for inspection (Suricata's request/response-body-limit)."""
MAX_OPEN_TRANSACTIONS = 64
"""Requests waiting for their response (pipelining depth)."""
MAX_CHUNK_LINE = MAX_HEADER_BYTES
"""Bytes of a chunk-size, chunk-end or trailer line kept; the rest of a
longer line (a chunk extension of any length, as nginx takes one) is
skipped, not an error."""
BODY_INSPECT_STEP = 4096
"""New body bytes that trigger re-publishing the body buffer to detection."""
BODY_INLINE_HEAD = 1024
"""Inline, the body is published on every new byte until this much is out:
a rule on a body's start must see it in the packet that completes it,
however the sender cuts the first bytes into segments."""

_START_LINE, _HEADERS, _BODY_LENGTH, _BODY_CHUNK_SIZE, _BODY_CHUNK_DATA, \
    _BODY_CHUNK_CRLF, _BODY_TRAILERS, _BODY_UNTIL_CLOSE, _DONE = range(9)

_HEX = b"0123456789abcdefABCDEF"
_STATUS_RE = re.compile(rb"^(HTTP/\d+\.\d+)[ \t]+(\d{3})(?:[ \t]+(.*))?$", re.S)
# libhtp's generic status line: protocol, status and message are the runs
# between blanks whatever they hold (http.stat_code is the raw status token:
# "2000123" or "FAIL"); only the status *number* is then judged valid.
_STATUS_PARTS_RE = re.compile(rb"^[ \t]*([^ \t]*)[ \t]*([^ \t]*)[ \t]*(.*)$", re.S)


# -- URI normalisation -----------------------------------------------------------

def _percent_decode(data: bytes) -> bytes:
    """Decode %XX and %uXXXX once, keeping invalid escapes as they are."""
    if b"%" not in data:
        return data
    out = bytearray()
    index = 0
    while True:
        # Bytes up to the next '%' are copied as one run.
        percent = data.find(b"%", index)
        if percent < 0:
            out += data[index:]
            return bytes(out)
        out += data[index:percent]
        index = percent
        pair = data[index + 1:index + 3]
        if len(pair) == 2 and pair[0] in _HEX and pair[1] in _HEX:
            out.append(int(pair, 16))
            index += 3
            continue
        if data[index + 1:index + 2] in (b"u", b"U"):
            quad = data[index + 2:index + 6]
            if len(quad) == 4 and all(c in _HEX for c in quad):
                code = int(quad, 16)
                # libhtp best-fit: 0x00XX keeps the byte, else '?'.
                out.append(code if code < 0x100 else 0x3F)
                index += 6
                continue
        out.append(0x25)
        index += 1


def _remove_dot_segments(path: bytes) -> bytes:
    """RFC 3986 section 5.2.4, after '//' compression."""
    if b"." not in path and b"//" not in path and b"\\" not in path:
        return path          # nothing to fold (most request targets)
    path = path.replace(b"\\", b"/")
    while b"//" in path:
        path = path.replace(b"//", b"/")
    absolute = path.startswith(b"/")
    segments = path.split(b"/")
    output: list[bytes] = []
    for segment in segments[1:] if absolute else segments:
        if segment == b".":
            continue
        if segment == b"..":
            if output:
                output.pop()
            continue
        output.append(segment)
    result = b"/".join(output)
    if absolute:
        result = b"/" + result
    if segments and segments[-1] in (b".", b"..") and not result.endswith(b"/"):
        result += b"/"
    return result


def normalise_uri(raw: bytes) -> bytes:
    """The http.uri buffer for a raw request target (see module docstring)."""
    target = raw
    lowered = target[:8].lower()
    if lowered.startswith((b"http://", b"https://")):
        # Absolute form: http.uri is the path part (uri-include-all: no).
        after_scheme = target.index(b"//") + 2
        slash = target.find(b"/", after_scheme)
        target = target[slash:] if slash >= 0 else b"/"
    # As libhtp's URI parser: the path ends at the first '?' or '#', the
    # query at '#'; the fragment is kept (decoded), as Suricata's http.uri
    # keeps it: a server that does not cut at '#' runs what follows it.
    path, hash_mark, fragment = target.partition(b"#")
    path, question, query = path.partition(b"?")
    path = _remove_dot_segments(_percent_decode(path)) if path else path
    if question:
        path += b"?" + _percent_decode(query)
    if hash_mark:
        path += b"#" + _percent_decode(fragment)
    return path


def _absolute_host(raw_uri: bytes) -> bytes | None:
    lowered = raw_uri[:8].lower()
    if not lowered.startswith((b"http://", b"https://")):
        return None
    rest = raw_uri[raw_uri.index(b"//") + 2:]
    authority = re.split(rb"[/?#]", rest, maxsplit=1)[0]
    return authority.rpartition(b"@")[2]


def _host_ambiguous(authority: bytes, header: bytes) -> bool:
    """libhtp's HTP_HOST_AMBIGUOUS: the URI's host and the Host header's
    differ (any case), or both give a port and the ports differ."""
    header = header.strip()
    if _strip_port(authority).lower() != _strip_port(header).lower():
        return True
    uri_port, header_port = _port_of(authority), _port_of(header)
    return uri_port is not None and header_port is not None and uri_port != header_port


def _port_of(host: bytes) -> bytes | None:
    rest = host.partition(b"]")[2] if host.startswith(b"[") else host
    _name, colon, port = rest.partition(b":")
    return port.strip() if colon and port.strip() else None


def _strip_port(host: bytes) -> bytes:
    if host.startswith(b"["):
        return host.partition(b"]")[0] + b"]"
    return host.partition(b":")[0]


# -- libhtp's checks of the request line and of the host --------------------------
#
# As Suricata 8's htp (rust/htp: request_generic.rs, parsers.rs, uri.rs,
# transaction.rs) raises them; the names are Suricata's app-layer events.

_LIBHTP_SPACE = b" \t\r\n\x0b\x0c"
"""libhtp's is_space: the blanks it skips around a request line's parts."""
_REQUEST_LINE_DELIMITERS_RE = re.compile(
    rb"([ \t\r\n\x0b\x0c]*)[^ \t\r\n\x0b\x0c]*([ \t\r\n\x0b\x0c]*)")
_BLANK_NOT_SPACE_RE = re.compile(rb"[\t\r\n\x0b\x0c]")


def _request_line_events(request_line: bytes) -> list[str]:
    """libhtp's warnings on a request line (its trailing CR/LF removed):
    blanks before the method; a delimiter after the method that is not
    only spaces ("GET\t/"); and a target part that holds no space but
    another blank ("GET /a\tHTTP/1.1"), which libhtp then splits there,
    as servers that take any blank for a delimiter do."""
    found = _REQUEST_LINE_DELIMITERS_RE.match(request_line)
    leading, delimiter = found.groups()
    events = []
    if leading:
        events.append("http.request_line_leading_whitespace")
    if delimiter.strip(b" "):
        events.append("http.method_delim_non_compliant")
    rest = request_line[found.end():].strip(_LIBHTP_SPACE)
    if rest and b" " not in rest and _BLANK_NOT_SPACE_RE.search(rest):
        events.append("http.uri_delim_non_compliant")
    return events


_HTTP_1_1_RE = re.compile(rb"[ \t\n\r\x0c]*[Hh][Tt][Tt][Pp][ \t\n\r\x0c]*/[ \t\n\r\x0c0]*1\.1[ \t\n\r\x0c]*")
"""A protocol libhtp reads as HTTP/1.1 (blanks around the parts and leading
zeros in the version are tolerated)."""

# Label bytes libhtp's validate_hostname accepts: '-', '_' and what Rust's
# char::is_alphanumeric takes for the byte read as a Latin-1 character.
_HOSTNAME_BYTES = bytes(c for c in range(256) if c in b"-_" or chr(c).isalnum())
_IPV6_LITERAL_RE = re.compile(rb"\[([^#?/\]]+)\]")
# libhtp's hostname(): an IPv6 literal, or the run up to a port or a path.
_HOST_RE = re.compile(rb"\[[^/?#\]]+\]?|[^/?#:]+")
_PORT_TEXT_RE = re.compile(rb"[^/?#]+")
_PORT_NUMBER_RE = re.compile(rb"\+?[0-9]+")


def _valid_hostname(host: bytes) -> bool:
    """libhtp's relaxed hostname check: an IPv6 address in brackets, or
    labels of letters, digits, '-' and '_', at most 63 bytes each and 255
    in all, separated by single dots (a trailing dot is fine)."""
    if not host or len(host) > 255:
        return False
    literal = _IPV6_LITERAL_RE.match(host)
    if literal is not None:
        address = literal.group(1)
        if b"%" in address:              # Rust's Ipv6Addr takes no zone index
            return False
        try:
            ipaddress.IPv6Address(address.decode("ascii"))
        except ValueError:               # UnicodeDecodeError included
            return False
        return True
    if host[:1] == b"." or b".." in host:
        return False
    if host.translate(None, _HOSTNAME_BYTES).replace(b".", b""):
        return False
    return all(len(label) <= 63 for label in host.split(b"."))


def _port_number(text: bytes) -> int | None:
    """libhtp's convert_port: a decimal u16 (Rust's parser takes a leading
    '+'); 0 is no port."""
    if _PORT_NUMBER_RE.fullmatch(text) is None:
        return None
    digits = text.lstrip(b"+").lstrip(b"0")
    if len(digits) > 5:
        return None
    number = int(digits or b"0")
    return number if 0 < number <= 0xFFFF else None


def _host_and_port(text: bytes) -> tuple[bytes, bytes | None, bytes] | None:
    """libhtp's hostname() then port() over an authority: (host, port text
    or None, what follows the host); None when there is no host ("", "/x",
    ":80")."""
    if text[:2] == b"//":
        text = text[2:]
    if text[:1] == b"/":
        return None
    text = text.lstrip(b" ")
    found = _HOST_RE.match(text)
    if found is None:
        return None
    rest = text[found.end():]
    port = None
    if rest[:1] == b":":
        digits = _PORT_TEXT_RE.match(rest[1:].lstrip(b" "))
        if digits is not None:
            port = digits.group().partition(b" ")[0]
    return found.group().rstrip(b" "), port, rest


# The common Host value, valid by the rules below at one regex's cost
# (up to 255 bytes): ASCII labels of up to 63 bytes, a port of 1 to 9999.
_PLAIN_HOSTPORT_RE = re.compile(
    rb"[A-Za-z0-9_-]{1,63}(?:\.[A-Za-z0-9_-]{1,63})*\.?(?::0*[1-9][0-9]{0,3})?")


def _hostport_valid(text: bytes) -> bool | None:
    """libhtp's parse_hostport: whether a Host value or a CONNECT target is
    a valid host with an optional valid port and nothing else after the
    host but the port's run; None when it has no host at all (libhtp then
    does not judge it)."""
    if len(text) <= 255 and _PLAIN_HOSTPORT_RE.fullmatch(text) is not None:
        return True
    parts = _host_and_port(text)
    if parts is None:
        return None
    host, port, rest = parts
    if port is not None:
        return _port_number(port) is not None and _valid_hostname(host)
    return not rest and _valid_hostname(host)


def _uri_host_invalid(method: bytes, raw_uri: bytes) -> bool:
    """libhtp's HOSTU_INVALID (Suricata's http.request_uri_host_invalid):
    the request target names a host (CONNECT's authority, or the
    authority after a scheme), and that host, %-decoded, lowercased and
    without trailing dots, is not a valid hostname, or its port is not a
    port number."""
    if method == b"CONNECT":
        valid = _hostport_valid(raw_uri)
        if valid is None:
            return False
        if not valid:
            return True
        host = _host_and_port(raw_uri)[0]
    else:
        # A scheme is whatever comes before the first ':' of a target that
        # does not start with '/'; credentials run to an '@' anywhere.
        if raw_uri[:1] == b"/":
            return False
        colon = raw_uri.find(b":")
        if colon < 0:
            return False
        rest = raw_uri[colon + 1:]
        if rest[:2] == b"//" and rest[2:3] != b"/":
            at = rest.find(b"@", 2)
            if at >= 0:
                rest = rest[at + 1:]
        parts = _host_and_port(rest)
        if parts is None:
            return False
        host, port, _rest = parts
        if port is not None and _port_number(port) is None:
            return True
    return not _valid_hostname(_percent_decode(host).lower().rstrip(b"."))


# -- header section --------------------------------------------------------------

class _Headers(dict):
    """Parsed header section: lowercased name -> value, in order of first
    appearance, duplicate names merged as libhtp does (", "). A dict, so a
    lookup (`get`) is one C call; `names` keeps each name as first sent.
    Made by `_parse_header_lines` only (no __init__: one frame less).

    As in libhtp, a line without a colon is a header with an empty name and
    the whole line as its value (`missing_colon`), so what it carries is
    still inspected; and a repeated Content-Length is not merged: the first
    value stays, every value sent is kept in `lengths` (folding included in
    `length_folded`) for the framing checks of `_body_framing`.
    `invalid`: the lowercased names sent malformed (blanks before the
    colon, empty, not a token), libhtp's "Request field invalid": a server
    may not know "Content-Length :" for what it is.
    `folding_invalid`: the first line starts with a blank and has a colon,
    libhtp's invalid folding (a continuation with nothing to continue)."""

    __slots__ = ("names", "missing_colon", "lengths", "length_folded", "invalid",
                 "folding_invalid")


def _parse_header_lines(lines: list[bytes]) -> _Headers:
    headers = _Headers()
    headers.names = names = {}           # lowercased name -> name as sent
    headers.missing_colon = headers.length_folded = False
    headers.invalid = invalid = set()
    headers.lengths = lengths = []
    first = lines[0] if lines else b""
    headers.folding_invalid = first[:1] in (b" ", b"\t") and b":" in first
    name = value = None             # the pending header (folding may extend it)
    folded = False
    for line in (*lines, None):     # None: the end, where the last header is stored
        if name is not None:
            if line is not None and line[:1] in (b" ", b"\t"):
                # obsolete line folding: continuation of the previous value
                folded = True
                value += b" " + line.strip(b" \t")
                continue
            key = name.lower()
            known = headers.get(key)
            if key == b"content-length":
                lengths.append(value)
                headers.length_folded |= folded
                if known is None:
                    names[key] = name
                    headers[key] = value
            elif known is None:
                names[key] = name
                headers[key] = value
            else:
                headers[key] = known + b", " + value
        if line is None:
            break
        folded = False
        name, colon, value = line.partition(b":")
        if not colon:
            headers.missing_colon = True
            name, value = b"", line.strip(b" \t")
            continue
        stripped = name.strip(b" \t")
        if len(stripped) != len(name) or _TOKEN_RE.fullmatch(stripped) is None:
            invalid.add(stripped.lower())
        name = stripped
        value = value.strip(b" \t")
    return headers


# What libhtp takes for a header line after a request line without a
# protocol: a name (no blank, no colon), blanks, then a colon.
_HEADER_LINE_RE = re.compile(rb"[^ \t\r\n\x0b\x0c:]*[ \t]*:")

# RFC 9110 token characters, as libhtp's htp_is_token.
_TOKEN_RE = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


_DIGITS_RE = re.compile(rb"[0-9]+")

_CHUNK_SIZE_RE = re.compile(rb"[\r\n \t\x0b\x0c]*([0-9a-fA-F]*)[ \t]*(.?)", re.S)
_CHUNK_SIZE_MAX = 0x7FFFFFFF


def _chunk_size(line: bytes, cut: bool) -> tuple[int | None, bool]:
    """(size, clean) of a chunk-size line, read as libhtp reads it: blanks,
    the run of hex digits (leading zeros are fine), anything after it
    ignored; a size over 2**31 - 1 or no digits is invalid (-1). None: a
    blank line, skipped. `clean`: nothing but a `;extension` or blanks
    after the digits; "0x10" is 0 to libhtp and an error or 16 to a
    server, so it is not clean. `cut`: the line was longer than the bytes
    kept, so a digit run reaching the end may be cut short (invalid)."""
    if not line.strip(b"\r\n \t\x0b\x0c"):
        return None, True
    digits, after = _CHUNK_SIZE_RE.match(line).groups()
    if not digits or (cut and not after):
        return -1, False
    size = int(digits, 16)
    if size > _CHUNK_SIZE_MAX:
        return -1, False
    return size, after in (b"", b";")


# (ambiguous framing, repeated Content-Length differing, Content-Length
# without digits) by direction (True: request); see `_body_framing`.
_FRAMING_EVENTS = {
    True: ("http.request_smuggling", "http.duplicate_content_length_field_in_request",
           "http.invalid_content_length_field_in_request"),
    False: ("http.response_smuggling", "http.duplicate_content_length_field_in_response",
            "http.invalid_content_length_field_in_response"),
}


def _content_length(value: bytes) -> tuple[int | None, bool]:
    """(length, clean) of one Content-Length value, read as libhtp reads it:
    the first run of digits, whatever is before or after it (a warning
    there, not an error); None when there are no digits or too many.
    `clean`: nothing but blanks around the digits. A server that reads
    "+0", "0x10" or "5 0" otherwise than this is the gap a smuggled request
    goes through, hence `http.request_smuggling` when it is not clean."""
    found = _DIGITS_RE.search(value)
    if found is None or found.end() - found.start() > 18:
        return None, False
    return int(found.group()), found.start() == 0 and found.end() == len(value)


def _skip_empty_lines(data: bytes, position: int) -> int:
    """Tolerate empty lines between messages, as libhtp does (RFC 9112
    section 2.2): a pipelined request after an extra CRLF is still a request."""
    length = len(data)
    while position < length and data[position] in (0x0D, 0x0A):
        position += 1
    return position


# Header -> the sticky buffer holding its value.
_REQUEST_HEADER_BUFFERS = {
    b"user-agent": "http.user_agent", b"cookie": "http.cookie",
    b"content-type": "http.content_type", b"content-length": "http.content_len",
    b"referer": "http.referer", b"accept": "http.accept", b"connection": "http.connection",
    b"accept-encoding": "http.accept_enc", b"accept-language": "http.accept_lang"}
_RESPONSE_HEADER_BUFFERS = {
    b"set-cookie": "http.cookie", b"content-type": "http.content_type",
    b"content-length": "http.content_len", b"server": "http.server",
    b"location": "http.location", b"connection": "http.connection"}


def _split_lines(section: bytes) -> list[bytes]:
    """A header section's lines, ending in LF or CRLF (both are accepted, as
    libhtp does), without the empty ones that end the section."""
    if section.count(b"\n") == section.count(b"\r\n"):   # all CRLF: one C split
        lines = section.split(b"\r\n")
        if lines[-1].endswith(b"\r"):
            lines[-1] = lines[-1][:-1]
    else:
        lines = [line[:-1] if line.endswith(b"\r") else line for line in section.split(b"\n")]
    while lines and lines[-1] == b"":
        lines.pop()
    return lines


# -- transactions ----------------------------------------------------------------

class _HttpTx(Tx):
    """An HTTP transaction: the `Tx` detection and logging see, plus the
    parser's state of it (one object, so no reference cycle per request)."""
    __slots__ = ("method", "raw_uri", "protocol", "request_headers",
                 "request_body", "request_body_seen", "response_headers", "status",
                 "response_body", "response_body_seen", "response_started",
                 "response_done", "request_done", "content_encoding", "response_xml",
                 "request_buffers", "response_buffers", "decoder",
                 "request_published", "response_published", "continue_seen")

    def __init__(self, tx_id: int) -> None:
        # Tx.__init__(self, app_proto="http", tx_id=tx_id, to_server=True),
        # field by field (one frame less per transaction; keep in step with Tx)
        self.app_proto = "http"
        self.tx_id = tx_id
        self.to_server = True
        self.buffers = {}
        self.record = None
        self.complete = False
        self.logged = False
        self.events = ()
        self.method = b""
        self.raw_uri = b""
        self.protocol = b""
        self.request_headers: _Headers | None = None
        self.request_body = bytearray()
        self.request_body_seen = 0
        self.response_headers: _Headers | None = None
        self.status: int | None = None
        self.response_body = bytearray()
        self.response_body_seen = 0
        self.response_started = False
        self.response_done = False
        self.request_done = False
        self.content_encoding = b""
        self.response_xml = False
        # Buffers such as http.header exist in both directions: each side
        # has its own dict and `tx.buffers` shows the direction being
        # inspected (response values over request ones for to_client).
        self.request_buffers: dict = {}
        self.response_buffers: dict = {}
        self.decoder = None                 # list of _Inflater layers, False for identity
        self.request_published = 0          # body bytes already exposed as buffers
        self.response_published = 0
        self.continue_seen = False          # a "100 Continue" answered it already

    # Alerts on an incomplete transaction log what is known so far (Suricata
    # logs the tx state); detection may look at a tx from either direction
    # after the fact (IDS mode delivers on ACK).
    def snapshot(self) -> dict:
        return _record(self)

    def view(self, to_server: bool) -> dict:
        """Buffers seen from one direction: a request's own, or for the
        response side the response's values over the request's."""
        if to_server or not self.response_buffers:
            return self.request_buffers
        return {**self.request_buffers, **self.response_buffers}


# The codings undone, and the zlib window settings tried for each, first
# choice first, whatever the label says: 47 reads a gzip or a zlib header,
# -15 raw deflate (servers send all three under either name).
_INFLATE_CODINGS = frozenset((b"gzip", b"x-gzip", b"deflate"))
UNDECODED_CODINGS = frozenset((b"br", b"zstd", b"compress", b"x-compress", b"dcb", b"dcz"))
"""Codings clients undo (curl --compressed: br, zstd) that this parser does
not: the body it shows is then not what the client saves, which the
transaction says (`http.response_encoding_unsupported`). Junk labels
("utf-8", "none") are not here: clients refuse or ignore them too."""
_INFLATE_MODES = (47, -15)
MAX_ENCODING_LAYERS = 2
"""Content-Encoding layers undone (Suricata's response-decompression-layer-limit)."""
INFLATE_RETRY_BYTES = 64 * 1024
"""Compressed bytes held while a layer has produced nothing, to retry them as
the other format; past this the first guess stands."""


def _split_encodings(value: bytes) -> list[bytes]:
    """The decodable codings of a Content-Encoding value, in the order applied."""
    return [token for token in (part.strip() for part in value.split(b","))
            if token in _INFLATE_CODINGS]


class _Inflater:
    """One Content-Encoding layer: zlib with a fallback format (libhtp's
    decompressor restart), bounded output, bounded retry buffer."""

    __slots__ = ("modes", "inflater", "held", "producing")

    def __init__(self) -> None:
        self.modes = list(_INFLATE_MODES[1:])
        self.inflater = zlib.decompressobj(_INFLATE_MODES[0])
        self.held = bytearray()
        self.producing = False

    def feed(self, data: bytes, room: int) -> bytes:
        """Decoded bytes (at most `room`); raises zlib.error when no format fits."""
        if self.producing:
            return self.inflater.decompress(data, room)
        self.held += data
        while True:
            try:
                out = self.inflater.decompress(data, room)
            except zlib.error:
                if not self.modes or len(self.held) > INFLATE_RETRY_BYTES:
                    raise
                self.inflater = zlib.decompressobj(self.modes.pop(0))
                data = bytes(self.held)
                continue
            if out or len(self.held) > INFLATE_RETRY_BYTES:
                self.producing = True
                self.held = bytearray()
            return out


class _Direction:
    __slots__ = ("state", "buffer", "remaining", "chunk_line", "chunk_line_cut", "tx", "closed",
                 "partial", "trailers", "trailer_bytes", "line_checked")

    def __init__(self) -> None:
        self.line_checked = False    # responses: the status line starts like one
        self.trailers: list[bytes] = []          # header lines after the last chunk
        self.trailer_bytes = 0
        self.partial: _HttpTx | None = None   # request line seen, headers not yet
        self.state = _START_LINE
        self.buffer = bytearray()
        self.remaining = 0
        self.chunk_line = bytearray()
        self.chunk_line_cut = False     # the line went on past MAX_CHUNK_LINE bytes
        self.tx: _HttpTx | None = None
        self.closed = False


_LINE_BLANKS = b" \t\r\x0b\x0c\x00"
STATUS_PEEK = 32
"""Bytes of a response's first line looked at to tell a status line from a body."""


def _status_line_start(prefix: bytes) -> bool | None:
    """Whether a response's first bytes start a status line, as libhtp
    (htp_treat_response_line_as_body) and browsers tell: "http" in any case
    after blanks and NULs. None: too few bytes yet to tell."""
    text = prefix.lstrip(_LINE_BLANKS)
    if len(text) >= 4:
        return text[:4].upper() == b"HTTP"
    if b"\n" in text or len(prefix) >= STATUS_PEEK:
        return False
    return None


def _first_blank(line: bytes) -> int:
    """Index of the first space or tab in `line`, -1 when there is none."""
    space, tab = line.find(b" "), line.find(b"\t")
    return tab if space < 0 else space if tab < 0 else min(space, tab)


class HttpParser:
    """HTTP/1.0 and 1.1 in both directions of one connection."""

    __slots__ = ("events", "requests", "responses", "open", "next_tx_id", "finished",
                 "body_inline")

    def __init__(self, config=None) -> None:
        self.events: list[str] = []
        self.requests = _Direction()
        self.responses = _Direction()
        self.open: list[_HttpTx] = []     # requests awaiting (or in) their response
        self.next_tx_id = 0
        self.finished: list[_HttpTx] = []
        # Inline, a body's first bytes are inspected as they arrive (Suricata's
        # `http-body-inline` in IPS mode; BODY_INLINE_HEAD): a rule on a
        # body's start (an executable's magic, a form's first parameter)
        # then drops the packet that carries it, not the one 4 KiB later.
        self.body_inline = bool(getattr(config, "stream_inline", False))

    # -- public -------------------------------------------------------------------

    def feed(self, data: bytes, to_server: bool, gap: bool = False) -> list[Tx]:
        data = bytes(data)
        side = self.requests if to_server else self.responses
        if gap and side.state != _DONE:
            self.events.append("http.gap")
            side.state = _DONE
            side.buffer = bytearray()
        updated: list[_HttpTx] = []
        position = 0
        guard = 0
        while position < len(data) and side.state != _DONE:
            guard += 1
            if guard > len(data) + 16:
                self.events.append("http.parser_stuck")
                side.state = _DONE
                break
            if to_server:
                position = self._step_request(data, position, updated)
            else:
                position = self._step_response(data, position, updated)
        out: list[Tx] = []
        for http_tx in updated:
            for known in out:
                if known is http_tx:
                    break
            else:
                http_tx.to_server = to_server
                http_tx.buffers = http_tx.view(to_server)
                out.append(http_tx)
        return out

    def finish(self) -> list[Tx]:
        """End of flow: a body read until close ends here; incomplete
        transactions are completed so they get logged."""
        side = self.requests
        if side.partial is None and side.buffer and side.state in (_START_LINE, _HEADERS):
            # A request line the client never ended: at close libhtp takes
            # what it has as the line ("GET /" then FIN or RST is a request).
            held = bytes(side.buffer)
            end = held.find(b"\n")
            line = held if end < 0 else held[:end + 1]
            if line.strip(b" \t\r\n"):
                self._on_request_line(line, [])
            side.buffer = bytearray()
        out = []
        for http_tx in list(self.open):     # _complete removes from self.open
            if not http_tx.complete:
                self._complete(http_tx)
                out.append(http_tx)
        self.open.clear()
        return out

    @property
    def buffered_bytes(self) -> int:
        """Bytes held by the parser (for bound checks in tests)."""
        total = len(self.requests.buffer) + len(self.responses.buffer)
        for http_tx in self.open:
            total += len(http_tx.request_body) + len(http_tx.response_body)
        return total

    # -- header section collection -----------------------------------------------

    def _collect_section(self, side: _Direction, data: bytes, position: int,
                         too_large_event: str) -> tuple[int, bytes | None]:
        """Append bytes until the blank line; return (new position, section).

        Only the bytes of the header section are copied; the end search looks
        at each new newline once, peeking back into the held bytes for the
        "\n\n" / "\n\r\n" that ends the section, so it is O(new bytes)."""
        data_len = len(data)
        held = side.buffer
        limit = min(data_len, position + max(MAX_HEADER_BYTES - len(held), 0))
        if not held:
            # The common case, a whole section in one chunk: two C searches.
            end = data.find(b"\n\n", position, limit)
            other = data.find(b"\n\r\n", position, limit)
            if end < 0 or 0 <= other < end:
                end = other
            if end >= 0:
                newline = end + 1 if data[end + 1] == 0x0A else end + 2
                return newline + 1, data[position:newline + 1]

        def byte_at(index: int) -> int:
            # index is relative to data; negative reaches back into `held`
            if index >= position:
                return data[index]
            back = position - index
            return held[-back] if back <= len(held) else -1

        newline = data.find(b"\n", position, limit)
        while newline >= 0:
            before = byte_at(newline - 1)
            if before == 0x0A or (before == 0x0D and byte_at(newline - 2) == 0x0A):
                section = bytes(held) + data[position:newline + 1]
                side.buffer = bytearray()
                return newline + 1, section
            newline = data.find(b"\n", newline + 1, limit)
        held += data[position:limit]
        if len(held) >= MAX_HEADER_BYTES:
            self.events.append(too_large_event)
            side.state = _DONE
            side.buffer = bytearray()
        return limit, None

    # -- requests -------------------------------------------------------------------

    def _step_request(self, data, position, updated) -> int:
        side = self.requests
        if side.state in (_START_LINE, _HEADERS):
            if side.state == _START_LINE and not side.buffer:
                position = _skip_empty_lines(data, position)
                if position >= len(data):
                    return position
            side.state = _HEADERS
            start = position
            position, section = self._collect_section(side, data, position,
                                                      "http.request_header_too_large")
            if section is None:
                if side.state == _DONE:
                    # Header section over MAX_HEADER_BYTES: parsing stops, so
                    # a request after it would go unseen; the request (its
                    # line, when it was read) is flagged and the box drops it.
                    if side.partial is None:
                        line_end = data.find(b"\n", start, position)
                        if line_end >= 0:
                            self._on_request_line(data[start:line_end + 1], updated)
                    if side.partial is not None:
                        self._tx_event(side.partial, "http.request_smuggling")
                        updated.append(side.partial)
                    return position
                if side.state == _HEADERS and not side.buffer:
                    side.state = _START_LINE
                elif side.partial is None and side.state == _HEADERS and \
                        data.find(b"\n", start, position) >= 0:
                    # The request line is complete but the headers are not:
                    # the request-line buffers are inspectable now (Suricata 8
                    # runs http.uri as soon as the request line is parsed).
                    self._on_request_line(bytes(side.buffer[:side.buffer.find(b"\n") + 1]), updated)
                return position
            self._on_request_section(section, updated)
            return position
        return self._step_body(side, data, position, updated, to_server=True)

    def _on_request_line(self, line: bytes, updated) -> None:
        side = self.requests
        http_tx = self._new_request_tx()
        request_line = line.rstrip(b"\r\n")
        self._fill_request_line(http_tx, request_line)
        side.partial = http_tx
        updated.append(http_tx)

    def _new_request_tx(self) -> _HttpTx:
        http_tx = _HttpTx(self.next_tx_id)
        self.next_tx_id += 1
        if len(self.open) >= MAX_OPEN_TRANSACTIONS:
            self.events.append("http.too_many_transactions")
            dropped = self.open.pop(0)
            self._complete(dropped)
        self.open.append(http_tx)
        return http_tx

    def _fill_request_line(self, http_tx: _HttpTx, request_line: bytes) -> None:
        # As libhtp: a run of spaces or tabs separates the parts (servers
        # take "POST\t/x\tHTTP/1.1" too), and blanks inside the URI stay.
        # Its IDS personality (Suricata's default) skips blanks before the
        # method: " GET /x" is a GET of /x, not a method "" and a URI "GET".
        for event in _request_line_events(request_line):
            self._tx_event(http_tx, event)
        request_line = request_line.lstrip(_LIBHTP_SPACE)
        first = _first_blank(request_line)
        method = request_line if first < 0 else request_line[:first]
        rest = b"" if first < 0 else request_line[first:].strip(b" \t")
        last = max(rest.rfind(b" "), rest.rfind(b"\t"))
        if last >= 0 and rest.startswith(b"HTTP/", last + 1):
            raw_uri, protocol = rest[:last].rstrip(b" \t"), rest[last + 1:]
        elif rest and last < 0:
            raw_uri, protocol = rest, b""                   # HTTP/0.9
        else:
            # The last part is no HTTP/x.y ("GET / JUNK/1.0", "http/1.1"):
            # libhtp keeps the first part as the URI and the rest as the
            # protocol, and flags the line; the URI must not go blank.
            self.events.append("http.request_line_invalid")
            cut = _first_blank(rest)
            raw_uri, protocol = (rest, b"") if cut < 0 else (rest[:cut], rest[cut:].strip(b" \t"))
        http_tx.method, http_tx.raw_uri, http_tx.protocol = method, raw_uri, protocol
        buffers = http_tx.request_buffers
        buffers["http.method"] = method
        buffers["http.uri.raw"] = raw_uri
        buffers["http.uri"] = normalise_uri(raw_uri)
        buffers["http.protocol"] = protocol
        buffers["http.request_line"] = request_line
        if raw_uri[:1] != b"/" and _uri_host_invalid(method, raw_uri):
            self._tx_event(http_tx, "http.request_uri_host_invalid")

    def _on_request_section(self, section: bytes, updated) -> None:
        """A request line and its header section; or, as libhtp reads it,
        HTTP/0.9 requests first: a request line without a protocol whose next
        line is no header line ("Name:") has no headers, and the next line
        is the next request. A device that answers "GET /a" and reads on
        runs the request that follows it, which must not pass for a header."""
        start = 0
        while True:
            end = section.find(b"\n", start) + 1
            if not end or _HEADER_LINE_RE.match(section, end) or section[end:end + 1] in (b"\r", b"\n", b""):
                break
            if len(section[start:end].split(None, 2)) > 2:
                break                   # a protocol (valid or not): headers follow
            self._on_request(section[start:end], updated)
            start = end
        self._on_request(section[start:] if start else section, updated)

    def _on_request(self, section: bytes, updated) -> None:
        side = self.requests
        lines = _split_lines(section)
        request_line = lines[0] if lines else b""
        http_tx = side.partial
        side.partial = None
        if http_tx is None:
            http_tx = self._new_request_tx()
            self._fill_request_line(http_tx, request_line)
        updated.append(http_tx)
        method, raw_uri = http_tx.method, http_tx.raw_uri
        headers = _parse_header_lines(lines[1:])
        if headers.missing_colon:
            self._tx_event(http_tx, "http.request_field_missing_colon")
        if headers.invalid:
            self._tx_event(http_tx, "http.request_header_invalid")
        if headers.folding_invalid:
            self._tx_event(http_tx, "http.invalid_request_field_folding")
        http_tx.request_headers = headers
        buffers = http_tx.request_buffers
        header_end = section.find(b"\n") + 1
        buffers["http.header.raw"] = section[header_end:]
        buffers["http.start"] = section
        self._fill_header_buffers(buffers, headers, request=True)
        host = headers.get(b"host")
        absolute = _absolute_host(raw_uri)
        if absolute is not None:
            # As libhtp (RFC 9112 3.2.2): an absolute URI's host is the
            # request's host, whatever the Host header says; both differing
            # is the ambiguity a front end and a back end can read apart.
            uri_host = _strip_port(absolute)
            buffers["http.host.raw"] = uri_host
            buffers["http.host"] = uri_host.lower()
            if host is not None and _host_ambiguous(absolute, host):
                self._tx_event(http_tx, "http.host_header_ambiguous")
        elif host is not None:
            buffers["http.host.raw"] = host
            buffers["http.host"] = _strip_port(host.strip()).lower()
        self._check_host(http_tx, headers)
        self._check_transfer_encoding(http_tx, headers, request=True)
        body_state, length = self._body_framing(http_tx, headers, request=True)
        side.state, side.remaining = body_state, length
        side.tx = http_tx
        if side.state == _START_LINE:
            http_tx.request_done = True
        if method.upper() == b"CONNECT":
            http_tx.request_done = True
            side.state = _START_LINE
        if b"\r" in section and section.count(b"\r") != section.count(b"\r\n"):
            # A CR inside a line: busybox httpd (many cameras) deletes it
            # ("/cgi-bin/m.c\rgi" runs m.cgi), mini_httpd ends the line
            # there, libhtp keeps it. No reading is safe to inspect.
            self._tx_event(http_tx, "http.request_smuggling")
        if (method == b"PRI" and raw_uri == b"*" and http_tx.protocol == b"HTTP/2.0") or (
                b"h2c" in headers.get(b"upgrade", b"").lower()):
            # Cleartext HTTP/2: the prior-knowledge preface, or an upgrade a
            # server such as lighttpd accepts. What follows is HTTP/2
            # frames, which this parser does not read: the requests in
            # them are invisible to http.* rules, so the switch itself is
            # the event (virtual patch 9100119 drops it toward the LAN).
            self._tx_event(http_tx, "http.http2_cleartext")
            if method == b"PRI":
                http_tx.request_done = True
                side.state = _DONE

    def _fill_header_buffers(self, buffers, headers: _Headers, request: bool) -> None:
        # http.header excludes Cookie (request) / Set-Cookie (response), as
        # Suricata does (suricata-verify http-chunked sid 22); the raw buffer
        # keeps them.
        excluded = b"cookie" if request else b"set-cookie"
        wanted = _REQUEST_HEADER_BUFFERS if request else _RESPONSE_HEADER_BUFFERS
        original = headers.names
        lines = []
        for key, value in headers.items():     # in order of first appearance
            lines.append(original[key] + b": " + value)
            buffer_name = wanted.get(key)
            if buffer_name is not None:
                buffers[buffer_name] = value
        if excluded in headers:
            kept = [line for key, line in zip(headers, lines) if key != excluded]
        else:
            kept = lines
        # Each buffer ends with the blank line: "a\r\nb\r\n\r\n" (http.header
        # with no header left is "\r\n"); http.header_names starts with one.
        buffers["http.header"] = b"\r\n".join(kept) + b"\r\n\r\n" if kept else b"\r\n"
        buffers["http.header_names"] = (b"\r\n" + b"\r\n".join(original.values()) + b"\r\n\r\n"
                                        if original else b"\r\n\r\n")
        buffers["http.request_header" if request else "http.response_header"] = lines

    def _check_host(self, http_tx: _HttpTx, headers: _Headers) -> None:
        """libhtp's host checks on a request's headers: no Host header on
        HTTP/1.1 (HOST_MISSING, Suricata's http.missing_host_header), or
        one whose value is not a valid host with an optional port
        (HOSTH_INVALID, http.request_header_host_invalid). libhtp finds
        the header by name ignoring case and NUL bytes; a value without
        any host ("", ":80") is not judged, as there."""
        host = headers.get(b"host")
        if host is None and headers.invalid:
            for name, value in headers.items():
                if b"\x00" in name and name.replace(b"\x00", b"") == b"host":
                    host = value
                    break
        if host is None:
            if _HTTP_1_1_RE.fullmatch(http_tx.protocol) is not None:
                self._tx_event(http_tx, "http.missing_host_header")
        elif _hostport_valid(host.strip(_LIBHTP_SPACE)) is False:
            self._tx_event(http_tx, "http.request_header_host_invalid")

    def _check_transfer_encoding(self, http_tx: _HttpTx, headers: _Headers,
                                 request: bool) -> None:
        """libhtp's invalid Transfer-Encoding (HTP_REQUEST_INVALID_T_E, which
        Suricata raises as http.invalid_transfer_encoding_value_in_request):
        a T-E header whose value, repeated headers joined with ", " and
        trimmed, is not `chunked` (any case), or `chunked` on a request
        older than HTTP/1.1. The event is on the transaction, for
        `app-layer-event`, and logged as an anomaly like the others."""
        value = headers.get(b"transfer-encoding")
        if value is None:
            return
        if value.lower() == b"chunked":
            if not request or http_tx.protocol.strip().upper() == b"HTTP/1.1":
                return
        self._tx_event(http_tx, "http.invalid_transfer_encoding_value_in_request" if request
                       else "http.invalid_transfer_encoding_value_in_response")

    def _tx_event(self, http_tx: _HttpTx, name: str) -> None:
        """An event on the transaction (for app-layer-event), logged too."""
        if name not in http_tx.events:
            http_tx.events += (name,)
        self.events.append(name)

    def _body_framing(self, http_tx: _HttpTx, headers: _Headers,
                      request: bool) -> tuple[int, int]:
        """(body state, length) of a message, as libhtp frames it, with the
        events that tell where a server could frame it otherwise.

        A client and a server that disagree on where a body ends disagree
        on where the next request starts: bytes this parser takes for a
        body can be a request to the device (request smuggling), one the
        http.uri rules never see. Every such ambiguity raises
        `http.request_smuggling` on the transaction (`..._response`
        for a response), for a rule to drop (signatures/virtual-patches.rules
        does, toward $HOME_NET): Content-Length beside chunked
        Transfer-Encoding, a Transfer-Encoding read as chunked that is not
        exactly `chunked` on HTTP/1.1, a folded Content-Length, one with anything but
        digits, or repeated ones that differ (also Suricata's
        `http.duplicate_content_length_field_in_request`). A Content-Length
        without digits is Suricata's `http.invalid_content_length_field_in_request`;
        libhtp stops parsing the connection there, this parser reads the
        request as bodiless and goes on, so what follows is still parsed
        (and inspected) as requests."""
        smuggling, duplicate, invalid = _FRAMING_EVENTS[request]
        transfer_encoding = headers.get(b"transfer-encoding")
        lengths = headers.lengths
        # "Content-Length :" or "Content-Length\0:" may be one to a server
        ambiguous = headers.length_folded or any(
            b"content-length" in name or b"transfer-encoding" in name for name in headers.invalid)
        if transfer_encoding is not None and b"chunked" in transfer_encoding.lower():
            # Chunked as libhtp reads it ("chunked" anywhere in the value); a
            # server that wants exactly "chunked" on HTTP/1.1 (one header,
            # unfolded) reads no body at all, and the chunks as requests.
            if lengths or transfer_encoding.lower() != b"chunked" or (
                    request and http_tx.protocol.upper() != b"HTTP/1.1"):
                ambiguous = True
            framing = (_BODY_CHUNK_SIZE, 0)
        elif lengths:
            parsed = [_content_length(value) for value in lengths]
            length = parsed[0][0]
            ambiguous |= not all(clean for _, clean in parsed)
            if len(parsed) > 1 and (length is None or any(other != length
                                                          for other, _ in parsed[1:])):
                ambiguous = True
                self._tx_event(http_tx, duplicate)
            if length is None:
                self._tx_event(http_tx, invalid)
                framing = (_START_LINE, 0) if request else (_BODY_UNTIL_CLOSE, 0)
            elif length > 0:
                framing = (_BODY_LENGTH, length)
            else:
                framing = (_START_LINE, 0)
        else:
            framing = (_START_LINE, 0) if request else (_BODY_UNTIL_CLOSE, 0)
        if ambiguous:
            self._tx_event(http_tx, smuggling)
        return framing

    # -- responses ------------------------------------------------------------------

    def _step_response(self, data, position, updated) -> int:
        side = self.responses
        if side.state in (_START_LINE, _HEADERS):
            if side.state == _START_LINE and not side.buffer:
                position = _skip_empty_lines(data, position)
                if position >= len(data):
                    return position
                side.line_checked = False
            side.state = _HEADERS
            if not side.line_checked:
                looks = _status_line_start(bytes(side.buffer) + data[position:position + STATUS_PEEK])
                if looks is False:
                    return self._response_without_status_line(side, data, position, updated)
                side.line_checked = bool(looks)
            position, section = self._collect_section(side, data, position,
                                                      "http.response_header_too_large")
            if section is None:
                if side.state == _HEADERS and not side.buffer:
                    side.state = _START_LINE
                return position
            self._on_response_section(section, updated)
            return position
        return self._step_body(side, data, position, updated, to_server=False)

    def _response_tx(self, updated) -> _HttpTx:
        """The transaction the next response answers."""
        http_tx = None
        for waiting in self.open:
            if not waiting.response_started:
                http_tx = waiting
                break
        if http_tx is None:
            # A response without a request we saw (midstream, or extra
            # data): libhtp gives it a transaction of its own, as here.
            http_tx = _HttpTx(self.next_tx_id)
            self.next_tx_id += 1
            http_tx.request_done = True
            if len(self.open) >= MAX_OPEN_TRANSACTIONS:
                self._complete(self.open.pop(0))
            self.open.append(http_tx)
            self._tx_event(http_tx, "http.unable_to_match_response_to_request")
        updated.append(http_tx)
        return http_tx

    def _response_without_status_line(self, side: _Direction, data: bytes, position: int,
                                      updated) -> int:
        """A response whose first line is no status line (HTTP/0.9, or junk):
        libhtp, like browsers and curl --http0.9 or GNU wget, reads it all,
        to the close, as the body. Otherwise a server could send an
        executable with no status line and no file.data rule would see it."""
        self.events.append("http.response_line_invalid")
        http_tx = self._response_tx(updated)
        http_tx.response_started = True
        side.tx = http_tx
        side.state, side.remaining = _BODY_UNTIL_CLOSE, 0
        held = bytes(side.buffer)
        side.buffer = bytearray()
        if held:
            self._body_bytes(http_tx, held, to_server=False)
        return self._step_body(side, data, position, updated, to_server=False)

    def _on_response_section(self, section: bytes, updated) -> None:
        side = self.responses
        lines = _split_lines(section)
        status_line = lines[0] if lines else b""
        match = _STATUS_RE.match(status_line)
        http_tx = self._response_tx(updated)
        buffers = http_tx.response_buffers
        headers = _parse_header_lines(lines[1:])
        if headers.missing_colon:
            self._tx_event(http_tx, "http.response_field_missing_colon")
        if headers.invalid:
            self._tx_event(http_tx, "http.response_header_invalid")
        if headers.folding_invalid:
            self._tx_event(http_tx, "http.invalid_response_field_folding")
        protocol, status_text, message = _STATUS_PARTS_RE.match(status_line).groups()
        if match is None:
            self.events.append("http.response_line_invalid")
        status = int(status_text) if match is not None else None
        http_tx.response_headers = headers
        buffers["http.response_line"] = status_line
        buffers["http.stat_code"] = status_text
        buffers["http.stat_msg"] = message
        buffers["http.response.protocol"] = protocol
        header_end = section.find(b"\n") + 1
        buffers["http.header.raw"] = section[header_end:]
        buffers["http.start"] = section
        self._fill_header_buffers(buffers, headers, request=False)
        if status is not None and 100 <= status < 200 and status != 101:
            # Interim response: the final one follows for the same request.
            if status == 100 and b"transfer-encoding" not in headers and not (
                    _content_length(headers.get(b"content-length", b""))[0] or 0):
                # What libhtp takes for a "100 Continue" (no T-E, no
                # Content-Length over 0); a second one on the same request
                # is its CONTINUE_ALREADY_SEEN.
                if http_tx.continue_seen:
                    self._tx_event(http_tx, "http.100_continue_already_seen")
                http_tx.continue_seen = True
            side.state = _START_LINE
            return
        http_tx.response_started = True
        http_tx.status = status
        encoding = headers.get(b"content-encoding")
        http_tx.content_encoding = encoding.lower().strip() if encoding else b""
        if encoding and any(part.strip() in UNDECODED_CODINGS
                            for part in http_tx.content_encoding.split(b",")):
            self._tx_event(http_tx, "http.response_encoding_unsupported")
        content_type = headers.get(b"content-type") or b""
        http_tx.response_xml = b"xml" in content_type.lower()
        side.tx = http_tx
        method = http_tx.method.upper()
        if (status == 101 or (method == b"CONNECT" and status is not None
                              and 200 <= status < 300)):
            # The connection now carries another protocol: stop parsing it.
            self._complete(http_tx)
            side.state = _DONE
            self.requests.state = _DONE
            return
        if method == b"HEAD" or status in (204, 304):
            side.state = _START_LINE
            self._complete(http_tx)
            return
        self._check_transfer_encoding(http_tx, headers, request=False)
        side.state, side.remaining = self._body_framing(http_tx, headers, request=False)
        if side.state == _START_LINE:
            self._complete(http_tx)

    # -- bodies (both directions) -------------------------------------------------------

    def _step_body(self, side: _Direction, data: bytes, position, updated, to_server: bool) -> int:
        http_tx = side.tx
        data_len = len(data)
        if http_tx is None:
            side.state = _DONE
            return data_len
        if side.state == _BODY_LENGTH:
            take = min(side.remaining, data_len - position)
            self._body_bytes(http_tx, data[position:position + take], to_server)
            side.remaining -= take
            position += take
            if side.remaining == 0:
                self._end_body(side, http_tx, to_server)
            updated.append(http_tx)
            return position
        if side.state == _BODY_UNTIL_CLOSE:
            self._body_bytes(http_tx, data[position:], to_server)
            updated.append(http_tx)
            return data_len
        if side.state in (_BODY_CHUNK_SIZE, _BODY_TRAILERS, _BODY_CHUNK_CRLF):
            # A line is whatever comes before the next LF, in however many
            # segments: the first MAX_CHUNK_LINE bytes are kept, the rest
            # is skipped, so the same line gives the same result however
            # it is cut.
            newline = data.find(b"\n", position)
            end = data_len if newline < 0 else newline
            held = side.chunk_line
            room = MAX_CHUNK_LINE - len(held)
            if end - position > room:
                side.chunk_line_cut = True
            if room > 0:
                held += data[position:min(end, position + room)]
            if newline < 0:
                self._count_transfer(http_tx, data_len - position, to_server)
                return data_len
            self._count_transfer(http_tx, newline + 1 - position, to_server)
            position = newline + 1
            line, cut = bytes(held).rstrip(b"\r"), side.chunk_line_cut
            side.chunk_line = bytearray()
            side.chunk_line_cut = False
            if side.state == _BODY_CHUNK_CRLF:
                if line:
                    # libhtp skips to the LF; a server may take these bytes
                    # for the next chunk size instead.
                    self.events.append("http.chunk_missing_crlf")
                    if to_server:
                        self._tx_event(http_tx, "http.request_smuggling")
                        updated.append(http_tx)
                side.state = _BODY_CHUNK_SIZE
                return position
            if side.state == _BODY_TRAILERS:
                if line:
                    # Trailer headers join the message's headers, as libhtp
                    # parses them (http.header sees "X: y" sent after "0").
                    # Counted as they come: re-summing per line would make a
                    # flood of tiny trailer lines quadratic.
                    side.trailer_bytes += len(line) + 2
                    if side.trailer_bytes <= MAX_HEADER_BYTES:
                        side.trailers.append(line)
                    elif "http.trailer_too_large" not in self.events:
                        self.events.append("http.trailer_too_large")
                    return position
                if side.trailers:
                    self._add_trailers(http_tx, side.trailers, to_server)
                    side.trailers = []
                side.trailer_bytes = 0
                self._end_body(side, http_tx, to_server)
                updated.append(http_tx)
                return position
            size, clean = _chunk_size(line, cut)
            if size is None:
                # An empty line where a chunk size belongs: libhtp reads on to
                # the size (a server can send one; a body it hides is still a body).
                return position
            if size < 0:
                # libhtp gives up on the connection here, and so does this
                # parser: what follows is not parsed, so a request hidden
                # after the bad size is invisible to http.* rules. Hence
                # request smuggling too: the box drops the request.
                if to_server:
                    self._tx_event(http_tx, "http.invalid_request_chunk_len")
                    self._tx_event(http_tx, "http.request_smuggling")
                else:
                    self._tx_event(http_tx, "http.invalid_response_chunk_len")
                updated.append(http_tx)
                side.state = _DONE
                return position
            if not clean and to_server:
                self._tx_event(http_tx, "http.request_smuggling")
                updated.append(http_tx)
            if size == 0:
                side.state = _BODY_TRAILERS
            else:
                side.state, side.remaining = _BODY_CHUNK_DATA, size
            return position
        if side.state == _BODY_CHUNK_DATA:
            take = min(side.remaining, data_len - position)
            self._body_bytes(http_tx, data[position:position + take], to_server, framing=False)
            self._count_transfer(http_tx, take, to_server)
            side.remaining -= take
            position += take
            if side.remaining == 0:
                side.state = _BODY_CHUNK_CRLF
            updated.append(http_tx)
            return position
        side.state = _DONE
        return data_len

    def _add_trailers(self, http_tx: _HttpTx, lines: list[bytes], to_server: bool) -> None:
        headers = http_tx.request_headers if to_server else http_tx.response_headers
        if headers is None:
            return
        trailer = _parse_header_lines(lines)
        if trailer.folding_invalid:
            # libhtp parses trailers as headers, with the same check
            self._tx_event(http_tx, "http.invalid_request_field_folding" if to_server
                           else "http.invalid_response_field_folding")
        for key, value in trailer.items():
            known = headers.get(key)
            if known is None:
                headers.names[key] = trailer.names[key]
                headers[key] = value
            else:
                headers[key] = known + b", " + value
        buffers = http_tx.request_buffers if to_server else http_tx.response_buffers
        self._fill_header_buffers(buffers, headers, request=to_server)
        # Suricata's raw header buffer takes the trailer bytes as it took
        # the headers' (one callback for both).
        buffers["http.header.raw"] = (buffers.get("http.header.raw", b"")
                                      + b"".join(line + b"\r\n" for line in lines) + b"\r\n")

    def _count_transfer(self, http_tx: _HttpTx, count: int, to_server: bool) -> None:
        # EVE's "length" is the body as transmitted, chunk framing included.
        if to_server:
            http_tx.request_body_seen += count
        else:
            http_tx.response_body_seen += count

    def _body_bytes(self, http_tx: _HttpTx, data: bytes, to_server: bool, framing: bool = True) -> None:
        if to_server:
            if framing:
                http_tx.request_body_seen += len(data)
            body = http_tx.request_body
            room = REQUEST_BODY_LIMIT - len(body)
            if room > 0:
                body += data[:room]
            size, published, limit = len(body), http_tx.request_published, REQUEST_BODY_LIMIT
        else:
            if framing:
                http_tx.response_body_seen += len(data)
            body = http_tx.response_body
            room = RESPONSE_BODY_LIMIT - len(body)
            if room > 0 and data:
                body += self._decode(http_tx, data, room)
            size, published, limit = len(body), http_tx.response_published, RESPONSE_BODY_LIMIT
        # _publish_body(final=False) publishes only in these cases
        if size != published and (size - published >= BODY_INSPECT_STEP or size >= limit
                                  or (published < BODY_INLINE_HEAD and self.body_inline)):
            self._publish_body(http_tx, to_server, final=False)

    def _decode(self, http_tx: _HttpTx, data: bytes, room: int) -> bytes:
        """Content-Encoding gzip/deflate, decoded incrementally (one chain of
        decoders per transaction, output capped at `room`, so a zip bomb
        stops there). As libhtp: several encodings ("gzip, deflate", or two
        headers) are undone last first, and a layer whose data is not the
        declared format is retried as the other one (gzip sent as
        "deflate", raw deflate sent as "gzip")."""
        if http_tx.decoder is None:
            codings = _split_encodings(http_tx.content_encoding)[-MAX_ENCODING_LAYERS:]
            http_tx.decoder = [_Inflater() for _ in codings] or False
        if http_tx.decoder is False:
            return data[:room]
        for layer in http_tx.decoder:
            try:
                data = layer.feed(data, room)
            except zlib.error:
                # The body is then what a client that does not decode saves:
                # from here on as sent, and the bytes this layer held while
                # it tried the formats are part of it (a lying label with
                # "\x7f" alone in the first segment must not cost the "\x7f").
                self.events.append("http.body_decompression_failed")
                http_tx.decoder = False
                return (bytes(layer.held) if layer.held else data)[:room]
        return data

    def _publish_body(self, http_tx: _HttpTx, to_server: bool, final: bool) -> None:
        """Expose the body buffer to detection. Materialising it on every
        segment would be quadratic for a body trickled in small segments, so
        it is published each BODY_INSPECT_STEP new bytes, when the limit is
        reached, and when the body ends (as Suricata's inspect window);
        inline also on every new byte of its first BODY_INLINE_HEAD."""
        body = http_tx.request_body if to_server else http_tx.response_body
        published = http_tx.request_published if to_server else http_tx.response_published
        if len(body) == published:
            return
        limit = REQUEST_BODY_LIMIT if to_server else RESPONSE_BODY_LIMIT
        if not (final or len(body) - published >= BODY_INSPECT_STEP or len(body) >= limit
                or (published < BODY_INLINE_HEAD and self.body_inline)):
            return
        value = bytes(body)
        if to_server:
            http_tx.request_published = len(body)
            http_tx.request_buffers["http.request_body"] = value
        else:
            http_tx.response_published = len(body)
            http_tx.response_buffers["http.response_body"] = value
            http_tx.response_buffers["file.data"] = value

    def _end_body(self, side: _Direction, http_tx: _HttpTx, to_server: bool) -> None:
        side.state = _START_LINE
        self._publish_body(http_tx, to_server, final=True)
        if to_server:
            http_tx.request_done = True
        else:
            self._complete(http_tx)

    # -- completion -----------------------------------------------------------------

    def _complete(self, http_tx: _HttpTx) -> None:
        tx = http_tx
        if tx.complete:
            return
        # (_publish_body returns at once for a body already published)
        if len(http_tx.request_body) != http_tx.request_published:
            self._publish_body(http_tx, True, final=True)
        if len(http_tx.response_body) != http_tx.response_published:
            self._publish_body(http_tx, False, final=True)
        tx.buffers = {**http_tx.request_buffers, **http_tx.response_buffers}
        tx.complete = True
        waiting = self.open
        for index, other in enumerate(waiting):
            if other is http_tx:     # each tx is queued once
                del waiting[index]
                break
        tx.record = _record(http_tx)


def _record(http_tx: _HttpTx) -> dict:
    """EVE "http" object, fields in Suricata's order, absent ones left out."""
    record: dict = {}
    buffers = http_tx.request_buffers
    host = buffers.get("http.host.raw")
    if host:
        record["hostname"] = _strip_port(host).lower().decode("utf-8", "replace")
        port = host.rpartition(b":")[2] if b":" in host and not host.endswith(b"]") else b""
        if port.isdigit():
            record["http_port"] = int(port)
    if http_tx.raw_uri:
        record["url"] = http_tx.raw_uri.decode("utf-8", "replace")
    if http_tx.request_headers is not None:
        user_agent = http_tx.request_headers.get(b"user-agent")
        if user_agent is not None:
            record["http_user_agent"] = user_agent.decode("utf-8", "replace")
    if http_tx.response_headers is not None:
        content_type = http_tx.response_headers.get(b"content-type")
        if content_type is not None:
            record["http_content_type"] = content_type.split(b";")[0].strip().decode("utf-8", "replace")
    if http_tx.request_headers is not None:
        referer = http_tx.request_headers.get(b"referer")
        if referer is not None:
            record["http_refer"] = referer.decode("utf-8", "replace")
    if http_tx.method:
        record["http_method"] = http_tx.method.decode("utf-8", "replace")
    if http_tx.protocol:
        record["protocol"] = http_tx.protocol.decode("utf-8", "replace")
    if http_tx.status is not None:
        record["status"] = http_tx.status
    if http_tx.response_headers is not None:
        location = http_tx.response_headers.get(b"location")
        if location is not None:
            record["redirect"] = location.decode("utf-8", "replace")
    record["length"] = http_tx.response_body_seen
    if http_tx.response_xml:
        device = upnp_device_description(http_tx.response_buffers.get("http.response_body") or b"")
        if device:
            # Device observation for the inventory (not part of Suricata's
            # EVE http object; consumers that want pure EVE drop it).
            record["upnp"] = device
    return record


def _text(value: bytes) -> str:
    return value.decode("utf-8", "replace")


_UPNP_FIELDS = ("deviceType", "friendlyName", "manufacturer", "manufacturerURL",
                "modelName", "modelNumber", "modelDescription", "serialNumber", "UDN")


def upnp_device_description(body: bytes) -> dict | None:
    """Fields of a UPnP device description (root device only), without an
    XML parser: the document is untrusted and bounded, and we only need the
    first occurrence of a few leaf elements."""
    if b"urn:schemas-upnp-org:device" not in body and b"<friendlyName>" not in body:
        return None
    device = {}
    for name in _UPNP_FIELDS:
        match = re.search(rb"<" + name.encode() + rb">([^<]{0,256})</" + name.encode() + rb">", body)
        if match:
            device[name] = _text(match.group(1).strip())
    return device or None
