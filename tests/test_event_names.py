"""The table of rule-visible event names (ips/event_names.py) and the
stages that raise anomalies must not drift apart: every listed name is
raised somewhere, and every name raised is either listed or logged only."""
import pathlib
import re

from ips import event_names

ROOT = pathlib.Path(__file__).resolve().parent.parent / "ips"
# How the stages spell anomaly names: literals, and "<layer>" + suffix.
_NAME = re.compile(r'"((?:ethernet|sll2?|ltnull|vlan|pppoe|decoder|ipv4|ipv6|tcp|udp|icmpv4|icmpv6|'
                   r'stream|http|dns|tls)\.[a-z0-9_]+)"')
_LAYERED = re.compile(r'layer \+ "(\.[a-z0-9_]+)"')
_LAYERS = {"decode.py": ("icmpv4", "icmpv6"), "defrag.py": ("ipv4", "ipv6")}


def _raised() -> set[str]:
    names: set[str] = set()
    for path in [ROOT / "decode.py", ROOT / "defrag.py", ROOT / "stream.py",
                 ROOT / "applayer" / "http.py", ROOT / "applayer" / "dns.py",
                 ROOT / "applayer" / "tls.py"]:
        text = path.read_text()
        for name in _NAME.findall(text):
            if path.name in ("http.py", "dns.py", "tls.py") and name.count(".") != 1:
                continue
            names.add(name)
        for suffix in _LAYERED.findall(text):
            names.update(layer + suffix for layer in _LAYERS[path.name])
    return names


def test_every_rule_visible_event_is_raised():
    raised = _raised()
    assert event_names.RULE_EVENTS - raised == set()


def test_every_decode_and_stream_event_raised_is_listed_or_log_only():
    raised = {name for name in _raised() if not name.startswith(("http.", "dns.", "tls."))}
    unlisted = raised - event_names.RULE_EVENTS - set(event_names.LOG_ONLY)
    assert unlisted == set()


def test_log_only_names_are_not_rule_visible():
    assert not set(event_names.LOG_ONLY) & event_names.RULE_EVENTS


def test_refused_app_layer_events_are_neither_rule_visible_nor_raised():
    refused = set(event_names.REFUSED_APPLAYER_EVENTS)
    assert not refused & event_names.RULE_EVENTS
    assert not refused & set(event_names.LOG_ONLY)
    assert not refused & _raised()


def test_every_http_event_of_suricatas_rules_is_raised_or_refused_with_a_reason():
    # the app-layer-event names of Suricata's rules/http-events.rules (the
    # sids 2221000-2221033, 2221047 and 2221048)
    suricata = {
        "unknown_error", "gzip_decompression_failed", "request_field_missing_colon",
        "response_field_missing_colon", "invalid_request_chunk_len", "invalid_response_chunk_len",
        "invalid_transfer_encoding_value_in_request", "invalid_transfer_encoding_value_in_response",
        "invalid_content_length_field_in_request", "invalid_content_length_field_in_response",
        "100_continue_already_seen", "unable_to_match_response_to_request",
        "invalid_server_port_in_request", "invalid_authority_port", "request_header_invalid",
        "response_header_invalid", "missing_host_header", "host_header_ambiguous",
        "invalid_request_field_folding", "invalid_response_field_folding",
        "request_field_too_long", "response_field_too_long", "multipart_generic_error",
        "multipart_no_filedata", "multipart_invalid_header",
        "request_server_port_tcp_port_mismatch", "request_uri_host_invalid",
        "request_header_host_invalid", "uri_delim_non_compliant", "method_delim_non_compliant",
        "request_line_leading_whitespace", "too_many_encoding_layers", "abnormal_ce_header",
        "duplicate_content_length_field_in_request", "duplicate_content_length_field_in_response",
    }
    accounted = (event_names.APPLAYER_EVENTS | set(event_names.REFUSED_APPLAYER_EVENTS)
                 | set(event_names.LOG_ONLY))
    assert {"http." + name for name in suricata} - accounted == set()
