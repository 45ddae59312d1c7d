"""TelnetParser against busybox telnetd and a device login (see telnet_run.py):
every default password a login reads, however it was typed, must be in some
transaction's `telnet.password`.

The daemon test needs root (a network namespace of its own, removed at the
end, failure included) and busybox-static, which it downloads into a cache
(never installs); it skips, saying why, otherwise. Budget: about 75 s on
two cores. The other tests check the typings, the verdicts on canned
exchanges and the fake login on a plain pty, without a daemon.
"""
from __future__ import annotations

import os
import pty
import select
import subprocess
import time
from pathlib import Path

import pytest

from tests.differential.telnet_run import (BYPASS, CLIENT, FALSE_POSITIVE, NOT_READ, OK, SERVER, SUBSTRING,
                                           Exchange, Report, Session, classify, compare, parser_view,
                                           stty_short, summary, why_not_here)
from tests.differential.telnet_typings import (BASELINE, TARGETS, TELNET, TERMINAL, TIMING, TYPINGS, Send,
                                               WaitFor, select as select_typings)
from tests.differential.telnetd import FAKE_LOGIN, LoginReads, read_login, write_login

pytestmark = pytest.mark.slow

TARGET = TARGETS[0]


def test_logins_read_no_password_the_parser_misses(tmp_path):
    reason = why_not_here()
    if reason:
        pytest.skip(reason)
    report = compare(workdir=tmp_path)
    assert not report.sanity_failures, summary(report)     # plain typing read and seen in both flavours
    assert [f"{session.typing.label} {session.flavour}" for session in report.bypasses] == [], summary(report)


# -- the typings -----------------------------------------------------------------------

def test_typings_are_named_once_and_end_waiting_for_the_verdict():
    labels = [typing.label for typing in TYPINGS]
    assert len(set(labels)) == len(labels)
    assert {typing.family for typing in TYPINGS} == {TELNET, TERMINAL, TIMING}
    for typing in TYPINGS:
        assert typing.steps[-1] == WaitFor("result", 2.0), typing.label
        assert any(isinstance(step, Send) for step in typing.steps), typing.label


def test_a_filter_always_keeps_the_baseline():
    assert [typing.label for typing in select_typings(["no such typing"])] == [BASELINE]
    lnext = select_typings(["ins:lnext/"])
    assert {typing.label for typing in lnext} >= {BASELINE, "ins:lnext/xc3511", "ins:lnext/vizxv"}
    assert len(select_typings()) == len(TYPINGS)


# -- verdicts --------------------------------------------------------------------------

@pytest.mark.parametrize("login_read, readings, verdict", [
    ([TARGET], [b"root", TARGET], OK),
    ([TARGET + b"\r"], [TARGET], OK),                  # a login that keeps the CR still reads it
    ([TARGET], [b"xc3", b"xc3QZ511"], BYPASS),
    ([None, TARGET + b"\r"], [], BYPASS),
    ([TARGET], [b"JUNK\x15" + TARGET], SUBSTRING),     # only an unanchored content matches
    ([b"xc3"], [TARGET], FALSE_POSITIVE),
    ([b"xc3\x7f511", None], [b"xc351"], NOT_READ),
])
def test_classify(login_read, readings, verdict):
    assert classify(TARGET, login_read, readings) == verdict


def _exchange(*events: tuple[str, bytes]) -> Exchange:
    return Exchange(tuple(events))


NEGOTIATION = b"\xff\xfd\x01\xff\xfd\x1f\xff\xfb\x01\xff\xfb\x03"
"""What busybox telnetd sends first."""


def test_a_sub_negotiation_inside_the_password_is_seen():
    # busybox drops IAC SB TTYPE as three bytes: the login reads xc3511,
    # the bytes up to IAC SE included (REPORT A1).
    exchange = _exchange((SERVER, NEGOTIATION + b"\r\r\n"), (SERVER, b"camera login: "),
                         (CLIENT, b"root\r\n"), (SERVER, b"root\r\nPassword: "),
                         (CLIENT, b"xc3\xff\xfa\x18511\xff\xf0\r\n"), (SERVER, b"\r\nLogin incorrect\r\n"))
    view = parser_view(exchange.events)
    assert b"root" in view.logins
    assert classify(TARGET, [TARGET], view.passwords) == OK


def test_a_password_typed_ahead_is_given_to_its_prompt():
    # The password arrives before "Password:" (REPORT C1): fed in wire order,
    # the parser holds the line until the prompt comes.
    exchange = _exchange((SERVER, NEGOTIATION), (SERVER, b"camera login: "),
                         (CLIENT, b"root\r\n" + TARGET + b"\r\n"), (SERVER, b"root\r\n"),
                         (SERVER, b"Password: "), (SERVER, b"\r\nLogin incorrect\r\n"))
    assert classify(TARGET, [TARGET], parser_view(exchange.events).passwords) == OK


def test_a_bypass_fails_the_report_and_is_shown_with_its_bytes():
    baseline = select_typings([BASELINE])[0]
    sent = b"xc3\xff\xfa\x18511\r\n"
    bypass = Session(baseline, "bb", _exchange((CLIENT, b"root\r\n"), (CLIENT, sent)),
                     [LoginReads(1, (b"root",), (TARGET,))])
    bypass.verdict = BYPASS
    report = Report(typings=1, sessions=[bypass])
    assert report.failed
    shown = f"BYPASS {BASELINE} ({baseline.family}) bb: client sent [b'root\\r\\n', {sent!r}]"
    assert shown in summary(report)


def test_stty_is_summarised_as_the_settings_that_matter():
    text = ("speed 38400 baud; rows 0; columns 0; line = 0;\n"
            "intr = ^C; quit = ^\\; erase = ^?; kill = ^U; eof = ^D; eol = <undef>;\n"
            "werase = ^W; lnext = ^V; min = 1; time = 0;\n"
            "-ignbrk -istrip icrnl ixon -iutf8\nopost onlcr isig icanon iexten echo echoe -noflsh echoctl\n")
    characters, flags = stty_short(text)
    assert characters.startswith("intr=^C quit=^\\ erase=^? kill=^U eof=^D")
    assert "line=" not in characters
    assert flags == "icrnl -istrip -iutf8 ixon isig icanon iexten echo echoe echoctl -noflsh"


def test_why_not_here_says_root_is_needed(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert "root" in why_not_here()


# -- the fake login, on a pty of its own (no telnetd) ----------------------------------

def _until(master: int, pattern: bytes, seen: bytearray, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while pattern not in seen and time.monotonic() < end:
        if select.select([master], [], [], 0.1)[0]:
            try:
                seen += os.read(master, 4096)
            except OSError:
                break
    assert pattern in seen, bytes(seen)


@pytest.mark.parametrize("flavour", ["bb", "plain"])
def test_the_fake_login_reads_the_line_the_terminal_edited(tmp_path, flavour):
    compile(FAKE_LOGIN, "fake_login.py", "exec")
    login = write_login(tmp_path)
    logs = tmp_path / "logs"
    logs.mkdir()
    master, slave = pty.openpty()
    env = {"PATH": "/usr/bin:/bin", "MODE": flavour, "LOG_DIR": str(logs)}
    process = subprocess.Popen([str(login)], stdin=slave, stdout=slave, stderr=slave, env=env,
                               start_new_session=True)
    os.close(slave)
    try:
        seen = bytearray()
        _until(master, b"login: ", seen)
        os.write(master, b"root\r")
        _until(master, b"Password: ", seen)
        os.write(master, b"xc3\x16511\r")          # ^V: the kernel drops it
        _until(master, b"Login incorrect", seen)
    finally:
        process.kill()
        process.wait(5)
        os.close(master)
    reads = read_login(next(Path(logs).glob("*.jsonl")))
    assert (reads.pid, reads.users, reads.passwords) == (process.pid, (b"root",), (TARGET,))
    assert "icanon" in (logs / "stty.txt").read_text()
