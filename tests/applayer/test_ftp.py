"""FTP: the control connection's announcements, the data connection's file."""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings, strategies as st

from tests.applayer.applayer_helpers import DATA

from ips.applayer.ftp import (FILE_DATA_LIMIT, MAX_EXPECTED, MAX_LINE_BYTES, FtpDataParser,
                              FtpParser)
from ips.config import Config
from ips.replay import replay


@pytest.mark.parametrize("to_server, line, expected", [
    (False, b"227 Entering Passive Mode (203,0,113,9,195,80).", ("203.0.113.9", 50000, False)),
    (False, b"227 =203,0,113,9,0,21", ("203.0.113.9", 21, False)),      # no parentheses (RFC 1123)
    (False, b"229 Entering Extended Passive Mode (|||6446|)", (None, 6446, False)),
    (True, b"PORT 192,0,2,20,200,10", ("192.0.2.20", 51210, True)),
    (True, b"port 192,0,2,20,200,10", ("192.0.2.20", 51210, True)),
    (True, b"EPRT |1|192.0.2.20|6275|", ("192.0.2.20", 6275, True)),
    (True, b"EPRT |2|2001:db8::20|5282|", ("2001:db8::20", 5282, True)),
])
def test_announced_data_connections(to_server, line, expected):
    parser = FtpParser()
    assert parser.feed(line + b"\r\n", to_server) == []       # no transaction: only announcements
    assert parser.expected == [expected]


@pytest.mark.parametrize("to_server, line", [
    (False, b"227 Entering Passive Mode (203,0,113,9,300,80)."),     # a number over 255
    (False, b"227 Entering Passive Mode (203,0,113)."),
    (False, b"229 Entering Extended Passive Mode (|||0|)"),
    (True, b"PORT 192,0,2,20,0,0"),                                   # port 0
    (True, b"EPRT |1|not-an-address|6275|"),
    (False, b"PORT 192,0,2,20,200,10"),                               # a server does not send PORT
    (True, b"RETR PORT 192,0,2,20,200,10"),
])
def test_what_announces_nothing(to_server, line):
    parser = FtpParser()
    parser.feed(line + b"\r\n", to_server)
    assert parser.expected == []


def test_a_line_cut_into_segments_and_a_long_line():
    parser = FtpParser()
    for piece in (b"227 Entering Passive", b" Mode (203,0,113,9,", b"195,80).\r", b"\n"):
        parser.feed(piece, False)
    assert parser.expected == [("203.0.113.9", 50000, False)]
    parser = FtpParser()
    parser.feed(b"220 " + b"x" * (3 * MAX_LINE_BYTES) + b"(203,0,113,9,195,80)\r\n", False)
    parser.feed(b"227 (203,0,113,9,195,81)\r\n", False)
    assert parser.expected == [("203.0.113.9", 50001, False)]    # the long line's tail is skipped


def test_announcements_are_bounded():
    parser = FtpParser()
    parser.feed(b"".join(b"227 (203,0,113,9,195,%d)\r\n" % i for i in range(MAX_EXPECTED + 5)), False)
    assert len(parser.expected) == MAX_EXPECTED


def test_the_data_connection_is_file_data_one_way_and_bounded():
    parser = FtpDataParser()
    [tx] = parser.feed(b"\x7fE", False)
    assert tx.app_proto == "ftp-data" and tx.buffers["file.data"] == b"\x7fE"    # its first bytes at once
    parser.feed(b"LF", False)
    assert tx.buffers["file.data"] == b"\x7fELF"
    assert parser.feed(b"ignored", True) == []
    parser.feed(b"x" * (2 * FILE_DATA_LIMIT), False)
    [done] = parser.finish()
    assert done is tx and tx.complete and len(tx.buffers["file.data"]) == FILE_DATA_LIMIT


def test_a_real_session_names_its_control_and_data_connections(tmp_path):
    # nDPI's ftp.pcap: one control connection, two passive data connections.
    replay([str(DATA / "throughput" / "ndpi-all" / "ftp.pcap")], None, tmp_path, Config(),
           progress=False)
    flows = [json.loads(line) for line in (tmp_path / "eve.json").read_text().splitlines()]
    named = sorted((f["app_proto"], f["dest_port"]) for f in flows if f["event_type"] == "flow")
    assert named == [("ftp", 21), ("ftp-data", 24523), ("ftp-data", 25685)]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.binary(max_size=120)), max_size=20))
def test_random_input_never_raises_and_stays_bounded(pieces):
    parser = FtpParser()
    for to_server, piece in pieces:
        parser.feed(piece, to_server)
    assert len(parser.expected) <= MAX_EXPECTED
    assert all(len(held) <= MAX_LINE_BYTES for held in parser.lines.values())
