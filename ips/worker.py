"""The worker: one linear per-packet function that calls the stages in order.

    decode → defrag → flow → stream → applayer → detect → verdict → events

The same `Worker` runs on a pcap file (`reefguard replay`), on an NFQUEUE
(`reefguard run`) and in unit tests; only the source of packets differs.
Stages do not call each other; this module is the only place that knows the
order. Anything a stage cannot handle is turned into a counted anomaly and
the configured exception policy (`config.exception_policy`), never an
exception that escapes `process()`.
"""
from __future__ import annotations

import gc
import logging
import time
from typing import Callable

from ips import events
from ips.applayer import AppLayer
from ips.config import Config
from ips.decode import decode
from ips.defrag import Defragmenter
from ips.flow import Flow, FlowTable
from ips.packet import ACCEPT, DROP, LINKTYPE_PSEUDO, PROTO_NAMES, PROTO_TCP, PROTO_UDP, Packet
from ips.stream import TcpReassembler
from ips import verdict as verdicts
from ips.output import eve_timestamp

log = logging.getLogger("reefguard.worker")

# When checksum validation is "auto", look at this many packets first: if
# most of them have bad checksums the capture was taken with offloading on,
# and validating would blind the engine (Suricata does the same).
AUTO_CHECKSUM_SAMPLE = 1000
# App-layer parsers name their events after the protocol ("http.gap").
APPLAYER_EVENT_PREFIXES = frozenset({
    "applayer", "http", "dns", "tls", "dhcp", "mdns", "ssdp", "mqtt", "telnet",
    "modbus", "template"})
AUTO_CHECKSUM_BAD_RATIO = 0.1


class PacedCollector:
    """Python's cyclic garbage collector, paced for a packet loop.

    By default CPython runs a full collection whenever the objects promoted to
    the oldest generation since the last one reach a quarter of it. A flow
    table churns exactly like that: at 700 short connections a second the
    inline worker ran one every ~1.3 s, each walking every live flow (68 ms
    with 3,000 flows on this machine, ~0.5 s with 30,000: a stall for the
    packet that triggers it) and finding nothing, because per-flow state is
    freed by reference counting (tests/ips/test_memory.py keeps it free of
    cycles).

    So, for as long as the owner of the packet loop (the replay, an inline
    worker) holds it: the objects loaded so far (ruleset, modules) are frozen
    out of every collection; young generations are collected as usual; a full
    collection runs only from `tick()`: when the loop is idle, at most every
    `IDLE_INTERVAL` seconds, and under unbroken load every `BUSY_INTERVAL`
    seconds, to bound whatever cyclic garbage a rare path still makes."""

    IDLE_INTERVAL = 30.0
    BUSY_INTERVAL = 600.0
    NEVER = 1 << 30   # gen-1 collections before CPython considers a full one

    def __init__(self) -> None:
        self._saved: tuple[int, int, int] | None = None
        self._last_full = time.monotonic()
        self.full_collections = 0

    def start(self) -> None:
        gc.freeze()
        self._saved = gc.get_threshold()
        young, middle, _ = self._saved
        gc.set_threshold(young, middle, self.NEVER)
        self._last_full = time.monotonic()

    def tick(self, idle: bool = False) -> None:
        """Between packets; `idle`: no packet is waiting (inline, the queue
        was empty for a while), so a pause costs no one anything."""
        now = time.monotonic()
        if now - self._last_full >= (self.IDLE_INTERVAL if idle else self.BUSY_INTERVAL):
            self._last_full = now
            self.full_collections += 1
            gc.collect()

    def refreeze(self) -> None:
        """After a rule reload: let the old ruleset go, freeze the new one."""
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        self._last_full = time.monotonic()

    def stop(self) -> None:
        if self._saved is not None:
            gc.set_threshold(*self._saved)
            self._saved = None
        gc.unfreeze()


def alert_app_fields(tx) -> dict:
    """The app-layer object logged beside an alert: the transaction's record
    when complete, else what its buffers already tell (Suricata logs the
    transaction's current state)."""
    record = tx.partial_record()
    if record is not None:
        return record
    if tx.app_proto != "http":
        return {}
    fields = {}
    for key, buffer in (("hostname", "http.host"), ("url", "http.uri.raw"),
                        ("http_user_agent", "http.user_agent"),
                        ("http_method", "http.method"), ("protocol", "http.protocol"),
                        ("http_content_type", "http.content_type")):
        value = tx.buffers.get(buffer)
        if isinstance(value, list):
            value = value[0] if value else None
        if value:
            fields[key] = value.decode("utf-8", "replace")
    return fields


BODY_EXCERPT_BYTES = 256
_PRINTABLE = bytes(c if 0x20 <= c < 0x7F else 0x2E for c in range(256))


def _with_body_excerpt(fields: dict, tx) -> dict:
    """A blocked HTTP request's record with the start of its body, printable
    (Suricata's `http_request_body_printable`): a virtual patch on a form
    parameter stops a POST whose URL alone does not show why. Only blocked
    requests carry it, so a login an alert rule merely noticed does not
    leave its password in the logs."""
    body = tx.buffers.get("http.request_body") if tx.buffers else None
    if not body:
        return fields
    return {**fields, "http_request_body_printable":
            body[:BODY_EXCERPT_BYTES].translate(_PRINTABLE).decode("ascii")}


def _pseudo_packet(flow: Flow, to_server: bool) -> Packet:
    """An empty packet of `flow` in one direction, for end-of-flow inspection."""
    pkt = Packet(b"", ts=flow.last, pcap_cnt=0, linktype=LINKTYPE_PSEUDO)
    pkt.ip_version = 6 if ":" in str(flow.client_ip) else 4
    pkt.proto = flow.proto
    if to_server:
        pkt.src, pkt.sport, pkt.dst, pkt.dport = flow.client_ip, flow.client_port, flow.server_ip, flow.server_port
        pkt.src_mac = flow.client_mac
    else:
        pkt.src, pkt.sport, pkt.dst, pkt.dport = flow.server_ip, flow.server_port, flow.client_ip, flow.client_port
        pkt.src_mac = flow.server_mac
    pkt.tcp_flags = 0x10 if flow.proto == PROTO_TCP else 0
    pkt.flow = flow
    pkt.to_server = to_server
    return pkt


class Worker:
    """Runs packets through the pipeline and emits events to `emit`."""

    def __init__(self, config: Config, engine, emit: Callable[[object], None]) -> None:
        self.config = config
        self.engine = engine
        self.emit = emit
        self.flows = FlowTable(config)
        self.defrag = Defragmenter(checksums=config.checksum_mode != "none")
        self.stream = TcpReassembler(config)
        self.applayer = AppLayer(config)
        self.counters: dict[str, int] = {
            "packets": 0, "decoded": 0, "invalid": 0, "alerts": 0,
            "dropped": 0, "bypassed": 0, "exceptions": 0,
            "checksum_bad": 0, "rewritten": 0,
        }
        self.anomaly_counts: dict[str, int] = {}
        self._checksums = config.checksum_mode != "none"
        self._auto_checksum = config.checksum_mode == "auto"
        self._last_ts = 0.0
        self._next_expire = 0.0

    # ------------------------------------------------------------------
    def process(self, pkt: Packet) -> int:
        """Inspect one packet; return its verdict (ips.packet.ACCEPT, ...)."""
        counters = self.counters
        counters["packets"] += 1
        received = pkt      # `pkt` becomes the reassembled datagram after defrag
        # The stages run inside the exception guard, in this one function:
        # it is called for every packet, and try costs nothing in CPython 3.11.
        try:
            ts = pkt.ts
            if ts > self._last_ts:
                self._last_ts = ts
                # Timeouts are checked once per second of packet time; flows the
                # table evicted or reused are handed over as soon as there are any.
                if ts >= self._next_expire or self.flows.evicted:
                    self._next_expire = ts + 1.0
                    self._expire(ts)

            ok = decode(pkt, self._checksums)
            if pkt.anomalies:
                if not ok:
                    counters["invalid"] += 1   # undecodable, and the decoder said why
                self._emit_anomalies(pkt)
            if not ok:
                if pkt.events and self.engine is not None and self.engine.packet_by_event:
                    return self._judge_undecoded(pkt)
                return ACCEPT
            counters["decoded"] += 1
            if self._auto_checksum:
                self._auto_checksum_step(pkt)
            if not pkt.checksum_ok:
                # Suricata drops invalid-checksum packets from stream and detection.
                counters["checksum_bad"] += 1
                return ACCEPT

            if pkt.is_fragment:
                whole = self.defrag.add(pkt)
                if pkt.anomalies:
                    self._emit_anomalies(pkt)
                if whole is None:
                    return ACCEPT
                pkt = whole

            flow = self.flows.lookup(pkt)
            proto = pkt.proto
            stream = None
            txs = ()
            if flow is not None:
                action = flow.action
                if action == "drop":
                    counters["dropped"] += 1
                    return DROP
                if action == "bypass":
                    # Judged: inline, the kernel carries the rest of this flow
                    # (these are packets already in flight); offline, the replay
                    # does exactly what the box would, and skips them too.
                    counters["bypassed"] += 1
                    return ACCEPT
                if proto == PROTO_TCP:
                    chunk = self.stream.on_packet(flow, pkt)
                    if chunk is not None and chunk.in_stream:
                        stream = (chunk.window, chunk.new_offset)
                    txs = self.applayer.on_stream(flow, pkt, chunk)
                elif proto == PROTO_UDP:
                    if pkt.payload:
                        txs = self.applayer.on_data(flow, pkt, pkt.payload, pkt.to_server, False)
                elif self.engine is not None and not self.engine.inspects(proto):
                    # No loaded rule looks at this protocol (e.g. ICMP with an
                    # exploit-only ruleset): judged at its first packet. TCP and
                    # UDP stay, their app-layer records feed the device profiles.
                    flow.action = "bypass"
                    counters["bypass_no_rules"] = counters.get("bypass_no_rules", 0) + 1
                    return ACCEPT
                if pkt.anomalies:
                    self._emit_anomalies(pkt)

            engine = self.engine
            if engine is not None:
                matches = engine.inspect(pkt, flow, stream, txs)
                verdict = verdicts.decide(pkt, flow, matches, self.config) if matches else ACCEPT
            else:
                matches = ()
                verdict = ACCEPT
            # Only new data or a new transaction can change whether a flow is
            # judged, so the bypass question is asked then, not on every ACK.
            if (flow is not None and (stream is not None or txs or matches)
                    and flow.action == "pass" and verdict == ACCEPT):
                reason = verdicts.bypass_reason(
                    flow,
                    depth_reached=(proto == PROTO_TCP and self.stream.depth_reached(flow, pkt.to_server)),
                    # Not while the handshake's last transaction waits for
                    # its direction's next packet: it is inspected and
                    # logged there (bypassed first, its EVE record was lost).
                    encrypted=(flow.app_proto == "tls" and self.applayer.inspection_done(flow)
                               and not self.applayer.has_deferred(flow)))
                if reason:
                    flow.action = "bypass"
                    key = "bypass_" + reason
                    counters[key] = counters.get(key, 0) + 1
            if proto == PROTO_TCP and verdict == ACCEPT and self.stream.normalised(pkt):
                # The stream stage rewrote the payload to the inspected bytes.
                pkt.rewritten = verdicts.rewrite_tcp_payload(pkt)
                if pkt.rewritten is not None:
                    counters["rewritten"] += 1
            if matches:
                self._emit_alerts(pkt, flow, matches, verdict, txs)
            for tx in txs:
                if tx.record is not None and not tx.logged:
                    tx.logged = True
                    self._emit_app_record(pkt, flow, tx)
            if verdict == DROP:
                counters["dropped"] += 1
            return verdict
        except Exception:  # noqa: BLE001 - exception policy, counted
            counters["exceptions"] += 1
            if counters["exceptions"] <= 5:
                log.exception("worker exception on packet %d", received.pcap_cnt)
            self._record_anomaly(received, "engine.exception", "decode")
            return verdicts.exception_verdict(self.config, received)

    # ------------------------------------------------------------------
    def tick(self, now: float) -> None:
        """Inline: expire flows by wall-clock time between packets."""
        self._expire(now)

    def finish(self) -> None:
        """End of input: log every remaining flow and the stats record."""
        for flow in self.flows.flush():
            self._end_flow(flow)
        self.emit(events.Stats(timestamp=self._last_ts, counters=self.stats()))

    def swap_engine(self, engine) -> None:
        """Live rule reload: the next packet sees the new rules, with the
        thresholds and xbits of the running ones (DetectEngine.take_state)."""
        if engine is not None and self.engine is not None:
            engine.take_state(self.engine)
        self.engine = engine

    def stats(self) -> dict:
        flow_stats = dict(self.flows.stats)
        return {
            "capture": {"kernel_packets": self.counters["packets"]},
            "decoder": {"pkts": self.counters["packets"],
                        "decoded": self.counters["decoded"],
                        "invalid": self.counters["invalid"],
                        "checksum_bad": self.counters["checksum_bad"],
                        "event": dict(self.anomaly_counts)},
            "flow": flow_stats,
            "detect": {"alert": self.counters["alerts"]},
            "ips": {"accepted": self.counters["packets"] - self.counters["dropped"],
                    "blocked": self.counters["dropped"],
                    "bypassed": self.counters["bypassed"],
                    "bypass_reason": {key[len("bypass_"):]: value
                                      for key, value in self.counters.items()
                                      if key.startswith("bypass_")},
                    "rewritten": self.counters["rewritten"]},
            "engine": {"exceptions": self.counters["exceptions"]},
        }

    # ------------------------------------------------------------------
    def _auto_checksum_step(self, pkt: Packet) -> None:
        seen = self.counters["decoded"]
        if not pkt.checksum_ok:
            self.counters.setdefault("auto_bad", 0)
            self.counters["auto_bad"] += 1
        if seen >= AUTO_CHECKSUM_SAMPLE or (
                seen >= 10 and self.counters.get("auto_bad", 0) / seen > 0.5):
            if self.counters.get("auto_bad", 0) / seen > AUTO_CHECKSUM_BAD_RATIO:
                log.info("checksum validation turned off: %d of %d packets bad "
                         "(capture with offloading)", self.counters.get("auto_bad", 0), seen)
                self._checksums = False
                self.defrag.checksums = False
                pkt.checksum_ok = True
            self._auto_checksum = False

    def _expire(self, now: float) -> None:
        for flow in self.flows.expire(now):
            self._end_flow(flow)

    def _end_flow(self, flow: Flow) -> None:
        releases = self.stream.flush(flow) if flow.proto == PROTO_TCP else ()
        touched = self.applayer.on_flow_end(flow, releases)
        inspect = self.engine is not None and flow.action != "drop"
        for to_server in (True, False):
            # Transactions still waiting for a packet of their direction are
            # logged now (a bypassed flow sends the worker no more packets).
            pending = self.applayer.pending_txs(flow, to_server)
            if not pending:
                continue
            touched.extend(tx for tx in pending if tx not in touched)
            if inspect:
                # Suricata's flow-timeout pseudo packets: what was parsed at
                # the end is still inspected, once per direction. Not in a
                # dropped flow: detection stopped at the drop, and an
                # "allowed" alert after it would tell the owner the exploit
                # got through.
                pseudo = _pseudo_packet(flow, to_server)
                tail = self.stream.tail(flow, to_server) if flow.proto == PROTO_TCP else b""
                pseudo.payload = tail
                # Nothing in the stream is new: raw rules do not fire again.
                matches = self.engine.inspect(pseudo, flow, (tail, len(tail)) if tail else None, pending)
                if matches:
                    self._emit_alerts(pseudo, flow, matches, ACCEPT, pending)
        for tx in touched:
            if tx.record is not None and not tx.logged:
                tx.logged = True
                self._emit_app_record(None, flow, tx)
        proto = PROTO_NAMES.get(flow.proto) or str(flow.proto)
        self.emit(events.FlowEnd(
            timestamp=flow.last, flow_id=flow.id,
            tuple=events.FiveTuple(flow.client_ip, flow.client_port,
                                   flow.server_ip, flow.server_port, proto),
            app_proto=flow.app_proto, start=flow.start, end=flow.last,
            pkts_toserver=flow.pkts_toserver, pkts_toclient=flow.pkts_toclient,
            bytes_toserver=flow.bytes_toserver, bytes_toclient=flow.bytes_toclient,
            state=flow.state, reason=flow.end_reason or "shutdown",
            alerted=flow.alerted, action=flow.action,
            tcp_flags_ts=flow.tcp_flags_ts, tcp_flags_tc=flow.tcp_flags_tc,
            tcp_state=flow.tcp_state if flow.proto == PROTO_TCP else None,
            client_mac=flow.client_mac, server_mac=flow.server_mac, vlan=flow.key[5]))

    def _emit_alerts(self, pkt: Packet, flow: Flow | None, matches, verdict: int, txs) -> None:
        action = "blocked" if verdict != ACCEPT and verdict != verdicts.BYPASS else "allowed"
        proto = pkt.proto_name
        flow_info = None
        if flow is not None:
            flow_info = {
                "pkts_toserver": flow.pkts_toserver, "pkts_toclient": flow.pkts_toclient,
                "bytes_toserver": flow.bytes_toserver, "bytes_toclient": flow.bytes_toclient,
                "start": eve_timestamp(flow.start),
                "src_ip": flow.client_ip, "dest_ip": flow.server_ip,
                "src_port": flow.client_port, "dest_port": flow.server_port,
            }
        for match in matches:
            rule = match.rule
            if match.noalert or match.action == "pass":
                continue
            if flow is not None:
                flow.alerted = True
            self.counters["alerts"] += 1
            rule_action = "blocked" if match.action in ("drop", "reject") and action == "blocked" else "allowed"
            app = None
            if match.tx_id is not None:
                for tx in txs:
                    if tx.tx_id == match.tx_id:
                        fields = alert_app_fields(tx)
                        if rule_action == "blocked" and tx.app_proto == "http":
                            fields = _with_body_excerpt(fields, tx)
                        app = {tx.app_proto: fields}
                        break
            self.emit(events.Alert(
                timestamp=pkt.ts, flow_id=flow.id if flow else 0,
                pcap_cnt=pkt.pcap_cnt, src_ip=pkt.src, src_port=pkt.sport,
                dest_ip=pkt.dst, dest_port=pkt.dport, proto=proto,
                app_proto=flow.app_proto if flow else None,
                action=rule_action, gid=rule.gid, signature_id=rule.sid,
                rev=rule.rev, signature=rule.msg, category=rule.category or "",
                severity=rule.severity, metadata=rule.metadata,
                tx_id=match.tx_id, src_mac=pkt.src_mac, app=app, flow=flow_info,
                vlan=flow.key[5] if flow is not None else pkt.vlan,
                direction=(("to_server" if pkt.to_server else "to_client")
                           if flow is not None else None),
                pkt_src=("stream (flow timeout)" if pkt.linktype == LINKTYPE_PSEUDO
                         else "wire/pcap")))

    def _judge_undecoded(self, pkt: Packet) -> int:
        """decode-event rules on a packet the decoder gave up on (pkthdr)."""
        matches = self.engine.inspect_undecoded(pkt)
        if not matches:
            return ACCEPT
        verdict = verdicts.decide(pkt, None, matches, self.config)
        if verdict == verdicts.REJECT:
            verdict = pkt.verdict = DROP   # no header to answer with a reset
        self._emit_alerts(pkt, None, matches, verdict, ())
        if verdict == DROP:
            self.counters["dropped"] += 1
        return verdict

    def _emit_app_record(self, pkt: Packet | None, flow: Flow, tx) -> None:
        proto = PROTO_NAMES.get(flow.proto) or str(flow.proto)
        if tx.app_proto == "http":
            # Suricata logs HTTP from the flow's point of view (LOG_DIR_FLOW):
            # the client is the source whichever packet completed the tx.
            if self.applayer.roles_reversed(flow):
                five = events.FiveTuple(flow.server_ip, flow.server_port,
                                        flow.client_ip, flow.client_port, proto)
                mac = flow.server_mac
            else:
                five = events.FiveTuple(flow.client_ip, flow.client_port,
                                        flow.server_ip, flow.server_port, proto)
                mac = flow.client_mac
            ts, cnt = (pkt.ts, pkt.pcap_cnt) if pkt is not None else (flow.last, 0)
        elif pkt is not None and pkt.src is not None:
            five = events.FiveTuple(pkt.src, pkt.sport, pkt.dst, pkt.dport, proto)
            ts, cnt, mac = pkt.ts, pkt.pcap_cnt, pkt.src_mac
        else:
            five = events.FiveTuple(flow.client_ip, flow.client_port,
                                    flow.server_ip, flow.server_port, proto)
            ts, cnt, mac = flow.last, 0, flow.client_mac
        self.emit(events.AppRecord(timestamp=ts, flow_id=flow.id, pcap_cnt=cnt,
                                   tuple=five, app_proto=tx.app_proto,
                                   fields=tx.record, tx_id=tx.tx_id, src_mac=mac,
                                   vlan=flow.key[5]))

    def _emit_anomalies(self, pkt: Packet) -> None:
        for name in pkt.anomalies:
            if name.endswith("invalid_checksum"):
                # A bad checksum is a property of the capture (offloading) far
                # more often than an attack: counted in stats, not logged per
                # packet, as Suricata does.
                self.anomaly_counts[name] = self.anomaly_counts.get(name, 0) + 1
                continue
            prefix = name.split(".", 1)[0]
            kind = ("stream" if prefix == "stream" else
                    "applayer" if prefix in APPLAYER_EVENT_PREFIXES else "decode")
            self._record_anomaly(pkt, name, kind)
        pkt.anomalies = None

    def _record_anomaly(self, pkt: Packet, name: str, kind: str) -> None:
        self.anomaly_counts[name] = self.anomaly_counts.get(name, 0) + 1
        self.emit(events.Anomaly(
            timestamp=pkt.ts, pcap_cnt=pkt.pcap_cnt, type=kind, event=name,
            src_ip=pkt.src, dest_ip=pkt.dst, src_port=pkt.sport,
            dest_port=pkt.dport, proto=pkt.proto_name if pkt.proto else None,
            flow_id=pkt.flow.id if pkt.flow is not None else 0))
