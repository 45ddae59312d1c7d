"""ips.conntrack: kernel records of bypassed connections become flow records.

The translation is tested on DESTROY messages recorded from this machine's
kernel (`conntrack -D` of loopback connections in a scratch namespace whose
mangle table set ReefGuard's bypass connmark, accounting and timestamps on;
`conntrack -L -o extended,id,timestamp` showed, for example, tcp 127.0.0.1:43712
-> 127.0.0.1:5001 packets=11 bytes=300580 / packets=9 bytes=478
mark=33554432 id=2339673370). The inline test runs a bulk transfer through
the lab box and checks the flow record that reaches EVE and the store."""
import base64
import dataclasses
import json
import sqlite3
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.inline_support import why_not_inline
from hypothesis import given, settings, strategies as st

from ips import conntrack, events
from ips.collector import Collector
from ips.conntrack import BypassLedger, BypassNote, ConntrackEnd, ListenerState
from ips.nfq import MARK_BYPASS, MARK_DROP

RECORDED = {
    "udp_unaccounted": (
        "nAAAAAIBAAAAAAAA/fQu9gIAAAA0AAGAFAABgAgAAQB/AAABCAACAH8AAAEcAAKABQABABEAAAAG"
        "AAIAh/AAAAYAAwAVGAAANAACgBQAAYAIAAEAfwAAAQgAAgB/AAABHAACgAUAAQARAAAABgACABUY"
        "AAAGAAMAh/AAAAgADADKBYauCAADAAAAAgoIAAcAAAAAHQgACAACAAAA"
    ),
    "tcp4": (
        "DAEAAAIBAAAAAAAAUPFW1gIAAAA0AAGAFAABgAgAAQB/AAABCAACAH8AAAEcAAKABQABAAYAAAAG"
        "AAIAqsAAAAYAAwATiQAANAACgBQAAYAIAAEAfwAAAQgAAgB/AAABHAACgAUAAQAGAAAABgACABOJ"
        "AAAGAAMAqsAAAAgADACLdJUaCAADAAAAAg4IAAcAAAAAdxwACYAMAAEAAAAAAAAAAAsMAAIAAAAA"
        "AAAEliQcAAqADAABAAAAAAAAAAAJDAACAAAAAAAAAAHeHAAUgAwAAQAY661/QmaDpwwAAgAY661/"
        "WSP45hAABIAMAAGABQABAAcAAAAIAAgAAgAAAAwAGwAY661/WSP6WQ=="
    ),
    "udp4": (
        "/AAAAAIBAAAAAAAAF50GrwIAAAA0AAGAFAABgAgAAQB/AAABCAACAH8AAAEcAAKABQABABEAAAAG"
        "AAIArpsAAAYAAwAU6QAANAACgBQAAYAIAAEAfwAAAQgAAgB/AAABHAACgAUAAQARAAAABgACABTp"
        "AAAGAAMArpsAAAgADAAxY1zpCAADAAAAAgoIAAcAAAAAHRwACYAMAAEAAAAAAAAAAAEMAAIAAAAA"
        "AAAAAIAcAAqADAABAAAAAAAAAAABDAACAAAAAAAAAABOHAAUgAwAAQAY661/QnpQGgwAAgAY661/"
        "Wl9TEggACAACAAAADAAbABjrrX9aX1R6"
    ),
    "tcp6": (
        "PAEAAAIBAAAAAAAATn2QvwoAAABMAAGALAABgBQAAwAAAAAAAAAAAAAAAAAAAAABFAAEAAAAAAAA"
        "AAAAAAAAAAAAAAEcAAKABQABAAYAAAAGAAIAzfYAAAYAAwATiQAATAACgCwAAYAUAAMAAAAAAAAA"
        "AAAAAAAAAAAAARQABAAAAAAAAAAAAAAAAAAAAAABHAACgAUAAQAGAAAABgACABOJAAAGAAMAzfYA"
        "AAgADACSAUmCCAADAAAAAg4IAAcAAAAAdxwACYAMAAEAAAAAAAAAAAgMAAIAAAAAAAABiOgcAAqA"
        "DAABAAAAAAAAAAAFDAACAAAAAAAAAAFyHAAUgAwAAQAY661/QoOI0QwAAgAY661/W2SDUBAABIAM"
        "AAGABQABAAcAAAAIAAgAAgAAAAwAGwAY661/W2SFtA=="
    ),
    "tcp4_unmarked": (
        "BAEAAAIBAAAAAAAAVNNB4QIAAAA0AAGAFAABgAgAAQB/AAABCAACAH8AAAEcAAKABQABAAYAAAAG"
        "AAIA4QoAAAYAAwATigAANAACgBQAAYAIAAEAfwAAAQgAAgB/AAABHAACgAUAAQAGAAAABgACABOK"
        "AAAGAAMA4QoAAAgADAC56kduCAADAAAAAg4IAAcAAAAAdxwACYAMAAEAAAAAAAAAAAYMAAIAAAAA"
        "AAAABSgcAAqADAABAAAAAAAAAAAEDAACAAAAAAAAAADaHAAUgAwAAQAY661/QqsC1wwAAgAY661/"
        "XHa42BAABIAMAAGABQABAAcAAAAMABsAGOutf1x2ups="
    ),
}


def recorded(name: str) -> bytes:
    return base64.b64decode("".join(RECORDED[name]))


RECEIVED_AT = 1_800_000_000.0
CAMERA_MAC = "02:00:00:00:00:10"   # unit tests' own factory value
ROUTER_MAC = "02:00:00:00:01:01"


def record_of(name: str) -> ConntrackEnd:
    records, skipped, malformed = conntrack.translate(recorded(name), RECEIVED_AT)
    assert (len(records), skipped, malformed) == (1, 0, 0)
    return records[0]


# --- translation ---------------------------------------------------------

def test_tcp_destroy_becomes_flow_record_with_kernel_counters():
    record = record_of("tcp4")
    flow = record.flow_end
    assert flow.tuple == events.FiveTuple("127.0.0.1", 43712, "127.0.0.1", 5001, "TCP")
    assert (flow.pkts_toserver, flow.bytes_toserver) == (11, 300580)
    assert (flow.pkts_toclient, flow.bytes_toclient) == (9, 478)
    assert flow.start == pytest.approx(1795719638.523741, abs=1e-6)
    assert flow.end == pytest.approx(1795719638.905256, abs=1e-6)
    assert flow.timestamp == flow.end
    assert (flow.action, flow.reason, flow.state, flow.tcp_state) == (
        "bypass", "bypass_end", "closed", "closed")     # destroyed from TIME_WAIT
    assert flow.client_mac is None and flow.server_mac is None and flow.app_proto is None
    assert record.conntrack_id == 2339673370 and record.accounted and record.timestamped
    assert flow.flow_id == conntrack.KERNEL_FLOW_ID_BIT | 2339673370 and flow.flow_id < 2 ** 52


def test_ipv6_and_udp_destroys():
    flow = record_of("tcp6").flow_end
    assert (flow.tuple.src_ip, flow.tuple.dest_ip, flow.tuple.dest_port) == ("::1", "::1", 5001)
    assert (flow.bytes_toserver, flow.bytes_toclient) == (100584, 370)
    udp = record_of("udp4").flow_end
    assert udp.tuple == events.FiveTuple("127.0.0.1", 44699, "127.0.0.1", 5353, "UDP")
    assert (udp.pkts_toserver, udp.bytes_toserver, udp.bytes_toclient) == (1, 128, 78)
    assert udp.state == "established" and udp.tcp_state is None   # a reply was seen


def test_connections_without_the_bypass_mark_are_skipped():
    entries, malformed = conntrack.parse_messages(recorded("tcp4_unmarked"))
    assert malformed == 0 and entries[0].mark == 0 and entries[0].bytes_orig == 1320
    assert conntrack.translate(recorded("tcp4_unmarked"), RECEIVED_AT) == ([], 1, 0)
    assert conntrack.is_bypassed(MARK_BYPASS | 0x1)          # other software's bits survive
    assert not conntrack.is_bypassed(MARK_DROP)
    assert not conntrack.is_bypassed(MARK_BYPASS | MARK_DROP)


def test_entry_created_before_accounting_has_no_counters_and_receive_times():
    record = record_of("udp_unaccounted")
    assert not record.accounted and not record.timestamped
    flow = record.flow_end
    assert (flow.bytes_toserver, flow.bytes_toclient, flow.pkts_toserver) == (0, 0, 0)
    assert flow.start == flow.end == RECEIVED_AT


def test_several_messages_in_one_datagram():
    records, skipped, malformed = conntrack.translate(
        recorded("tcp4") + recorded("tcp4_unmarked") + recorded("udp4"), RECEIVED_AT)
    assert [r.flow_end.tuple.proto for r in records] == ["TCP", "UDP"]
    assert (skipped, malformed) == (1, 0)


def test_dump_entries_are_reported_as_shutdown_records():
    data = bytearray(recorded("tcp4"))
    struct.pack_into("=H", data, 4, (conntrack.NFNL_SUBSYS_CTNETLINK << 8) | conntrack.IPCTNL_MSG_CT_NEW)
    records, _, _ = conntrack.translate(bytes(data), RECEIVED_AT)
    assert records[0].flow_end.reason == "shutdown"


def test_dump_request_asks_for_bypassed_entries_and_zeroes_them():
    request = conntrack._dump_request(7, MARK_BYPASS, conntrack.MARK_MASK)
    length, msg_type, flags, sequence, _pid = struct.unpack_from("=IHHII", request)
    assert length == len(request) == 16 + 4 + 8 + 8
    assert msg_type == 0x0103 and flags == 0x301 and sequence == 7
    assert request[-16:] == (struct.pack("=HH", 8, 8) + struct.pack("!I", MARK_BYPASS)
                             + struct.pack("=HH", 8, 21) + struct.pack("!I", conntrack.MARK_MASK))


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_every_truncation_is_counted_never_raised(name):
    data = recorded(name)
    for cut in range(len(data)):
        entries, malformed = conntrack.parse_messages(data[:cut])
        assert entries == [] and malformed <= 1


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=512))
def test_random_bytes_never_raise(data):
    conntrack.translate(data, RECEIVED_AT)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_corrupted_recordings_never_raise(data):
    raw = bytearray(recorded(data.draw(st.sampled_from(sorted(RECORDED)))))
    for _ in range(data.draw(st.integers(1, 8))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    conntrack.translate(bytes(raw), RECEIVED_AT)


# --- the ledger: one record per bypassed connection ----------------------

def note_for(flow: events.FlowEnd, **changes) -> BypassNote:
    five = flow.tuple
    values = dict(tuple=five, flow_id=77, start=flow.start - 0.5, app_proto="http",
                  client_mac=CAMERA_MAC, server_mac=ROUTER_MAC, alerted=False,
                  tcp_flags_ts=0x1B, tcp_flags_tc=0x12, pkts_toserver=4,
                  bytes_toserver=70_000, pkts_toclient=3, bytes_toclient=180)
    values.update(changes)
    return BypassNote(**values)


def worker_record(note: BypassNote) -> events.FlowEnd:
    """The worker's partial record of the same flow, written at its timeout."""
    return events.FlowEnd(
        timestamp=note.start + 300, flow_id=note.flow_id, tuple=note.tuple, app_proto="http",
        start=note.start, end=note.start + 1, pkts_toserver=note.pkts_toserver,
        pkts_toclient=note.pkts_toclient, bytes_toserver=note.bytes_toserver,
        bytes_toclient=note.bytes_toclient, state="established", reason="timeout",
        alerted=True, action="bypass", tcp_flags_ts=0x18, tcp_flags_tc=0x10,
        tcp_state="established", client_mac=CAMERA_MAC, server_mac=ROUTER_MAC)


class Recorder:
    def __init__(self):
        self.flows = []

    def flow_end(self, flow):
        self.flows.append(flow)


def run(ledger: BypassLedger, messages) -> list:
    recorder = Recorder()
    collector = Collector([recorder])
    for message in messages:
        for ready in ledger.feed(message):
            collector.emit(ready)
    for ready in ledger.done():
        collector.emit(ready)
    return recorder.flows


@pytest.mark.parametrize("worker_first", [False, True])
def test_kernel_record_is_the_volume_and_worker_record_is_not_counted_twice(worker_first):
    kernel = record_of("tcp4")
    note = note_for(kernel.flow_end)
    worker = worker_record(note)
    order = [note, worker, kernel] if worker_first else [note, kernel, worker]
    flows = run(BypassLedger(active=True), order)
    assert len(flows) == 1
    flow = flows[0]
    # volume: the kernel's counters, which include what the worker saw
    assert (flow.bytes_toserver, flow.bytes_toclient) == (300580, 478)
    # identity and device: the worker's
    assert (flow.flow_id, flow.app_proto, flow.client_mac, flow.server_mac) == (
        77, "http", CAMERA_MAC, ROUTER_MAC)
    assert flow.reason == "bypass_end" and flow.action == "bypass"
    assert flow.start == kernel.flow_end.start      # the kernel's timestamp wins
    if worker_first:    # the worker's final word on alerts and flags is kept
        assert flow.alerted and flow.tcp_flags_ts == 0x1B | 0x18
    else:
        assert not flow.alerted


def test_worker_took_the_other_side_as_client():
    kernel = record_of("tcp4")
    five = kernel.flow_end.tuple
    reversed_tuple = events.FiveTuple(five.dest_ip, five.dest_port, five.src_ip, five.src_port, "TCP")
    flows = run(BypassLedger(active=True), [note_for(kernel.flow_end, tuple=reversed_tuple), kernel])
    assert flows[0].tuple == reversed_tuple
    assert (flows[0].bytes_toserver, flows[0].bytes_toclient) == (478, 300580)


def test_kernel_record_without_note_keeps_unknown_macs():
    ledger = BypassLedger(active=True)
    flows = run(ledger, [record_of("udp4")])
    assert flows[0].client_mac is None and flows[0].bytes_toserver == 128
    assert ledger.counters["without_note"] == 1


def test_unaccounted_entry_falls_back_to_the_workers_counts():
    kernel = record_of("udp_unaccounted")
    ledger = BypassLedger(active=True)
    flows = run(ledger, [note_for(kernel.flow_end), kernel])
    assert flows[0].bytes_toserver == 70_000 and flows[0].start == RECEIVED_AT - 0.5
    assert ledger.counters["unaccounted"] == 1


def test_without_listener_the_worker_record_is_written():
    note = note_for(record_of("tcp4").flow_end)
    flows = run(BypassLedger(active=False), [note, worker_record(note)])
    assert [f.bytes_toserver for f in flows] == [70_000]


def test_listener_stopping_turns_worker_records_back_on():
    note = note_for(record_of("tcp4").flow_end)
    ledger = BypassLedger(active=True)
    flows = run(ledger, [note, ListenerState(active=False), worker_record(note)])
    assert len(flows) == 1 and not ledger.pending


def test_other_events_pass_unchanged_and_stats_carry_the_ledger_counters():
    ledger = BypassLedger(active=True)
    passed = dataclasses.replace(worker_record(note_for(record_of("tcp4").flow_end)), action="pass")
    assert ledger.feed(passed) == [passed]
    stats = ledger.feed(events.Stats(timestamp=1.0, counters={"inline": {"inspected": 3}}))[0]
    assert stats.counters["inline"] == {"inspected": 3}
    assert stats.counters["bypass_accounting"]["active"] == 1


def test_pending_notes_are_bounded():
    ledger = BypassLedger(active=True, max_pending=3)
    base = record_of("tcp4").flow_end
    for port in range(10):
        five = dataclasses.replace(base.tuple, src_port=40000 + port)
        ledger.feed(note_for(base, tuple=five))
    assert len(ledger.pending) == 3 and ledger.counters["notes_evicted"] == 7


def test_icmp_stays_with_the_worker_record():
    """Neighbour discovery and ICMP errors have no conntrack entry to carry
    the mark, so for non-TCP/UDP flows the worker's record is the record."""
    note = note_for(record_of("tcp4").flow_end)
    icmp = dataclasses.replace(worker_record(note), tuple=dataclasses.replace(note.tuple, proto="IPv6-ICMP"))
    assert run(BypassLedger(active=True), [dataclasses.replace(note, tuple=icmp.tuple), icmp]) == [icmp]
    data = bytearray(recorded("udp4"))
    protocol_at = data.index(bytes([5, 0, 1, 0, 17]))          # CTA_PROTO_NUM = 17 (UDP)
    data[protocol_at + 4] = 1
    assert conntrack.translate(bytes(data), RECEIVED_AT)[0] == []


def test_worker_record_is_written_when_the_kernel_record_never_came():
    note = note_for(record_of("tcp4").flow_end)
    ledger = BypassLedger(active=True)
    flows = run(ledger, [note, worker_record(note)])     # destroy event lost
    assert [f.bytes_toserver for f in flows] == [70_000]
    assert ledger.counters["kernel_records_missing"] == 1
    ledger = BypassLedger(active=True)
    held = run(ledger, [note, worker_record(note), ListenerState(active=False)])
    assert [f.reason for f in held] == ["timeout"]


# --- sysctls ---------------------------------------------------------------

def test_accounting_sysctls_are_enabled_and_restored(tmp_path):
    for name in conntrack.ACCOUNTING_SYSCTLS:
        (tmp_path / name).write_text("0\n")
    before = conntrack.enable_accounting(str(tmp_path))
    assert before == {"nf_conntrack_acct": "0", "nf_conntrack_timestamp": "0"}
    assert all((tmp_path / n).read_text() == "1\n" for n in conntrack.ACCOUNTING_SYSCTLS)
    conntrack.restore_accounting(dict(before, nf_conntrack_max="1"), str(tmp_path))
    assert all((tmp_path / n).read_text() == "0\n" for n in conntrack.ACCOUNTING_SYSCTLS)
    assert not (tmp_path / "nf_conntrack_max").exists()   # only our own switches


# --- inline: the lab box -----------------------------------------------------

def _why_not_inline() -> str | None:
    return why_not_inline("ips.worker")


ROOT = Path(__file__).resolve().parents[2]
SINK_ADDRESS, SINK_PORT = "203.0.113.10", 5001
BULK_BYTES = 4 << 20
OPEN_BYTES = 300_000
SINK = f"""
import socket, threading
server = socket.create_server(("{SINK_ADDRESS}", {SINK_PORT}))
def drain(conn):
    total = 0
    while True:
        data = conn.recv(1 << 16)
        if not data:
            break
        total += len(data)
    conn.sendall(str(total).encode())
    conn.close()
while True:
    threading.Thread(target=drain, args=(server.accept()[0],), daemon=True).start()
"""
SENDER = f"""
import socket, sys, time
size, hold = int(sys.argv[1]), float(sys.argv[2])
conn = socket.create_connection(("{SINK_ADDRESS}", {SINK_PORT}), timeout=10)
print(conn.getsockname()[1], flush=True)
chunk = b"x" * 65536
sent = 0
while sent < size:
    sent += conn.send(chunk[: size - sent])
time.sleep(hold)          # hold > 0: still open when the box stops
conn.shutdown(socket.SHUT_WR)
print(conn.recv(64).decode(), flush=True)
"""


def _flow_records(data_dir: Path, port: int) -> list[dict]:
    found = []
    try:
        lines = (data_dir / "eve.json").read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("event_type") == "flow" and record.get("src_port") == port:
            found.append(record)
    return found


def _sysctl(lab, name: str) -> str:
    return lab.run("box", ["sysctl", "-n", f"net.netfilter.{name}"]).stdout.strip()


@pytest.mark.inline
def test_bypassed_bulk_transfer_volume_reaches_eve_and_store(tmp_path):
    reason = _why_not_inline()
    if reason:
        pytest.skip(reason)
    from appliance.lab import DEVICES, LabTopology
    LAB_CAMERA_MAC = next(d.mac for d in DEVICES if d.name == "cam")

    lab = LabTopology()
    try:
        lab.create()
        # Our own namespace: a closed connection's entry dies 1 s after the
        # close instead of 120 s, so its DESTROY comes within the test.
        lab.run("box", ["sysctl", "-qw", "net.netfilter.nf_conntrack_tcp_timeout_time_wait=1"])
        acct_before = _sysctl(lab, "nf_conntrack_acct")
        lab.start("inet", [sys.executable, "-c", SINK])
        box = lab.start_box(str(tmp_path), [str(ROOT / "signatures" / "virtual-patches.rules")],
                            extra=["--set", "stream.reassembly.depth=64kb"])
        assert _sysctl(lab, "nf_conntrack_acct") == "1"
        assert _sysctl(lab, "nf_conntrack_timestamp") == "1"

        # A connection still open when the box stops: reported at shutdown.
        holder = lab.start("cam", [sys.executable, "-c", SENDER, str(OPEN_BYTES), "30"],
                           stdout=subprocess.PIPE, text=True)
        open_port = int(holder.stdout.readline())

        started = time.time()
        done = lab.run("cam", [sys.executable, "-c", SENDER, str(BULK_BYTES), "0"], timeout=30)
        port_text, received = done.stdout.split()
        port = int(port_text)
        assert int(received) == BULK_BYTES

        deadline = time.time() + 25
        records = []
        while time.time() < deadline and not records:
            # The kernel reaps expired entries lazily (its gc scans up to a
            # minute apart on an idle table); a lookup of the tuple reaps an
            # expired entry at once, and does nothing to one still alive.
            lab.run("box", ["conntrack", "-G", "-p", "tcp", "-s", "192.0.2.10", "-d", SINK_ADDRESS,
                            "--sport", str(port), "--dport", str(SINK_PORT)])
            records = [r for r in _flow_records(tmp_path, port) if r["flow"]["reason"] == "bypass_end"]
            time.sleep(0.5)
        waited = time.time() - started
        assert records, f"no bypass_end flow record after {waited:.1f} s"
        record = records[0]
        flow = record["flow"]
        assert flow["action"] == "bypass"
        assert flow["bytes_toserver"] >= BULK_BYTES          # all of it, not the first 64 KB
        assert (record["src_ip"], record["dest_ip"], record["dest_port"]) == (
            "192.0.2.10", SINK_ADDRESS, SINK_PORT)
        status = json.loads((tmp_path / "status.json").read_text())
        assert status["conntrack"]["listening"] and status["totals"]["bypassed"] >= 1

        assert lab.stop_box(box) == 0
        # Stopped: exactly one record per connection (the worker's partial
        # record of the bulk flow was absorbed), the open one at shutdown.
        bulk = _flow_records(tmp_path, port)
        assert [r["flow"]["reason"] for r in bulk] == ["bypass_end"]
        still_open = _flow_records(tmp_path, open_port)
        assert [r["flow"]["reason"] for r in still_open] == ["shutdown"]
        assert still_open[0]["flow"]["bytes_toserver"] >= OPEN_BYTES
        with sqlite3.connect(tmp_path / "reefguard.db") as db:
            rows = db.execute("SELECT bytes_toserver, action, client_mac FROM flows"
                              " WHERE src_port = ?", (port,)).fetchall()
        assert len(rows) == 1 and rows[0][0] >= BULK_BYTES and rows[0][1] == "bypass"
        assert rows[0][2] == LAB_CAMERA_MAC  # merged from the worker's note
        assert _sysctl(lab, "nf_conntrack_acct") == acct_before
        print(f"\nbulk {BULK_BYTES} B: record bytes_toserver={flow['bytes_toserver']} "
              f"pkts={flow['pkts_toserver']}, EVE after {waited:.1f} s; open connection "
              f"at shutdown: {still_open[0]['flow']['bytes_toserver']} B")
    finally:
        lab.destroy()
