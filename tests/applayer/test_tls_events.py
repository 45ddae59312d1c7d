"""Suricata's TLS events (`app-layer-event:tls.*`), raised under the conditions
Suricata 8's app-layer-ssl.c raises them: for each, records that raise it and
a close variant that does not."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from ips.applayer.tls import MAX_RECORD_LENGTH, TlsParser
from ips.event_names import APPLAYER_EVENTS

CLIENT, SERVER = True, False


# -- factories ---------------------------------------------------------------------

def record(content_type: int, body: bytes, *, version: int = 0x0303) -> bytes:
    return bytes([content_type]) + version.to_bytes(2, "big") + len(body).to_bytes(2, "big") + body


def message(message_type: int, body: bytes) -> bytes:
    return bytes([message_type]) + len(body).to_bytes(3, "big") + body


def extension(extension_type: int, data: bytes) -> bytes:
    return extension_type.to_bytes(2, "big") + len(data).to_bytes(2, "big") + data


def sni(name: bytes = b"camera.example", *, name_type: int = 0, declared: int | None = None,
        more: bytes = b"") -> bytes:
    """A server_name extension: one name (`declared`: its announced length),
    then `more` list entries."""
    entry = bytes([name_type]) + (len(name) if declared is None else declared).to_bytes(2, "big") + name
    entries = entry + more
    return extension(0, len(entries).to_bytes(2, "big") + entries)


def client_hello(*, version: int = 0x0303, session: bytes = b"", ciphers: bytes = b"\x13\x01\xc0\x2f",
                 compression: bytes = b"\x01\x00", extensions: tuple[bytes, ...] | None = (),
                 extensions_length: int | None = None) -> bytes:
    """A ClientHello body (`compression`: its length byte and methods)."""
    body = version.to_bytes(2, "big") + bytes(32) + bytes([len(session)]) + session
    body += len(ciphers).to_bytes(2, "big") + ciphers + compression
    if extensions is not None:
        block = b"".join(extensions)
        size = len(block) if extensions_length is None else extensions_length
        body += size.to_bytes(2, "big") + block
    return body


def server_hello(*, version: int = 0x0303, extensions: tuple[bytes, ...] = ()) -> bytes:
    block = b"".join(extensions)
    return (version.to_bytes(2, "big") + bytes(32) + b"\x00" + b"\xc0\x2f" + b"\x00"
            + len(block).to_bytes(2, "big") + block)


def hello_record(**fields) -> bytes:
    return record(22, message(1, client_hello(**fields)), version=0x0301)


def certificate(*entries: bytes, chain_length: int | None = None) -> bytes:
    """A Certificate message body; entries are certificate entries as sent."""
    chain = b"".join(entries)
    size = len(chain) if chain_length is None else chain_length
    return size.to_bytes(3, "big") + chain


def entry(der: bytes = b"\x30\x03\x02\x01\x01") -> bytes:
    return len(der).to_bytes(3, "big") + der


def heartbeat(*, kind: int = 1, payload: int = 16, sent: int | None = None, padding: int = 16) -> bytes:
    """A heartbeat record announcing `payload` bytes, carrying `sent`."""
    sent = payload if sent is None else sent
    return record(24, bytes([kind]) + payload.to_bytes(2, "big") + b"P" * sent + b"\x00" * padding,
                  version=0x0302)


HELLO = hello_record(extensions=(sni(),))


def events(*pieces: tuple[bool, bytes]) -> tuple:
    parser = TlsParser()
    for to_server, data in pieces:
        parser.feed(data, to_server)
    return parser.tx.events


# -- one record raising each event, and a close one that does not ---------------------

CASES = {
    "tls.invalid_sslv2_header": (
        # An SSLv2 record of length 0 (read once a byte follows its header).
        [(CLIENT, HELLO), (CLIENT, b"\x80\x00\x01\x16")],
        [(CLIENT, HELLO), (CLIENT, b"\x80\x02\x04\x00")]),
    "tls.error_message_encountered": (
        [(CLIENT, HELLO), (SERVER, b"\x80\x03\x00\x00\x01")],          # SSLv2 ERROR
        [(CLIENT, HELLO), (SERVER, b"\x80\x03\x04\x00\x01")]),         # SSLv2 SERVER-HELLO
    "tls.invalid_record_type": (
        [(CLIENT, HELLO), (CLIENT, record(25, b"\x00"))],
        [(CLIENT, HELLO), (CLIENT, record(23, b"\x00"))]),
    "tls.invalid_record_version": (
        [(CLIENT, HELLO), (SERVER, record(22, message(2, server_hello()), version=0x0305))],
        [(CLIENT, HELLO), (SERVER, record(22, message(2, server_hello()), version=0x0304))]),
    "tls.invalid_record_length": (
        [(CLIENT, HELLO), (CLIENT, record(23, b""))],
        [(CLIENT, HELLO), (CLIENT, record(23, b"x"))]),
    "tls.invalid_handshake_message": (
        [(CLIENT, HELLO), (SERVER, record(22, message(99, b"xx")))],
        [(CLIENT, HELLO), (SERVER, record(22, message(4, b"xx")))]),  # NewSessionTicket
    "tls.invalid_ssl_record": (
        [(CLIENT, HELLO), (SERVER, record(22, b"\x0e\x00\x00"))],
        [(CLIENT, HELLO), (SERVER, record(22, b"\x0e\x00\x00\x00"))]),  # ServerHelloDone
    "tls.invalid_alert_message": (
        [(CLIENT, HELLO), (SERVER, record(21, b"\x02"))],
        [(CLIENT, HELLO), (SERVER, record(21, b"\x02\x28"))]),
    "tls.handshake_invalid_length": (
        # A session id longer than the rest of the message.
        [(CLIENT, record(22, message(1, client_hello(session=b"\x00" * 32)[:50])))],
        [(CLIENT, record(22, message(1, client_hello(session=b"\x00" * 32))))]),
    "tls.invalid_sni_type": (
        [(CLIENT, hello_record(extensions=(sni(name_type=1),)))],
        [(CLIENT, hello_record(extensions=(sni(name_type=0),)))]),
    "tls.invalid_sni_length": (
        [(CLIENT, hello_record(extensions=(sni(b"a" * 256),)))],
        [(CLIENT, hello_record(extensions=(sni(b"a" * 255),)))]),
    "tls.multiple_sni_extensions": (
        [(CLIENT, hello_record(extensions=(sni(b"a.example"), sni(b"b.example"))))],
        # Two names in one extension: only the first is read.
        [(CLIENT, hello_record(extensions=(sni(b"a.example", more=b"\x00\x00\x09b.example"),)))]),
    "tls.invalid_certificate": (
        [(CLIENT, HELLO), (SERVER, record(22, message(11, certificate(entry(), b"\x00\x00"))))],
        [(CLIENT, HELLO), (SERVER, record(22, message(11, certificate(entry(), entry()))))]),
    "tls.overflow_heartbeat_message": (
        # CVE-2014-0160: 16 KB asked back, none sent.
        [(CLIENT, HELLO), (CLIENT, record(24, b"\x01\x40\x00", version=0x0302))],
        [(CLIENT, HELLO), (CLIENT, heartbeat(payload=16, padding=16))]),
    "tls.invalid_heartbeat_message": (
        [(CLIENT, HELLO), (CLIENT, heartbeat(payload=16, padding=15))],
        [(CLIENT, HELLO), (CLIENT, heartbeat(payload=16, padding=16))]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_event_raised_and_close_variant_silent(name):
    trigger, close = CASES[name]
    assert name in events(*trigger)
    assert events(*close) == ()


def test_cases_cover_every_rule_visible_tls_event():
    assert set(CASES) == {name for name in APPLAYER_EVENTS if name.startswith("tls.")}


def test_refused_events_stay_refused():
    # Never raised by Suricata, or not followed here: see ips/event_names.py.
    for name in ("heartbeat_message", "invalid_tls_header", "dataleak_heartbeat_mismatch",
                 "too_many_records_in_packet", "certificate_invalid_length",
                 "certificate_missing_element", "certificate_unknown_element",
                 "certificate_invalid_string"):
        assert "tls." + name not in APPLAYER_EVENTS


# -- details of the conditions ---------------------------------------------------------

def test_event_is_on_the_transaction_returned_in_its_direction():
    parser = TlsParser()
    [tx] = parser.feed(HELLO, CLIENT)
    assert tx.events == ()
    [tx] = parser.feed(record(21, b"\x02"), SERVER)
    assert tx.events == ("tls.invalid_alert_message",) and not tx.to_server
    assert parser.events == ["tls.invalid_alert_message"]      # logged as an anomaly too


def test_sslv2_record_is_read_once_complete():
    parser = TlsParser()
    parser.feed(HELLO, CLIENT)
    assert parser.feed(b"\x80\x00\x01", CLIENT) == []            # nothing follows the header yet
    [tx] = parser.feed(b"\x00", CLIENT)
    assert tx.events == ("tls.invalid_sslv2_header", "tls.invalid_ssl_record")
    parser = TlsParser()
    parser.feed(HELLO, CLIENT)
    assert parser.feed(b"\x80\x05\x00\x00\x01", SERVER) == []    # the ERROR's body is not all there
    [tx] = parser.feed(b"\x00\x00" + record(21, b"\x02"), SERVER)
    assert tx.events == ("tls.error_message_encountered", "tls.invalid_alert_message")


def test_long_sslv2_record_is_skipped_not_buffered():
    parser = TlsParser()
    parser.feed(HELLO, CLIENT)
    parser.feed(b"\xff\xff\x04" + b"\x00" * 1000, SERVER)        # 32767 bytes announced
    assert parser.buffered_bytes == 0
    for _ in range(31):
        parser.feed(b"\x00" * 1024, SERVER)
    assert parser.buffered_bytes == 0
    [tx] = parser.feed(b"\x00" * (32766 - 1000 - 31 * 1024) + record(21, b"\x02"), SERVER)
    assert tx.events == ("tls.invalid_alert_message",)


def test_sslv2_client_hello_shorter_than_its_fixed_fields():
    assert events((CLIENT, HELLO), (CLIENT, b"\x80\x06\x01\x03\x01\x00\x00\x00")) == \
        ("tls.invalid_ssl_record",)
    assert events((CLIENT, HELLO), (CLIENT, b"\x80\x07\x01\x03\x01\x00\x00\x00\x00")) == ()


def test_unknown_record_type_from_tls_1_0_peer_drops_the_rest_and_goes_on():
    hello = hello_record(version=0x0301)
    # The fatal case: a TLS 1.2 client's parsing stops (the heartbeat is not read).
    assert events((CLIENT, HELLO), (CLIENT, record(25, b"\x00")),
                  (CLIENT, record(24, b"\x01\x40\x00"))) == ("tls.invalid_record_type",)
    # A TLS 1.0 client's: what came with the record is dropped, the next data read.
    assert events((CLIENT, hello), (CLIENT, record(25, b"\x00") + record(24, b"\x01\x40\x00")),
                  (CLIENT, record(24, b"\x01\x40\x00"))) == \
        ("tls.invalid_record_type", "tls.overflow_heartbeat_message")


def test_record_version_is_the_hello_version_once_the_hello_is_read():
    # A hello announcing an unknown version: the side's next record is refused
    # whatever its header says, unless supported_versions names one it knows.
    unknown = hello_record(version=0x0305, extensions=())
    assert events((CLIENT, unknown), (CLIENT, record(23, b"x"))) == ("tls.invalid_record_version",)
    listed = hello_record(version=0x0305, extensions=(extension(43, b"\x04\x0a\x0a\x03\x04"),))
    assert events((CLIENT, listed), (CLIENT, record(23, b"x"))) == ()
    # The header version no longer counts after the hello.
    assert events((CLIENT, HELLO), (CLIENT, record(23, b"x", version=0x9999))) == ()


def test_record_length_bounds():
    assert events((CLIENT, HELLO), (CLIENT, record(23, b"x" * MAX_RECORD_LENGTH))) == ()
    assert events((CLIENT, HELLO), (CLIENT, record(23, b"x" * (MAX_RECORD_LENGTH + 1)))) == \
        ("tls.invalid_record_length",)


def test_handshake_message_header_split_over_records():
    hello = message(1, client_hello(extensions=(sni(),)))
    assert events((CLIENT, record(22, hello[:2]) + record(22, hello[2:]))) == ("tls.invalid_ssl_record",)
    assert events((CLIENT, record(22, hello[:6]) + record(22, hello[6:]))) == ()
    split = record(22, message(14, b"") + hello[:2]) + record(22, hello[2:])
    assert events((CLIENT, split)) == ("tls.invalid_ssl_record", "tls.invalid_handshake_message")


def test_message_body_spanning_records_is_read_whole():
    hello = message(1, client_hello(extensions=(sni(name_type=7),)))
    pieces = record(22, hello[:10]) + record(22, hello[10:20]) + record(22, hello[20:])
    assert events((CLIENT, pieces)) == ("tls.invalid_sni_type",)


def test_unknown_message_is_skipped_to_its_record_end_only():
    # Suricata skips an unknown message only within its record: the next
    # record starts a new message, here a ClientHello with a bad SNI.
    unknown = record(22, message(99, b"x" * 100)[:20])
    bad = record(22, message(1, client_hello(extensions=(sni(name_type=7),))))
    assert events((CLIENT, unknown + bad)) == ("tls.invalid_handshake_message", "tls.invalid_sni_type")


def test_no_handshake_events_after_change_cipher_spec():
    ccs = record(20, b"\x01")
    encrypted_finished = record(22, b"\x99" * 40)
    assert events((CLIENT, HELLO), (CLIENT, ccs + encrypted_finished)) == ()
    # Either side's: the server's handshake records are no longer read either.
    assert events((CLIENT, HELLO), (CLIENT, ccs), (SERVER, encrypted_finished)) == ()
    assert events((CLIENT, HELLO), (SERVER, encrypted_finished)) == ("tls.invalid_handshake_message",)


def test_tls13_client_change_cipher_spec_before_server_hello():
    # A TLS 1.3 client's early CCS (middlebox compatibility): the ServerHello
    # is still read, unknown messages of the side that sent the CCS are not flagged.
    hello = hello_record(extensions=(extension(43, b"\x02\x03\x04"),))
    ccs = record(20, b"\x01")
    bad_server_hello = record(22, message(2, server_hello(extensions=(sni(name_type=7),))))
    assert events((CLIENT, hello), (CLIENT, ccs), (SERVER, bad_server_hello)) == \
        ("tls.invalid_sni_type",)
    assert events((CLIENT, hello), (CLIENT, ccs + record(22, message(99, b"")))) == ()


def test_hello_length_checks():
    def hello_events(**fields):
        return events((CLIENT, hello_record(**fields)))
    assert hello_events(ciphers=b"\x13\x01\xc0") == ("tls.handshake_invalid_length",)
    assert hello_events(extensions=(sni(),), extensions_length=100) == ("tls.handshake_invalid_length",)
    assert hello_events(extensions=(extension(13, b"\x00\x03\x04\x03\x05"),)) == \
        ("tls.handshake_invalid_length",)                        # odd signature algorithms
    assert hello_events(extensions=(extension(16, b"\x00\x03\x05h2"),)) == \
        ("tls.handshake_invalid_length",)                        # an ALPN name past the extension
    assert hello_events(extensions=(extension(16, b"\x00\x03\x02h2"),)) == ()
    assert hello_events(extensions=(extension(43, b"\x01\x03"),)) == ("tls.handshake_invalid_length",)
    # Compression methods, then a byte: no extensions, not an error for Suricata.
    assert events((CLIENT, record(22, message(1, client_hello(extensions=None) + b"\x00")))) == ()


def test_first_failing_extension_ends_the_hello():
    assert events((CLIENT, hello_record(extensions=(sni(name_type=1), sni(b""))))) == \
        ("tls.invalid_sni_type",)
    assert events((CLIENT, hello_record(extensions=(sni(b""), sni(name_type=1))))) == \
        ("tls.invalid_sni_length",)


def test_odd_curve_list_counts_for_the_first_client_hello_only():
    # With JA3 computed, the first ClientHello's curve list is read pair by pair.
    odd = extension(10, b"\x00\x03\x00\x17\x00")
    assert events((CLIENT, hello_record(extensions=(odd,)))) == ("tls.handshake_invalid_length",)
    assert events((CLIENT, hello_record(extensions=(extension(10, b"\x00\x03\x00\x17\x00\x00"),)))) == ()
    assert events((CLIENT, HELLO + hello_record(extensions=(odd,)))) == ()


def test_second_client_hello_with_sni():
    # A ClientHello again (HelloRetryRequest without middlebox compatibility):
    # the side already has an SNI.
    assert events((CLIENT, HELLO), (SERVER, record(22, message(2, server_hello()))),
                  (CLIENT, HELLO)) == ("tls.multiple_sni_extensions",)


def test_certificate_chain_framing():
    def server_certificate(body: bytes) -> tuple:
        return events((CLIENT, HELLO), (SERVER, record(22, message(11, body))))
    assert server_certificate(certificate(entry(), entry()[:5])) == ("tls.invalid_certificate",)
    assert server_certificate(certificate()) == ()
    # A chain longer than its message is dropped without an event, and the
    # next Certificate message is read; only the side's first one is.
    assert server_certificate(certificate(entry(), chain_length=100)) == ()
    assert events((CLIENT, HELLO),
                  (SERVER, record(22, message(11, certificate(entry(), chain_length=100)))),
                  (SERVER, record(22, message(11, certificate(entry(), b"\x00"))))) == \
        ("tls.invalid_certificate",)
    assert events((CLIENT, HELLO),
                  (SERVER, record(22, message(11, certificate(entry())))
                   + record(22, message(11, certificate(entry(), b"\x00"))))) == ()
    # The client's Certificate too.
    assert events((CLIENT, HELLO + record(22, message(11, certificate(b"\x00\x00\x09")))),) == \
        ("tls.invalid_certificate",)


def test_heartbeat_in_flight():
    request, response = heartbeat(kind=1), heartbeat(kind=2)
    assert events((CLIENT, HELLO), (CLIENT, request), (SERVER, response), (CLIENT, request)) == ()
    assert events((CLIENT, HELLO), (CLIENT, request), (CLIENT, request)) == \
        ("tls.invalid_heartbeat_message",)
    assert events((CLIENT, HELLO), (CLIENT, heartbeat(kind=3))) == ("tls.invalid_heartbeat_message",)
    assert events((CLIENT, HELLO), (CLIENT, record(24, b"\x03\x00"))) == ()     # under 3 bytes: skipped


def test_heartbeat_under_encryption_is_not_checked():
    ccs = record(20, b"\x01")
    assert events((CLIENT, HELLO), (SERVER, ccs), (CLIENT, heartbeat(kind=3, payload=9000, sent=0))) == ()
    assert events((CLIENT, HELLO), (SERVER, ccs), (CLIENT, heartbeat()), (CLIENT, heartbeat())) == \
        ("tls.invalid_heartbeat_message",)


def test_no_more_events_once_suricata_stops():
    heartbleed = record(24, b"\x01\x40\x00", version=0x0302)
    assert events((CLIENT, HELLO), (CLIENT, heartbleed), (SERVER, record(21, b"\x02"))) == \
        ("tls.overflow_heartbeat_message",)
    parser = TlsParser()
    parser.feed(HELLO, CLIENT)
    parser.feed(b"", SERVER, gap=True)                 # Suricata's TLS parser takes no gaps
    assert parser.feed(heartbleed, CLIENT) == [] and parser.tx.events == ()
    # This parser still reads the records Suricata gave up on.
    parser = TlsParser()
    hello = HELLO[5:]
    parser.feed(record(22, hello[:3]), CLIENT)         # Suricata stops here
    [tx] = parser.feed(record(22, hello[3:]) + heartbleed, CLIENT)
    assert tx.events == ("tls.invalid_ssl_record",) and tx.buffers["tls.sni"] == b"camera.example"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.binary(max_size=200)), max_size=10))
def test_random_records_raise_only_listed_events(pieces):
    parser = TlsParser()
    parser.feed(HELLO, CLIENT)
    for to_server, data in pieces:
        parser.feed(data, to_server)
    assert set(parser.tx.events) <= APPLAYER_EVENTS
    assert len(parser.tx.events) == len(set(parser.tx.events))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 40), max_size=30))
def test_events_do_not_depend_on_segmentation(cuts):
    # Suricata reads whole records (and SSLv2 records once complete): where
    # TCP cuts the stream does not change its events.
    stream = (hello_record(extensions=(sni(), sni(b"b.example")))
              + record(22, message(99, b"xx")) + b"\x80\x03\x00\x00\x01"
              + record(24, b"\x01\x40\x00", version=0x0302))
    parser = TlsParser()
    position = 0
    for cut in cuts:
        parser.feed(stream[position:position + cut], CLIENT)
        position += cut
    parser.feed(stream[position:], CLIENT)
    assert parser.tx.events == ("tls.multiple_sni_extensions", "tls.invalid_handshake_message",
                                "tls.error_message_encountered", "tls.overflow_heartbeat_message")
