"""Telnet: IAC stripping and login attempts (Mirai capture)."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from tests.applayer.applayer_helpers import PCAPS, Pipeline, feed_all

from ips.applayer.telnet import (MAX_COMMANDS, MAX_LINE_BYTES, MAX_QUEUED_LINES, MAX_TAIL_BYTES, TelnetParser,
                                 _Stripper)


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


def test_every_command_line_is_inspected_past_one_record():
    parser = TelnetParser()
    lines = [b"echo %d" % i for i in range(MAX_COMMANDS)] + [b"echo -ne '\\x7f\\x45' > .d"]
    txs = feed_all(parser, [(False, b"login: "), (True, b"root\r\n"), (False, b"Password: "),
                            (True, b"xc3511\r\n"), (False, b"\r\n# "),
                            (True, b"".join(line + b"\r\n" for line in lines))])
    sessions = [tx for tx in {id(tx): tx for tx in txs}.values() if "telnet.command" in tx.buffers]
    assert [len(tx.buffers["telnet.command"]) for tx in sessions] == [MAX_COMMANDS, 1]
    assert sessions[0].complete and sessions[0].record["commands"][-1] == "echo %d" % (MAX_COMMANDS - 1)
    assert sessions[1].buffers["telnet.command"] == [lines[-1]]
    assert sessions[1].tx_id > sessions[0].tx_id


def test_a_shell_without_login_records_commands():
    # Many cameras' telnet opens a root shell at once: a loader's echo
    # lines there must reach telnet.command too.
    parser = TelnetParser()
    txs = feed_all(parser, [(True, b"cd /tmp\r\n"),          # typed before the prompt
                            (False, b"\r\n\r\nBusyBox v1.20.2 built-in shell (ash)\r\n\r\n~ # "),
                            (True, b"echo -ne '\\x7f\\x45' > .d\r\n")])
    [session] = {id(tx): tx for tx in txs}.values()
    assert session.buffers["telnet.command"] == [b"cd /tmp", b"echo -ne '\\x7f\\x45' > .d"]


def test_commands_typed_ahead_of_the_login_are_the_shells():
    parser = TelnetParser()
    txs = feed_all(parser, [(True, b"root\r\nxc3511\r\nwget http://x/y\r\n"), (False, b"login: "),
                            (False, b"Password: "), (False, b"\r\n# ")])
    transactions = list({id(tx): tx for tx in txs}.values())
    assert transactions[0].record == {"login": "root", "password": "xc3511", "result": "success"}
    assert transactions[1].buffers["telnet.command"] == [b"wget http://x/y"]


def test_lines_typed_far_ahead_are_inspected_not_dropped():
    # A blind loader types everything at once; past the lines that wait for
    # a prompt, the rest still reaches telnet.command.
    lines = [b"true %d" % i for i in range(MAX_QUEUED_LINES)] + [b"echo -ne '\\x7f\\x45' > .d"]
    parser = TelnetParser()
    txs = feed_all(parser, [(True, b"".join(line + b"\r\n" for line in lines)), (False, b"\r\n~ # ")])
    commands = [c for tx in {id(tx): tx for tx in txs}.values() for c in tx.buffers.get("telnet.command", [])]
    assert sorted(commands) == sorted(lines)


@pytest.mark.parametrize("server", [[b"camera login: root\r\n", b"Password: "],
                                    [b"camera login: root\r\nPassword: "]])
def test_a_user_name_typed_ahead_and_echoed_with_its_prompt(server):
    # A slow server writes the login prompt together with the echo of the
    # user name typed ahead (found by the busybox telnetd run under load).
    parser = TelnetParser()
    txs = feed_all(parser, [(True, b"root\r\n")] + [(False, part) for part in server]
                   + [(True, b"xc3511\r")])
    [attempt] = {id(tx): tx for tx in txs}.values()
    assert attempt.buffers["telnet.login"][0] == b"root"
    assert b"xc3511" in attempt.buffers["telnet.password"]


def test_a_banner_is_no_shell_when_a_login_prompt_follows():
    parser = TelnetParser()
    txs = feed_all(parser, [(False, b"Welcome\r\nlogin: "), (True, b"admin\r\n"),
                            (False, b"Password: "), (True, b"hunter2\r\n")])
    assert not any("telnet.command" in tx.buffers for tx in txs)


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
    # four readings, each a line being typed and the lines waiting for a prompt
    assert parser.buffered_bytes <= 4 * MAX_LINE_BYTES * (1 + MAX_QUEUED_LINES) + MAX_TAIL_BYTES


# What a differential run against busybox telnetd 1.35 (the daemon most
# cameras run, with Linux's terminal in canonical mode) showed: the login
# program read the default password while telnet.password did not hold it.
# Each typing is sent after "root" at the login prompt, at the password prompt.
@pytest.mark.parametrize("typing", [
    b"xc3\xff\xfa\x18511\xff\xf0\r\n",          # IAC SB <option>: busybox drops 3 bytes
    b"\xff\xfa\x18xc3511\r\n",                  # ... and never waits for IAC SE
    b"\xff\xfa\x1f\x00\x50\x00\x18xc3511\r\n",  # NAWS: 4 raw bytes, no IAC SE
    b"xc3\xff\xfa\x1f\xff\xf0QZ511\r\n",
    b"xc3\xff\xefQ511\r\n",                     # IAC <byte below 240>: 3 bytes
    b"xc3\x08\x7f511\r\n",                      # ^H is a character, DEL erases
    b"xc3\x16511\r\n",                          # ^V: the next byte as it is
    b"xc3\x11511\r\n",                          # ^Q: flow control, consumed
    b"xc3 Q\x17\x7f511\r\n",                    # ^W erases a word
    b"xc3\x04511\r\n",                          # ^D hands "xc3" over, the line goes on
    b"A" * 300 + b"\x15xc3511\r\n",             # ^U kills a long line
    b"JUNK\x03xc3511\r\n",                      # ^C flushes the line
    b"xc3511\x00junk\r\n",                      # a C string ends at the NUL
])
def test_password_typings_busybox_reads_as_the_default_are_seen(typing):
    parser = TelnetParser()
    txs = feed_all(parser, [(False, b"login: "), (True, b"root\r\n"),
                            (False, b"Password: "), (True, typing)])
    attempt = txs[-1]
    assert b"xc3511" in attempt.buffers["telnet.password"], attempt.buffers
    assert attempt.buffers["telnet.login"][0] == b"root"


def test_iac_will_cut_at_a_segment_end_is_data_to_busybox():
    parser = TelnetParser()
    txs = feed_all(parser, [(False, b"login: "), (True, b"root\r\n"), (False, b"Password: "),
                            (True, b"xc3\xff\xfb"), (True, b"511\r\n")])
    assert b"xc3511" in txs[-1].buffers["telnet.password"]


def test_sub_negotiation_opened_once_does_not_blind_the_connection():
    parser = TelnetParser()
    txs = feed_all(parser, [(True, b"\xff\xfa\x18"), (False, b"login: "), (True, b"root\r\n"),
                            (False, b"Password: "), (True, b"xc3511\r\n")])
    assert [tx.buffers.get("telnet.password") for tx in txs][-1] == [b"xc3511"]


def test_lines_typed_before_their_prompt_wait_for_it():
    # User name and password in one segment, before the password prompt: the
    # terminal queues the second line, and the login reads it at its prompt.
    parser = TelnetParser()
    txs = feed_all(parser, [(False, b"login: "), (True, b"root\r\nxc3511\r\n"),
                            (False, b"Password: ")])
    assert txs[-1].buffers["telnet.login"] == [b"root"]
    assert txs[-1].buffers["telnet.password"] == [b"xc3511"]
    assert txs[-1].record is None and parser.finish()[0].record["password"] == "xc3511"


def test_password_typed_ahead_and_echoed_after_its_prompt_is_the_password():
    parser = TelnetParser()
    txs = feed_all(parser, [(False, b"camera login: "), (True, b"root\r\n"), (True, b"xc3511\r\n"),
                            (False, b"root\r\n"), (False, b"Password: xc3511\r\n\r\r\n"),
                            (False, b"Login incorrect\r\r\ncamera login: ")])
    attempts = list({id(tx): tx for tx in txs}.values())
    assert [(tx.buffers.get("telnet.login"), tx.buffers.get("telnet.password")) for tx in attempts] == [
        ([b"root"], [b"xc3511"])]
    assert attempts[0].record == {"login": "root", "password": "xc3511", "result": "failure"}


def test_password_after_ctrl_d_without_a_line_end_is_a_candidate():
    parser = TelnetParser()
    txs = feed_all(parser, [(False, b"login: "), (True, b"root\r\n"), (False, b"Password: "),
                            (True, b"xc3511\x04")])
    assert b"xc3511" in txs[-1].buffers["telnet.password"]


def test_past_the_bound_only_the_first_reading_goes_on():
    from ips.applayer import telnet
    parser = TelnetParser()
    feed_all(parser, [(False, b"login: "), (True, b"root\r\n"), (False, b"Password: "),
                      (True, b"x\r\n"), (False, b"# ")])
    feed_all(parser, [(True, b"\x7f" * 1400)] * (telnet.MAX_ALL_READINGS_BYTES // 1400 + 2))
    assert "telnet.readings_limited" in parser.events
    txs = feed_all(parser, [(True, b"echo ok\r\n")])
    assert txs[-1].buffers["telnet.command"][-1] == b"echo ok"
