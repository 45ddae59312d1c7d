"""Rules on protocols and buffers that once loaded and could never fire.

ET Open has 44 `alert ftp`, 88 `alert smtp`, 36 `alert smb` and 4 `alert ssh`
rules on raw bytes; no flow was ever named so, so they were loaded and
inert. FTP, SMTP, SSH and SMB are now detected (not parsed), and the rules
that need a parser (`alert smtp ... file.data`) are refused instead. 431 ET
rules read `tls.certs` and 7 `ja3s.hash`, which the TLS parser never filled.
"""
from __future__ import annotations

import re
from pathlib import Path

from scapy.all import wrpcap

from ips.config import Config
from ips.detect import DetectEngine
from ips.replay import replay
from tests.applayer.applayer_helpers import PCAPS
from tests.detect.factories import AlertLog
from tests.detect.make_cases import _tcp_session

# ET Open's rule, as shipped
FTP_RULE = ('alert ftp $EXTERNAL_NET any -> $HOME_NET any (msg:"GPL FTP passwd retrieval attempt"; '
            'flow:to_server,established; content:"RETR"; nocase; content:"passwd"; '
            'reference:arachnids,213; classtype:suspicious-filename-detect; sid:2100356; rev:7; '
            'metadata:created_at 2010_09_23, updated_at 2019_07_26;)')
OUTSIDE, NAS = "203.0.113.5", "192.0.2.30"


def _run(tmp_path: Path, rules: str, pcaps: list[str]) -> AlertLog:
    (tmp_path / "test.rules").write_text(rules + "\n")
    config = Config()
    engine, report = DetectEngine.load([str(tmp_path / "test.rules")], config)
    assert not report.skipped and not report.errors
    alerts = AlertLog()
    replay(pcaps, engine, tmp_path / "out", config, consumers=[alerts], progress=False)
    return alerts


def test_an_ftp_rule_fires_on_ftp_and_not_on_the_same_bytes_in_pop3(tmp_path):
    ftp = _tcp_session([(False, b"220 (vsFTPd 3.0.3)\r\n"), (True, b"USER anonymous\r\n"),
                        (False, b"331 Please specify the password.\r\n"), (True, b"PASS x@y\r\n"),
                        (False, b"230 Login successful.\r\n"), (True, b"RETR ../../etc/passwd\r\n")],
                       sport=41000, client=OUTSIDE, server=NAS, dport=21)
    pop3 = _tcp_session([(False, b"+OK POP3 ready\r\n"), (True, b"USER alice\r\n"),
                         (False, b"+OK\r\n"), (True, b"RETR passwd\r\n")],
                        sport=41001, start=10.0, client=OUTSIDE, server=NAS, dport=110)
    wrpcap(str(tmp_path / "ftp.pcap"), ftp + pop3)
    alerts = _run(tmp_path, FTP_RULE, [str(tmp_path / "ftp.pcap")])
    assert [(a.signature_id, a.src_port) for a in alerts.events] == [(2100356, 41000)]


def test_tls_certs_reads_every_certificate_of_the_chain_and_ja3s_is_filled(tmp_path):
    # alexa-app: www.amazon.com's chain; the issuer's name is in the second
    # certificate's subject, so only the whole chain shows it as a subject.
    # The JA3S is nDPI's, from its expected output for the same capture.
    ja3s = re.search(r"JA3S: (\w+)", (PCAPS / "benign/ndpi/expected/alexa-app.pcapng.out")
                     .read_text()).group(1)
    rules = "\n".join([
        'alert tls any any -> any any (msg:"intermediate"; tls.certs; '
        'content:"Symantec Class 3 Secure Server CA - G4"; sid:1;)',
        f'alert tls any any -> any any (msg:"ja3s"; ja3s.hash; content:"{ja3s}"; sid:2;)'])
    alerts = _run(tmp_path, rules, [str(PCAPS / "benign/ndpi/alexa-app.pcapng")])
    assert {1, 2} <= {a.signature_id for a in alerts.events}


def test_ja4_hash_matches_ndpi_fingerprints(tmp_path):
    # `ja4.hash` (Suricata 7.0.5+, 8): the parser already computed JA4 for
    # EVE; the rule keyword was refused. Two of nDPI's fingerprints for this
    # capture, one frequent and one seen once, and one nDPI never reports.
    expected = (PCAPS / "benign/ndpi/expected/alexa-app.pcapng.out").read_text()
    assert expected.count("JA4: t12d1510h2_f0daf39aad75_e69ac49eb88f") == 73
    assert expected.count("JA4: t12d200700_93851ff8129a_036209cd1ead") == 1
    rules = "\n".join([
        'alert tls any any -> any any (msg:"a"; ja4.hash; '
        'content:"t12d1510h2_f0daf39aad75_e69ac49eb88f"; sid:1;)',
        'alert tls any any -> any any (msg:"b"; ja4.hash; '
        'content:"t12d200700_93851ff8129a_036209cd1ead"; sid:2;)',
        'alert tls any any -> any any (msg:"c"; ja4.hash; content:"t13d"; startswith; sid:3;)'])
    alerts = _run(tmp_path, rules, [str(PCAPS / "benign/ndpi/alexa-app.pcapng")])
    fired = [a.signature_id for a in alerts.events]
    assert fired.count(1) == 73 and fired.count(2) == 1 and 3 not in fired


def test_cert_fingerprint_and_serial_are_in_suricatas_colon_form(tmp_path):
    # ET writes `tls.cert_serial; content:"0A:E1:…"` and fingerprints as
    # colon-separated SHA-1: in bare hex (as before) such rules never fired.
    rules = "\n".join([
        'alert tls any any -> any any (msg:"fp"; tls.cert_fingerprint; '
        'content:"ef:14:6c:f1:5c:4a:f8:4d:ba:83:c2:1e:6c:5b:ed:c4:fa:34:1c:3e"; sid:1;)',
        'alert tls any any -> any any (msg:"serial"; tls.cert_serial; '
        'pcre:"/^(?:[0-9A-F]{2}:)+[0-9A-F]{2}$/"; sid:2;)'])
    alerts = _run(tmp_path, rules, [str(PCAPS / "benign/ndpi/alexa-app.pcapng")])
    fired = {a.signature_id for a in alerts.events}
    assert fired == {1, 2}


def test_tls_legacy_keywords_chain_length_alt_names_and_randoms(tmp_path):
    # suricata-verify's tls-subject, tls-issuerdn, tls-fingerprint-alert,
    # tls-cert-chain-len, tls-subjectaltname and tls-random cases use these.
    # alexa-app: 88 TLS handshakes, 34 with a certificate, 31 of them
    # Amazon's, 5 of those www.amazon.com's (fingerprint ef:14:...).
    rules = "\n".join([
        'alert tls any any -> any any (msg:"s"; tls.subject:"O=Amazon.com, Inc."; sid:1;)',
        'alert tls any any -> any any (msg:"i"; tls.issuerdn:"Symantec Class 3"; sid:2;)',
        'alert tls any any -> any any (msg:"f"; tls.fingerprint:'
        '"EF:14:6c:f1:5c:4a:f8:4d:ba:83:c2:1e:6c:5b:ed:c4:fa:34:1c:3e"; sid:3;)',
        # the whole fingerprint or nothing
        'alert tls any any -> any any (msg:"f4"; tls.fingerprint:"ef:14:6c:f1"; sid:4;)',
        'alert tls any any -> any any (msg:"!s"; tls.subject:!"O=Amazon.com, Inc."; sid:5;)',
        'alert tls any any -> any any (msg:"c"; tls.cert_chain_len:>1; sid:6;)',
        'alert tls any any -> any any (msg:"c1"; tls.cert_chain_len:1; sid:11;)',
        'alert tls any any -> any any (msg:"a"; tls.subjectaltname; content:"www.amazon.com"; sid:7;)',
        'alert tls any any -> any any (msg:"r"; flow:to_server; tls.random; bsize:32; sid:8;)',
        'alert tls any any -> any any (msg:"b"; flow:to_client; tls.random_bytes; bsize:28; sid:9;)',
        'alert tls any any -> any any (msg:"t"; tls.random_time; bsize:!4; sid:12;)'])
    alerts = _run(tmp_path, rules, [str(PCAPS / "benign/ndpi/alexa-app.pcapng")])
    fired = {sid: [a.signature_id for a in alerts.events].count(sid) for sid in range(1, 13)}
    assert fired[1] == 31 and fired[5] == 3 and fired[6] == fired[1] + fired[5] == 34
    assert fired[2] == 31 and fired[3] == fired[7] == 5
    assert fired[8] == fired[9] == 88
    assert fired[4] == fired[11] == fired[12] == 0


def test_tls_alpn_is_each_protocol_the_client_offers(tmp_path):
    # tls.alpn (Suricata 8): the ClientHello's ALPN list, one buffer per
    # protocol. nDPI lists 75 hellos offering "h2;http/1.1" in alexa-app.
    expected = (PCAPS / "benign/ndpi/expected/alexa-app.pcapng.out").read_text()
    offered = expected.count("ALPNs: h2;http/1.1]")
    assert offered == 75
    rules = "\n".join([
        'alert tls any any -> any any (msg:"a"; tls.alpn; content:"http/1.1"; startswith; endswith; sid:1;)',
        'alert tls any any -> any any (msg:"b"; tls.alpn; content:"h2"; startswith; endswith; sid:2;)',
        'alert tls any any -> any any (msg:"c"; tls.alpn; content:"http/1"; startswith; endswith; sid:3;)'])
    alerts = _run(tmp_path, rules, [str(PCAPS / "benign/ndpi/alexa-app.pcapng")])
    fired = [a.signature_id for a in alerts.events]
    assert fired.count(1) == fired.count(2) == offered and 3 not in fired
