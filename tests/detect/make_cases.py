"""Generate the detection conformance cases in tests/detect/cases/ (verify format).

    python tests/detect/make_cases.py

Each case folder gets input.pcap (built with scapy, documentation addresses
only), test.rules and test.yaml with the expected alert counts. The cases are
committed; rerun this script only to change them.
"""
from __future__ import annotations

import os

from scapy.all import IP, TCP, UDP, Ether, Raw, wrpcap

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cases")
CLIENT, SERVER = "192.0.2.10", "198.51.100.20"


def _tcp_session(segments: list[tuple[bool, bytes]], sport: int = 40000, start: float = 0.0,
                 client: str = CLIENT, dport: int = 80) -> list:
    """Handshake, then data segments (to_server flag, bytes) each acknowledged."""
    client_seq, server_seq = 1000, 5000
    frames = [
        Ether() / IP(src=client, dst=SERVER) / TCP(sport=sport, dport=dport, flags="S", seq=client_seq),
        Ether() / IP(src=SERVER, dst=client) / TCP(sport=dport, dport=sport, flags="SA", seq=server_seq, ack=client_seq + 1),
        Ether() / IP(src=client, dst=SERVER) / TCP(sport=sport, dport=dport, flags="A", seq=client_seq + 1, ack=server_seq + 1),
    ]
    client_seq += 1
    server_seq += 1
    for to_server, data in segments:
        if to_server:
            frames.append(Ether() / IP(src=client, dst=SERVER) / TCP(sport=sport, dport=dport, flags="PA", seq=client_seq, ack=server_seq) / Raw(data))
            client_seq += len(data)
            frames.append(Ether() / IP(src=SERVER, dst=client) / TCP(sport=dport, dport=sport, flags="A", seq=server_seq, ack=client_seq))
        else:
            frames.append(Ether() / IP(src=SERVER, dst=client) / TCP(sport=dport, dport=sport, flags="PA", seq=server_seq, ack=client_seq) / Raw(data))
            server_seq += len(data)
            frames.append(Ether() / IP(src=client, dst=SERVER) / TCP(sport=sport, dport=dport, flags="A", seq=client_seq, ack=server_seq))
    for index, frame in enumerate(frames):
        frame.time = 1700000000 + start + index * 0.01
    return frames


def _write(name: str, frames: list, rules: str, expected: dict[int, int], note: str) -> None:
    folder = os.path.join(HERE, name)
    os.makedirs(folder, exist_ok=True)
    wrpcap(os.path.join(folder, "input.pcap"), frames)
    with open(os.path.join(folder, "test.rules"), "w") as out:
        out.write(rules)
    lines = [f"# {note}", "checks:"]
    for sid, count in expected.items():
        lines += ["  - filter:", f"      count: {count}", "      match:",
                  "        event_type: alert", f"        alert.signature_id: {sid}"]
    with open(os.path.join(folder, "test.yaml"), "w") as out:
        out.write("\n".join(lines) + "\n")


def main() -> None:
    _write("stream-content-spans-segments",
           _tcp_session([(True, b"GET /a HTTP/1.1\r\nX-Probe: uid=0"), (True, b"(root)\r\n\r\n")]),
           'alert tcp any any -> any any (msg:"split content"; flow:to_server,established; '
           'content:"uid=0|28|root|29|"; sid:1001; rev:1;)\n'
           'alert tcp any any -> any any (msg:"to_client must not fire"; flow:to_client; '
           'content:"uid=0"; sid:1002; rev:1;)\n',
           {1001: 1, 1002: 0},
           "a content split over two segments alerts once; a to_client rule stays silent")
    frames = []
    for index in range(5):
        frame = Ether() / IP(src=CLIENT, dst=SERVER) / UDP(sport=5000 + index, dport=9999) / Raw(b"PING-IOT")
        frame.time = 1700000000 + index
        frames.append(frame)
    _write("threshold-limit-udp", frames,
           'alert udp any any -> any 9999 (msg:"limited"; content:"PING-IOT"; '
           'threshold:type limit, track by_src, count 3, seconds 60; sid:1003; rev:1;)\n'
           'alert udp any any -> any 9999 (msg:"after two"; content:"PING"; '
           'detection_filter:track by_src, count 2, seconds 60; sid:1004; rev:1;)\n',
           {1003: 3, 1004: 3},
           "threshold limit caps at 3, detection_filter fires from the 3rd match")
    _write("distance-within-backtrack",
           _tcp_session([(True, b"key=ax key=ay key=ab end")]),
           'alert tcp any any -> any 80 (msg:"backtrack"; content:"key="; content:"b"; '
           'distance:1; within:1; sid:1005; rev:1;)\n'
           'alert tcp any any -> any 80 (msg:"negated"; content:"key="; content:!"zz"; '
           'distance:0; sid:1006; rev:1;)\n',
           {1005: 1, 1006: 1},
           "relative content retried at later occurrences; negated content absent")
    stream_size_case()
    xbits_case()
    flowint_case()
    event_cases()


def event_cases() -> None:
    # A virtual patch in the style of ET's CVE-2023-46747 / CVE-2023-41265
    # rules: a request smuggled behind a Transfer-Encoding the front end
    # reads differently (libhtp: anything but exactly "chunked").
    event_rules = (
        'alert http any any -> any any (msg:"smuggling behind a bad T-E"; '
        'flow:established,to_server; '
        'app-layer-event:http.invalid_transfer_encoding_value_in_request; '
        'http.method; content:"POST"; http.uri; content:"/tmui/"; startswith; '
        'sid:1017; rev:1;)\n'
        'alert http any any -> any any (msg:"bad T-E, event alone"; flow:to_server; '
        'app-layer-event:http.invalid_transfer_encoding_value_in_request; sid:1018; rev:1;)\n')
    body = b"5\r\nhello\r\n0\r\n\r\n"
    response = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    _write("app-layer-event-invalid-te",
           _tcp_session([(True, b"POST /tmui/login.jsp HTTP/1.1\r\nHost: bigip\r\n"
                                b"Transfer-Encoding: chunked, identity\r\n\r\n" + body),
                         (False, response)], sport=40030),
           event_rules, {1017: 1, 1018: 1},
           "app-layer-event: a request whose Transfer-Encoding is not exactly chunked")
    _write("app-layer-event-valid-te",
           _tcp_session([(True, b"POST /tmui/login.jsp HTTP/1.1\r\nHost: bigip\r\n"
                                b"Transfer-Encoding: Chunked\r\n\r\n" + body),
                         (False, response)], sport=40031),
           event_rules, {1017: 0, 1018: 0},
           "app-layer-event: the same request with a valid chunked body stays silent")
    # The second segment rewrites bytes the first one already delivered.
    client_seq = 1001
    frames = _tcp_session([], sport=40032)
    for seq, data in ((client_seq, b"GET /aaaa HTTP/1.1\r\n"), (client_seq + 5, b"bbbb HTTP/1.1\r\n")):
        frames.append(Ether() / IP(src=CLIENT, dst=SERVER)
                      / TCP(sport=40032, dport=80, flags="PA", seq=seq, ack=5001) / Raw(data))
    frames.append(Ether() / IP(src=SERVER, dst=CLIENT)
                  / TCP(sport=80, dport=40032, flags="A", seq=5001, ack=client_seq + 21))
    for index, frame in enumerate(frames):
        frame.time = 1700000010 + index * 0.01
    _write("stream-event-overlap", frames,
           'alert tcp any any -> any any (msg:"overlap, different data"; '
           'stream-event:reassembly_overlap_different_data; sid:1020; rev:1;)\n'
           'alert tcp any any -> any any (msg:"no gap here"; '
           'stream-event:reassembly_seq_gap; sid:1021; rev:1;)\n',
           {1020: 1, 1021: 0},
           "stream-event: a retransmission with different bytes over delivered data")
    whole = bytes(IP(src=CLIENT, dst=SERVER) / UDP(sport=5353, dport=9999) / Raw(b"x" * 40))
    truncated = Ether(type=0x0800) / Raw(whole[:30])   # the IPv4 total length says 68
    truncated.time = 1700000020
    intact = Ether() / IP(src=CLIENT, dst=SERVER) / UDP(sport=5354, dport=9999) / Raw(b"y" * 40)
    intact.time = 1700000021
    _write("decode-event-ipv4-trunc", [truncated, intact],
           'alert pkthdr any any -> any any (msg:"truncated IPv4"; '
           'decode-event:ipv4.trunc_pkt; sid:1022; rev:1;)\n'
           'alert pkthdr any any -> any any (msg:"not raised"; '
           'decode-event:ipv4.hlen_too_small; sid:1023; rev:1;)\n',
           {1022: 1, 1023: 0},
           "decode-event: a truncated IPv4 packet alerts although it cannot be decoded")


def stream_size_case() -> None:
    # ET HUNTING's raw-TCP PE download rule relies on stream_size: the server
    # sends an executable while the client has sent nothing (SYN only: 1).
    exe = b"MZ\x90\x00" + bytes(60)
    frames = (_tcp_session([(False, exe)], sport=40001)
              + _tcp_session([(True, b"GET /x.exe\r\n"), (False, exe)], sport=40002, start=1.0))
    _write("stream-size", frames,
           'alert tcp any any -> any any (msg:"exe, client silent"; flow:established,to_client; '
           'stream_size:client,<,5; content:"MZ"; startswith; sid:1007; rev:1;)\n'
           'alert tcp any any -> any any (msg:"server past 100"; flow:to_client; '
           'stream_size:server,>,100; content:"MZ"; sid:1008; rev:1;)\n'
           'alert tcp any any -> any any (msg:"server used 65"; flow:to_client; '
           'stream_size:server,=,65; content:"MZ"; sid:1009; rev:1;)\n',
           {1007: 1, 1008: 0, 1009: 2},
           "stream_size counts sequence space as Suricata does (SYN = 1, then bytes in order)")


def xbits_case() -> None:
    # A two-step exploit as ET writes them: step 1 on one connection marks
    # the attacking host, step 2 on another connection alerts only from that
    # host and only within the expiry.
    frames = (_tcp_session([(True, b"STEP1 probe")], sport=40010)
              + _tcp_session([(True, b"STEP2 payload")], sport=40011, dport=8080, start=1.0)
              + _tcp_session([(True, b"STEP2 payload")], sport=40012, dport=8080, start=2.0,
                             client="192.0.2.99")
              + _tcp_session([(True, b"STEP2 payload")], sport=40013, dport=8080, start=100.0))
    _write("xbits", frames,
           'alert tcp any any -> any 80 (msg:"step 1"; flow:to_server; content:"STEP1"; '
           'xbits:set,ET.two_step,track ip_src,expire 60; noalert; sid:1010; rev:1;)\n'
           'alert tcp any any -> any 8080 (msg:"step 2 after step 1"; flow:to_server; '
           'content:"STEP2"; xbits:isset,ET.two_step,track ip_src; sid:1011; rev:1;)\n'
           'alert tcp any any -> any 8080 (msg:"step 2 alone"; flow:to_server; '
           'content:"STEP2"; xbits:isnotset,ET.two_step,track ip_src; sid:1012; rev:1;)\n',
           {1010: 0, 1011: 1, 1012: 2},
           "xbits across connections: per source host, with expiry")


def flowint_case() -> None:
    # A counter per flow: the third request for a DLL on one connection alerts.
    frames = _tcp_session([(True, b"GET /a.dll HTTP/1.1\r\n\r\n"),
                           (True, b"GET /b.dll HTTP/1.1\r\n\r\n"),
                           (True, b"GET /c.dll HTTP/1.1\r\n\r\n")], sport=40020)
    _write("flowint", frames,
           'alert tcp any any -> any 80 (msg:"count"; flow:to_server; content:".dll"; '
           'flowint:dll,+,1; noalert; sid:1013; rev:1;)\n'
           'alert tcp any any -> any 80 (msg:"third dll"; flow:to_server; content:".dll"; '
           'flowint:dll,>=,3; sid:1014; rev:1;)\n'
           'alert tcp any any -> any 80 (msg:"first dll"; flow:to_server; content:".dll"; '
           'flowint:dll,==,1; sid:1015; rev:1;)\n'
           'alert tcp any any -> any 80 (msg:"never counted"; flow:to_server; content:"GET"; '
           'flowint:other,isset; sid:1016; rev:1;)\n',
           {1013: 0, 1014: 1, 1015: 1, 1016: 0},
           "flowint: per-flow counter set by one rule, compared by others")


if __name__ == "__main__":
    main()
