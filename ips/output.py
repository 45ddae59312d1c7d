"""Output: EVE JSON lines (Suricata's schema) and fast.log.

`EveWriter` is a collector consumer. It maps each event to the record
Suricata would write, so SIEM tooling and suricata-verify checks read it
unchanged. Device anomalies get their own `event_type: "device_anomaly"`:
Suricata's `anomaly` type means decoder trouble, and the two must not mix.
"""
from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from ips import events

# Suricata prints TCP flags as hex of the OR of all flags seen.
_TCP_FLAG_NAMES = (("fin", 0x01), ("syn", 0x02), ("rst", 0x04), ("psh", 0x08),
                   ("ack", 0x10), ("urg", 0x20), ("ecn", 0x40), ("cwr", 0x80))


_last_second: list = [None, ""]

# One encoder for every record: json.dumps with options builds a new
# JSONEncoder per call, a visible cost at one EVE record per flow.
_encode = json.JSONEncoder(separators=(",", ":"), default=str).encode


def eve_timestamp(ts: float) -> str:
    """Suricata's format: 2009-10-16T16:44:16.083524+0000 (UTC)."""
    micros = int(round(ts * 1_000_000))
    second, fraction = divmod(micros, 1_000_000)
    # Records come in time order, so the formatted second is nearly always
    # the previous one; strftime per record was a visible cost.
    if _last_second[0] != second:
        dt = datetime.fromtimestamp(second, tz=timezone.utc)
        _last_second[0] = second
        _last_second[1] = dt.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{_last_second[1]}.{fraction:06d}+0000"


def alert_record(a: events.Alert) -> dict[str, Any]:
    record: dict[str, Any] = {
        "timestamp": eve_timestamp(a.timestamp),
        "flow_id": a.flow_id,
        "pcap_cnt": a.pcap_cnt,
        "event_type": "alert",
        "src_ip": a.src_ip, "src_port": a.src_port,
        "dest_ip": a.dest_ip, "dest_port": a.dest_port,
        "proto": a.proto,
    }
    if a.app_proto:
        record["app_proto"] = a.app_proto
    if a.tx_id is not None:
        record["tx_id"] = a.tx_id
    alert: dict[str, Any] = {
        "action": a.action, "gid": a.gid, "signature_id": a.signature_id,
        "rev": a.rev, "signature": a.signature, "category": a.category,
        "severity": a.severity,
    }
    if a.metadata:
        alert["metadata"] = a.metadata
    record["alert"] = alert
    if a.app:
        record.update(a.app)
    if a.flow:
        record["flow"] = a.flow
    return record


def flow_record(f: events.FlowEnd) -> dict[str, Any]:
    t = f.tuple
    record: dict[str, Any] = {
        "timestamp": eve_timestamp(f.timestamp),
        "flow_id": f.flow_id,
        "event_type": "flow",
        "src_ip": t.src_ip, "src_port": t.src_port,
        "dest_ip": t.dest_ip, "dest_port": t.dest_port,
        "proto": t.proto,
    }
    if f.app_proto:
        record["app_proto"] = f.app_proto
    record["flow"] = {
        "pkts_toserver": f.pkts_toserver, "pkts_toclient": f.pkts_toclient,
        "bytes_toserver": f.bytes_toserver, "bytes_toclient": f.bytes_toclient,
        "start": eve_timestamp(f.start), "end": eve_timestamp(f.end),
        "age": int(f.end - f.start),
        "state": f.state, "reason": f.reason, "alerted": f.alerted,
        "action": f.action,
    }
    if f.tcp_state is not None:
        both = f.tcp_flags_ts | f.tcp_flags_tc
        tcp: dict[str, Any] = {
            "tcp_flags": f"{both:02x}",
            "tcp_flags_ts": f"{f.tcp_flags_ts:02x}",
            "tcp_flags_tc": f"{f.tcp_flags_tc:02x}",
        }
        for name, bit in _TCP_FLAG_NAMES:
            if both & bit:
                tcp[name] = True
        tcp["state"] = f.tcp_state
        record["tcp"] = tcp
    return record


def anomaly_record(a: events.Anomaly) -> dict[str, Any]:
    record: dict[str, Any] = {
        "timestamp": eve_timestamp(a.timestamp),
        "event_type": "anomaly",
    }
    if a.flow_id:
        record["flow_id"] = a.flow_id
    if a.pcap_cnt:
        record["pcap_cnt"] = a.pcap_cnt
    if a.src_ip is not None:
        record.update(src_ip=a.src_ip, src_port=a.src_port,
                      dest_ip=a.dest_ip, dest_port=a.dest_port)
    if a.proto:
        record["proto"] = a.proto
    anomaly = {"type": a.type, "event": a.event}
    if a.layer:
        anomaly["layer"] = a.layer
    record["anomaly"] = anomaly
    return record


def app_record(r: events.AppRecord) -> dict[str, Any]:
    t = r.tuple
    record: dict[str, Any] = {
        "timestamp": eve_timestamp(r.timestamp),
        "flow_id": r.flow_id,
    }
    if r.pcap_cnt:
        record["pcap_cnt"] = r.pcap_cnt
    record.update({
        "event_type": r.app_proto,
        "src_ip": t.src_ip, "src_port": t.src_port,
        "dest_ip": t.dest_ip, "dest_port": t.dest_port,
        "proto": t.proto,
        "tx_id": r.tx_id,
        r.app_proto: r.fields,
    })
    return record


def device_anomaly_record(a: events.DeviceAnomaly) -> dict[str, Any]:
    device: dict[str, Any] = {"mac": a.mac, "ip": a.ip}
    if a.name:
        device["name"] = a.name
    return {
        "timestamp": eve_timestamp(a.timestamp),
        "event_type": "device_anomaly",
        "src_ip": a.ip,
        "device": device,
        "anomaly": {
            "kind": a.kind, "score": round(a.score, 3), "count": a.count,
            "observed": a.observed, "baseline": a.baseline,
            "explanation": a.explanation,
        },
    }


def stats_record(s: events.Stats) -> dict[str, Any]:
    return {"timestamp": eve_timestamp(s.timestamp), "event_type": "stats",
            "stats": s.counters}


def fast_line(a: events.Alert) -> str:
    """One fast.log line, as Suricata writes it."""
    second, fraction = divmod(int(round(a.timestamp * 1_000_000)), 1_000_000)
    dt = datetime.fromtimestamp(second, tz=timezone.utc)
    stamp = dt.strftime("%m/%d/%Y-%H:%M:%S") + f".{fraction:06d}"
    drop = "[Drop] " if a.action == "blocked" else ""
    ports = (f"{a.src_ip}:{a.src_port} -> {a.dest_ip}:{a.dest_port}"
             if a.proto in ("TCP", "UDP") else f"{a.src_ip} -> {a.dest_ip}")
    return (f"{stamp}  {drop}[**] [{a.gid}:{a.signature_id}:{a.rev}] {a.signature} [**] "
            f"[Classification: {a.category}] [Priority: {a.severity}] {{{a.proto}}} {ports}\n")


class EveWriter:
    """Collector consumer writing eve.json (and fast.log) in `outdir`."""

    def __init__(self, outdir: str | Path, *, fast_log: bool = True,
                 flush_every: float = 1.0) -> None:
        out = Path(outdir)
        out.mkdir(parents=True, exist_ok=True)
        self.path = out / "eve.json"
        self._eve: IO[str] = open(self.path, "a", encoding="utf-8", buffering=1 << 16)
        self._fast: IO[str] | None = (
            open(out / "fast.log", "a", encoding="utf-8", buffering=1 << 16)
            if fast_log else None)
        self._flush_every = flush_every
        self._last_flush = time.monotonic()
        self.written = 0

    def _write(self, record: dict[str, Any]) -> None:
        self._eve.write(_encode(record) + "\n")
        self.written += 1
        now = time.monotonic()
        if now - self._last_flush >= self._flush_every:
            self.flush()
            self._last_flush = now

    def alert(self, a: events.Alert) -> None:
        self._write(alert_record(a))
        if self._fast is not None:
            self._fast.write(fast_line(a))

    def flow_end(self, f: events.FlowEnd) -> None:
        self._write(flow_record(f))

    def anomaly(self, a: events.Anomaly) -> None:
        self._write(anomaly_record(a))

    def app_record(self, r: events.AppRecord) -> None:
        self._write(app_record(r))

    def device_anomaly(self, a: events.DeviceAnomaly) -> None:
        self._write(device_anomaly_record(a))

    def stats(self, s: events.Stats) -> None:
        self._write(stats_record(s))

    def tick(self, ts: float) -> None:
        self.flush()

    def flush(self) -> None:
        self._eve.flush()
        if self._fast is not None:
            self._fast.flush()

    def done(self) -> None:
        self.flush()

    def close(self) -> None:
        if not self._eve.closed:
            self._eve.close()
        if self._fast is not None and not self._fast.closed:
            self._fast.close()
