"""decode-event, stream-event and app-layer-event: parsed, refused when the
engine never raises the event, and matched on the packet or transaction
that carries it (never looked at for the others)."""
import pytest

from ips.detect.parser import RuleError, parse_rule
from ips.detect.variables import Variables
from ips.config import Config

from .factories import FakeFlow, FakeTx, engine, packet, sids

INVALID_TE = "http.invalid_transfer_encoding_value_in_request"


def _parse(options: str, header: str = "alert tcp any any -> any any"):
    return parse_rule(f"{header} ({options} sid:1;)", Variables.from_config(Config()), {})


def test_each_keyword_parses_to_its_event():
    assert _parse("decode-event:ipv4.trunc_pkt;").packet_events == ("ipv4.trunc_pkt",)
    rule = _parse("stream-event:reassembly_overlap_different_data;")
    assert rule.packet_events == ("stream.reassembly_overlap_different_data",)
    rule = _parse(f"app-layer-event:{INVALID_TE};")
    assert rule.tx_events == (INVALID_TE,) and rule.app_proto == "http"


@pytest.mark.parametrize("options, keyword", [
    ("decode-event:ipv4.opt_unknown;", "decode-event"),
    ("stream-event:3whs_async_wrong_seq;", "stream-event"),
    ("app-layer-event:http.request_field_too_long;", "app-layer-event"),
    ("app-layer-event:applayer_mismatch_protocol_both_directions;", "app-layer-event"),
    ("decode-event:stream.reassembly_seq_gap;", "decode-event"),
    # Logged, but neither Suricata 7 nor 8 raises it: refused rather than a
    # drop that fires where Suricata's would not.
    ("app-layer-event:http.invalid_transfer_encoding_value_in_response;", "app-layer-event"),
])
def test_an_event_never_raised_is_refused_with_its_name(options, keyword):
    with pytest.raises(RuleError) as caught:
        _parse(options)
    error = caught.value
    assert not error.syntax
    assert (error.reason, error.keyword) == ("unsupported-keyword", keyword)
    assert options.split(":", 1)[1].rstrip(";") in error.detail


@pytest.mark.parametrize("event", ["http.gzip_decompression_failed", "http.multipart_no_filedata",
                                   "http.invalid_transfer_encoding_value_in_response"])
def test_a_refused_http_event_says_why(event):
    with pytest.raises(RuleError) as caught:
        _parse(f"app-layer-event:{event};")
    assert caught.value.detail.startswith(f"event {event} is not raised: ")


def test_refused_rule_is_reported_with_file_line_and_event():
    loaded, report = engine('alert tcp any any -> any any (decode-event:ipv4.trunc_pkt; sid:1;)\n'
                            'alert tcp any any -> any any (decode-event:gre.pkt_too_small; sid:2;)\n')
    assert report.loaded == 1
    (path, line, sid, reason, keyword), = report.skipped
    assert (line, sid, reason, keyword) == (2, 2, "unsupported-keyword", "decode-event")
    assert "gre.pkt_too_small" in report.details[(path, line)]


def test_packet_event_rule_is_indexed_by_event_not_checked_per_packet():
    loaded, _ = engine('alert tcp any any -> any any (stream-event:reassembly_seq_gap; sid:1;)\n')
    assert loaded.packet_by_event == {"stream.reassembly_seq_gap": [0]}
    assert not any(loaded.packet_no_pattern.values()) and not loaded.packet_by_port
    flow = FakeFlow()
    assert sids(loaded.inspect(packet(b"data"), flow, None, ())) == []
    pkt = packet(b"data")
    pkt.anomaly("stream.reassembly_seq_gap")
    assert sids(loaded.inspect(pkt, flow, None, ())) == [1]


def test_packet_event_with_content_goes_through_the_prefilter():
    loaded, _ = engine('alert tcp any any -> any any (decode-event:tcp.invalid_optlen; '
                       'content:"evil"; sid:1;)\n')
    assert not loaded.packet_by_event
    plain = packet(b"evil")
    assert sids(loaded.inspect(plain, None, None, ())) == []
    marked = packet(b"evil")
    marked.anomaly("tcp.invalid_optlen")
    assert sids(loaded.inspect(marked, None, None, ())) == [1]


def test_app_layer_event_rule_matches_the_transaction_carrying_it():
    loaded, _ = engine(
        f'alert http any any -> any any (flow:to_server; app-layer-event:{INVALID_TE}; sid:1;)\n'
        f'alert http any any -> any any (flow:to_server; app-layer-event:{INVALID_TE}; '
        'http.uri; content:"/tmui/"; sid:2;)\n')
    assert loaded.tx_by_event == {INVALID_TE: [0]} and not loaded.tx_no_pattern
    flow = FakeFlow(app_proto="http")
    clean = FakeTx("http", 0, True, {"http.uri": b"/tmui/x"})
    assert sids(loaded.inspect(packet(b""), flow, None, [clean])) == []
    bad = FakeTx("http", 1, True, {"http.uri": b"/tmui/x"}, events=(INVALID_TE,))
    assert sids(loaded.inspect(packet(b""), flow, None, [bad])) == [1, 2]
    # The event is a request's: a to_server rule does not see it from the response side.
    reply = FakeTx("http", 2, False, {"http.uri": b"/tmui/x"}, events=(INVALID_TE,))
    assert sids(loaded.inspect(packet(b"", to_server=False), flow, None, [reply])) == []


def test_undecoded_packet_matches_event_only_rules_on_any_protocol():
    loaded, _ = engine(
        'alert pkthdr any any -> any any (decode-event:ipv4.trunc_pkt; sid:1;)\n'
        'alert tcp any any -> any any (decode-event:ipv4.trunc_pkt; sid:2;)\n'
        'alert pkthdr any any -> any 80 (decode-event:ipv4.trunc_pkt; sid:3;)\n')
    # A truncated IPv4 header: the decoder set neither protocol nor addresses.
    pkt = packet(b"", proto=0)
    pkt.src = pkt.dst = None
    pkt.sport = pkt.dport = 0
    pkt.anomaly("ipv4.trunc_pkt")
    assert sids(loaded.inspect_undecoded(pkt)) == [1]


def test_broken_tcp_header_keeps_its_protocol_for_event_rules():
    # As Suricata: the IP header was read, so tcp rules (addresses checked,
    # ports 0) see tcp.pkt_too_small; a port-specific rule cannot.
    loaded, _ = engine(
        'alert tcp any any -> any any (decode-event:tcp.pkt_too_small; sid:1;)\n'
        'alert udp any any -> any any (decode-event:tcp.pkt_too_small; sid:2;)\n'
        'alert tcp any any -> any 80 (decode-event:tcp.pkt_too_small; sid:3;)\n'
        'alert tcp 203.0.113.0/24 any -> any any (decode-event:tcp.pkt_too_small; sid:4;)\n'
        'alert ip any any -> any any (decode-event:tcp.pkt_too_small; sid:5;)\n')
    pkt = packet(b"", proto=6, src="192.0.2.10", dst="198.51.100.9")
    pkt.sport = pkt.dport = 0
    pkt.anomaly("tcp.pkt_too_small")
    assert sids(loaded.inspect_undecoded(pkt)) == [1, 5]
