"""Telnet: IAC stripping and login attempts (Mirai capture)."""
from __future__ import annotations

from hypothesis import given, settings, strategies as st

from tests.applayer.applayer_helpers import PCAPS, Pipeline, feed_all

from ips.applayer.telnet import MAX_LINE_BYTES, MAX_TAIL_BYTES, TelnetParser, _Stripper


def test_negotiation_is_stripped_across_segments():
    stripper = _Stripper()
    stream = b"\xff\xfd\x18\xff\xfb\x01lo\xff\xfa\x18\x01\xff\xf0gin\xff\xff:"
    text = b"".join(stripper.strip(stream[i:i + 1]) for i in range(len(stream)))
    assert text == b"login\xff:"


def test_failed_then_successful_login():
    parser = TelnetParser()
    txs = feed_all(parser, [
        (False, b"\xff\xfd\x01BusyBox v1.2\r\nDVR login: "), (True, b"admin\r\n"),
        (False, b"Password: "), (True, b"wrong\r\n"),
        (False, b"Login incorrect\r\nDVR login: "),
        (True, b"r"), (True, b"o"), (True, b"ox\x08t\r\x00"),     # character mode, backspace
        (False, b"Password: "), (True, b"xc3511\r\n"),
        (False, b"\r\n# "), (True, b"enable\r\n"), (True, b"/bin/busybox MIRAI\r\n"),
    ])
    transactions = list({id(tx): tx for tx in txs}.values())
    # the record is only set once the outcome is known
    assert [tx.complete for tx in transactions] == [True, True, False]
    assert transactions[2].record is None
    assert transactions[0].record == {"login": "admin", "password": "wrong", "result": "failure"}
    assert transactions[1].record == {"login": "root", "password": "xc3511", "result": "success"}
    assert transactions[2].buffers["telnet.command"] == [b"enable", b"/bin/busybox MIRAI"]
    [session] = parser.finish()
    assert session is transactions[2] and session.complete
    assert session.record == {"login": "root", "commands": ["enable", "/bin/busybox MIRAI"]}


def test_mirai_capture():
    records = Pipeline().run(PCAPS / "attack/id2t/mirai_botnet.pcap").records("telnet")
    successes = [r for r in records if r.get("result") == "success"]
    assert successes and successes[0] == {"login": "root", "password": "root", "result": "success"}
    sessions = [r for r in records if "commands" in r]
    assert sessions and "/bin/busybox MIRAI" in sessions[0]["commands"]


def test_benign_capture():
    records = Pipeline().run(PCAPS / "benign/ndpi/telnet.pcap").records("telnet")
    assert records[0] == {"login": "fake", "password": "user", "result": "success"}
    assert records[1]["commands"][0] == "/sbin/ping www.yahoo.com"


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.binary(max_size=80)), max_size=20))
def test_random_never_raises_and_bounded(pieces):
    parser = TelnetParser()
    feed_all(parser, pieces)
    parser.finish()
    assert len(parser.line) <= MAX_LINE_BYTES and len(parser.tail) <= MAX_TAIL_BYTES
