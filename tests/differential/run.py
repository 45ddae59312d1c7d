"""The differential run: what real servers execute against what HttpParser sees.

    PYTHONPATH=. .venv/bin/python -m tests.differential.run [name filters...]   # as root

Every stream of `streams.STREAMS` goes to each server of `servers.py` (one
connection each) and, whole and split several ways, to `HttpParser`. The
marker CGI logs every request a server runs; each run is then classified:

* EVASION: a server ran a marker that is in no transaction's `http.uri`,
  on a stream where no transaction carries an event the box drops on
  (`DROP_EVENTS`). No `http.uri` rule could have stopped that request.
* flagged: the same on a stream that is flagged: the box drops the
  connection, so this is for information (which servers the flag saves).
* path differs: the parser shows the marker, but its `http.uri` path does
  not start with the script the server ran (SCRIPT_NAME): a rule on the
  script's path would miss it. Listed, not failed (flagged ones are listed
  under flagged).
* split inconsistency: the parser's result (markers seen, their paths, the
  drop events) changes when the same bytes arrive in other pieces: whole,
  in the stream's own writes, split at each request start, in thirds, byte
  by byte (under BYTEWISE_LIMIT bytes). An attacker chooses the segmentation.

Sanity: the baseline stream must have run on every server, no server may
exit or refuse connections during the run, and every CGI run must carry a
marker; otherwise the run proves nothing.

Exit status: 0 clean; 1 on an evasion, a split inconsistency or a failed
sanity check; 2 when it cannot run here (not root, or servers missing: it
says which apt packages to install).
"""
from __future__ import annotations

import argparse
import os
import re
import socket
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ips.applayer.http import HttpParser
from tests.differential.servers import (HOST, PACKAGES, PORTS, RunningServers, ServerStartError,
                                        enter_namespace, interrupt_on_sigterm, missing_binaries,
                                        read_runs, running_servers, server_versions)
from tests.differential.streams import BASELINE, SCRIPT, STREAMS, Builder, Marker

LETTERS = {"busybox": "b", "mini_httpd": "m", "lighttpd": "l", "nginx": "n"}
"""Server name -> the letter its markers carry (the parser's copy has "p")."""
PARSER_LETTER = "p"
DROP_EVENTS = frozenset({"http.request_smuggling", "http.http2_cleartext"})
"""Transaction events the box drops the connection on (virtual patches)."""

WORKERS = 32
"""Connections in flight: the time goes into waiting for answers."""
WRITE_GAP = 0.3
"""Pause between a stream's writes, so each arrives as a read of its own."""
FIRST_ANSWER_WAIT = 2.0
QUIET_WAIT = 0.8
"""How long to wait for the first answer bytes, then for more: a
keep-alive server never closes, and runs pipelined requests within ms
(generous, for a loaded machine: a request cut off is a request not run)."""
SETTLE_TIMEOUT = 3.0
BYTEWISE_LIMIT = 20_000
REPR_LIMIT = 240

_RUN_MARKER = re.compile(rb"x(\d{4})([a-z])([A-Z])x")
_STATUS = re.compile(rb"HTTP/\d\.\d (\d{3})")
_REQUEST_START = re.compile(
    rb"(?<=[\r\n])(?:GET|POST|PUT|HEAD|OPTIONS|DELETE|TRACE|CONNECT|FOO|PRI|connect|get)[ \t]")


@dataclass(frozen=True)
class Selected:
    """A stream chosen for this run; `index` is its place in STREAMS."""
    index: int
    name: str
    family: str
    builder: Builder

    def chunks(self, letter: str) -> list[bytes]:
        return self.builder(marker_for(self.index, letter))


@dataclass(frozen=True)
class Run:
    """One CGI execution, as the script logged it."""
    letter: str
    method: bytes
    script_name: bytes
    path_info: bytes


@dataclass(frozen=True)
class ParserView:
    """What HttpParser made of one stream fed in one way."""
    seen: dict[str, bytes]
    """Marker letter -> the path of the first tx whose http.uri holds it."""
    events: frozenset[str]
    """Events carried by any transaction."""

    @property
    def drop_events(self) -> frozenset[str]:
        return self.events & DROP_EVENTS

    def key(self) -> tuple:
        """What must not depend on how the stream is split."""
        return tuple(sorted(self.seen.items())), tuple(sorted(self.drop_events))


@dataclass(frozen=True)
class Finding:
    kind: str
    """"evasion", "flagged", "path" or "split"."""
    stream: str
    family: str
    server: str
    detail: str
    data: bytes


@dataclass
class Report:
    """The outcome of one run; `failed` is what the exit status and the
    test go by."""
    versions: dict[str, str]
    streams: int
    connections: int
    seconds: float = 0.0
    findings: list[Finding] = field(default_factory=list)
    sanity_failures: list[str] = field(default_factory=list)
    ran: dict[tuple[str, str], str] = field(default_factory=dict)
    """(stream name, server) -> the marker letters the server ran, for debugging."""

    def of(self, kind: str) -> list[Finding]:
        return [finding for finding in self.findings if finding.kind == kind]

    @property
    def evasions(self) -> list[Finding]:
        return self.of("evasion")

    @property
    def split_inconsistencies(self) -> list[Finding]:
        return self.of("split")

    @property
    def failed(self) -> bool:
        return bool(self.evasions or self.split_inconsistencies or self.sanity_failures)


# -- streams and markers -------------------------------------------------------------

def marker_for(index: int, letter: str) -> Marker:
    """Markers of stream `index` for the server with `letter`: all the same
    length, so a stream's framing is the same for every server."""
    return lambda request: SCRIPT + b"?id=x%04d%s%sx" % (index, letter.encode(), request.encode())


def select(filters: Sequence[str] = ()) -> list[Selected]:
    """The streams whose name holds one of `filters` (all without any),
    always with the baseline, which the sanity check needs."""
    return [Selected(index, name, family, builder) for index, (name, family, builder) in enumerate(STREAMS)
            if not filters or name == BASELINE or any(part in name for part in filters)]


# -- the parser's side ---------------------------------------------------------------

def parser_view(index: int, pieces: Iterable[bytes]) -> ParserView:
    """Feed `pieces` as one connection's client bytes; every transaction the
    parser reports (feed or finish) counts."""
    parser = HttpParser()
    txs: list = []
    for piece in pieces:
        _keep(txs, parser.feed(piece, True))
    _keep(txs, parser.finish())
    prefix = b"id=x%04d%s" % (index, PARSER_LETTER.encode())
    seen: dict[str, bytes] = {}
    events: set[str] = set()
    for tx in txs:
        events.update(tx.events)
        uri = tx.buffers.get("http.uri", b"")
        for match in re.finditer(re.escape(prefix) + rb"([A-Z])x", uri):
            seen.setdefault(match.group(1).decode(), uri.partition(b"?")[0])
    return ParserView(seen, frozenset(events))


def _keep(txs: list, new: Iterable) -> None:
    """Add the transactions not already there (by identity: a tx reported
    twice is one tx, and events added later show on the same object)."""
    for tx in new:
        if not any(tx is known for known in txs):
            txs.append(tx)


def splits(chunks: list[bytes]) -> dict[str, list[bytes]]:
    """The other ways the same bytes are fed, by name."""
    data = b"".join(chunks)
    ways: dict[str, list[bytes]] = {}
    if len(chunks) > 1:
        ways["writes"] = chunks
    cuts = [0, *(match.start() for match in _REQUEST_START.finditer(data)), len(data)]
    if len(cuts) > 2:
        ways["request starts"] = [data[a:b] for a, b in zip(cuts, cuts[1:])]
    third = len(data) // 3
    ways["thirds"] = [data[:third], data[third:2 * third], data[2 * third:]]
    if len(data) < BYTEWISE_LIMIT:
        ways["bytewise"] = [data[i:i + 1] for i in range(len(data))]
    return ways


def analyse(stream: Selected) -> tuple[ParserView, list[Finding]]:
    """The parser's view of the whole stream, and a finding for each split
    that changes it."""
    chunks = stream.chunks(PARSER_LETTER)
    data = b"".join(chunks)
    whole = parser_view(stream.index, [data])
    findings = []
    for way, pieces in splits(chunks).items():
        other = parser_view(stream.index, pieces)
        if other.key() != whole.key():
            detail = (f"{way}: seen {_letters(other.seen)} {sorted(other.drop_events)} "
                      f"vs whole: seen {_letters(whole.seen)} {sorted(whole.drop_events)}")
            findings.append(Finding("split", stream.name, stream.family, "parser", detail, data))
    return whole, findings


def _letters(seen: dict[str, bytes]) -> str:
    return "".join(sorted(seen)) or "-"


# -- the servers' side ---------------------------------------------------------------

@dataclass(frozen=True)
class Exchange:
    statuses: tuple[str, ...] = ()
    error: str | None = None


def exchange(port: int, chunks: list[bytes]) -> Exchange:
    """Send one stream on one connection (run in the servers' namespace) and
    read the answers until the server closes or goes quiet."""
    try:
        connection = socket.create_connection((HOST, port), timeout=FIRST_ANSWER_WAIT)
    except OSError as exc:
        return Exchange(error=f"connect: {exc}")
    with connection:
        for number, chunk in enumerate(chunks):
            if number:
                time.sleep(WRITE_GAP)
            try:
                connection.sendall(chunk)
            except OSError:
                break           # closed early: what it ran is in the CGI log anyway
        answer = _read_until_quiet(connection)
    return Exchange(tuple(status.decode() for status in _STATUS.findall(answer)[:4]))


def _read_until_quiet(connection: socket.socket) -> bytes:
    answer = bytearray()
    connection.settimeout(FIRST_ANSWER_WAIT)
    while True:
        try:
            data = connection.recv(65536)
        except OSError:         # TimeoutError included: the server went quiet
            break
        if not data:
            break
        answer += data
        connection.settimeout(QUIET_WAIT)
    return bytes(answer)


def _runs_settled(servers: RunningServers) -> list[dict[str, bytes]]:
    """The CGI records once no new one has appeared for QUIET_WAIT (a
    closed connection may leave a CGI still running)."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    records = read_runs(servers.runs_dir)
    while time.monotonic() < deadline:
        time.sleep(QUIET_WAIT)
        again = read_runs(servers.runs_dir)
        if len(again) == len(records):
            break
        records = again
    return records


def attribute(records: list[dict[str, bytes]]) -> tuple[dict[tuple[int, str], list[Run]], int]:
    """(stream index, server name) -> the runs; plus the number of records
    that carry no marker (a run the test cannot attribute)."""
    servers = {letter: name for name, letter in LETTERS.items()}
    runs: dict[tuple[int, str], list[Run]] = {}
    unattributed = 0
    for record in records:
        fields = (record.get(name, b"") for name in ("query", "request_uri", "path_info"))
        match = next((m for m in map(_RUN_MARKER.search, fields) if m), None)
        if match is None or match.group(2).decode() not in servers:
            unattributed += 1
            continue
        server = servers[match.group(2).decode()]
        runs.setdefault((int(match.group(1)), server), []).append(
            Run(match.group(3).decode(), record.get("method", b""), record.get("script_name", b""),
                record.get("path_info", b"")))
    return runs, unattributed


# -- classification ------------------------------------------------------------------

def classify(stream: Selected, data: bytes, view: ParserView, server: str, runs: list[Run],
             drop_events: frozenset[str] = DROP_EVENTS) -> list[Finding]:
    """Findings for what one server ran of one stream (at most one per
    marker letter and kind)."""
    flagged = bool(view.events & drop_events)
    findings: dict[tuple[str, str], Finding] = {}
    for run in runs:
        if run.letter not in view.seen:
            kind = "flagged" if flagged else "evasion"
            detail = f"ran {run.letter} ({run.method.decode('latin-1')} {_ran_path(run)}), parser saw " \
                     f"{_letters(view.seen)}"
        elif not _same_script(view.seen[run.letter], run.script_name):
            kind = "flagged" if flagged else "path"
            detail = f"{run.letter}: server ran {_ran_path(run)}, parser path " \
                     f"{view.seen[run.letter].decode('latin-1')!r}"
        else:
            continue
        if flagged:
            detail += f" [{', '.join(sorted(view.events & drop_events))}]"
        findings.setdefault((run.letter, kind),
                            Finding(kind, stream.name, stream.family, server, detail, data))
    return list(findings.values())


def _same_script(parser_path: bytes, script_name: bytes) -> bool:
    """The parser's path names the script the server ran (path info after
    it may differ: servers keep "/." or drop it; a rule keys on the script)."""
    return bool(script_name) and (parser_path == script_name or parser_path.startswith(script_name + b"/"))


def _ran_path(run: Run) -> str:
    return repr((run.script_name + run.path_info).decode("latin-1"))


# -- the run ---------------------------------------------------------------------------

def compare(filters: Sequence[str] = (), workdir: Path | None = None) -> Report:
    """Send the selected streams to every server and classify what ran.
    Needs root and the servers (see servers.missing_binaries())."""
    selected = select(filters)
    report = Report(server_versions(), len(selected), len(selected) * len(LETTERS))
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="rgdiff-") as scratch:
        with running_servers(workdir or scratch) as servers:
            exchanges, views, split_findings = _send_and_analyse(servers, selected)
            records = _runs_settled(servers)
            report.sanity_failures += [f"{name} exited during the run" for name in servers.exited()]
    report.findings += split_findings
    runs, unattributed = attribute(records)
    if unattributed:
        report.sanity_failures.append(f"{unattributed} CGI runs carry no marker")
    for stream in selected:
        data = b"".join(stream.chunks(PARSER_LETTER))
        for server in LETTERS:
            ran = runs.get((stream.index, server), [])
            report.ran[stream.name, server] = "".join(sorted({run.letter for run in ran}))
            report.findings += classify(stream, data, views[stream.index], server, ran)
    report.sanity_failures += _sanity(selected, runs, exchanges)
    report.seconds = time.monotonic() - started
    return report


def _send_and_analyse(servers: RunningServers, selected: list[Selected]
                      ) -> tuple[dict[tuple[int, str], Exchange], dict[int, ParserView], list[Finding]]:
    """Every stream to every server from a pool of threads inside the
    namespace; meanwhile this thread runs the parser (its views, and the
    split inconsistencies)."""
    pool = ThreadPoolExecutor(WORKERS, initializer=enter_namespace, initargs=(servers.namespace,))
    try:
        futures = {(stream.index, server): pool.submit(exchange, port, stream.chunks(LETTERS[server]))
                   for stream in selected for server, port in servers.items()}
        views, split_findings = {}, []
        for stream in selected:
            views[stream.index], inconsistent = analyse(stream)
            split_findings += inconsistent
        exchanges = {key: future.result() for key, future in futures.items()}
    finally:
        pool.shutdown(wait=True, cancel_futures=True)   # interrupted: do not send the rest first
    return exchanges, views, split_findings


def _sanity(selected: list[Selected], runs: dict[tuple[int, str], list[Run]],
            exchanges: dict[tuple[int, str], Exchange]) -> list[str]:
    """Why this run proves nothing, if it does not."""
    failures = []
    baseline = next(stream.index for stream in selected if stream.name == BASELINE)
    for server in LETTERS:
        if not any(run.letter == "A" for run in runs.get((baseline, server), [])):
            failures.append(f"baseline stream did not run on {server}")
        errors = [result.error for (_index, name), result in exchanges.items()
                  if name == server and result.error]
        if errors:
            failures.append(f"{server}: {len(errors)} connections failed ({errors[0]})")
    return failures


# -- the summary -----------------------------------------------------------------------

def summary(report: Report) -> str:
    lines = [f"HttpParser vs real servers: {report.streams} streams, {report.connections} connections, "
             f"{report.seconds:.1f} s"]
    lines += [f"  {name:<10} {HOST}:{port}  {report.versions.get(name, '?')}"
              for name, port in PORTS.items()]
    counts = [("evasions", "evasion"), ("flagged (dropped by the box)", "flagged"),
              ("path differs", "path"), ("split inconsistencies", "split")]
    lines.append("  ".join(f"{label}: {len(report.of(kind))}" for label, kind in counts))
    lines.append("sanity: " + ("baseline ran on every server, all runs attributed"
                               if not report.sanity_failures else "FAILED"))
    lines += [f"  SANITY {failure}" for failure in report.sanity_failures]
    for finding in report.evasions:
        lines.append(f"EVASION {finding.stream} ({finding.family}) on {finding.server}: {finding.detail}")
        lines.append(f"    stream (parser's copy, markers say p): {_short(finding.data)}")
    for finding in report.split_inconsistencies:
        lines.append(f"SPLIT {finding.stream}: {finding.detail}")
        lines.append(f"    {_short(finding.data)}")
    for finding in report.of("path"):
        lines.append(f"path differs {finding.stream} on {finding.server}: {finding.detail}")
    lines += [f"flagged {stream}: {', '.join(servers)}" for stream, servers in _flagged_by_stream(report)]
    return "\n".join(lines)


def _flagged_by_stream(report: Report) -> list[tuple[str, list[str]]]:
    grouped: dict[str, list[str]] = {}
    for finding in report.of("flagged"):
        grouped.setdefault(finding.stream, []).append(f"{finding.server} {finding.detail}")
    return list(grouped.items())


def _short(data: bytes) -> str:
    text = repr(data)
    return text if len(text) <= REPR_LIMIT else text[:REPR_LIMIT] + f"... ({len(data)} bytes)"


def why_not_here() -> str | None:
    """None when the run can work on this machine, else why not."""
    missing = missing_binaries()
    if missing:
        return (f"missing {', '.join(PACKAGES[package] for package in missing)}: "
                f"apt-get install {' '.join(missing)}")
    if os.geteuid() != 0:
        return "needs root (it creates a network namespace)"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    interrupt_on_sigterm()
    parser = argparse.ArgumentParser(prog="python -m tests.differential.run",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("filters", nargs="*", help="only streams whose name contains one of these")
    parser.add_argument("--workdir", type=Path,
                        help="keep the servers' files (configs, logs, CGI records) here, for debugging")
    args = parser.parse_args(argv)
    reason = why_not_here()
    if reason:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    try:
        report = compare(args.filters, args.workdir)
    except ServerStartError as exc:
        print(f"SANITY {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted (servers stopped, namespace deleted)", file=sys.stderr)
        return 130
    print(summary(report))
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
