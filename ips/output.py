"""Output: EVE JSON lines (Suricata's schema) and fast.log.

`EveWriter` is a collector consumer. It maps each event to the record
Suricata would write, so SIEM tooling and suricata-verify checks read it
unchanged. Device anomalies get their own `event_type: "device_anomaly"`:
Suricata's `anomaly` type means decoder trouble, and the two must not mix.
"""
from __future__ import annotations

import json
import socket
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from ips import events

# Suricata prints TCP flags as hex of the OR of all flags seen.
_TCP_FLAG_NAMES = (("fin", 0x01), ("syn", 0x02), ("rst", 0x04), ("psh", 0x08),
                   ("ack", 0x10), ("urg", 0x20), ("ecn", 0x40), ("cwr", 0x80))


# One encoder for every record: json.dumps with options builds a new
# JSONEncoder per call, a visible cost at one EVE record per flow.
_encode = json.JSONEncoder(separators=(",", ":"), default=str).encode
_quote = json.encoder.encode_basestring_ascii   # what _encode does to a str

# Formatted seconds, keyed by the integer second. Records are not in time
# order (a flow record carries its start, end and last-packet times), so a
# one-entry cache missed on most flow records and strftime is slow; cleared
# when full to stay bounded.
_SECOND_CACHE_LIMIT = 1 << 14
_seconds: dict[int, str] = {}


def _second_text(second: int) -> str:
    if len(_seconds) >= _SECOND_CACHE_LIMIT:
        _seconds.clear()
    text = _seconds[second] = datetime.fromtimestamp(second, tz=timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S")
    return text


def eve_timestamp(ts: float) -> str:
    """Suricata's format: 2009-10-16T16:44:16.083524+0000 (UTC)."""
    second, fraction = divmod(round(ts * 1_000_000), 1_000_000)
    text = _seconds.get(second)
    if text is None:
        text = _second_text(second)
    # One %-format is cheaper than the f-string's separate format of the
    # fraction: this runs for every EVE record, twice for most flow records.
    return "%s.%06d+0000" % (text, fraction)


_IPV6_CACHE_LIMIT = 1 << 12
_long_ipv6: dict[str, str] = {}


def eve_ip(text: str | None) -> str | None:
    """An address as Suricata's EVE and fast.log write it: IPv4 as is,
    IPv6 in full, eight groups of four hex digits (2001:0db8:0000:...),
    which is what rules' users match `src_ip` against. Internally (flows,
    store, dashboard) addresses keep their short form."""
    if text is None or ":" not in text:
        return text
    full = _long_ipv6.get(text)
    if full is None:
        try:
            packed = socket.inet_pton(socket.AF_INET6, text)
        except (OSError, ValueError):
            return text
        full = ":".join(packed[i:i + 2].hex() for i in range(0, 16, 2))
        if len(_long_ipv6) >= _IPV6_CACHE_LIMIT:
            _long_ipv6.clear()
        _long_ipv6[text] = full
    return full


def _vlan_text(vlan) -> str:
    """`"vlan":[100,200],` for a tagged flow, "" otherwise (direct JSON paths)."""
    if not vlan:
        return ""
    return '"vlan":[' + ",".join("%d" % v for v in vlan) + "],"


def alert_record(a: events.Alert) -> dict[str, Any]:
    record: dict[str, Any] = {
        "timestamp": eve_timestamp(a.timestamp),
        "flow_id": a.flow_id,
        "pcap_cnt": a.pcap_cnt,
        "event_type": "alert",
        **({"vlan": list(a.vlan)} if a.vlan else {}),
        "src_ip": eve_ip(a.src_ip), "src_port": a.src_port,
        "dest_ip": eve_ip(a.dest_ip), "dest_port": a.dest_port,
        "proto": a.proto,
        "pkt_src": a.pkt_src,
    }
    if a.app_proto:
        record["app_proto"] = a.app_proto
    if a.tx_id is not None:
        record["tx_id"] = a.tx_id
    if a.direction:
        record["direction"] = a.direction
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
        **({"vlan": list(f.vlan)} if f.vlan else {}),
        "src_ip": eve_ip(t.src_ip), "src_port": t.src_port,
        "dest_ip": eve_ip(t.dest_ip), "dest_port": t.dest_port,
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


# The JSON of the "tcp" object's flag names for each value of the OR of
# all flags seen, in Suricata's order.
_TCP_FLAG_JSON = tuple("".join(f'"{name}":true,' for name, bit in _TCP_FLAG_NAMES if value & bit)
                       for value in range(256))


def flow_json(f: events.FlowEnd) -> str:
    """`flow_record(f)` as EVE JSON, the same text the generic encoder writes.

    The flow record is the most frequent EVE record (one per flow), and
    building nested dicts to encode them again cost more than the rest of a
    short flow's path; so its fixed schema is written directly. Any field of
    an unexpected type takes the generic path."""
    try:
        t = f.tuple
        alerted = f.alerted
        if alerted is not True and alerted is not False:
            raise TypeError
        # The record is written at the flow's last packet: timestamp == end;
        # and half the flows of a capture are a single packet: start == end.
        end = eve_timestamp(f.end)
        timestamp = end if f.timestamp == f.end else eve_timestamp(f.timestamp)
        start = end if f.start == f.end else eve_timestamp(f.start)
        head = (f'{{"timestamp":"{timestamp}","flow_id":{f.flow_id:d},'
                f'"event_type":"flow",{_vlan_text(f.vlan)}"src_ip":{_quote(eve_ip(t.src_ip))},"src_port":{t.src_port:d},'
                f'"dest_ip":{_quote(eve_ip(t.dest_ip))},"dest_port":{t.dest_port:d},"proto":{_quote(t.proto)},')
        if f.app_proto:
            head += f'"app_proto":{_quote(f.app_proto)},'
        body = (f'"flow":{{"pkts_toserver":{f.pkts_toserver:d},"pkts_toclient":{f.pkts_toclient:d},'
                f'"bytes_toserver":{f.bytes_toserver:d},"bytes_toclient":{f.bytes_toclient:d},'
                f'"start":"{start}","end":"{end}",'
                f'"age":{int(f.end - f.start):d},"state":{_quote(f.state)},'
                f'"reason":{_quote(f.reason)},"alerted":{"true" if alerted else "false"},'
                f'"action":{_quote(f.action)}}}')
        if f.tcp_state is None:
            return head + body + "}"
        ts_flags = f.tcp_flags_ts
        tc_flags = f.tcp_flags_tc
        both = ts_flags | tc_flags
        if not 0 <= both < 256:
            raise ValueError
        return (f'{head}{body},"tcp":{{"tcp_flags":"{both:02x}","tcp_flags_ts":"{ts_flags:02x}",'
                f'"tcp_flags_tc":"{tc_flags:02x}",{_TCP_FLAG_JSON[both]}"state":{_quote(f.tcp_state)}}}}}')
    except (TypeError, ValueError, AttributeError):
        return _encode(flow_record(f))


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
        record.update(src_ip=eve_ip(a.src_ip), src_port=a.src_port,
                      dest_ip=eve_ip(a.dest_ip), dest_port=a.dest_port)
    if a.proto:
        record["proto"] = a.proto
    anomaly = {"type": a.type, "event": a.event}
    if a.layer:
        anomaly["layer"] = a.layer
    record["anomaly"] = anomaly
    return record


def anomaly_json(a: events.Anomaly) -> str:
    """`anomaly_record(a)` as EVE JSON, written directly as `flow_json` is
    (a lossy capture yields one per packet); unexpected types take the
    generic path."""
    try:
        text = f'{{"timestamp":"{eve_timestamp(a.timestamp)}","event_type":"anomaly",'
        if a.flow_id:
            text += f'"flow_id":{a.flow_id:d},'
        if a.pcap_cnt:
            text += f'"pcap_cnt":{a.pcap_cnt:d},'
        if a.src_ip is not None:
            text += (f'"src_ip":{_quote(eve_ip(a.src_ip))},"src_port":{a.src_port:d},'
                     f'"dest_ip":{_quote(eve_ip(a.dest_ip))},"dest_port":{a.dest_port:d},')
        if a.proto:
            text += f'"proto":{_quote(a.proto)},'
        text += f'"anomaly":{{"type":{_quote(a.type)},"event":{_quote(a.event)}'
        if a.layer:
            return f'{text},"layer":{_quote(a.layer)}}}}}'
        return text + "}}"
    except (TypeError, ValueError):
        return _encode(anomaly_record(a))


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
        **({"vlan": list(r.vlan)} if r.vlan else {}),
        "src_ip": eve_ip(t.src_ip), "src_port": t.src_port,
        "dest_ip": eve_ip(t.dest_ip), "dest_port": t.dest_port,
        "proto": t.proto,
        "tx_id": r.tx_id,
        r.app_proto: r.fields,
    })
    return record


_APP_ENVELOPE_KEYS = frozenset(("timestamp", "flow_id", "pcap_cnt", "event_type", "src_ip",
                                "src_port", "dest_ip", "dest_port", "proto", "tx_id"))


def app_json(r: events.AppRecord) -> str:
    """`app_record(r)` as EVE JSON: the envelope written directly, the
    protocol's fields by the generic encoder (the same text it writes for
    them nested). A protocol named like an envelope key takes the generic
    path, as do unexpected types."""
    try:
        app_proto = r.app_proto
        if app_proto in _APP_ENVELOPE_KEYS:
            raise ValueError
        t = r.tuple
        text = f'{{"timestamp":"{eve_timestamp(r.timestamp)}","flow_id":{r.flow_id:d},'
        if r.pcap_cnt:
            text += f'"pcap_cnt":{r.pcap_cnt:d},'
        name = _quote(app_proto)
        return (f'{text}"event_type":{name},{_vlan_text(r.vlan)}"src_ip":{_quote(eve_ip(t.src_ip))},"src_port":{t.src_port:d},'
                f'"dest_ip":{_quote(eve_ip(t.dest_ip))},"dest_port":{t.dest_port:d},"proto":{_quote(t.proto)},'
                f'"tx_id":{r.tx_id:d},{name}:{_encode(r.fields)}}}')
    except (TypeError, ValueError):
        return _encode(app_record(r))


def device_anomaly_record(a: events.DeviceAnomaly) -> dict[str, Any]:
    device: dict[str, Any] = {"mac": a.mac, "ip": a.ip}
    if a.name:
        device["name"] = a.name
    return {
        "timestamp": eve_timestamp(a.timestamp),
        "event_type": "device_anomaly",
        "src_ip": eve_ip(a.ip),
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
    src, dst = eve_ip(a.src_ip), eve_ip(a.dest_ip)
    ports = (f"{src}:{a.src_port} -> {dst}:{a.dest_port}"
             if a.proto in ("TCP", "UDP") else f"{src} -> {dst}")
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
        self._write_text(_encode(record))

    def _write_text(self, text: str) -> None:
        self._eve.write(text + "\n")
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
        self._write_text(flow_json(f))

    def anomaly(self, a: events.Anomaly) -> None:
        self._write_text(anomaly_json(a))

    def app_record(self, r: events.AppRecord) -> None:
        self._write_text(app_json(r))

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
