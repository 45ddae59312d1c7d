"""The telnet differential run: what a device's login reads against what TelnetParser shows.

    PYTHONPATH=. .venv/bin/python -m tests.differential.telnet_run [label filters...]   # as root

Every typing of `telnet_typings.TYPINGS` is one telnet session against busybox
telnetd with each login flavour of `telnetd.py` (bb, plain): a client types
the user name and a default password as the typing says and records every
byte sent and received, in wire order; the login logs exactly what it read.
The recorded exchange is then fed to `TelnetParser` in that order (server
bytes and client bytes interleaved as they were exchanged), and every
`telnet.password` reading of every transaction it reported is compared with
the passwords the login read. Per session:

* BYPASS: the login read the target password (exactly, or with a trailing
  CR) and no transaction has it in any `telnet.password` reading: a virtual
  patch `telnet.password; content:"<target>"` would not have fired.
* ok: the login read it and some reading is exactly the target.
* substring only: the login read it; a reading holds it but is longer
  (caught by an unanchored `content` only).
* false positive: a reading holds it, the login did not read it.
* not read: neither (the typing did not get the password through).
* error: the session could not be run (connection refused, reset).

Sanity: the plain typing (BASELINE) must be read by the login and seen by
the parser in both flavours, every session must have run a login and no
telnetd may exit during the run; otherwise the run proves nothing.

Exit status: 0 clean; 1 on a bypass or a failed sanity check; 2 when it
cannot run here (not root, or busybox-static cannot be obtained: it says why).
"""
from __future__ import annotations

import argparse
import json
import os
import queue
import re
import select
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ips.applayer.telnet import TelnetParser
from tests.differential.servers import HOST, ServerStartError, enter_namespace, interrupt_on_sigterm
from tests.differential.telnet_typings import (BASELINE, Chars, Pause, Segments, Send, Step, Typing, WaitFor,
                                               select as select_typings)
from tests.differential.telnetd import (FLAVOURS, WORKERS, LoginReads, RunningTelnetds, Telnetd,
                                        TelnetdUnavailable, missing, running_telnetds)

SERVER, CLIENT = "s", "c"
Event = tuple[str, bytes]
"""(SERVER or CLIENT, the bytes of one recv or send), in the order the client saw them."""

BYPASS, OK, SUBSTRING, FALSE_POSITIVE, NOT_READ, ERROR = (
    "BYPASS", "ok", "substring only", "false positive", "not read", "error")
VERDICTS = (BYPASS, OK, SUBSTRING, FALSE_POSITIVE, NOT_READ, ERROR)

CONNECT_TIMEOUT = 5.0
SEGMENT_GAP = 0.08
"""Between the writes of a `Segments` step: long enough for telnetd to read each on its own."""
CHAR_GAP = 0.03
FINISH_QUIET = 0.3
FINISH_MAX = 2.5
"""After the last step, read until the server is quiet for FINISH_QUIET (at most FINISH_MAX)."""
REPR_LIMIT = 200
STTY_FLAGS = ("icrnl", "inlcr", "igncr", "istrip", "iutf8", "ixon", "ixany", "isig", "icanon", "iexten",
              "echo", "echoe", "echok", "echoctl", "noflsh")
"""The terminal flags that change what the login reads, for the summary."""

_PROMPTS = {"login": re.compile(rb"login:\s*$"), "password": re.compile(rb"Password:\s*$"),
            "result": re.compile(rb"Login incorrect")}


# -- the client ------------------------------------------------------------------------

@dataclass(frozen=True)
class Exchange:
    events: tuple[Event, ...]
    notes: tuple[str, ...] = ()
    """Prompts that did not come ("no password prompt")."""

    @property
    def client_writes(self) -> list[bytes]:
        return [data for direction, data in self.events if direction == CLIENT]


def _strip_commands(data: bytes) -> bytes:
    """Server output without telnet commands, roughly: only to spot prompts."""
    text = re.sub(rb"\xff\xfa.*?(?:\xff\xf0|$)", b"", data, flags=re.S)
    text = re.sub(rb"\xff[\xfb-\xfe].|\xff[\xf0-\xfa]", b"", text, flags=re.S)
    return text.replace(b"\xff\xff", b"\xff")


class _Client:
    """One telnet connection that records every send and recv in order."""

    def __init__(self, port: int) -> None:
        self.socket = socket.create_connection((HOST, port), timeout=CONNECT_TIMEOUT)
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.events: list[Event] = []
        self.received = bytearray()
        self.mark = 0             # where the next prompt is looked for
        self.closed = False
        self.notes: list[str] = []

    def receive(self, timeout: float) -> bool:
        """Record what arrives within `timeout`; False if nothing did."""
        if self.closed:
            time.sleep(min(timeout, 0.05))
            return False
        if not select.select([self.socket], [], [], max(timeout, 0.0))[0]:
            return False
        try:
            data = self.socket.recv(65536)
        except OSError:
            data = b""
        if not data:
            self.closed = True
            return False
        self.events.append((SERVER, data))
        self.received += data
        return True

    def listen(self, seconds: float) -> None:
        """Record whatever arrives for `seconds`."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            self.receive(left)

    def send(self, data: bytes) -> None:
        """Send after recording what already arrived, so the events keep wire order."""
        while self.receive(0.0):
            pass
        if self.closed:
            return
        try:
            self.socket.sendall(data)
            self.events.append((CLIENT, data))
        except OSError:
            self.closed = True

    def wait_for(self, what: str, timeout: float) -> None:
        pattern = _PROMPTS[what]
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if pattern.search(_strip_commands(bytes(self.received[self.mark:]))):
                self.mark = len(self.received)
                return
            if self.closed:
                break
            self.receive(min(0.2, end - time.monotonic()))
        self.notes.append(f"no {what} prompt")

    def finish(self) -> None:
        """Read until the server goes quiet or closes, then close."""
        end, last = time.monotonic() + FINISH_MAX, time.monotonic()
        while time.monotonic() < end and not self.closed:
            if self.receive(0.05):
                last = time.monotonic()
            elif time.monotonic() - last > FINISH_QUIET:
                break
        self.socket.close()


def talk(port: int, steps: Iterable[Step]) -> Exchange:
    """Run one session's steps on a new connection (in the telnetds' namespace)."""
    client = _Client(port)
    try:
        for step in steps:
            match step:
                case Send(data):
                    client.send(data)
                case Segments(parts):
                    for part in parts:
                        client.send(part)
                        client.listen(SEGMENT_GAP)
                case Chars(data):
                    for index in range(len(data)):
                        client.send(data[index:index + 1])
                        client.listen(CHAR_GAP)
                case Pause(seconds):
                    client.listen(seconds)
                case WaitFor(what, timeout):
                    client.wait_for(what, timeout)
        client.finish()
    finally:
        client.socket.close()
    return Exchange(tuple(client.events), tuple(client.notes))


# -- the parser's side and the verdict -------------------------------------------------

@dataclass(frozen=True)
class ParserView:
    """Every reading TelnetParser gave, over all the transactions it reported."""
    logins: tuple[bytes, ...] = ()
    passwords: tuple[bytes, ...] = ()


def parser_view(events: Iterable[Event]) -> ParserView:
    """Feed the exchange to a TelnetParser in wire order; every transaction
    reported by feed or finish counts."""
    parser = TelnetParser()
    txs: list = []
    for direction, data in events:
        _keep(txs, parser.feed(data, direction == CLIENT))
    _keep(txs, parser.finish())
    logins = tuple(value for tx in txs for value in tx.buffers.get("telnet.login", []))
    passwords = tuple(value for tx in txs for value in tx.buffers.get("telnet.password", []))
    return ParserView(logins, passwords)


def _keep(txs: list, new: Iterable) -> None:
    """Add the transactions not already there (by identity: a tx reported
    twice is one tx, and readings added later show on the same object)."""
    for tx in new:
        if not any(tx is known for known in txs):
            txs.append(tx)


def classify(target: bytes, login_read: Iterable[bytes | None], readings: Iterable[bytes]) -> str:
    """The verdict for one session (see the module docstring)."""
    read = any(value in (target, target + b"\r") for value in login_read if value is not None)
    readings = list(readings)
    seen = any(target in reading for reading in readings)
    if read and not seen:
        return BYPASS
    if seen and not read:
        return FALSE_POSITIVE
    if not read:
        return NOT_READ
    return OK if target in readings else SUBSTRING


# -- sessions and the report -----------------------------------------------------------

@dataclass
class Session:
    typing: Typing
    flavour: str
    exchange: Exchange | None
    logins: list[LoginReads]
    error: str | None = None
    view: ParserView = field(default_factory=ParserView)
    verdict: str = ERROR

    @property
    def login_passwords(self) -> list[bytes | None]:
        return [value for login in self.logins for value in login.passwords]

    def judge(self) -> None:
        if self.exchange is None:
            return
        self.view = parser_view(self.exchange.events)
        self.verdict = classify(self.typing.target, self.login_passwords, self.view.passwords)


@dataclass
class Report:
    """The outcome of one run; `failed` is what the exit status and the test go by."""
    version: str = "unknown"
    typings: int = 0
    workers: int = WORKERS
    stty: list[str] = field(default_factory=list)
    sessions: list[Session] = field(default_factory=list)
    sanity_failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def counts(self, flavour: str) -> Counter:
        return Counter(session.verdict for session in self.sessions if session.flavour == flavour)

    @property
    def bypasses(self) -> list[Session]:
        return [session for session in self.sessions if session.verdict == BYPASS]

    @property
    def failed(self) -> bool:
        return bool(self.bypasses or self.sanity_failures)


def compare(filters: Sequence[str] = (), workdir: Path | None = None, workers: int = WORKERS,
            cache: Path | None = None) -> Report:
    """Run the selected typings against both login flavours and judge each
    session. Needs root and busybox-static (see why_not_here())."""
    selected = select_typings(filters)
    report = Report(typings=len(selected), workers=workers)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="rgtelnet-") as scratch:
        with running_telnetds(workdir or scratch, workers, cache) as telnetds:
            report.sessions = _run_sessions(telnetds, selected)
            report.sanity_failures += [f"{name} exited during the run" for name in telnetds.exited()]
            report.version, report.stty = telnetds.version, telnetds.stty()
    for session in report.sessions:
        session.judge()
    report.sanity_failures += _sanity(report.sessions)
    report.seconds = time.monotonic() - started
    return report


def _run_sessions(telnetds: RunningTelnetds, selected: list[Typing]) -> list[Session]:
    """Each typing once per flavour, from one thread per telnetd inside the
    namespace; each telnetd serves its sessions one after the other."""
    queues: dict[str, queue.SimpleQueue] = {flavour: queue.SimpleQueue() for flavour in FLAVOURS}
    for typing in selected:
        for pending in queues.values():
            pending.put(typing)
    stop = threading.Event()
    pool = ThreadPoolExecutor(len(telnetds.servers), initializer=enter_namespace,
                              initargs=(telnetds.namespace,))
    try:
        futures = [pool.submit(_serve, server, queues[server.flavour], stop) for server in telnetds.servers]
        sessions = [session for future in futures for session in future.result()]
    finally:
        stop.set()              # interrupted: the workers stop after their current session
        pool.shutdown(wait=True, cancel_futures=True)
    order = {typing.label: number for number, typing in enumerate(selected)}
    return sorted(sessions, key=lambda session: (order[session.typing.label], session.flavour))


def _serve(server: Telnetd, pending: queue.SimpleQueue, stop: threading.Event) -> list[Session]:
    sessions = []
    while not stop.is_set():
        try:
            typing = pending.get_nowait()
        except queue.Empty:
            break
        exchange, error = None, None
        try:
            exchange = talk(server.port, typing.steps)
        except OSError as exc:
            error = f"{type(exc).__name__}: {exc}"
        sessions.append(Session(typing, server.flavour, exchange, server.new_logins(), error))
    return sessions


def _sanity(sessions: list[Session]) -> list[str]:
    """Why this run proves nothing, if it does not."""
    failures = []
    for flavour in FLAVOURS:
        baseline = [s for s in sessions if s.flavour == flavour and s.typing.label == BASELINE]
        if not baseline or baseline[0].verdict != OK:
            detail = _evidence(baseline[0]) if baseline else "not run"
            failures.append(f"{BASELINE} not read by the {flavour} login and seen by the parser: {detail}")
    errors = [s for s in sessions if s.error or s.exchange is None]
    if errors:
        first = errors[0]
        failures.append(f"{len(errors)} sessions failed (first: {first.typing.label} {first.flavour}: "
                        f"{first.error})")
    no_login = [s for s in sessions if not s.logins]
    if no_login:
        failures.append(f"{len(no_login)} sessions ran no login (first: {no_login[0].typing.label} "
                        f"{no_login[0].flavour})")
    return failures


# -- the summary -----------------------------------------------------------------------

def summary(report: Report) -> str:
    lines = [f"TelnetParser vs busybox telnetd: {report.typings} typings x {len(FLAVOURS)} login flavours"
             f" = {len(report.sessions)} sessions ({report.workers} telnetds per flavour), "
             f"{report.seconds:.1f} s",
             f"  telnetd: {report.version}"]
    for text in report.stty:
        characters, flags = stty_short(text)
        lines += [f"  terminal: {characters}", f"            {flags}"]
    if len(report.stty) != 1:
        lines.append(f"  ({len(report.stty)} different terminal settings seen)")
    for flavour in FLAVOURS:
        counts = report.counts(flavour)
        lines.append(f"  {flavour:<6} " + "  ".join(f"{verdict}: {counts[verdict]}" for verdict in VERDICTS
                                                  if counts[verdict] or verdict in (BYPASS, OK)))
    lines.append("sanity: " + (f"{BASELINE} read by the login and seen by the parser in every flavour, "
                               f"every session ran a login" if not report.sanity_failures else "FAILED"))
    lines += [f"  SANITY {failure}" for failure in report.sanity_failures]
    for session in report.bypasses:
        lines.append(f"BYPASS {session.typing.label} ({session.typing.family}) {session.flavour}: "
                     f"client sent {_short(session.exchange.client_writes)}")
        lines.append(f"    {_evidence(session)}")
    return "\n".join(lines)


def _evidence(session: Session) -> str:
    notes = [*(session.exchange.notes if session.exchange else ()), *(n for login in session.logins
                                                                      for n in login.notes)]
    text = (f"login read {_short(session.login_passwords)}; parser telnet.password "
            f"{_short(list(session.view.passwords))}")
    return text + (f" ({', '.join(notes)})" if notes else "")


def stty_short(text: str) -> tuple[str, str]:
    """`stty -a` as two lines: the control characters, and STTY_FLAGS as set."""
    body = text.partition("\n")[2]
    characters = " ".join(f"{name}={value.strip()}" for name, value in re.findall(r"(\w+) = ([^;]+);", body))
    words = set(re.sub(r"\w+ = [^;]+;", " ", body).split())
    flags = " ".join(flag if flag in words else f"-{flag}" for flag in STTY_FLAGS
                     if flag in words or f"-{flag}" in words)
    return characters, flags


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= REPR_LIMIT else text[:REPR_LIMIT] + "..."


def evidence_json(report: Report) -> list[dict]:
    """Every session in full (wire bytes, login reads, parser readings), for --json."""
    def hexes(values: Iterable[bytes | None]) -> list[str | None]:
        return [None if value is None else value.hex() for value in values]
    return [{"typing": s.typing.label, "family": s.typing.family, "flavour": s.flavour, "verdict": s.verdict,
             "error": s.error, "notes": list(s.exchange.notes) if s.exchange else [],
             "wire": [[d, data.hex()] for d, data in s.exchange.events] if s.exchange else [],
             "login_users": hexes(v for login in s.logins for v in login.users),
             "login_passwords": hexes(s.login_passwords), "parser_logins": hexes(s.view.logins),
             "parser_passwords": hexes(s.view.passwords)} for s in report.sessions]


def why_not_here(cache: Path | None = None) -> str | None:
    """None when the run can work on this machine, else why not."""
    if os.geteuid() != 0:
        return "needs root (it creates a network namespace)"
    problems = missing(cache)
    return "; ".join(problems) if problems else None


def main(argv: Sequence[str] | None = None) -> int:
    interrupt_on_sigterm()
    parser = argparse.ArgumentParser(prog="python -m tests.differential.telnet_run",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("filters", nargs="*",
                        help="only typings whose label (ins:lnext/xc3511) contains one of these")
    parser.add_argument("--workers", type=int, default=WORKERS, help="telnetds per login flavour")
    parser.add_argument("--cache", type=Path, help="busybox-static cache (default $REEFGUARD_BUSYBOX_CACHE "
                                                   "or ~/.cache/reefguard/busybox-static)")
    parser.add_argument("--workdir", type=Path,
                        help="keep the login program, its logs and telnetd's output here")
    parser.add_argument("--json", type=Path, help="write every session's evidence here")
    args = parser.parse_args(argv)
    reason = why_not_here(args.cache)
    if reason:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    try:
        report = compare(args.filters, args.workdir, args.workers, args.cache)
    except ServerStartError as exc:
        print(f"SANITY {exc}", file=sys.stderr)
        return 1
    except TelnetdUnavailable as exc:
        print(f"cannot run: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted (telnetds stopped, namespace deleted)", file=sys.stderr)
        return 130
    if args.json:
        args.json.write_text(json.dumps(evidence_json(report), indent=1))
    print(summary(report))
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
