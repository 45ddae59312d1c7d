"""Rule language: header, options, refusals and syntax errors."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from ips.detect.parser import RuleError, parse_header, parse_rule, split_options
from ips.detect.variables import Variables

VARIABLES = Variables("[192.168.0.0/16,10.0.0.0/8]", "!$HOME_NET")
CLASSES = {"trojan-activity": ("A Network Trojan was detected", 1),
           "bad-unknown": ("Potentially Bad Traffic", 2)}


def parse(text: str):
    return parse_rule(text, VARIABLES, CLASSES)


def test_header_and_informational_options():
    rule = parse('drop http $HOME_NET any -> $EXTERNAL_NET $HTTP_PORTS (msg:"a\\;b"; '
                 'flow:established,to_server; http.uri; content:"/x"; classtype:trojan-activity; '
                 'metadata:created_at 2024_01_01, signature_severity Major; reference:url,x; '
                 'sid:5; rev:3; gid:1;)')
    assert (rule.action, rule.sid, rule.rev, rule.msg) == ("drop", 5, 3, "a;b")
    assert rule.priority == 1 and rule.category == "A Network Trojan was detected"
    assert rule.metadata == {"created_at": ["2024_01_01"], "signature_severity": ["Major"]}
    assert rule.app_proto == "http" and rule.flow_to_server is True
    assert rule.source.match(4, int.from_bytes(bytes([192, 168, 1, 1]), "big"))
    assert not rule.destination.match(4, int.from_bytes(bytes([10, 1, 1, 1]), "big"))
    assert rule.destination_ports.match(80) and not rule.destination_ports.match(81)


def test_header_alone_reads_what_the_full_parse_reads():
    text = ('alert http $HOME_NET any -> $EXTERNAL_NET $HTTP_PORTS (flow:to_server; '
            'http.uri; content:"/x"; sid:5;)')
    rule, header = parse(text), parse_header(text, VARIABLES)
    for name in header.__slots__:
        assert getattr(header, name) == getattr(rule, name), name
    assert header.flow_to_server is None and rule.flow_to_server is True   # an option
    with pytest.raises(RuleError):
        parse_header('alert tcp any any -> any (sid:1;)', VARIABLES)


def test_explicit_priority_beats_classtype():
    rule = parse('alert ip any any -> any any (classtype:bad-unknown; priority:4; sid:1;)')
    assert rule.priority == 4


def test_legacy_modifiers_move_content_to_buffers():
    rule = parse('alert tcp any any -> any any (content:"GET"; http_method; content:"/a"; '
                 'http_uri; content:"x"; sid:1;)')
    assert set(rule.buffers) == {"http.method", "http.uri", "payload"}
    assert rule.tx_buffers == ("http.method", "http.uri")


def _kinds(rule, buffer):
    return [type(m).__name__ for m in rule.buffers.get(buffer, ())]


def test_relative_byte_keywords_follow_the_previous_content_into_its_buffer():
    # Suricata: no sticky buffer active, a relative isdataat/byte_* goes to
    # the list of the last payload keyword, wherever a modifier moved it.
    rule = parse('alert tcp any any -> any any (uricontent:"a"; isdataat:!10,relative; '
                 'content:"b"; http_uri; byte_extract:1,0,n,relative; byte_test:1,=,1,0,relative; '
                 'byte_jump:1,0,relative; isdataat:3; sid:1;)')
    assert _kinds(rule, "http.uri") == ["Content", "IsDataAt", "Content", "ByteExtract",
                                        "ByteTest", "ByteJump"]
    assert _kinds(rule, "payload") == ["IsDataAt"]          # absolute: the payload
    sticky = parse('alert tcp any any -> any any (content:"a"; http.uri; isdataat:2; sid:1;)')
    assert _kinds(sticky, "http.uri") == ["IsDataAt"]
    assert _kinds(sticky, "payload") == ["Content"]


@pytest.mark.parametrize("options,detail", [
    ('content:"|ff|" content:"TEST";', "unescaped"),
    ('byte_jump:24,0,string,dec;', "1..23"),
    ('byte_jump:4,70000;', "offset outside"),
    ('byte_jump:1,0,from_beginning,from_end;', "from_beginning with from_end"),
    ('byte_extract:1,0,v,relative,relative;', "twice"),
    ('byte_extract:1,0,v,multiplier 0;', "multiplier"),
    ('byte_extract:1,0,v,align 3;', "align"),
    ('byte_extract:1,0,v,string,dec,big;', "endianness"),
    ('byte_extract:1,40000,v;', "offset outside"),
    ('http.host; content:"Cam.example";', "lowercase"),
    ('content:"cam"; http_host; nocase;', "lowercase"),
    ('content:"a"; content:"bcd"; within:2;', "within shorter"),
    ('content:"a"; content:"b"; distance:0; depth:4;', "depth/offset on one content"),
    ('content:"a"; content:"b"; offset:1; within:3;', "depth/offset on one content"),
    ('content:"a"; bsize:3;', "sticky buffer"),
    ('flow:to_client,to_server;', "conflicting flow direction"),
    ('flow:established,stateless;', "conflicting flow state"),
    ('flow:established; flow:to_server;', "flow given twice"),
    ('flags:;', "flags"),
    ('ttl:256;', "out of range"),
    ('icmp_id:70000;', "out of range"),
    ('ip_proto:999;', "out of range"),
    ('flowbits:noalert,x;', "noalert takes no name"),
    ('flowbits:isset,x; flowbits:isnotset,x;', "isset and isnotset"),
    ('flowint:myvar,=,9999999999;', "over 32 bits"),
    ('flowint:myvar,=,45targetvar;', "bad value"),
    ('flowint:657myvar,=,1;', "needs name"),
])
def test_byte_and_content_options_suricata_refuses(options, detail):
    with pytest.raises(RuleError, match=detail):
        parse(f'alert tcp any any -> any any ({options} sid:1;)')


def test_negated_tls_version():
    [check] = parse('alert tls any any -> any any (tls.version:!1.1; sid:1;)').buffers["tls.version"]
    assert check.negated and b"TLS 1.1" in check.values


def test_byte_extract_string_of_any_length_loads():
    rule = parse('alert tcp any any -> any any (byte_extract:0,0,n,string,dec; content:"x"; '
                 'offset:n; sid:1;)')
    assert rule.buffers["payload"]


def test_pcre_capture_targets_are_accepted_and_checked():
    rule = parse('alert tcp any any -> any any (pcre:"/id=([a-z0-9]+)/i, flow:id, alert:seen"; sid:1;)')
    [pcre] = rule.buffers["payload"]
    assert pcre.regex.search(b"ID=abc")
    with pytest.raises(RuleError, match="bad capture"):
        parse('alert tcp any any -> any any (pcre:"/id=([a-z]+)/, host:x"; sid:1;)')


def test_relative_pcre_needs_a_match_before_it_in_its_buffer():
    with pytest.raises(RuleError, match="preceding match"):
        parse('alert tcp any any -> any any (uricontent:"a"; pcre:"/^b/R"; sid:1;)')
    for ok in ('alert tcp any any -> any any (content:"a"; pcre:"/^b/R"; sid:1;)',
               'alert tcp any any -> any any (uricontent:"a"; pcre:"/^b/UR"; sid:1;)',
               'alert tcp any any -> any any (http.uri; pcre:"/^b/R"; sid:1;)',
               'alert tcp any any -> any any (byte_jump:4,0; pcre:"/^b/R"; sid:1;)'):
        assert parse(ok).buffers


def test_fast_pattern_selection_prefers_app_buffer_then_length():
    rule = parse('alert http any any -> any any (http.method; content:"POST"; http.uri; '
                 'content:"/a"; http.user_agent; content:"Mozilla"; sid:1;)')
    assert rule.fast_pattern[0] == "http.user_agent"
    explicit = parse('alert tcp any any -> any any (content:"longer-one"; content:"ab"; '
                     'fast_pattern; sid:1;)')
    assert explicit.fast_pattern[1].pattern == b"ab"
    negated = parse('alert tcp any any -> any any (content:!"abc"; sid:1;)')
    assert negated.fast_pattern is None


@pytest.mark.parametrize("text,keyword", [
    ('alert tcp any any -> any any (ftpbounce; sid:1;)', "ftpbounce"),
    ('alert tcp any any -> any any (app-layer-event:http.x; sid:1;)', "app-layer-event"),
    ('alert tcp any any -> any any (pcre:"/(?<=a)(?|b)/"; sid:1;)', "pcre"),
])
def test_refusals_name_the_keyword(text, keyword):
    with pytest.raises(RuleError) as info:
        parse(text)
    assert not info.value.syntax and info.value.keyword == keyword


@pytest.mark.parametrize("text,reason,keyword", [
    # no flow is ever detected as these here: the rule would never fire
    ('alert sip any any -> any any (content:"INVITE"; sid:1;)', "unsupported-protocol", "sip"),
    ('alert nfs any any -> any any (content:"x"; sid:1;)', "unsupported-protocol", "nfs"),
    ('alert tcp any any -> any any (app-layer-protocol:dcerpc; sid:1;)', "unsupported-protocol", "dcerpc"),
    # detected, not parsed: no transaction carries their buffers
    ('alert smtp any any -> any any (file.data; content:"x"; sid:1;)', "unsupported-keyword", "file.data"),
    ('alert tcp any any -> any any (ssh.proto; content:"2.0"; sid:1;)', "unsupported-keyword", "ssh.proto"),
    ('alert ftp any any -> any any (file.data; content:"x"; sid:1;)', "unsupported-keyword", "file.data"),
])
def test_a_rule_that_could_never_fire_is_refused_not_loaded(text, reason, keyword):
    with pytest.raises(RuleError) as info:
        parse(text)
    assert (info.value.reason, info.value.keyword) == (reason, keyword)


@pytest.mark.parametrize("text", [
    'alert ftp any any -> any 21 (flow:to_server; content:"RETR"; content:"passwd"; sid:1;)',
    'alert smtp any any -> any any (content:"EHLO"; sid:1;)',
    'alert smb any any -> any 445 (content:"|ff|SMB"; sid:1;)',
    'alert ssh any any -> any any (content:"SSH-1."; sid:1;)',
    'alert tcp any any -> any any (app-layer-protocol:ftp; content:"SITE"; sid:1;)',
    'alert ftp-data any any -> any any (file.data; content:"|7f|ELF"; startswith; sid:1;)',
])
def test_raw_content_on_a_detected_protocol_loads(text):
    assert parse(text).sid == 1


@pytest.mark.parametrize("text", [
    "alert tcp any any -> any any",
    'alert tcp any any -> any any (content:"a" sid:1)',
    'alert foo any any -> any any (sid:1;)',
    'alert tcp any any -> any any (content:"|4|"; sid:1;)',
    'alert tcp any any -> any any (content:"a";)',
    'alert tcp any any -> any any (nocase; sid:1;)',
])
def test_syntax_errors(text):
    with pytest.raises(RuleError) as info:
        parse(text)
    assert info.value.syntax


def test_split_options_keeps_escaped_semicolons():
    assert split_options('msg:"a\\;b"; nocase;') == [("msg", '"a\\;b"'), ("nocase", None)]


def test_pcre_posix_class_and_named_group_translation():
    rule = parse('alert tcp any any -> any any (pcre:"/(?<n>[[:digit:]]+)x/"; sid:1;)')
    assert rule.buffers["payload"][0].regex.search(b"123x")


def _pcre(expression: str):
    return parse(f'alert tcp any any -> any any (pcre:"{expression}"; sid:1;)').buffers["payload"][0]


@pytest.mark.parametrize("expression,matches,misses", [
    # PCRE reads one hex digit as a whole byte; \x{..} too
    (r"/a\x2]/", [b"a\x02]"], [b"a\\x2]", b"a]"]),
    (r"/a\x{41}/", [b"aA"], [b"a"]),
    # [ is literal inside a PCRE class (Python warns of a nested set)
    (r"/^x[[ab]y/", [b"x[y", b"xay"], [b"xy"]),
    (r"/^x[]a]y/", [b"x]y", b"xay"], [b"xy"]),
    # back references PCRE spells \g{N}, \g{-N}, \k<name>
    (r"/(a)(b)\g{1}/", [b"aba"], [b"abb"]),
    (r"/(a)(b)\g{-1}/", [b"abb"], [b"aba"]),
    (r"/(?<w>[a-z]+)-\k<w>/", [b"ab-ab"], [b"ab-cd"]),
    # PCRE's classes and escapes Python spells otherwise
    (r"/a\hb/", [b"a b", b"a\tb"], [b"a\nb"]),
    (r"/a\vb/", [b"a\nb", b"a\rb"], [b"a b", b"a\x0bc"]),
    (r"/a\Rb/", [b"a\r\nb", b"a\nb"], [b"ab"]),
    (r"/\Qa.b\E+/", [b"a.bb"], [b"axb"]),
    (r"/a\cJb/", [b"a\nb"], [b"acJb"]),
    (r"/a(?#note)b/", [b"ab"], [b"a(?#note)b"]),
    (r"/end\Z/", [b"the end", b"the end\n"], [b"end of it"]),
    (r"/end\z/", [b"the end"], [b"the end\n"]),
    # a { that is no PCRE quantifier is a literal, also {,n}
    (r"/a{,2}b/", [b"a{,2}b"], [b"aab"]),
    (r"/a{2}b/", [b"aab"], [b"ab"]),
])
def test_pcre_translation_keeps_pcre_meaning(expression, matches, misses):
    regex = _pcre(expression).regex
    assert all(regex.search(data) for data in matches), regex.pattern
    assert not any(regex.search(data) for data in misses), regex.pattern


def test_pcre_ungreedy_flag_swaps_greediness():
    greedy, ungreedy = _pcre("/a.*b/s").regex, _pcre("/a.*b/sG").regex
    assert greedy.search(b"a1b2b").end() == 5 and ungreedy.search(b"a1b2b").end() == 3
    assert _pcre("/a.*?b/G").regex.search(b"a1b2b").end() == 5
    assert _pcre("/a.*+b/G").regex.search(b"a1b2b") is None          # possessive stays


@pytest.mark.parametrize("expression", [
    r"/(?<=a+)b/", r"/a\Kb/", r"/(?R)/", r"/(?1)/", r"/(?-1)/", r"/(*UTF)a/", r"/\p{L}/",
    r"/a\x{100}/", r"/[[:^alpha:]]/", r"/[a/",
])
def test_pcre_python_cannot_say_is_refused(expression):
    with pytest.raises(RuleError) as info:
        _pcre(expression)
    assert info.value.keyword == "pcre" and info.value.reason == "pcre-unsupported"


def test_pcre_of_a_checked_rule_compiles_on_first_use():
    text = 'alert tcp any any -> any any (pcre:"/^(?<n>[[:digit:]]+)x/i"; sid:1;)'
    pcre = parse_rule(text, VARIABLES, {}, checked=True).buffers["payload"][0]
    assert pcre._regex is None
    eager = parse(text).buffers["payload"][0].regex
    assert (pcre.regex.pattern, pcre.regex.flags) == (eager.pattern, eager.flags)
    assert pcre.regex.search(b"123X")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_random_text_only_raises_rule_error(text):
    try:
        parse(text)
    except RuleError:
        pass


def test_hostbits_are_xbits_on_one_host():
    rule = parse('alert ip any any -> any any (hostbits:set,abc,dst; sid:1;)')
    assert rule.xbit_actions == [("set", "abc", "ip_dst", 30)]
    rule = parse('alert ip any any -> any any (hostbits:toggle,abc,both; sid:2;)')
    assert [a[2] for a in rule.xbit_actions] == ["ip_src", "ip_dst"]
    rule = parse('alert ip any any -> any any (hostbits:isnotset,abc; sid:3;)')
    assert rule.xbit_checks == [("isnotset", "abc", "ip_src")]
    for bad in ("isset,abc,both", "set,abc,left", "set", "flip,abc"):
        with pytest.raises(RuleError):
            parse(f'alert ip any any -> any any (hostbits:{bad}; sid:4;)')


def test_packet_header_buffers_narrow_the_rule_to_packets_carrying_them():
    rule = parse('alert ip any any -> any any (tcp.hdr; content:"|02 04|"; offset:20; sid:1;)')
    assert rule.transports == {6} and rule.packet_only
    assert rule.packet_buffers == ("tcp.hdr",) and rule.tx_buffers == ()
    icmp6 = parse('alert icmp any any -> any any (icmpv6.hdr; content:"|80|"; depth:1; sid:1;)')
    assert (icmp6.transports, icmp6.ip_version) == ({58}, 6)
    v4 = parse('alert tcp any any -> any any (ipv4.hdr; bsize:>20; pkt_data; content:"x"; sid:1;)')
    assert v4.ip_version == 4 and list(v4.buffers) == ["ipv4.hdr", "payload"]
    # Shared tables are not narrowed in place.
    assert parse('alert tcp any any -> any any (sid:2;)').transports == {6}


def test_fast_pattern_prefers_the_payload_to_a_packet_header():
    both = parse('alert tcp any any -> any any (tcp.hdr; content:"|02 04 05 b4|"; offset:20; '
                 'pkt_data; content:"ab"; sid:1;)')
    assert both.fast_pattern[0] == "payload"
    header_only = parse('alert tcp any any -> any any (tcp.hdr; content:"|02 04|"; sid:1;)')
    assert header_only.fast_pattern[0] == "tcp.hdr"


@pytest.mark.parametrize("text,detail", [
    ('alert udp any any -> any any (tcp.hdr; content:"x"; sid:1;)', "tcp.hdr on a udp rule"),
    ('alert icmp any any -> any any (udp.hdr; sid:1;)', "udp.hdr on a icmp/icmpv6 rule"),
    ('alert ip any any -> any any (tcp.hdr; udp.hdr; sid:1;)', "udp.hdr on a tcp rule"),
    ('alert ipv6 any any -> any any (ipv4.hdr; sid:1;)', "ipv4.hdr on an IPv6 rule"),
    ('alert tcp any any -> any any (tcp.hdr; content:"x"; http.uri; content:"/a"; sid:1;)',
     "app-layer buffer http.uri"),
    ('alert tcp any any -> any any (flow:only_stream; tcp.hdr; content:"x"; sid:1;)',
     "packet header buffer"),
    ('alert tcp any any -> any any (byte_math:bytes 1, offset 0, oper +, rvalue 1; sid:1;)',
     "needs 5 to 10"),
    ('alert tcp any any -> any any (byte_math:bytes 1, offset 0, oper +, rvalue 1, relative; sid:1;)',
     "missing result"),
    ('alert tcp any any -> any any (byte_math:bytes 11, offset 0, oper +, rvalue 1, result r; sid:1;)',
     "bytes must be 1..10"),
    ('alert tcp any any -> any any (byte_math:bytes 5, offset 0, oper <<, rvalue 1, result r; sid:1;)',
     "1..4 with << or >>"),
    ('alert tcp any any -> any any (byte_math:bytes 1, offset 70000, oper +, rvalue 1, result r; '
     'sid:1;)', "offset must be"),
    ('alert tcp any any -> any any (byte_math:bytes 1, offset 0, oper &, rvalue 1, result r; sid:1;)',
     "oper '&'"),
    ('alert tcp any any -> any any (byte_math:bytes 1, offset 0, oper +, rvalue 0x10, result r; '
     'sid:1;)', "unknown variable '0x10'"),
    ('alert tcp any any -> any any (byte_math:bytes 1, offset 0, oper +, rvalue 4294967296, '
     'result r; sid:1;)', "over 32 bits"),
    ('alert tcp any any -> any any (byte_math:bytes n, offset 0, oper +, rvalue 1, result r; sid:1;)',
     "bytes: unknown variable"),
    ('alert tcp any any -> any any (byte_math:bytes 1, offset 0, oper +, rvalue 1, result r, '
     'relative, relative; sid:1;)', "relative given twice"),
    ('alert tcp any any -> any any (byte_math:bytes 1, offset 0, oper +, rvalue 1, result r, '
     'bitmask 0x1ffffffff; sid:1;)', "32-bit hex"),
    ('alert tcp any any -> any any (byte_math:bytes 1, offset 0, oper +, rvalue 1, result r, '
     'string bin; sid:1;)', "string 'bin'"),
    ('alert tcp any any -> any any (byte_math:bytes 1, offset 0, oper +, rvalue 1, result 1r; '
     'sid:1;)', "bad result name"),
])
def test_packet_buffer_and_byte_math_rules_suricata_refuses(text, detail):
    with pytest.raises(RuleError, match=detail) as info:
        parse(text)
    assert info.value.syntax


def test_byte_math_options_in_any_order_and_its_result_as_a_variable():
    rule = parse('alert tcp any any -> any any (content:"L"; byte_extract:1,0,size,relative; '
                 'byte_math:result total, rvalue size, oper *, offset 1, bytes 2, relative, '
                 'endian little, bitmask 0xff00; byte_test:1,=,total,0,relative; '
                 'isdataat:total,relative; content:"x"; distance:total; sid:1;)')
    math = rule.buffers["payload"][2]
    assert (math.count, math.offset, math.operator, math.rvalue, math.result) == (2, 1, "*", "size", "total")
    assert math.relative and math.little and math.bitmask == 0xFF00 and math.base is None
    assert parse('alert tcp any any -> any any (byte_math:bytes 3, offset -2, oper -, rvalue 7, '
                 'result r, string hex, relative; sid:1;)').buffers["payload"][0].base == 16


@pytest.mark.parametrize("options", [
    "byte_math:bytes 2, offset 0, oper +, rvalue 1, result r, dce;",
    "byte_math:bytes 2, offset 0, oper +, rvalue 1, result r, endian dce;",
])
def test_byte_math_dce_is_refused_for_want_of_a_dcerpc_parser(options):
    with pytest.raises(RuleError, match="DCERPC") as info:
        parse(f"alert tcp any any -> any any ({options} sid:1;)")
    assert not info.value.syntax and info.value.keyword == "byte_math"


def test_app_layer_event_with_a_packet_header_buffer_is_refused():
    with pytest.raises(RuleError, match="packet header buffer") as info:
        parse('alert http any any -> any any (app-layer-event:http.host_header_ambiguous; '
              'tcp.hdr; content:"|18|"; sid:1;)')
    assert not info.value.syntax and info.value.keyword == "app-layer-event"
