"""Offline replay: pcap files → the worker pipeline → EVE and the store.

The replay is the inline box with a file as its packet source: the same
`Worker`, the same detection, the same verdicts ("simulate IPS"). It adds only
what a file needs: a progress bar and packet-time ticks for the collector.
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from ips.capture import CaptureError, PcapReader
from ips.collector import Collector
from ips.config import Config
from ips.output import EveWriter
from ips.worker import PacedCollector, Worker

# Collector ticks (device profiler windows, EVE flushes) run on packet time.
TICK_SECONDS = 60.0


@dataclass
class ReplaySummary:
    packets: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    alerts: int = 0
    blocked: int = 0
    anomalies: int = 0
    flows: int = 0
    errors: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    signatures: dict[str, int] = field(default_factory=dict)
    device_anomalies: list = field(default_factory=list)


class _Tally:
    """Consumer that remembers what the replay found, for the summary."""

    def __init__(self, summary: ReplaySummary) -> None:
        self.summary = summary

    def alert(self, a) -> None:
        self.summary.alerts += 1
        if a.action == "blocked":
            self.summary.blocked += 1
        key = f"[{a.gid}:{a.signature_id}:{a.rev}] {a.signature} ({a.action})"
        self.summary.signatures[key] = self.summary.signatures.get(key, 0) + 1

    def anomaly(self, a) -> None:
        self.summary.anomalies += 1

    def device_anomaly(self, a) -> None:
        if len(self.summary.device_anomalies) < 1000:
            self.summary.device_anomalies.append(a)

    def flow_end(self, f) -> None:
        self.summary.flows += 1


class Progress:
    """A one-line progress bar on stderr, only when stderr is a terminal."""

    def __init__(self, total_bytes: int, enabled: bool | None = None) -> None:
        self.total = max(total_bytes, 1)
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self._last = 0.0
        self._start = time.monotonic()

    def update(self, done_bytes: int, packets: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < 0.2:
            return
        self._last = now
        frac = min(done_bytes / self.total, 1.0)
        width = 30
        bar = "#" * int(frac * width)
        rate = packets / max(now - self._start, 1e-6)
        sys.stderr.write(f"\r[{bar:<{width}}] {frac * 100:5.1f}%  {packets:,} pkts  "
                         f"{rate:,.0f} pkt/s")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


def replay(pcaps: Iterable[str], engine, outdir: str | Path, config: Config, *,
           consumers: Iterable[Any] = (), progress: bool | None = None) -> ReplaySummary:
    """Run every packet of `pcaps` through one worker; write EVE to outdir."""
    pcaps = list(pcaps)
    summary = ReplaySummary()
    eve = EveWriter(outdir)
    collector = Collector([eve, _Tally(summary), *consumers])
    worker = Worker(config, engine, collector)
    total = sum(os.path.getsize(p) for p in pcaps if os.path.exists(p))
    bar = Progress(total, progress)
    done_bytes = 0
    count = 0
    next_tick = None
    started = time.perf_counter()
    cpu_started = time.process_time()
    # The ruleset and the modules are frozen out of the cyclic collector, and
    # full collections are paced (ips.worker.PacedCollector).
    pacing = PacedCollector()
    pacing.start()
    try:
        for path in pcaps:
            try:
                reader = PcapReader(path, start_cnt=count + 1)
            except (CaptureError, OSError) as exc:
                summary.errors.append(f"{path}: {exc}")
                continue
            with reader:
                for pkt in reader:
                    count += 1
                    worker.process(pkt)
                    if next_tick is None:
                        next_tick = pkt.ts + TICK_SECONDS
                    elif pkt.ts >= next_tick:
                        collector.tick(pkt.ts)
                        next_tick = pkt.ts + TICK_SECONDS
                    if count & 1023 == 0:
                        bar.update(done_bytes + reader.bytes_read, count)
                        pacing.tick()
                if reader.error:
                    summary.errors.append(f"{path}: {reader.error}")
            done_bytes += reader.size
        worker.finish()
        collector.done()
    finally:
        pacing.stop()
        bar.close()
        eve.close()
    summary.packets = count
    summary.seconds = time.perf_counter() - started
    summary.cpu_seconds = time.process_time() - cpu_started
    summary.counts = dict(collector.counts)
    summary.counts["consumer_errors"] = sum(collector.errors.values())
    return summary
