"""The response-side differential run: what HTTP clients save against what the box drops.

    PYTHONPATH=. .venv/bin/python -m tests.differential.response_run [name filters...]   # as root

Every case of `responses.CASES` is served by a small server of this module
(one listening socket per case and client, in the network namespace
`rgresp-<pid>` with only loopback up) to each client of `CLIENTS` (busybox
wget, GNU wget, curl plain, with --http0.9 and with --compressed), which
saves what it downloads from http://127.0.0.1:PORT/x. The server records the
bytes of each connection: the requests as read, the responses as written.

The verdict is the box's, not a parser's. Each recorded connection is
rebuilt as a TCP connection from a device (DEVICE) to a server outside
(SERVER, port 80): the handshake, the request as recorded, the response cut
in one way of feeding -- whole, in the server's writes, in thirds, byte by
byte (under BYTEWISE_LIMIT) -- each piece one segment the device
acknowledges, then the close. Every connection of the run goes into one
pcap, replayed once through the real pipeline in the box's inline stream
mode with the shipped rules (signatures/virtual-patches.rules: sid 9100120
on file.data, and whatever else ships). A way of feeding is dropped when an
alert with action "blocked" fires on one of its connections. Each
(case, client) is classified:

* BYPASS: the client saved a file starting with the ELF magic, and at
  least one way of feeding is not dropped. The attacker chooses the
  segmentation, so one way is enough.
* seen: the client saved the ELF and every way is dropped.
* not saved: the client saved no ELF (refused, error, other bytes).

Information, not failures:

* over-blocked: a case no client saved an ELF from, dropped in some way.
* split: a client that saved no ELF, dropped in some ways and not others.
* late: a drop on a later packet than the one completing the ELF magic in
  the server's bytes: inline, the magic reached the device. Measured only
  where the magic is in the bytes as sent (not under chunk framing or a
  compression).

Sanity: the baseline case must be saved and seen for every client, the
rules must load cleanly and the replay must read every packet written.

Exit status: 0 clean; 1 on a bypass or a failed sanity check; 2 when it
cannot run here (not root, a client missing, busybox-static not
obtainable: it says why).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from scapy.data import DLT_EN10MB
from scapy.utils import RawPcapWriter

from ips.config import Config
from ips.detect import DetectEngine
from ips.replay import replay
from tests.detect.factories import AlertLog
from tests.detect.make_cases import CLIENT_MAC, SERVER_MAC
from tests.differential.responses import BASELINE, CASES, PATH, Case
from tests.differential.servers import (HOST, ServerStartError, create_namespace, delete_namespace,
                                        enter_namespace, find_binary, interrupt_on_sigterm)
from tests.differential.telnetd import TelnetdUnavailable, busybox

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "signatures" / "virtual-patches.rules"
MAGIC = b"\x7fELF"
CLIENTS: dict[str, list[str]] = {
    "busybox-wget": ["busybox", "wget", "-q", "-O", "{file}", "{url}"],
    "wget": ["wget", "-q", "-O", "{file}", "--tries=1", "--timeout=5", "{url}"],
    "curl": ["curl", "-s", "-o", "{file}", "--max-time", "5", "{url}"],
    "curl-http0.9": ["curl", "-s", "-o", "{file}", "--max-time", "5", "--http0.9", "{url}"],
    "curl-compressed": ["curl", "-s", "-o", "{file}", "--max-time", "5", "--compressed", "{url}"],
}
"""Client name -> argv ({file}: where it saves, {url}: what it fetches); the
program is looked up by `programs` (busybox: the static one, never installed)."""

DEVICE = "192.0.2.20"
"""The client in the pcap: a device of $HOME_NET."""
SERVER = "203.0.113.9"
"""The server in the pcap: the loader's host, outside."""
FIRST_PORT = 10000
"""The device's port of the first connection in the pcap; each takes the next."""
EPOCH = 1700000000.0
"""The first packet's capture time (fixed, as make_cases._stamp's)."""
FRAME_GAP = 0.01
CONNECTION_GAP = 1.0
"""Seconds between one connection's last packet and the next one's first."""
MSS = 1460
"""The largest segment: the pieces of the huge-header cases are cut to it."""
WAYS = ("whole", "writes", "thirds", "bytewise")
BYTEWISE_LIMIT = 20_000
"""Response bytes of a (case, client) above which it is not fed byte by byte."""

WORKERS = 24
WRITE_GAP = 0.02
"""Pause between a response's writes, so each leaves as a segment of its own."""
REQUEST_WAIT = 2.0
"""How long the server waits for a request head."""
CLIENT_TIMEOUT = 15.0
"""Beyond the clients' own 5 s limits (busybox wget has none)."""
REPR_LIMIT = 200

BYPASS, SEEN, NOT_SAVED = "BYPASS", "seen", "not saved"


# -- the server ----------------------------------------------------------------------

@dataclass
class Connection:
    """One connection as the server saw it: (to_server, writes) in order."""
    parts: list[tuple[bool, list[bytes]]] = field(default_factory=list)


class CaseServer:
    """Serves one case on its own port until closed; records each connection."""

    def __init__(self, case: Case) -> None:
        self.case = case
        self.listener = socket.create_server((HOST, 0))
        self.port = self.listener.getsockname()[1]
        self.connections: list[Connection] = []
        self._handlers: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _address = self.listener.accept()
            except OSError:
                return          # closed
            connection = Connection()
            self.connections.append(connection)
            handler = threading.Thread(target=self._handle, args=(client, connection), daemon=True)
            self._handlers.append(handler)
            handler.start()

    def _handle(self, client: socket.socket, connection: Connection) -> None:
        with client:
            client.settimeout(REQUEST_WAIT)
            if self.case.early:
                self._answer(client, connection, PATH)
                connection.parts.append((True, [_read_head(client)]))
                return
            request = _read_head(client)
            connection.parts.append((True, [request]))
            self._answer(client, connection, _request_path(request))
            with contextlib.suppress(OSError):      # the client may be gone already
                client.shutdown(socket.SHUT_WR)
            _drain(client)

    def _answer(self, client: socket.socket, connection: Connection, path: bytes) -> None:
        writes = self.case.respond(path)
        sent = []
        for number, chunk in enumerate(writes):
            if number:
                time.sleep(WRITE_GAP)
            try:
                client.sendall(chunk)
            except OSError:
                break           # the client gave up: record what it was sent
            sent.append(chunk)
        connection.parts.append((False, sent))

    def close(self) -> list[Connection]:
        self.listener.shutdown(socket.SHUT_RDWR)    # wakes the accept (close alone does not)
        self.listener.close()
        self._acceptor.join()
        for handler in self._handlers:
            handler.join()
        return [connection for connection in self.connections if connection.parts]


def _read_head(client: socket.socket) -> bytes:
    """The request head (up to the blank line), or what came before a
    timeout or close."""
    data = b""
    while b"\r\n\r\n" not in data and b"\n\n" not in data:
        try:
            more = client.recv(65536)
        except OSError:
            break
        if not more:
            break
        data += more
    return data


def _drain(client: socket.socket) -> None:
    """Read until the client closes (or goes quiet), so closing never
    resets a connection whose response the client is still reading."""
    try:
        while client.recv(65536):
            pass
    except OSError:
        pass


def _request_path(request: bytes) -> bytes:
    parts = request.split(b"\r\n", 1)[0].split()
    return parts[1] if len(parts) > 1 else b""


# -- the clients -----------------------------------------------------------------------

@dataclass(frozen=True)
class Download:
    exit_code: int | None
    """None: killed after CLIENT_TIMEOUT."""
    saved: bytes | None
    """The file's bytes, None when there is none."""

    @property
    def elf(self) -> bool:
        return bool(self.saved) and self.saved.startswith(MAGIC)

    def describe(self) -> str:
        if self.saved is None:
            return f"rc={self.exit_code} no file"
        return f"rc={self.exit_code} {len(self.saved)}B {'ELF' if self.elf else repr(self.saved[:12])}"


def programs(cache: Path | None = None) -> dict[str, str]:
    """Program name -> path, for the argv of `CLIENTS`. Raises
    TelnetdUnavailable when busybox-static cannot be had, FileNotFoundError
    when a client is not installed."""
    found = {"busybox": str(busybox(cache))}
    for name in {argv[0] for argv in CLIENTS.values()} - set(found):
        path = find_binary(name)
        if path is None:
            raise FileNotFoundError(f"{name} (apt-get install {name})")
        found[name] = path
    return found


def download(namespace: str, argv: list[str], port: int, workdir: Path) -> Download:
    """Run one client's `argv` (from CLIENTS, program resolved) in `namespace`."""
    target = workdir / "saved"
    argv = [part.replace("{file}", str(target)).replace("{url}", f"http://{HOST}:{port}{PATH.decode()}")
            for part in argv]
    try:
        done = subprocess.run(["ip", "netns", "exec", namespace, *argv], cwd=workdir, capture_output=True,
                              stdin=subprocess.DEVNULL, timeout=CLIENT_TIMEOUT)
        exit_code = done.returncode
    except subprocess.TimeoutExpired:
        exit_code = None
    return Download(exit_code, target.read_bytes() if target.exists() else None)


# -- the box's side -----------------------------------------------------------------------

@dataclass(frozen=True)
class Verdict:
    """What the box did to one way of feeding a (case, client)'s connections."""
    dropped: bool
    sids: frozenset[int] = frozenset()
    """Every sid that fired (dropping or not)."""
    late: bool | None = None
    """The drop came after the packet completing the ELF magic; None: not
    dropped, or the magic is not in the bytes as sent."""


def classify(saved_elf: bool, verdicts: Mapping[str, Verdict]) -> str:
    """BYPASS, seen or not saved (see the module docstring)."""
    if not saved_elf:
        return NOT_SAVED
    return SEEN if all(verdict.dropped for verdict in verdicts.values()) else BYPASS


@dataclass
class Outcome:
    case: Case
    client: str
    download: Download
    connections: list[Connection]
    verdicts: dict[str, Verdict] = field(default_factory=dict)
    """Way of feeding -> the box's verdict (filled in by `judge`)."""

    @property
    def response(self) -> bytes:
        """The first connection's response bytes, for the report."""
        return next((b"".join(writes) for connection in self.connections
                     for to_server, writes in connection.parts if not to_server), b"")

    @property
    def kind(self) -> str:
        return classify(self.download.elf, self.verdicts)

    @property
    def open_ways(self) -> list[str]:
        return [way for way, verdict in self.verdicts.items() if not verdict.dropped]

    @property
    def dropped_ways(self) -> list[str]:
        return [way for way, verdict in self.verdicts.items() if verdict.dropped]

    @property
    def split(self) -> bool:
        """Dropped in some ways only, by a client that saved no ELF (with
        an ELF saved, that is a bypass)."""
        return not self.download.elf and bool(self.open_ways) and bool(self.dropped_ways)


def feed_ways(connections: list[Connection]) -> dict[str, list[list[tuple[bool, list[bytes]]]]]:
    """Way name -> the connections with their responses cut that way
    (requests always as read)."""
    def cut(way: str, writes: list[bytes]) -> list[bytes]:
        data = b"".join(writes)
        if way == "whole":
            return [data]
        if way == "writes":
            return writes
        if way == "thirds":
            third = len(data) // 3
            return [data[:third], data[third:2 * third], data[2 * third:]]
        return [data[index:index + 1] for index in range(len(data))]

    sent = sum(len(b"".join(writes)) for connection in connections
               for to_server, writes in connection.parts if not to_server)
    ways = [way for way in WAYS if way != "bytewise" or sent < BYTEWISE_LIMIT]
    return {way: [[(to_server, writes if to_server else cut(way, writes)) for to_server, writes in connection.parts]
                  for connection in connections] for way in ways}


@dataclass(frozen=True)
class Flow:
    """One rebuilt connection in the pcap."""
    key: tuple[int, str]
    """(index of its outcome, way of feeding)."""
    port: int
    """The device's port: tells its alerts from the others'."""
    magic: int | None
    """pcap_cnt of the server packet completing the first ELF magic in the
    response bytes, None when they hold none."""


Segment = tuple[bool, str, int, int, bytes]
"""(from the device, TCP flags, seq, ack, payload): one frame of a connection."""


def connection_segments(parts: list[tuple[bool, list[bytes]]]) -> list[Segment]:
    """The connection as `make_cases._tcp_session` lays it out (handshake,
    each non-empty piece one segment acknowledged by the other side; a
    piece over MSS in several, as on Ethernet), then the close: every case
    server closes after answering."""
    device, server = 1000, 5000
    frames: list[Segment] = [(True, "S", device, 0, b""), (False, "SA", server, device + 1, b""),
                             (True, "A", device + 1, server + 1, b"")]
    device, server = device + 1, server + 1
    for to_server, piece in ((to_server, piece[start:start + MSS]) for to_server, pieces in parts
                             for piece in pieces for start in range(0, len(piece), MSS)):
        if to_server:
            frames += [(True, "PA", device, server, piece), (False, "A", server, device + len(piece), b"")]
            device += len(piece)
        else:
            frames += [(False, "PA", server, device, piece), (True, "A", device, server + len(piece), b"")]
            server += len(piece)
    return frames + [(False, "FA", server, device, b""), (True, "FA", device, server + 1, b""),
                     (False, "A", server + 1, device + 1, b"")]


_FLAGS = {"S": 0x02, "SA": 0x12, "A": 0x10, "PA": 0x18, "FA": 0x11}
_MACS = {True: bytes.fromhex(SERVER_MAC.replace(":", "") + CLIENT_MAC.replace(":", "")),
         False: bytes.fromhex(CLIENT_MAC.replace(":", "") + SERVER_MAC.replace(":", ""))}
_ADDRESSES = {True: socket.inet_aton(DEVICE) + socket.inet_aton(SERVER),
              False: socket.inet_aton(SERVER) + socket.inet_aton(DEVICE)}


def frame_bytes(segment: Segment, port: int) -> bytes:
    """The Ethernet frame scapy builds for the segment (Ether/IP/TCP with
    its defaults, checksums filled in), written by hand: scapy takes about
    a millisecond a frame, and a full run writes some 400,000 (the
    byte-by-byte way), which would make the run minutes long.
    test_http_clients checks the bytes against `_tcp_session`'s."""
    from_device, flags, seq, ack, payload = segment
    ports = (port, 80) if from_device else (80, port)
    tcp = struct.pack("!HHIIBBHHH", *ports, seq, ack, 5 << 4, _FLAGS[flags], 8192, 0, 0) + payload
    addresses = _ADDRESSES[from_device]
    tcp = tcp[:16] + struct.pack("!H", _checksum(addresses + struct.pack("!HH", 6, len(tcp)) + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(tcp), 1, 0, 64, 6, 0) + addresses
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    return _MACS[from_device] + b"\x08\x00" + ip + tcp


def _checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071)."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _magic_segment(segments: list[Segment]) -> int | None:
    """Index of the server segment after which the response bytes first hold the magic."""
    sent = b""
    for index, (from_device, _flags, _seq, _ack, payload) in enumerate(segments):
        if not from_device and payload:
            sent += payload
            if MAGIC in sent:
                return index
    return None


def write_pcap(outcomes: list[Outcome], path: Path) -> tuple[list[Flow], int]:
    """Every way of every outcome's connections, one after the other in one
    pcap (frames FRAME_GAP apart, connections CONNECTION_GAP): its flows and
    the number of packets written."""
    flows: list[Flow] = []
    count, clock = 0, EPOCH
    with RawPcapWriter(str(path), linktype=DLT_EN10MB, sync=False) as pcap:
        pcap.write_header(None)     # write_packet does not
        for index, outcome in enumerate(outcomes):
            for way, connections in feed_ways(outcome.connections).items():
                for parts in connections:
                    port = FIRST_PORT + len(flows)
                    if port > 65535:
                        raise ValueError("more connections than client ports: select fewer cases")
                    segments = connection_segments(parts)
                    magic = _magic_segment(segments)
                    flows.append(Flow((index, way), port, None if magic is None else count + magic + 1))
                    for segment in segments:
                        pcap.write_packet(frame_bytes(segment, port), sec=int(clock),
                                          usec=round(clock % 1 * 1e6))
                        clock += FRAME_GAP
                    count += len(segments)
                    clock += CONNECTION_GAP
    return flows, count


def judge(outcomes: list[Outcome], workdir: Path) -> list[str]:
    """Replay every outcome through the pipeline (inline stream mode, the
    shipped rules) and fill in its verdicts; returns sanity failures."""
    pcap = workdir / "responses.pcap"
    flows, written = write_pcap(outcomes, pcap)
    config = Config()
    config.stream_inline = True     # as the box runs: data is inspected when it arrives
    engine, report = DetectEngine.load([str(RULES)], config)
    alerts = AlertLog()
    summary = replay([str(pcap)], engine, workdir / "replay", config, consumers=[alerts], progress=False)
    by_port: dict[int, list] = {}
    for event in alerts.events:
        for port in (event.src_port, event.dest_port):
            by_port.setdefault(port, []).append(event)
    by_key: dict[tuple[int, str], list[tuple[Flow, list]]] = {}
    for flow in flows:
        by_key.setdefault(flow.key, []).append((flow, by_port.get(flow.port, [])))
    for index, outcome in enumerate(outcomes):
        outcome.verdicts = {way: verdict(by_key.get((index, way), []))
                            for way in feed_ways(outcome.connections)}
    problems = [f"rules: {item}" for item in [*report.errors, *report.skipped]]
    if summary.packets != written:
        problems.append(f"replay read {summary.packets} of {written} packets ({summary.errors})")
    return problems


def verdict(flows: list[tuple[Flow, list]]) -> Verdict:
    """One way's verdict from its connections and their alerts."""
    sids = frozenset(event.signature_id for _flow, events in flows for event in events)
    drops = [(flow, min(event.pcap_cnt for event in events if event.action == "blocked"))
             for flow, events in flows if any(event.action == "blocked" for event in events)]
    timed = [drop > flow.magic for flow, drop in drops if flow.magic is not None and drop]
    return Verdict(bool(drops), sids, any(timed) if timed else None)


# -- one run: every case to every client, then the box ----------------------------------------

def run_one(namespace: str, case: Case, client: str, argv: list[str]) -> Outcome:
    """Serve `case` to `client` (in a worker thread inside the namespace)."""
    server = CaseServer(case)
    with tempfile.TemporaryDirectory(prefix="rgresp-") as scratch:
        try:
            result = download(namespace, argv, server.port, Path(scratch))
        finally:
            connections = server.close()
    return Outcome(case, client, result, connections)


def serve(cases: list[Case], found: dict[str, str]) -> list[Outcome]:
    """Serve `cases` to every client, in a namespace of their own that is
    deleted on the way out, failure included."""
    namespace = f"rgresp-{os.getpid()}"
    create_namespace(namespace)
    try:
        subprocess.run(["ip", "-n", namespace, "link", "set", "lo", "up"], check=True)
        pool = ThreadPoolExecutor(WORKERS, initializer=enter_namespace, initargs=(namespace,))
        try:
            futures = [pool.submit(run_one, namespace, case, client, [found[argv[0]], *argv[1:]])
                       for case in cases for client, argv in CLIENTS.items()]
            return [future.result() for future in futures]
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    finally:
        delete_namespace(namespace)


@dataclass
class Report:
    outcomes: list[Outcome]
    problems: list[str]
    """Sanity failures of the replay itself."""

    @property
    def bypasses(self) -> list[Outcome]:
        return [outcome for outcome in self.outcomes if outcome.kind == BYPASS]

    @property
    def sanity_failures(self) -> list[str]:
        return self.problems + [f"baseline {o.client}: {o.kind} ({o.download.describe()})"
                                for o in self.outcomes if o.case.name == BASELINE and o.kind != SEEN]

    @property
    def failed(self) -> bool:
        return bool(self.bypasses or self.sanity_failures)


def select(filters: Sequence[str] = ()) -> list[Case]:
    """The cases whose name contains one of `filters` (all without), and the baseline."""
    return [case for case in CASES if not filters or case.name == BASELINE
            or any(part in case.name for part in filters)]


def compare(filters: Sequence[str] = (), workdir: Path | None = None, cache: Path | None = None) -> Report:
    """Serve the selected cases to every client, then replay what was sent
    through the box; the pcap and the replay's output go to `workdir`
    (a temporary directory without)."""
    outcomes = serve(select(filters), programs(cache))
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
        return Report(outcomes, judge(outcomes, workdir))
    with tempfile.TemporaryDirectory(prefix="rgresp-") as scratch:
        return Report(outcomes, judge(outcomes, Path(scratch)))


# -- the summary ---------------------------------------------------------------------------

def _short(data: bytes) -> str:
    text = repr(data)
    return text if len(text) <= REPR_LIMIT else text[:REPR_LIMIT] + f"... ({len(data)} bytes)"


def _sids(verdicts: list[Verdict]) -> str:
    return ",".join(str(sid) for sid in sorted(set().union(*(v.sids for v in verdicts)))) or "-"


def _cell(outcome: Outcome) -> str:
    if outcome.kind != NOT_SAVED:
        return outcome.kind
    return f"- (dropped {len(outcome.dropped_ways)}/{len(outcome.verdicts)})" if outcome.dropped_ways else "-"


def _by_case(outcomes: list[Outcome]) -> dict[str, list[Outcome]]:
    rows: dict[str, list[Outcome]] = {}
    for outcome in outcomes:
        rows.setdefault(outcome.case.name, []).append(outcome)
    return rows


def summary(report: Report) -> str:
    rows = _by_case(report.outcomes)
    lines = [f"{'case':<40} " + " ".join(f"{client:<18}" for client in CLIENTS) + " sids (any way)"]
    for name, row in rows.items():
        verdicts = [v for outcome in row for v in outcome.verdicts.values()]
        lines.append(f"{name:<40} " + " ".join(f"{_cell(outcome):<18}" for outcome in row) + f" {_sids(verdicts)}")
    lines.append("")
    for name, row in rows.items():
        group = [outcome for outcome in row if outcome.kind == BYPASS]
        if not group:
            continue
        lines.append(f"BYPASS {name} ({group[0].case.family})")
        lines.append(f"    response: {_short(group[0].response)}")
        for outcome in group:
            dropped = [outcome.verdicts[way] for way in outcome.dropped_ways]
            lines.append(f"    {outcome.client}: saved {outcome.download.describe()}; not dropped "
                         f"({', '.join(outcome.open_ways)}); sids on the other ways: {_sids(dropped)}")
    lines += _information(rows)
    lines += [f"SANITY {failure}" for failure in report.sanity_failures]
    lines.append(_totals(report, rows))
    return "\n".join(lines)


def _information(rows: dict[str, list[Outcome]]) -> list[str]:
    """The late, split and over-blocked lines."""
    lines = []
    for name, row in rows.items():
        late = [f"{o.client}/{way}" for o in row for way, v in o.verdicts.items() if v.late]
        if late:
            lines.append(f"late {name}: {', '.join(late)}")
    for name, row in rows.items():
        for outcome in (o for o in row if o.split):
            lines.append(f"split {name} {outcome.client} ({outcome.download.describe()}): dropped "
                         f"{', '.join(outcome.dropped_ways)}, not {', '.join(outcome.open_ways)}")
    for name, row in rows.items():
        if not any(o.download.elf for o in row) and any(o.dropped_ways for o in row):
            lines.append(f"over-blocked {name}: sids {_sids([v for o in row for v in o.verdicts.values()])}; "
                         + ", ".join(f"{o.client} {o.download.describe()}" for o in row))
    return lines


def _totals(report: Report, rows: dict[str, list[Outcome]]) -> str:
    bypasses = report.bypasses
    over = [name for name, row in rows.items()
            if not any(o.download.elf for o in row) and any(o.dropped_ways for o in row)]
    verdicts = [v for o in report.outcomes for v in o.verdicts.values()]
    late = {name for name, row in rows.items() for o in row if any(v.late for v in o.verdicts.values())}
    return (f"{len(bypasses)} bypasses ({len({o.case.name for o in bypasses})} of {len(rows)} cases), "
            f"{len(over)} over-blocked cases, {sum(o.split for o in report.outcomes)} splits, "
            f"{len(late)} cases with late drops ({sum(bool(v.late) for v in verdicts)} of "
            f"{sum(v.late is not None for v in verdicts)} drops timed), "
            f"{len(report.sanity_failures)} sanity failures")


def why_not_here(cache: Path | None = None) -> str | None:
    """None when the run can work on this machine, else why not."""
    if os.geteuid() != 0:
        return "needs root (it creates a network namespace)"
    if find_binary("ip") is None:
        return "ip (apt-get install iproute2)"
    try:
        programs(cache)
    except (TelnetdUnavailable, FileNotFoundError, OSError, subprocess.SubprocessError) as exc:
        return f"missing client: {exc}"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    interrupt_on_sigterm()
    parser = argparse.ArgumentParser(prog="python -m tests.differential.response_run",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("filters", nargs="*", help="only cases whose name contains one of these")
    parser.add_argument("--cache", type=Path, help="busybox-static cache (default $REEFGUARD_BUSYBOX_CACHE "
                                                   "or ~/.cache/reefguard/busybox-static)")
    parser.add_argument("--workdir", type=Path, help="keep the pcap and the replay's output here")
    args = parser.parse_args(argv)
    reason = why_not_here(args.cache)
    if reason:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    try:
        report = compare(args.filters, args.workdir, args.cache)
    except ServerStartError as exc:
        print(f"cannot run: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted (namespace deleted)", file=sys.stderr)
        return 130
    print(summary(report))
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
