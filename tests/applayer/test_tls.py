"""TLS parser: SNI/JA3/JA4/certificate against nDPI's expected output for the
same capture, record fragmentation evasions, bounds."""
from __future__ import annotations

import re

import pytest
from hypothesis import given, settings, strategies as st

from tests.applayer.applayer_helpers import PCAPS, Pipeline, feed_all, payloads

from ips.applayer import tls as tls_module
from ips.applayer.tls import TlsParser, is_grease

ALEXA = PCAPS / "benign/ndpi/alexa-app.pcapng"


@pytest.fixture(scope="module")
def alexa():
    return Pipeline().run(ALEXA)


def client_hello_record() -> bytes:
    for _sport, dport, data in payloads(ALEXA, udp=False):
        if dport == 443 and data[:1] == b"\x16" and data[5:6] == b"\x01" and b"www.amazon.com" in data:
            length = int.from_bytes(data[3:5], "big")
            return data[:5 + length]
    raise AssertionError("no ClientHello in capture")


def test_fingerprints_match_ndpi_expected_output(alexa):
    expected = set()
    text = (PCAPS / "benign/ndpi/expected/alexa-app.pcapng.out").read_text()
    for match in re.finditer(r"Hostname/SNI: ([^\]]+)\].*?JA3C: (\w+)\]\[JA4: (\w+)\]", text):
        expected.add(match.groups())
    ours = {(r.get("sni"), r["ja3"]["hash"], r["ja4"]) for r in alexa.records("tls") if "ja3" in r}
    assert len(expected) >= 5
    assert expected <= ours


def test_certificate_fields_match_ndpi(alexa):
    [record] = [r for r in alexa.records("tls")
                if r.get("sni") == "www.amazon.com" and r.get("fingerprint", "").startswith("ef:14")][:1]
    assert record["subject"] == "C=US, ST=Washington, L=Seattle, O=Amazon.com, Inc., CN=www.amazon.com"
    assert record["issuerdn"].endswith("CN=Symantec Class 3 Secure Server CA - G4")
    assert record["fingerprint"] == "ef:14:6c:f1:5c:4a:f8:4d:ba:83:c2:1e:6c:5b:ed:c4:fa:34:1c:3e"
    assert record["version"] == "TLS 1.2"
    assert record["notafter"] == "2017-12-31T23:59:59"
    assert "www.amazon.com" in record["subjectaltname"]
    assert record["serial"].count(":") >= 1 and record["serial"] == record["serial"].upper()


def reference_buffers(record: bytes) -> dict:
    [tx] = TlsParser().feed(record, True)
    return tx.buffers


def test_client_hello_buffers():
    buffers = reference_buffers(client_hello_record())
    assert buffers["tls.sni"] == b"www.amazon.com"
    assert buffers["ja3.hash"] == b"bdf21e38e1f69776df407235625e75e2"   # as nDPI reports it
    assert buffers["ja4.hash"] == b"t12d220500_5fd681855ab9_c70a3c84db07"
    assert buffers["ja3.string"].startswith(b"771,")


def test_client_hello_in_one_byte_records_split_over_segments():
    """Evasion: the handshake message spread over one-byte TLS records, each
    record header itself split across TCP segments."""
    record = client_hello_record()
    handshake = record[5:]
    fragmented = b"".join(b"\x16\x03\x01\x00\x01" + bytes([byte]) for byte in handshake)
    parser = TlsParser()
    txs = []
    for index in range(0, len(fragmented), 7):
        txs += parser.feed(fragmented[index:index + 7], True)
    assert txs and all(tx is parser.tx for tx in txs)
    assert parser.tx.buffers == reference_buffers(record)
    assert parser.buffered_bytes == 0
    # Suricata takes a handshake record shorter than a message header for
    # an error (and stops there): the evasion is flagged, and still read.
    assert parser.tx.events == ("tls.invalid_ssl_record",)


def test_handshake_done_after_both_sides_encrypt():
    parser = TlsParser()
    parser.feed(client_hello_record(), True)
    assert not parser.handshake_done
    parser.feed(b"\x14\x03\x03\x00\x01\x01", False)          # server ChangeCipherSpec
    [tx] = parser.feed(b"\x17\x03\x03\x00\x02ab", True)       # client application data
    assert parser.handshake_done and tx.complete and tx.record["sni"] == "www.amazon.com"


def test_not_tls_stops_with_event():
    parser = TlsParser()
    [tx] = parser.feed(b"\x05\x03\x03\x00\x02ab", True)
    assert tx.events == ("tls.invalid_record_type",)
    assert parser.client.stopped and parser.feed(client_hello_record(), True) == []


def test_grease():
    assert is_grease(0x0A0A) and is_grease(0xFAFA) and not is_grease(0x0A0B) and not is_grease(0x1301)
    assert tls_module._GREASE == {value for value in range(0x10000) if is_grease(value)}


def test_handshake_bound():
    parser = TlsParser()
    # a handshake message announcing 16 MiB is refused, not buffered
    record = b"\x16\x03\x01\x40\x00" + b"\x01\xff\xff\xff" + b"\x00" * (0x4000 - 4)
    for _ in range(5):
        parser.feed(record, True)
        assert parser.buffered_bytes <= tls_module.MAX_HANDSHAKE_BYTES + tls_module.MAX_RECORD_BYTES
    assert "tls.handshake_too_large" in parser.events


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.binary(max_size=300)), max_size=12))
def test_random_input_never_raises(pieces):
    parser = TlsParser()
    feed_all(parser, pieces)
    parser.finish()
    assert parser.buffered_bytes <= 2 * (tls_module.MAX_HANDSHAKE_BYTES + tls_module.MAX_RECORD_BYTES)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_mutated_client_hello_never_raises(data):
    record = bytearray(client_hello_record())
    for _ in range(data.draw(st.integers(1, 6))):
        position = data.draw(st.integers(0, len(record) - 1))
        record[position] = data.draw(st.integers(0, 255))
    parser = TlsParser()
    parser.feed(bytes(record), True)
    parser.finish()


def _certificate_message(der: bytes) -> bytes:
    entry = len(der).to_bytes(3, "big") + der
    chain = len(entry).to_bytes(3, "big") + entry
    return b"\x0b" + len(chain).to_bytes(3, "big") + chain


def _server_certificate(der: bytes) -> TlsParser:
    parser = TlsParser()
    message = _certificate_message(der)
    parser.feed(b"\x16\x03\x03" + len(message).to_bytes(2, "big") + message, False)
    return parser


def _self_signed_der() -> bytes:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
                      x509.NameAttribute(NameOID.COMMON_NAME, "camera.example")])
    start = datetime.datetime(2020, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(key.public_key()).serial_number(0xC0FFEE)
                   .not_valid_before(start).not_valid_after(start + datetime.timedelta(days=30))
                   .sign(key, hashes.SHA256()))
    return certificate.public_bytes(serialization.Encoding.DER)


def test_a_cached_certificate_gives_the_same_fields_and_events():
    import hashlib

    not_a_certificate = bytes.fromhex("3003020101")
    tls_module._certificates.clear()
    for _ in range(2):
        parser = _server_certificate(not_a_certificate)
        assert parser.events == ["tls.certificate_invalid"]
        assert "tls.cert_subject" not in parser.tx.buffers
    der = _self_signed_der()
    first, second = _server_certificate(der), _server_certificate(der)
    assert (first.tx.buffers, first.record) == (second.tx.buffers, second.record)
    assert first.record == {
        "subject": "C=US, CN=camera.example", "issuerdn": "C=US, CN=camera.example",
        "serial": "00:C0:FF:EE",
        "fingerprint": ":".join(hashlib.sha1(der).hexdigest()[i:i + 2] for i in range(0, 40, 2)),
        "notbefore": "2020-01-02T03:04:05", "notafter": "2020-02-01T03:04:05"}
    # Suricata's forms, which ET's rules match: the serial's DER bytes
    # (0xC0 has its high bit set, so DER keeps a 00) and the colon SHA-1.
    assert first.tx.buffers["tls.cert_serial"] == b"00:C0:FF:EE"
    assert first.tx.buffers["tls.cert_fingerprint"] == first.record["fingerprint"].encode()
    assert len(tls_module._certificates) <= tls_module._CERTIFICATE_CACHE_LIMIT
    # A certificate larger than the per-entry bound is decoded every time, not kept.
    tls_module._certificates.clear()
    big = not_a_certificate + b"\x00" * tls_module._CERTIFICATE_CACHE_BYTES
    assert _server_certificate(big).events == ["tls.certificate_invalid"]
    assert tls_module._certificates == {}


def test_client_version_is_the_first_supported_version_suricata_knows():
    # tls.version: Suricata takes the first valid entry (GREASE skipped),
    # JA4 the highest: a client listing 1.2 before 1.3 is "TLS 1.2", "t13".
    from scapy.layers.tls.extensions import TLS_Ext_SupportedVersion_CH
    from scapy.layers.tls.handshake import TLSClientHello
    from scapy.layers.tls.record import TLS
    hello = TLS(msg=[TLSClientHello(ciphers=[0x1301], ext=[
        TLS_Ext_SupportedVersion_CH(versions=[0x0A0A, 0x0303, 0x0304])])])
    [tx] = TlsParser().feed(bytes(hello), True)
    assert tx.buffers["tls.version"] == b"TLS 1.2"
    assert tx.buffers["ja4.hash"].startswith(b"t13")


def test_every_tls_flow_gets_its_eve_record_even_when_bypassed(tmp_path):
    # The handshake's last transaction completes on data the peer's ACK
    # releases and waits for its own direction's next packet; the flow used
    # to be bypassed (encrypted) first, and 33 of alexa-app's 88 TLS flows
    # lost their tls record. Now the bypass waits for it.
    import json

    from ips.config import Config
    from ips.replay import replay
    config = Config()
    config.checksum_mode = "none"
    replay([str(ALEXA)], None, tmp_path, config, progress=False)
    records = [json.loads(line) for line in (tmp_path / "eve.json").read_text().splitlines()]
    flows = {r["flow_id"]: r for r in records
             if r["event_type"] == "flow" and r.get("app_proto") == "tls"}
    logged = {r["flow_id"] for r in records if r["event_type"] == "tls"}
    bypassed = [f for f, r in flows.items() if r["flow"].get("action") == "bypass"]
    assert len(flows) == 88 and len(bypassed) > 80
    assert set(flows) <= logged
