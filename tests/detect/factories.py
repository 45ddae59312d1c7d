"""One-line builders for packets, flows, transactions and engines in detection tests."""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field

from ips.config import Config
from ips.decode import decode
from ips.detect import DetectEngine
from ips.packet import Packet


class AlertLog:
    """Replay consumer (`ips.replay.replay(..., consumers=[...])`): every alert
    event, in the order the collector emits them."""

    def __init__(self) -> None:
        self.events: list = []

    def alert(self, event) -> None:
        self.events.append(event)


class FakeFlow:
    """Stand-in with the attributes DetectEngine reads from ips.flow.Flow."""

    def __init__(self, established: bool = True, app_proto: str | None = None, proto: int = 6):
        self.established = established
        self.state = "established" if established else "new"
        self.flowbits: set[str] = set()
        self.detect: dict = {}
        self.app_proto = app_proto
        self.proto = proto


@dataclass
class FakeTx:
    app_proto: str
    tx_id: int
    to_server: bool
    buffers: dict = field(default_factory=dict)
    record: dict | None = None
    complete: bool = False
    events: tuple = ()


def packet(payload: bytes = b"", *, proto: int = 6, src: str = "192.168.1.2", dst: str = "198.51.100.9",
           sport: int = 40000, dport: int = 80, to_server: bool = True, ts: float = 1.0,
           flags: int = 0x18, icmp_type: int = -1, icmp_code: int = -1, ttl: int = 64) -> Packet:
    pkt = Packet(b"", ts=ts)
    pkt.ip_version = 6 if ":" in src else 4
    pkt.proto, pkt.src, pkt.dst, pkt.sport, pkt.dport = proto, src, dst, sport, dport
    pkt.payload, pkt.to_server, pkt.tcp_flags, pkt.ttl = payload, to_server, flags, ttl
    pkt.icmp_type, pkt.icmp_code = icmp_type, icmp_code
    return pkt


def decoded(frame, *, to_server: bool = True, ts: float = 1.0) -> Packet:
    """A packet decoded from real bytes (a scapy frame or bytes), for keywords
    that read the headers themselves (`tcp.hdr`, ...)."""
    pkt = Packet(bytes(frame), ts=ts)
    assert decode(pkt, False), "the frame must decode"
    pkt.to_server = to_server
    return pkt


def engine(rules: str, config: Config | None = None, cache_dir: str | None = None):
    handle, path = tempfile.mkstemp(suffix=".rules")
    with os.fdopen(handle, "w") as out:
        out.write(rules)
    try:
        return DetectEngine.load([path], config or Config(), cache_dir=cache_dir)
    finally:
        os.unlink(path)


def loaded(*rules: str, config: Config | None = None):
    """The engine of `rules` (one rule per argument), every one of them
    loaded: a test of a keyword must not pass because its rule was refused."""
    eng, report = engine("\n".join(rules), config)
    assert not report.skipped and not report.errors, (report.skipped, report.errors)
    return eng


def sids(matches) -> list[int]:
    return sorted(match.rule.sid for match in matches)


def alerting(matches) -> list[int]:
    """The sids that alert: a thresholded match still acts, but logs nothing."""
    return sorted(match.rule.sid for match in matches if not match.noalert)
