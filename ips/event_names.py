"""The anomaly names the engine raises that rules may name, in one table.

Every stage records what it could not handle as a named anomaly
(`pkt.anomaly("ipv4.trunc_pkt")`, a parser's `events`); the worker logs
each as an EVE `anomaly` record and counts it. Suricata's rule language
lets a rule match on them:

* `decode-event:ipv4.trunc_pkt;` — a decoder event on the packet;
* `stream-event:reassembly_overlap_different_data;` — a TCP stream event on
  the packet (written without the `stream.` prefix);
* `app-layer-event:http.invalid_transfer_encoding_value_in_request;` — a
  parser event on the inspected transaction.

A rule may only name an event listed here: an event this engine never
raises would make a rule that loads but can never fire, so the parser
refuses it (`unsupported-keyword`), as it refuses any keyword it does not
implement. An anomaly name is listed only when it is Suricata's name for
the same condition; the names the stages raise that Suricata does not
have, or whose meaning differs from Suricata's, are in `LOG_ONLY` with the
reason, except the few a rule must be able to act on (`EXTENSION_EVENTS`). tests/test_event_names.py checks that the producers and this
table agree.
"""
from __future__ import annotations

DECODE_EVENTS = frozenset({
    # ips/decode.py
    "ethernet.pkt_too_small", "sll.pkt_too_small", "ltnull.pkt_too_small",
    "ltnull.unsupported_type", "vlan.header_too_small", "vlan.too_many_layers",
    "pppoe.pkt_too_small",
    "ipv4.pkt_too_small", "ipv4.wrong_ip_version", "ipv4.hlen_too_small",
    "ipv4.iplen_smaller_than_hlen", "ipv4.trunc_pkt", "ipv4.icmpv6", "ipv4.opt_malformed",
    "ipv4.opt_invalid_len",
    "ipv6.pkt_too_small", "ipv6.wrong_ip_version", "ipv6.trunc_pkt", "ipv6.icmpv4",
    "ipv6.trunc_exthdr", "ipv6.exthdr_dupl_fh", "ipv6.exthdr_dupl_rh", "ipv6.exthdr_dupl_hh",
    "ipv6.exthdr_dupl_ah", "ipv6.exthdr_dupl_eh",
    "ipv6.exthdr_useless_fh", "ipv6.exthdr_ah_res_not_null", "ipv6.rh_type_0",
    "ipv6.data_after_none_header",
    "tcp.pkt_too_small", "tcp.hlen_too_small", "tcp.invalid_optlen",
    "udp.pkt_too_small", "udp.hlen_too_small",
    "icmpv4.pkt_too_small", "icmpv4.unknown_type", "icmpv6.pkt_too_small",
    "icmpv6.unknown_type", "icmpv6.unassigned_type", "icmpv6.experimentation_type",
    # ips/defrag.py
    "ipv4.frag_pkt_too_large", "ipv6.frag_pkt_too_large", "ipv4.frag_overlap",
    "ipv6.frag_overlap", "ipv4.frag_ignored", "ipv6.frag_ignored", "ipv6.frag_invalid_length",
})
"""Decoder events, as `decode-event` names them (Suricata's `decoder.` prefix dropped)."""

STREAM_EVENTS = frozenset({
    # ips/stream.py
    "stream.reassembly_overlap_different_data", "stream.reassembly_seq_gap",
})
"""TCP stream events, with the `stream.` prefix (`stream-event` names them without it)."""

APPLAYER_EVENTS = frozenset({
    # ips/applayer/http.py, on the transaction (libhtp's HTP_REQUEST_INVALID_T_E)
    "http.invalid_transfer_encoding_value_in_request",
    "http.host_header_ambiguous",      # absolute URI host and Host header differ
    "http.request_field_missing_colon", "http.response_field_missing_colon",
    # a header name with blanks before the colon, empty, or not a token
    "http.request_header_invalid", "http.response_header_invalid",
    # repeated Content-Length whose values differ (libhtp compares the numbers)
    "http.duplicate_content_length_field_in_request",
    "http.duplicate_content_length_field_in_response",
    # Content-Length without digits (libhtp reads "x12y" as 12, as we do)
    "http.invalid_content_length_field_in_request",
    "http.invalid_content_length_field_in_response",
    # a chunk size without hex digits or over 2**31 - 1 (libhtp gives up there)
    "http.invalid_request_chunk_len", "http.invalid_response_chunk_len",
    # the request line: blanks before the method, a delimiter after it that
    # is not only spaces, a target with no space but another blank
    "http.request_line_leading_whitespace", "http.method_delim_non_compliant",
    "http.uri_delim_non_compliant",
    # libhtp's host flags: no Host header on HTTP/1.1, a Host value or an
    # absolute URI's / CONNECT's authority that is no valid host[:port]
    "http.missing_host_header", "http.request_header_host_invalid",
    "http.request_uri_host_invalid",
    # the first header line starts with a blank (a fold with nothing to fold)
    "http.invalid_request_field_folding", "http.invalid_response_field_folding",
    # a second "100 Continue" for one request; a response with no request left
    "http.100_continue_already_seen", "http.unable_to_match_response_to_request",
    # ips/applayer/dns.py, on the request's or response's transaction
    "dns.z_flag_set",
    "dns.malformed_data",
    "dns.name_too_long",
    "dns.infinite_loop",        # a compression pointer to itself
    "dns.too_many_labels",      # more than 255 labels and pointers in a name
    "dns.invalid_opcode",       # opcode 7..15
    "dns.not_request",          # the response flag on a client's message
    "dns.not_response",         # no response flag on a server's message
    # ips/applayer/tls.py, on the flow's one transaction (Suricata 8's app-layer-ssl.c)
    "tls.invalid_sslv2_header",         # an SSLv2 record of length 0
    "tls.invalid_record_type",          # a record type other than 20-24
    "tls.invalid_record_version",       # an unknown version, where Suricata checks one
    "tls.invalid_record_length",        # an empty record, or one over 2**14 + 1024 bytes
    "tls.invalid_handshake_message",    # an unknown message type, a header split over records
    "tls.invalid_ssl_record",           # a handshake record under 4 bytes, a short SSLv2 hello
    "tls.invalid_alert_message",        # an alert record under 2 bytes
    "tls.error_message_encountered",    # an SSLv2 ERROR message
    "tls.handshake_invalid_length",     # a hello field or extension that does not fit
    "tls.invalid_sni_type",             # an SNI name type other than host_name
    "tls.invalid_sni_length",           # an SNI name empty, over 255 bytes or past its extension
    "tls.multiple_sni_extensions",      # a second SNI from the same side
    "tls.invalid_certificate",          # a certificate length past the chain (not x509 errors)
    "tls.overflow_heartbeat_message",   # a clear heartbeat's payload past its record: Heartbleed
    "tls.invalid_heartbeat_message",    # bad type, padding under 16, two in flight from a side
    # Suricata's TLS events refused here: heartbeat_message and invalid_tls_header
    # (it never raises them); dataleak_heartbeat_mismatch (encrypted heartbeats,
    # after the handshake this engine bypasses); too_many_records_in_packet (its
    # per-call record count); certificate_invalid_length and the other x509
    # decoder events (x509-parser's error classes); certificate_missing_element,
    # certificate_unknown_element, certificate_invalid_string (removed with its
    # old DER decoder).
})
"""Parser events put on the transaction, as `app-layer-event` names them.
Suricata's generic `applayer_*` events have no counterpart here."""

REFUSED_APPLAYER_EVENTS = {
    "http.unknown_error":
        "libhtp's catch-all for messages Suricata has no name for; the set "
        "changes with each libhtp version",
    "http.gzip_decompression_failed":
        "libhtp raises it where zlib fails inside its decoder (libhtp 0.5 also "
        "when its retry in the other format then works): points that depend "
        "on zlib's buffering and on how the body is cut into chunks, which "
        "this decoder (another retry order) does not reproduce",
    "http.request_field_too_long":
        "libhtp checks its field limit on a header line only when it had to "
        "buffer the line across data chunks: whether it fires depends on "
        "segmentation",
    "http.response_field_too_long": "as http.request_field_too_long",
    "http.invalid_server_port_in_request":
        "no libhtp of Suricata 7 or 8 logs it (libhtp 0.5 compiles the code "
        "out, rust/htp never logs the code)",
    "http.request_server_port_tcp_port_mismatch": "as http.invalid_server_port_in_request",
    "http.invalid_authority_port":
        "no libhtp of Suricata 7 or 8 logs it (Suricata 7: 'htp no longer "
        "returns this error')",
    "http.too_many_encoding_layers":
        "libhtp versions disagree on how Content-Encoding values are counted, "
        "and this parser undoes gzip and deflate only",
    "http.abnormal_ce_header":
        "libhtp versions disagree on which Content-Encoding values are "
        "abnormal (identity, none, lzma, case, substrings)",
    "http.multipart_generic_error": "no multipart/form-data parser here",
    "http.multipart_no_filedata": "no multipart/form-data parser here",
    "http.multipart_invalid_header": "no multipart/form-data parser here",
}
"""Suricata app-layer events this engine does not raise, and why (the
parser gives the reason when it refuses a rule naming one). Those raised
but kept from rules are in `LOG_ONLY`."""

EXTENSION_EVENTS = frozenset({
    # ips/applayer/http.py: a request a server could read otherwise than
    # libhtp: its body length (Content-Length with chunked Transfer-Encoding,
    # a folded or junk-laden Content-Length, repeated ones that differ, a
    # chunk size with junk or missing CRLF after a chunk), a CR inside a line,
    # or a chunked body the parser gave up on. libhtp only sets a transaction
    # flag (HTP_REQUEST_SMUGGLING) that Suricata does not turn into an
    # event; an inline box must be able to drop on it, because the bytes it
    # parses as a body may be a request the device runs.
    "http.request_smuggling", "http.response_smuggling",
    # ips/applayer/http.py: the client switches to cleartext HTTP/2 (the
    # "PRI * HTTP/2.0" preface, or Upgrade: h2c), which is not parsed here:
    # the requests in its frames are invisible to http.* rules. Suricata
    # parses HTTP/2 instead and needs no such event.
    "http.http2_cleartext",
    # ips/applayer/http.py: a response body in a coding clients undo and
    # this parser does not (brotli, zstd): what a client saves is not what
    # file.data shows. libhtp does not decode them either, and has no event.
    "http.response_encoding_unsupported",
})
"""Events of this engine's own for conditions Suricata flags without an
event. A rule may name them; such a rule loads here and not in Suricata."""

LOG_ONLY = {
    "decoder.internal_error": "ours: a decoder exception",
    "decoder.unknown_linktype": "ours: Suricata refuses the capture instead",
    "sll2.pkt_too_small": "not a Suricata decoder event",
    "ipv6.exthdr_too_many": "ours: the extension header walk's bound",
    "udp.len_invalid": "Suricata's UDP length events are cut differently",
    "ipv4.invalid_checksum": "Suricata checks checksums with ipv4-csum, not an event",
    "ipv6.invalid_checksum": "as ipv4.invalid_checksum",
    "tcp.invalid_checksum": "Suricata checks checksums with tcpv4-csum, not an event",
    "udp.invalid_checksum": "Suricata checks checksums with udpv4-csum, not an event",
    "icmpv4.invalid_checksum": "Suricata checks checksums with icmpv4-csum, not an event",
    "icmpv6.invalid_checksum": "Suricata checks checksums with icmpv6-csum, not an event",
    "stream.ack_unseen_data": "not raised under this name by Suricata's stream engine",
    "stream.internal_error": "ours: a reassembler exception",
    "stream.pkt_before_stream_start": "not a Suricata stream event",
    "stream.reassembly_memcap": "Suricata counts memcap hits, it raises no event",
    "stream.reassembly_overlap_unverified": "ours: overlap with data not yet inspected",
    "http.invalid_transfer_encoding_value_in_response":
        "neither Suricata 7 (libhtp 0.5.7 dropped the mapping) nor 8 (its htp "
        "never logs the code) raises it: a rule naming it never fires there, "
        "and a drop on it here would cut odd but legitimate responses",
}
"""Anomalies that are logged and counted but that no rule may name, and why."""
# App-layer parsers' connection-level anomalies (http.gap, dns.gap, tls.gap,
# <proto>.parser_error, ...) are logged only: they are not on a transaction,
# and their names and conditions are ours, not Suricata's parsers'.

RULE_EVENTS = DECODE_EVENTS | STREAM_EVENTS | APPLAYER_EVENTS | EXTENSION_EVENTS
