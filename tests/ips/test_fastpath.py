"""Which rules keep pure ACKs out of the kernel fast path (ips.fastpath), and
the kernel rules that match exactly a pure ACK (appliance.firewall)."""
from __future__ import annotations

import pytest

from appliance import firewall
from ips import fastpath
from ips.detect.parser import parse_rule
from ips.detect.variables import Variables

VARIABLES = Variables("[192.0.2.0/24]", "!$HOME_NET")


def rule(options: str, header: str = "alert tcp any any -> any any"):
    return parse_rule(f"{header} ({options} sid:1; rev:1;)", VARIABLES, {})


@pytest.mark.parametrize("header,options", [
    ("alert tcp any any -> any 80", 'content:"GET"; flow:established;'),      # payload
    ("alert http any any -> any any", 'http.uri; content:"/x";'),              # app layer
    ("alert udp any any -> any any", "threshold: type both, track by_src, count 3, seconds 9;"),
    ("alert tcp any any -> any any", "flags:S; threshold: type both, track by_src, count 3, seconds 9;"),
    ("alert tcp any any -> any any", "dsize:>0;"),
    ("alert tcp any any -> any any", "flow:not_established; ttl:3;"),
    ("alert ip any any -> any any", "ip_proto:41; threshold: type both, track by_dst, count 1, seconds 60;"),
    ("alert icmp any any -> any any", "itype:8;"),
    # reputation: addresses alone match every packet of the flow alike
    ("alert ip [198.51.100.66] any -> $HOME_NET any",
     "threshold: type limit, track by_src, seconds 3600, count 1;"),
    ("drop tcp [198.51.100.66] any -> $HOME_NET any", "flow:established,to_server;"),
    ("alert ip any any -> any any", 'udp.hdr; content:"|00 35|"; depth:2;'),   # not TCP
    ("alert tcp any any -> any any", 'tcp.hdr; content:"|18|"; offset:13; pkt_data; content:"x";'),
])
def test_rules_that_cannot_be_changed_by_skipping_pure_acks(header, options):
    assert not fastpath.needs_pure_acks(rule(options, header))


@pytest.mark.parametrize("options", [
    "flags:A; dsize:0; flow:established;",            # picks exactly the pure ACKs
    "flags:A;",
    "ttl:64;",                                         # per-packet field we cannot evaluate
    "window:0;",
    "ack:0;",
    "flowbits:isset,seen;",
    "threshold: type threshold, track by_src, count 100, seconds 1;",   # counts packets
    "detection_filter: track by_src, count 10, seconds 1;",
    "decode-event:tcp.invalid_optlen;",                # events differ packet by packet
    "stream-event:reassembly_seq_gap;",
    'tcp.hdr; content:"|10|"; offset:13; depth:1;',    # the header changes packet by packet
    "ipv4.hdr; byte_test:2,>,40,2;",
])
def test_rules_that_could_match_a_pure_ack(options):
    assert fastpath.needs_pure_acks(rule(options))


def test_describe_names_the_rules_that_turn_it_off():
    assert fastpath.describe([]) == "on"
    assert "sid 1" in fastpath.describe([rule("flags:A;")])


def _shape_matches(payload: str, packet: bytes) -> bool:
    """Evaluate our u32 expressions (`a>>s&m=v` terms joined by &&) on bytes."""
    for term in payload.split("&&"):
        left, value = term.split("=")
        offset, _, rest = left.partition(">>") if ">>" in left else (left.split("&")[0], "", "")
        shift, mask = 0, 0xFFFFFFFF
        if ">>" in left:
            shift_text, _, mask_text = rest.partition("&")
            shift = int(shift_text)
            mask = int(mask_text, 16) if mask_text else 0xFFFFFFFF
        else:
            mask = int(left.split("&")[1], 16)
        word = int.from_bytes(packet[int(offset):int(offset) + 4], "big")
        if (word >> shift) & mask != int(value):
            return False
    return True


def _expressions(family: int) -> list[str]:
    payload = firewall.render_fastpath(family, True)
    return [line.split("--u32 ")[1].split()[0] for line in payload.splitlines() if "--u32" in line]


def test_kernel_rules_match_exactly_the_pure_ack_shapes():
    from scapy.layers.inet import IP, TCP
    from scapy.layers.inet6 import IPv6

    def v4(options=(), payload=b"", ip_options=None):
        extra = {"options": ip_options} if ip_options else {}
        return bytes(IP(src="192.0.2.10", dst="203.0.113.10", **extra)
                     / TCP(flags="A", options=list(options)) / payload)

    def v6(options=(), payload=b""):
        return bytes(IPv6(src="2001:db8::10", dst="2001:db8::1") / TCP(flags="A", options=list(options))
                     / payload)

    timestamps = [("NOP", None), ("NOP", None), ("Timestamp", (1, 2))]
    matches4 = lambda packet: any(_shape_matches(e, packet) for e in _expressions(4))  # noqa: E731
    matches6 = lambda packet: any(_shape_matches(e, packet) for e in _expressions(6))  # noqa: E731
    assert matches4(v4()) and matches4(v4(timestamps))
    assert matches6(v6()) and matches6(v6(timestamps))
    assert matches4(v4([("SAck", (1, 2))]))              # one SACK block: also 12 bytes
    # one byte of data, 12 bytes of data in a plain header (same length as the
    # timestamps shape), data behind timestamps, IP options: all go to a worker,
    # as do pure ACKs of rarer shapes (two SACK blocks)
    assert not matches4(v4(payload=b"x")) and not matches4(v4(payload=b"GET /x?cmd=1"))
    assert not matches4(v4(timestamps, payload=b"GET /"))
    assert not matches4(v4([("NOP", None)] * 4 + [("Timestamp", (1, 2))]))
    assert not matches4(v4([("SAck", (1, 2, 3, 4))]))
    assert not matches4(v4(ip_options=[b"\x01\x01\x01\x00"]))
    assert not matches6(v6(payload=b"GET /x?cmd=1")) and not matches6(v6(timestamps, b"x"))


def test_fast_path_sits_after_the_block_marks_and_before_the_queue():
    rules = [line for line in firewall.render_apply(firewall.FirewallPlan(bridge="br0"), 4)
             .splitlines() if line.startswith(f"-A {firewall.FORWARD_CHAIN}")]
    drop = next(i for i, r in enumerate(rules) if r.endswith("-j DROP"))
    fast = next(i for i, r in enumerate(rules) if firewall.FASTPATH_CHAIN in r)
    queue = max(i for i, r in enumerate(rules) if r.endswith(f"-j {firewall.QUEUE_CHAIN}"))
    assert drop < fast < queue
    assert "--tcp-flags ALL ACK" in firewall.render_fastpath(4, True)
    assert "ACCEPT" not in firewall.render_fastpath(4, False)


@pytest.mark.parametrize("header,options,smallest", [
    # the ET Open rule that bounds ping with the exploit rules loaded
    ("alert icmp $EXTERNAL_NET any -> any any",
     'icode:0; dsize:>120; content:"|30 31 32 07 80|"; content:"|00|"; endswith;', 121),
    ("alert icmp any any -> any any", 'itype:8; content:"|D5 20 08 80|"; depth:4;', 4),
    ("alert icmp any any -> any any", "itype:12; content:\"AAAAAAAA\";", None),   # not an echo
    ("alert icmp any any -> any any", "icode:3; dsize:>0;", None),               # code is 0
    ("alert tcp any any -> any any", 'content:"x";', None),
    ("alert icmp [198.51.100.66] any -> any any", "itype:8;", None),           # header only
    ("alert icmp any any -> any any", "itype:8; icmp_seq:0;", 0),               # per packet
    ("alert icmp any any -> any any", 'pcre:"/^x/";', 0),                        # any size
    ("alert ip any any -> any any", 'content:"EVILPING"; dsize:>60;', 61),
    ("alert icmp any any -> any any", "icmpv4.hdr; byte_test:2,>,9,6;", 0),     # header: any size
    ("alert ip any any -> any any", 'tcp.hdr; content:"|02|";', None),          # not ICMP
])
def test_smallest_echo_payload_a_rule_can_match(header, options, smallest):
    limit, bounding = fastpath.icmp_echo_limit([rule(options, header)])
    if smallest is None:
        assert limit == fastpath.MAX_ECHO_LIMIT and not bounding
    else:
        assert limit == smallest - 1 and len(bounding) == 1


def test_icmp_echo_limit_is_the_smallest_bound_and_renders_as_a_length_match():
    rules = [rule('dsize:>120; content:"ABCDE";', "alert icmp any any -> any any"),
             rule('content:"EVILPING";', "alert icmp any any -> any any")]
    limit, bounding = fastpath.icmp_echo_limit(rules)
    assert limit == 7 and [r.sid for r in bounding] == [1]
    v4 = firewall.render_fastpath(4, False, 120)
    assert "--icmp-type 8/0" in v4 and "--icmp-type 0/0" in v4 and "--length 0:148" in v4
    v6 = firewall.render_fastpath(6, False, 120)
    assert "--icmpv6-type 128/0" in v6 and "--length 0:168" in v6
    assert "icmp" not in firewall.render_fastpath(4, True, -1)


def test_analysis_refuses_a_partly_parsed_rule_set():
    # A cached engine holds None for rules not parsed yet: judging on the
    # rest would let the kernel keep packets an unseen rule needs.
    with pytest.raises(AttributeError):
        fastpath.Analysis.of([rule("flags:S;"), None])
