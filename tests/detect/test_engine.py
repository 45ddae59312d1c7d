"""DetectEngine end to end on hand-made packets mirroring suricata-verify cases."""
from __future__ import annotations

from ips.config import Config
from ips.detect.check import main as check_main
from tests.detect.factories import FakeFlow, FakeTx, alerting, decoded, engine, loaded, packet, sids


def test_load_report_counts_and_reasons():
    eng, report = engine('alert tcp any any -> any any (content:"a"; sid:1;)\n'
                         '# comment\n'
                         'alert tcp any any -> any any (ftpbounce; sid:2;)\n'
                         'alert tcp any any -> any any (content:"a" sid:3)\n'
                         'alert tcp any any -> any any (content:"b"; \\\n sid:4;)\n')
    assert report.loaded == 2
    assert report.by_reason() == {"unsupported-keyword": 1}
    assert report.skipped[0][1:] == (3, 2, "unsupported-keyword", "ftpbounce")
    assert report.errors[0][1] == 4


def test_detect_flowbits_case():
    rules = '\n'.join([
        'alert ip any any -> any any (msg:"s"; flowbits:set,fb1; sid:1;)',
        'alert ip any any -> any any (msg:"s"; flowbits:set,fb2; sid:2;)',
        'alert ip any any -> any any (flowbits:isset,fb3|fb4; sid:3;)',
        'alert ip any any -> any any (flowbits:isset,fb1|fb5; sid:5;)',
        'alert ip any any -> any any (flowbits:isnotset, fb1|fb2 ; sid:6;)',
        'alert ip any any -> any any (flowbits:unset,fb1; sid:7;)',
        'alert ip any any -> any any (flowbits:noalert; flowbits:isnotset,fb1; flowbits:set,fb1; content:"GET "; sid:8;)',
        'alert ip any any -> any any (flowbits:isset,fb1; sid:9;)',
    ])
    eng, report = engine(rules)
    assert report.loaded == 8
    flow = FakeFlow()
    matches = eng.inspect(packet(b"GET / HTTP/1.0\r\n"), flow, None, [])
    # Setters run first, so isset readers see bits set by this very packet.
    assert sids(matches) == [1, 2, 5, 7, 8, 9]
    assert [m.noalert for m in matches if m.rule.sid == 8] == [True]
    assert 3 not in sids(matches) and 6 not in sids(matches)


def test_flowbit_oring_and_tx_once_per_transaction():
    rules = '\n'.join([
        'alert http any any -> any any (content:"testmyids.com";http_header;flowbits:set,fb1;noalert;sid:1;)',
        'alert http any any -> any any (http.stat_code;content:"200";flowbits:isset,fb4|fb2|fb1;sid:4;)',
        'alert http any any -> any any (http.stat_code;content:"200";flowbits:isset,fb2|fb3|fb4;sid:5;)',
    ])
    eng, _ = engine(rules)
    flow = FakeFlow(app_proto="http")
    request = FakeTx("http", 0, True, {"http.header": b"Host: testmyids.com\r\n"})
    assert sids(eng.inspect(packet(b"GET"), flow, None, [request])) == [1]
    response = FakeTx("http", 0, False, {"http.stat_code": b"200"})
    reply = packet(b"HTTP/1.1 200", to_server=False, src="198.51.100.9", dst="192.168.1.2")
    assert sids(eng.inspect(reply, flow, None, [response])) == [4]
    assert eng.inspect(reply, flow, None, [response]) == []       # once per (rule, tx)


def test_threshold_limit_by_rule_bug_4503():
    eng, _ = engine('alert ip any any -> 8.8.8.8 any (threshold: type limit, track by_rule, count 5, '
                    'seconds 300; sid:1;)\n')
    fired = [len(alerting(eng.inspect(packet(b"", proto=17, dst="8.8.8.8", ts=float(i)), None, None, [])))
             for i in range(8)]
    assert fired == [1, 1, 1, 1, 1, 0, 0, 0]
    assert alerting(eng.inspect(packet(b"", proto=17, dst="8.8.8.8", ts=400.0), None, None, [])) == [1]


def test_threshold_modes_and_detection_filter():
    eng, _ = engine('alert tcp any any -> any any (content:"x"; threshold:type threshold, track by_src, count 3, seconds 60; sid:1;)\n'
                    'alert tcp any any -> any any (content:"x"; threshold:type both, track by_src, count 2, seconds 60; sid:2;)\n'
                    'alert tcp any any -> any any (content:"x"; detection_filter:track by_flow, count 2, seconds 60; sid:3;)\n')
    flow = FakeFlow()
    matched = [eng.inspect(packet(b"x", ts=float(i)), flow, None, []) for i in range(6)]
    assert [alerting(m) for m in matched] == [[], [2], [1, 3], [3], [3], [1, 3]]
    # "both" acts from its count on, alerting once; threshold and
    # detection_filter act only when they alert.
    assert [sids(m) for m in matched] == [[], [2], [1, 2, 3], [2, 3], [2, 3], [1, 2, 3]]


def test_a_thresholded_drop_rule_keeps_dropping():
    # As Suricata (DetectThresholdTestSig7/8/11): limit caps the alerts,
    # not the action; an IPS that let the 2nd exploit through would be wrong.
    from ips.config import Config
    from ips.verdict import decide
    from ips.packet import DROP
    eng, _ = engine('drop tcp any any -> any 80 (content:"x"; threshold:type limit, track by_src, '
                    'count 1, seconds 300; sid:10;)\n')
    verdicts, alerts = [], []
    for i in range(4):
        pkt = packet(b"x", ts=float(i))
        matches = eng.inspect(pkt, FakeFlow(), None, [])
        alerts.append(alerting(matches))
        verdicts.append(decide(pkt, None, matches, Config()))
    assert alerts == [[10], [], [], []] and verdicts == [DROP] * 4


def test_ip_version_protocols():
    # Suricata's ipv4/ip4/ipv6/ip6 header protocols: any transport over that IP version.
    eng, report = engine('alert ipv4 any any -> any any (content:"x"; sid:1;)\n'
                         'alert ip4 any any -> any any (content:"x"; sid:2;)\n'
                         'alert ipv6 any any -> any any (content:"x"; sid:3;)\n'
                         'alert ip6 any any -> any any (content:"x"; sid:4;)\n')
    assert report.loaded == 4
    assert sids(eng.inspect(packet(b"x"), None, None, [])) == [1, 2]
    assert sids(eng.inspect(packet(b"x", src="2001:db8::1", dst="2001:db8::2", proto=17),
                            None, None, [])) == [3, 4]


def test_dsize_values_case():
    eng, _ = engine('\n'.join([
        'alert tcp any any -> any any (dsize:10; sid:1;)', 'alert tcp any any -> any any (dsize:<10; sid:2;)',
        'alert tcp any any -> any any (dsize:<=10; sid:3;)', 'alert tcp any any -> any any (dsize:>8; sid:4;)',
        'alert tcp any any -> any any (dsize:>=10; sid:5;)', 'alert tcp any any -> any any (dsize:8<>20; sid:6;)',
        'alert tcp any any -> any any (dsize:!9; sid:7;)']))
    assert sids(eng.inspect(packet(b"0123456789"), None, None, [])) == [1, 3, 4, 5, 6, 7]
    assert sids(eng.inspect(packet(b""), None, None, [])) == [2, 3]


def test_itype_case():
    eng, _ = engine('alert icmp any any -> any any (itype:8; sid:1;)\n'
                    'alert icmp any any -> any any (itype:<15; sid:2;)\n'
                    'alert icmp any any -> any any (itype:>7; sid:3;)\n'
                    'alert icmp any any -> any any (itype:7<>20; sid:4;)\n')
    assert sids(eng.inspect(packet(b"", proto=1, icmp_type=8, icmp_code=0), None, None, [])) == [1, 2, 3, 4]
    assert sids(eng.inspect(packet(b"", proto=1, icmp_type=0, icmp_code=0), None, None, [])) == [2]


def test_flow_keyword_needs_established_flow():
    eng, _ = engine('alert tcp any any -> any 1212 (content:"MATCH?"; flow:to_server,established; sid:1;)\n')
    pkt = packet(b"MATCH?", dport=1212)
    assert eng.inspect(pkt, FakeFlow(established=False), None, []) == []
    assert eng.inspect(pkt, None, None, []) == []
    assert sids(eng.inspect(pkt, FakeFlow(), None, [])) == [1]


def test_stream_match_spanning_segments_reported_once():
    eng, _ = engine('alert tcp any any -> any any (content:"uid=0|28|root|29|"; sid:1;)\n')
    flow = FakeFlow()
    first = eng.inspect(packet(b"uid=0("), flow, (b"xxuid=0(", 2), [])
    assert first == []
    second = eng.inspect(packet(b"root)"), flow, (b"xxuid=0(root)", 8), [])
    assert [(m.rule.sid, m.from_stream) for m in second] == [(1, True)]
    # Later data that does not complete a new match reports nothing again.
    assert eng.inspect(packet(b"zz"), flow, (b"xxuid=0(root)zz", 13), []) == []


def test_packet_rules_match_payload_without_stream_and_dsize_ignores_stream():
    eng, _ = engine('alert tcp any any -> any any (content:"AAA"; endswith; sid:1;)\n'
                    'alert tcp any any -> any any (content:"BB"; dsize:2; sid:2;)\n')
    assert sids(eng.inspect(packet(b"xAAA"), FakeFlow(), None, [])) == [1]
    assert sids(eng.inspect(packet(b"BB"), FakeFlow(), (b"qqBB", 2), [])) == [2]


def test_pass_rule_stops_packet_and_flow():
    eng, _ = engine('pass tcp any any -> any any (content:"ok"; sid:1;)\n'
                    'alert tcp any any -> any any (content:"o"; sid:2;)\n')
    flow = FakeFlow()
    assert sids(eng.inspect(packet(b"ok"), flow, None, [])) == [1]
    assert eng.inspect(packet(b"o"), flow, None, []) == []


def test_packet_alert_max_and_bidirectional_header():
    config = Config()
    config.packet_alert_max = 2
    rules = ''.join(f'alert tcp any any <> 192.168.1.2 any (content:"x"; sid:{i};)\n' for i in range(1, 6))
    eng, _ = engine(rules, config)
    reply = packet(b"x", src="192.168.1.2", dst="198.51.100.9")
    assert len(eng.inspect(reply, None, None, [])) == 2
    assert eng.stats["alerts_capped"] == 3


def test_dns_query_with_dotprefix_transform():
    eng, _ = engine('alert dns any any -> any any (dns.query; dotprefix; content:".evil.com"; nocase; endswith; sid:1;)\n')
    flow = FakeFlow(app_proto="dns", proto=17)
    tx = FakeTx("dns", 0, True, {"dns.query": [b"evil.com"]})
    assert sids(eng.inspect(packet(b"", proto=17, dport=53), flow, None, [tx])) == [1]
    tx = FakeTx("dns", 1, True, {"dns.query": [b"notevil.com"]})
    assert eng.inspect(packet(b"", proto=17, dport=53), flow, None, [tx]) == []


def test_ip_list_rules_are_bucketed_by_address():
    eng, report = engine('alert ip [203.0.113.5,198.51.100.0/24] any -> $HOME_NET any (sid:1;)\n')
    assert report.loaded == 1 and eng.address_index
    assert sids(eng.inspect(packet(b"", src="198.51.100.77", dst="192.168.1.1"), None, None, [])) == [1]
    assert eng.inspect(packet(b"", src="203.0.113.6", dst="192.168.1.1"), None, None, []) == []


def test_port_confined_patterns_are_scanned_on_their_ports_only(tmp_path):
    rules = ('alert tcp any any -> any 135 (content:"|05|"; sid:1;)\n'
             'alert tcp any 3389 -> any any (content:"|03|"; sid:2;)\n'
             'alert tcp any any -> any [80,8080] (content:"|05|"; sid:3;)\n'
             'alert tcp any any -> any any (content:"|05|"; sid:4;)\n'
             'alert udp any any -> any 135 (content:"|05|"; sid:5;)\n'
             'alert tcp any any <> any 135 (content:"|03|"; sid:6;)\n')
    for cache_dir in (None, str(tmp_path), str(tmp_path)):   # built, stored, loaded
        eng, report = engine(rules, cache_dir=cache_dir)
        assert report.loaded == 6
        assert ("tcp", "ts", "dport", 135) in eng.packet_matchers
        assert ("tcp", "ts", "sport", 3389) in eng.packet_matchers
        payload = b"\x05\x03"
        assert sids(eng.inspect(packet(payload, dport=135), None, None, [])) == [1, 4, 6]
        assert sids(eng.inspect(packet(payload, dport=8080), None, None, [])) == [3, 4]
        assert sids(eng.inspect(packet(payload, sport=3389, dport=80), None, None, [])) == [2, 3, 4]
        assert sids(eng.inspect(packet(payload, sport=135, dport=40000), None, None, [])) == [4, 6]
        assert sids(eng.inspect(packet(payload, proto=17, dport=135), None, None, [])) == [5]
        # Per flow direction the scanners are chosen once, for its ports.
        flow = FakeFlow()
        assert sids(eng.inspect(packet(payload, dport=135), flow, None, [])) == [1, 4, 6]
        assert sids(eng.inspect(packet(payload, dport=135), flow, None, [])) == [1, 4, 6]


def test_cache_roundtrip(tmp_path):
    rules = 'alert tcp any any -> any any (content:"abc"; pcre:"/c$/"; sid:1;)\n'
    engine(rules, cache_dir=str(tmp_path))
    assert list(tmp_path.glob("detect-*.pickle"))
    cached, report = engine(rules, cache_dir=str(tmp_path))
    assert report.loaded == 1 and cached.rules == [None]
    assert sids(cached.inspect(packet(b"xxabc"), None, None, [])) == [1]


def test_cached_rule_its_header_rules_out_is_not_parsed(tmp_path):
    rules = ('alert tcp 10.0.0.0/8 any -> any any (content:"abc"; sid:1;)\n'
             'alert tcp any any <> any any (flow:to_client; content:"abc"; sid:2;)\n'
             'alert tcp any any -> any any (content:"abc"; sid:3;)\n')
    engine(rules, cache_dir=str(tmp_path))
    cached, _ = engine(rules, cache_dir=str(tmp_path))
    assert sids(cached.inspect(packet(b"xxabc"), FakeFlow(), None, [])) == [3]
    # The header line alone rules sid 1 out; sid 2's header admits the
    # packet and only its options (flow:to_client) rule it out.
    assert [rule.sid if rule else None for rule in cached.rules] == [None, 2, 3]


def test_cache_entry_others_could_write_is_not_unpickled(tmp_path):
    import os
    rules = 'alert tcp any any -> any any (content:"abc"; sid:1;)\n'
    engine(rules, cache_dir=str(tmp_path))
    [entry] = tmp_path.glob("detect-*.pickle")
    assert entry.stat().st_mode & 0o077 == 0
    entry.chmod(0o666)                         # anyone could have replaced it
    loaded, _ = engine(rules, cache_dir=str(tmp_path))
    assert loaded.rules != [None]              # parsed again, not read from the cache
    entry.chmod(0o600)
    assert engine(rules, cache_dir=str(tmp_path))[0].rules == [None]
    if os.geteuid() == 0:
        os.chown(entry, 65534, 65534)          # someone else's file
        assert engine(rules, cache_dir=str(tmp_path))[0].rules != [None]
        os.chown(entry, 0, 0)
    moved = entry.rename(tmp_path / "elsewhere")
    entry.symlink_to(moved)                    # a link is not followed
    assert engine(rules, cache_dir=str(tmp_path))[0].rules != [None]


def test_byte_test_string_reads_numbers_as_strtoull_does():
    # ET Open's `byte_test:0,...,string,dec`: a number of any length; and a
    # bounded read stops at the first non-digit, as Suricata's strtoull does.
    eng, report = engine(
        'alert tcp any any -> any any (content:"Length: "; '
        'byte_test:0,>,1000,0,relative,string,dec; sid:1;)\n'
        'alert tcp any any -> any any (content:"Size="; '
        'byte_test:6,<,200,0,relative,string,dec; sid:2;)\n'
        'alert tcp any any -> any any (content:"Hex="; '
        'byte_test:4,=,31,0,relative,string,hex; sid:3;)\n')
    assert report.loaded == 3 and not report.skipped
    def hits(payload: bytes) -> list[int]:
        return sids(eng.inspect(packet(payload), None, None, []))
    assert hits(b"Length: 123456\r\n") == [1]
    assert hits(b"Length: 999\r\n") == []
    assert hits(b"Length: 99999999999999999999999\r\n") == []    # past 64 bits: no match
    assert hits(b"Length: x1\r\n") == []                          # no digit: no match
    assert hits(b"Size=150\r\nX") == [2]                          # stops at CR
    assert hits(b"Size= 42 \r\n") == [2]                            # leading blank skipped
    assert hits(b"Size=450\r\n") == []
    assert hits(b"Size=15") == []                                   # 6 bytes not there
    assert hits(b"Hex=0x1F") == [3] and hits(b"Hex=1fzz") == [3]
    assert hits(b"Length: " + b"0" * 100_000 + b"5000\r\n") == [1]   # zeros do not hide it
    # 100,000 digits: past 64 bits, no match, and no exception that would
    # cost the other rules this packet.
    both, _ = engine('alert tcp any any -> any any (content:"Length: "; '
                     'byte_test:0,>,1000,0,relative,string,dec; sid:1;)\n'
                     'alert tcp any any -> any any (content:"Length"; sid:5;)\n')
    assert sids(both.inspect(packet(b"Length: " + b"9" * 100_000), None, None, [])) == [5]
    assert not both.stats["inspect_errors"]


def test_tls_version_compares_the_announced_version():
    eng, report = engine('alert tls any any -> any any (msg:"1.2"; tls.version:1.2; sid:1;)\n'
                         'alert tls any any -> any any (msg:"1.3"; tls.version:1.3; sid:2;)\n'
                         'alert tls any any -> any any (msg:"raw"; tls.version:0x0302; sid:3;)\n')
    assert report.loaded == 3

    def hits(version: bytes) -> list[int]:
        tx = FakeTx("tls", 0, True, {"tls.version": version})
        return sids(eng.inspect(packet(b""), FakeFlow(app_proto="tls"), None, [tx]))
    assert hits(b"TLS 1.2") == [1]
    assert hits(b"TLS 1.3") == [2]
    assert hits(b"0x7f1c") == [2]        # a TLS 1.3 draft counts as 1.3
    assert hits(b"TLS 1.1") == [3]
    assert hits(b"TLSv1") == []
    assert engine('alert tls any any -> any any (tls.version:2.0; sid:4;)\n')[1].errors


def test_base64_decode_and_base64_data():
    import base64
    eng, report = engine(
        'alert tcp any any -> any any (msg:"decoded XXE"; content:"<m:Data>"; '
        'base64_decode:bytes 300, offset 0, relative; base64_data; content:"<!DOCTYPE"; '
        'content:"SYSTEM"; distance:0; sid:1;)\n'
        'alert tcp any any -> any any (msg:"anything decodes"; content:"T:"; '
        'base64_decode:relative; sid:2;)\n')
    assert report.loaded == 2 and not report.errors

    def hits(payload: bytes) -> list[int]:
        return sids(eng.inspect(packet(payload), None, None, []))
    evil = base64.b64encode(b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>')
    assert hits(b"POST <m:Data>" + evil + b"</m:Data>") == [1]
    assert hits(b"POST <m:Data>" + base64.b64encode(b"<!DOCTYPE html>") + b"<") == []
    # the first occurrence decodes to something else: the next one is tried
    assert hits(b"<m:Data>aGVsbG8=</m:Data><m:Data>" + evil) == [1]
    # unpadded last group, and nothing decodable at all
    assert hits(b"T:aGk") == [2] and hits(b"T:***") == []
    assert engine('alert tcp any any -> any any (content:"a"; base64_data; content:"b"; sid:3;)\n')[1].errors


def test_a_rule_that_fails_does_not_blind_the_others():
    from ips.detect.parser import PAYLOAD

    class Broken:
        relative = relative_next = False

        def positions(self, inspection, prev):
            raise ZeroDivisionError("a bug in one keyword")
            yield prev

    eng, _ = engine('alert tcp any any -> any any (content:"abc"; sid:1;)\n'
                    'alert tcp any any -> any any (content:"abc"; sid:2;)\n'
                    'alert http any any -> any any (http.uri; content:"/x"; sid:3;)\n'
                    'alert http any any -> any any (http.uri; content:"/x"; sid:4;)\n')
    for index in range(4):
        rule = eng.rule(index)
        if rule.sid in (1, 3):
            name = PAYLOAD if rule.sid == 1 else "http.uri"
            rule.buffers[name] = [Broken()] + rule.buffers[name]
    assert sids(eng.inspect(packet(b"xabcx"), None, None, [])) == [2]
    tx = FakeTx("http", 0, True, {"http.uri": b"/x"})
    assert sids(eng.inspect(packet(b""), FakeFlow(app_proto="http"), None, [tx])) == [4]
    assert eng.stats["verify_errors"] == 2 and not eng.stats["inspect_errors"]


def test_malformed_packet_does_not_raise():
    eng, _ = engine('alert tcp any any -> any any (content:"a"; sid:1;)\n')
    pkt = packet(b"a")
    pkt.src = "not-an-address"
    pkt.payload = None
    assert eng.inspect(pkt, None, None, None) == []


def test_check_cli(tmp_path, capsys):
    good = tmp_path / "a.rules"
    good.write_text('alert tcp any any -> any any (content:"a"; sid:1;)\n'
                    'alert tcp any any -> any any (asn1:oversize_length 100; sid:2;)\n')
    assert check_main(["-S", str(good)]) == 0
    out = capsys.readouterr().out
    assert "unsupported-keyword: asn1" in out and out.strip().endswith("1 loaded, 1 skipped")
    bad = tmp_path / "b.rules"
    bad.write_text("alert nonsense\n")
    assert check_main(["-S", str(good), "-S", str(bad)]) == 1


def test_tx_scan_cache_is_exact_and_bounded():
    from ips.detect import TX_SCAN_CACHE_BYTES
    eng, _ = engine(
        'alert http any any -> any any (msg:"uri"; http.uri; content:"/evil"; sid:1;)\n'
        'alert http any any -> any any (msg:"hdr"; http.request_header; content:"X-A: b"; sid:2;)\n')

    def inspect(uri: bytes, headers: list) -> list[int]:
        tx = FakeTx("http", 0, True, {"http.uri": uri, "http.request_header": headers})
        return sids(eng.inspect(packet(b""), FakeFlow(app_proto="http"), None, [tx]))

    for _ in range(3):                                   # cached after the first
        assert inspect(b"/index.html", [b"Host: x"]) == []
    assert inspect(b"/evil", [b"Host: x"]) == [1]
    assert inspect(b"/evil", [b"Host: x"]) == [1]       # a cached hit still alerts
    # List elements are inspected one by one: the same bytes split
    # differently are another value, in either order of first sight.
    assert inspect(b"/", [b"X-A:", b" b"]) == []
    assert inspect(b"/", [b"X-A: b"]) == [2]
    assert inspect(b"/a", [b"X-A: b"]) == [2]
    assert inspect(b"/a", [b"X-A:", b" b"]) == []
    # Unique values (an attacker's, or a busy LAN's) keep it within its bound.
    for i in range(20_000):
        inspect(b"/u%05d" % i + b"x" * 300, [b"Host: %d" % i])
        assert eng._tx_scan_cached_bytes <= TX_SCAN_CACHE_BYTES
    assert inspect(b"/evil", [b"Host: x"]) == [1]
    assert inspect(b"/x" * 2000 + b"/evil", [b"Host: x"]) == [1]   # too long to cache


_HOSTILE_RULES = (
    'alert tcp any any -> any any (content:"L:"; byte_test:0,>,5,0,relative,string,dec; sid:11;)\n'
    'alert tcp any any -> any any (content:"H:"; byte_jump:4,0,relative,string,hex; content:"X"; '
    'within:4; sid:12;)\n'
    'alert tcp any any -> any any (content:"B:"; base64_decode:bytes 64, offset 1, relative; '
    'base64_data; content:"A"; sid:13;)\n'
    'alert tcp any any -> any any (content:"S:"; stream_size:either,>,0; '
    'xbits:set,h,track ip_pair,expire 5; flowint:n,+,1; sid:14;)\n'
    'alert tcp any any -> any any (content:"T:"; xbits:isset,h,track ip_pair; flowint:n,>=,2; '
    'sid:15;)\n')


def _hostile_payload():
    from hypothesis import strategies as st
    parts = st.sampled_from([b"L:", b"H:", b"B:", b"S:", b"T:", b"0", b"77", b"9" * 40, b"7" * 4400, b"0x",
                             b"QUFB", b"=", b"\x00", b" ", b"\xff", b"-", b"+"])
    return st.lists(st.one_of(parts, st.binary(max_size=8)), max_size=40).map(b"".join)


def test_new_keywords_never_raise_on_hostile_payloads():
    from hypothesis import example, given, settings
    from ips.stream import FlowStream
    eng, report = engine(_HOSTILE_RULES)
    assert report.loaded == 5
    flow = FakeFlow()
    flow.stream = FlowStream()
    flow.tcp_flags_ts = flow.tcp_flags_tc = 0x12
    seen: set[int] = set()

    @settings(max_examples=300, deadline=None)
    @given(_hostile_payload())
    @example(b"L:77\r\n")            # each rule matched at least once, for sure
    @example(b"B: QUFB")
    @example(b"S:x T:x")
    def check(payload):
        pkt = packet(payload)
        pkt.flow = flow
        seen.update(sids(eng.inspect(pkt, flow, None, [])))

    check()
    assert not eng.stats["inspect_errors"] and not eng.stats["verify_errors"]
    assert {11, 13, 14, 15} <= seen    # the keywords were exercised, not just skipped


def test_host_bit_set_on_the_destination_is_seen_on_that_host_as_source():
    # Suricata's host bits live on the host: set with track ip_dst (the
    # client a reply went to), checked with track ip_src on its next flow.
    eng, _ = engine('alert tcp any any -> any any (content:"SETBIT"; xbits:set,infected,track ip_dst; '
                    'noalert; sid:1;)\n'
                    'drop tcp any any -> any any (content:"BEACON"; xbits:isset,infected,track ip_src; '
                    'sid:2;)\n')
    reply = packet(b"SETBIT", src="198.51.100.20", dst="192.0.2.10", sport=80, dport=40000)
    assert alerting(eng.inspect(reply, FakeFlow(), None, [])) == []
    beacon = packet(b"BEACON", src="192.0.2.10", dst="198.51.100.30", sport=40001)
    assert sids(eng.inspect(beacon, FakeFlow(), None, [])) == [2]


def test_rules_of_equal_rank_run_in_sid_order():
    # Suricata breaks ties by sid: unset (sid 1) runs before set (sid 2),
    # whatever the file order, so the bit ends up set.
    eng, _ = engine('alert tcp any any -> any any (content:"AAAA"; flowbits:set,x; noalert; sid:2;)\n'
                    'alert tcp any any -> any any (content:"AAAA"; flowbits:unset,x; noalert; sid:1;)\n'
                    'alert tcp any any -> any any (content:"BBBB"; flowbits:isset,x; sid:3;)\n')
    flow = FakeFlow()
    eng.inspect(packet(b"AAAA"), flow, None, [])
    assert sids(eng.inspect(packet(b"BBBB"), flow, None, [])) == [3]


def test_flowint_arithmetic_is_suricatas_unsigned_32_bit():
    eng, _ = engine('alert tcp any any -> any any (content:"dec"; flowint:c,-,1; noalert; sid:1;)\n'
                    'alert tcp any any -> any any (content:"chk"; flowint:c,isset; sid:2;)\n'
                    'alert tcp any any -> any any (content:"one"; flowint:d,=,1; noalert; sid:3;)\n'
                    'alert tcp any any -> any any (content:"sub"; flowint:d,-,2; noalert; sid:4;)\n'
                    'alert tcp any any -> any any (content:"big"; flowint:d,>,1000; sid:5;)\n'
                    'alert tcp any any -> any any (content:"cmp"; flowint:d,>,unset_var; sid:6;)\n')
    flow = FakeFlow()

    def seen(data):
        pkt = packet(data)
        pkt.flow = flow
        return alerting(eng.inspect(pkt, flow, None, []))
    assert seen(b"dec") == [] and seen(b"chk") == []     # '-' on an unset variable leaves it unset
    assert seen(b"one") == [] and seen(b"sub") == [] and seen(b"big") == [5]   # 1 - 2 wraps
    assert seen(b"cmp") == [6]                           # an unset target reads as 0


def test_ip_only_rules_are_inspected_once_per_flow_direction():
    # Suricata's IP-only rules (addresses alone decide) run on the first
    # packet of each direction; a rule with a packet keyword runs on each.
    eng, _ = engine('alert ip any any -> any any (msg:"any"; sid:1;)\n'
                    'alert ip 192.0.2.10 any -> any any (msg:"client"; flowbits:set,seen; sid:2;)\n'
                    'alert tcp any any -> any any (msg:"ports given"; sid:3;)\n'
                    'alert ip any any -> any any (msg:"per packet"; ttl:<100; sid:4;)\n')
    flow = FakeFlow()
    fired = []
    for i in range(3):
        fired.append(sids(eng.inspect(packet(b"x", src="192.0.2.10", ts=float(i)), flow, None, [])))
    for i in range(2):
        back = packet(b"y", src="198.51.100.9", dst="192.0.2.10", sport=80, dport=40000,
                      to_server=False, ts=3.0 + i)
        fired.append(sids(eng.inspect(back, flow, None, [])))
    assert fired == [[1, 2, 3, 4], [4], [4], [1, 3, 4], [4]]


def test_byte_jump_of_zero_bytes_moves_by_post_offset_alone():
    # suricata-verify bug-4623: byte_jump:0,0,relative,post_offset -7 reads
    # nothing and steps back 7 bytes from the end of the content.
    eng = loaded(
        'alert tcp any any -> any any (msg:"a"; content:"|3a 01 e8 ed 0f|"; '
        'byte_jump:0,0,relative,post_offset -7; pcre:"/^\\x7c\\xe0\\x3a\\x01\\xe8\\xed\\x0f\\x54/R"; sid:1;)',
        'alert tcp any any -> any any (msg:"b"; content:"|01 e8 ed 0f 54|"; '
        'byte_jump:0,0,relative,post_offset -7; pcre:"/^\\xe0\\x3a\\x01\\xe8\\xed\\x0f\\x54/R"; sid:3;)',
        'alert tcp any any -> any any (msg:"c"; content:"|01 e8 ed 0f 54|"; '
        'byte_jump:0,0,relative,post_offset -6; pcre:"/^\\xe0/R"; sid:4;)')
    payload = b"\x00" * 20 + bytes.fromhex("7ce03a01e8ed0f54")
    assert sids(eng.inspect(packet(payload), None, None, [])) == [1, 3]


def test_threshold_backoff_alerts_at_count_times_powers_of_the_multiplier():
    # Suricata 8's thresholding page: count 1, multiplier 10 alerts on
    # matches 1, 10, 100; count 5, multiplier 5 on 5, 25, 125.
    eng = loaded(
        'alert tcp any any -> any any (msg:"a"; content:"x"; '
        'threshold: type backoff, track by_flow, count 1, multiplier 10; sid:1;)',
        'drop tcp any any -> any any (msg:"b"; content:"x"; '
        'threshold: type backoff, track by_flow, count 5, multiplier 5; sid:2;)')
    flow = FakeFlow()
    alerted = {1: [], 2: []}
    acted_first = None
    for number in range(1, 131):
        matches = eng.inspect(packet(b"x", ts=1.0 + number), flow, None, [])
        for match in matches:
            if not match.noalert:
                alerted[match.rule.sid].append(number)
        if number == 1:
            acted_first = [m.rule.sid for m in matches]
    assert alerted == {1: [1, 10, 100], 2: [5, 25, 125]}
    # sid 2's first match neither alerts nor acts (its count is over 1)
    assert acted_first == [1]
    _, bad = engine('alert tcp any any -> any any (msg:"c"; content:"x"; '
                    'threshold: type backoff, track by_src, count 1, multiplier 10; sid:3;)')
    assert bad.errors


def test_app_layer_protocol_does_not_match_while_the_protocol_is_unknown():
    # Suricata compares a direction's protocol only once it is known (or
    # detection failed): `!tls` on a flow still being detected is no match
    # (suricata-verify bug-4394, app-layer-protocol-unknown).
    eng = loaded(
        'alert tcp any any -> any any (msg:"a"; app-layer-protocol:!tls; content:"ls"; sid:1;)',
        'alert tcp any any -> any any (msg:"b"; app-layer-protocol:failed; content:"ls"; sid:2;)',
        'alert tcp any any -> any any (msg:"c"; app-layer-protocol:!failed; content:"ls"; sid:3;)',
        'alert tcp any any -> any any (msg:"d"; app-layer-protocol:unknown; content:"ls"; sid:4;)')
    detecting = FakeFlow()
    assert sids(eng.inspect(packet(b"ls\n"), detecting, None, [])) == [4]
    failed = FakeFlow()
    failed.app = {"failed": {True: True, False: False}}
    assert sids(eng.inspect(packet(b"ls\n"), failed, None, [])) == [1, 2]
    # the other direction is still being detected
    reply = packet(b"ls\n", to_server=False, src="198.51.100.9", dst="192.168.1.2")
    assert sids(eng.inspect(reply, failed, None, [])) == [4]
    http = FakeFlow(app_proto="http")
    assert sids(eng.inspect(packet(b"ls\n"), http, None, [])) == [1, 3]
def _syn(mss: int, sport: int = 5000, payload: bytes = b"", flags: str = "S"):
    from scapy.all import IP, TCP, Ether, Raw
    return decoded(Ether(src="02:00:00:00:00:0a", dst="02:00:00:00:00:14")
                   / IP(src="192.0.2.1", dst="198.51.100.1")
                   / TCP(sport=sport, dport=80, flags=flags, options=[("NOP", None), ("MSS", mss)])
                   / Raw(payload))


def test_packet_header_buffers_are_prefiltered_and_matched_on_every_packet(tmp_path):
    # suricata-verify tcp-hdr-keyword's rule, and one with no pattern at all.
    rules = ('alert tcp any any -> any any (tcp.hdr; content:"|02 04|"; offset:20; '
             'byte_test:2,<,536,0,big,relative; sid:1;)\n'
             'alert ip any any -> any any (ipv4.hdr; byte_test:1,=,6,9; sid:2;)\n'
             'alert udp any any -> any any (udp.hdr; content:"|13 88|"; depth:2; sid:3;)\n')
    eng, report = engine(rules, cache_dir=str(tmp_path))
    assert report.loaded == 3
    assert ("tcp", "ts", "header", "tcp.hdr") in eng.packet_matchers
    cached, _ = engine(rules, cache_dir=str(tmp_path))
    assert cached.rules == [None] * 3                      # loaded from the cache, unparsed
    for each, flow in ((eng, None), (eng, FakeFlow()), (cached, None), (cached, FakeFlow())):
        assert sids(each.inspect(_syn(8), flow, None, [])) == [1, 2]     # a SYN: no payload
        assert sids(each.inspect(_syn(536), flow, None, [])) == [2]      # '<536' excludes 536
        assert sids(each.inspect(_syn(8, flags="A"), flow, (b"", 0), [])) == [1, 2]
    from scapy.all import IP, UDP, Ether, Raw
    udp = decoded(Ether(src="02:00:00:00:00:0a", dst="02:00:00:00:00:14")
                  / IP(src="192.0.2.1", dst="198.51.100.1") / UDP(sport=5000, dport=53)
                  / Raw(b"\x02\x04\x00\x08" * 8))
    assert sids(eng.inspect(udp, None, None, [])) == [3]
    for each in (eng, cached):
        assert not each.stats["inspect_errors"] and not each.stats["verify_errors"]


def test_a_header_buffer_rule_inspects_the_packet_payload_not_the_stream():
    eng, _ = engine('alert tcp any any -> any any (tcp.hdr; content:"|18|"; offset:13; depth:1; '
                    'pkt_data; content:"abc"; sid:1;)\n')
    flow = FakeFlow()
    # The stream window holds "abc" across two packets; no single packet does.
    assert eng.inspect(_syn(8, payload=b"bc", flags="PA"), flow, (b"xabc", 2), []) == []
    assert sids(eng.inspect(_syn(8, payload=b"abc", flags="PA"), flow, (b"xabcabc", 4), [])) == [1]
    assert eng.inspect(_syn(8, payload=b"abc", flags="A"), flow, None, []) == []   # PSH unset


def test_byte_math_across_header_buffers_bytemath_01():
    # suricata-verify byte-math-01 / detect-bytemath-01 / detect-bytemath-04
    eng, report = engine(
        'alert tcp any any -> any any (ipv4.hdr; byte_math:bytes 1, offset 1, oper <<, rvalue 2, '
        'result result_val, relative; tcp.hdr; byte_test: 1, =, 0x88, 1, relative; sid:1;)\n'
        'alert tcp any any -> any any (ipv4.hdr; byte_extract: 1, 0, extracted_val, relative; '
        'byte_math: bytes 1, offset 1, oper +, rvalue extracted_val, result var; '
        'byte_test: 2, <, var, 2; sid:4;)\n'
        'alert tcp any any -> any any (ipv4.hdr; byte_extract: 1, 0, extracted_val, relative; '
        'byte_math: bytes 1, offset 1, oper +, rvalue extracted_val, result var; '
        'byte_test: 2, =, var, 2; sid:5;)\n'
        # a header buffer's variable, read by the payload's keywords
        'alert tcp any any -> any any (tcp.hdr; byte_math:bytes 1, offset 12, oper >>, rvalue 4, '
        'result words; pkt_data; byte_test:1,=,words,0; sid:6;)\n')
    assert report.loaded == 4
    assert sids(eng.inspect(_syn(8, sport=0x1388, payload=b"\x07"), None, None, [])) == [1, 4, 6]
    assert sids(eng.inspect(_syn(8, sport=0x1389), None, None, [])) == [4]


def test_header_buffers_and_byte_math_never_raise_on_random_packets():
    from hypothesis import given, settings, strategies as st
    from ips.decode import decode
    from ips.packet import LINKTYPE_RAW, Packet
    eng, _ = engine(
        'alert ip any any -> any any (ipv4.hdr; byte_math:bytes 4, offset 0, oper <<, rvalue 31, '
        'result r; byte_test:4,>,r,16; sid:1;)\n'
        'alert tcp any any -> any any (tcp.hdr; content:"|00|"; byte_math:bytes 2, offset 0, '
        'oper /, rvalue 0, result q, relative; sid:2;)\n'
        'alert ip any any -> any any (icmpv4.hdr; bsize:>8; sid:3;)\n'
        'alert ip any any -> any any (ipv6.hdr; content:"|06|"; offset:6; depth:1; sid:4;)\n')

    @settings(max_examples=300, deadline=None)
    @given(st.sampled_from([b"\x45\x00", b"\x46\x00", b"\x60\x00"]), st.binary(max_size=90))
    def check(start, rest):
        pkt = Packet(start + rest, linktype=LINKTYPE_RAW)
        if decode(pkt, False):
            eng.inspect(pkt, None, None, [])

    check()
    assert not eng.stats["inspect_errors"] and not eng.stats["verify_errors"]
