"""The inline service: `reefguard run`, `down`, `reload`, `lab`.

Theory of operation
-------------------
One control process owns everything that changes the machine::

    control ──┬─ bridge + br_netfilter (appliance.bridge)
              ├─ iptables/ipset rules, one transaction (appliance.firewall)
              ├─ N worker processes, one per NFQUEUE number (--queue-balance)
              ├─ the collector process, single writer of the store and EVE
              ├─ conntrack accounting: DESTROY events of bypassed connections
              │  become their flow records (ips.conntrack), so bypass does not
              │  blind the profiler to volume
              ├─ enforcement: store `blocks` -> kernel, every second
              ├─ watchdog: a dead or stuck worker is killed and restarted
              ├─ status.json + Prometheus text (`render_metrics`)
              └─ the web UI in a thread, when asked (`--web`)

Start order makes the failure policy hold from the first packet: workers
bind their queues *before* the rules that feed them exist. Stop order is the
reverse: rules go first (traffic keeps flowing through the plain bridge),
then workers and the collector. While a worker is dead the kernel applies the
policy: fail-open (`--queue-bypass`, plus the kernel's fail-open flag for a
full queue) lets traffic pass uninspected; fail-closed drops it.

A state file (`<data-dir>/state.json`) records what was installed, so
`reefguard down` can remove exactly that after a crash.
"""
from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import queue as queue_module
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ips.config import Config
from ips.packet import ACCEPT, BYPASS, DROP

log = logging.getLogger("reefguard.service")

DEFAULT_DATA_DIR = "/var/lib/reefguard"
DEFAULT_BRIDGE = "br-reefguard"
STATE_FILE = "state.json"
STATUS_FILE = "status.json"
STORE_FILE = "reefguard.db"
RULES_REPORT_FILE = "rules-report.json"
"""What the running engine loaded and refused (the dashboard's Rules page)."""
RULES_REPORT_REFUSED = 200
"""Refused rules listed one by one in the report; the counts cover all."""

HEARTBEAT_STALE_SECONDS = 3.0   # a worker silent this long is stuck
STATUS_INTERVAL = 1.0
EVE_STATS_INTERVAL = 30.0
INVENTORY_SYNC_SECONDS = 2.0    # inventory -> store, so new devices show promptly
EVENT_QUEUE_MAX = 100_000        # bounded: a slow collector costs events, not packets

BYPASS_NOTES_REMEMBERED = 4096  # per worker; see worker_main
MAINTENANCE_INTERVAL = 0.1
"""Seconds between heartbeats / control-pipe checks while packets flow."""

REALTIME_PRIORITY = 10   # SCHED_FIFO level of workers: above every normal process
HIGH_PRIORITY_NICE = -15

# Per-worker shared counters (index in the shared array).
COUNTERS = ("packets", "accepted", "dropped", "rejected", "bypassed",
            "errors", "alerts", "reloads", "reload_failures")
_INDEX = {name: i for i, name in enumerate(COUNTERS)}


# ----------------------------------------------------------------------
# worker process

@dataclass(slots=True)
class WorkerSpec:
    queue_num: int
    rules: list[str]
    config: Config
    cache_dir: str | None
    fail_open: bool
    inspect: str = "full"
    """full: the real pipeline; accept / bypass: trivial verdicts (kernel tests)."""
    priority: str = "realtime"
    """Scheduling of the worker process: realtime (SCHED_FIFO), high (nice) or normal."""


class _TrivialWorker:
    """Stands in for ips.worker.Worker when only the kernel side is tested
    (or the pipeline cannot be imported): every packet gets one verdict."""

    def __init__(self, verdict: int) -> None:
        self.verdict = verdict
        self.counters = {"packets": 0}

    def process(self, pkt) -> int:
        self.counters["packets"] += 1
        return self.verdict

    def tick(self, now: float) -> None:
        pass

    def finish(self) -> None:
        pass

    def swap_engine(self, engine) -> None:
        pass

    def stats(self) -> dict:
        return {"capture": {"kernel_packets": self.counters["packets"]}}


def load_engine(rules: list[str], config: Config, cache_dir: str | None):
    """(engine or None, message, report for RULES_REPORT_FILE or None).
    Never raises: no rules, no detection."""
    if not rules:
        return None, "no rules", None
    missing = [path for path in rules if not Path(path).exists()]
    if missing:
        return None, f"rule file(s) missing: {', '.join(missing)}", None
    from ips.cli import load_engine as cli_load_engine
    try:
        engine, report = cli_load_engine(rules, config, cache_dir, quiet=True)
    except (OSError, ValueError) as exc:
        return None, f"rules could not be read ({exc})", None
    loaded = getattr(report, "loaded", 0)
    if engine is None or not loaded:
        # A rule set that lost every rule (a truncated or garbled file) is
        # refused: the running rules stay rather than the box going blind.
        errors = len(getattr(report, "errors", ()) or ())
        return None, f"no rule loaded ({errors} syntax errors)", None
    errors = len(report.errors)
    message = (f"{loaded} rules loaded, {len(report.skipped)} refused"
               + (f", {errors} with syntax errors" if errors else ""))
    return engine, message, rules_report(report)


def rules_report(report) -> dict:
    """A LoadReport as the Rules page shows it: counts by reason, and the
    first RULES_REPORT_REFUSED refused or broken rules with file and line."""
    refused = [{"file": Path(file).name, "line": line, "sid": sid,
                "reason": f"{reason}: {keyword}" if keyword else reason}
               for kind in (report.errors, report.skipped)
               for file, line, sid, reason, keyword in kind][:RULES_REPORT_REFUSED]
    return {"loaded": report.loaded, "refused": len(report.skipped),
            "syntax_errors": len(report.errors), "time": time.time(),
            "by_reason": dict(report.by_keyword().most_common()), "rules": refused}


def _build_worker(spec: WorkerSpec, emit):
    if spec.inspect == "accept":
        return _TrivialWorker(ACCEPT), "trivial accept", None
    if spec.inspect == "bypass":
        return _TrivialWorker(BYPASS), "trivial bypass", None
    from ips.worker import Worker
    engine, message, report = load_engine(spec.rules, spec.config, spec.cache_dir)
    return Worker(spec.config, engine, emit), message, report


def raise_priority(priority: str) -> str:
    """Make the worker run first when a packet wakes it (see docs/inline.md)."""
    try:
        if priority == "realtime":
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(REALTIME_PRIORITY))
        elif priority == "high":
            os.setpriority(os.PRIO_PROCESS, 0, HIGH_PRIORITY_NICE)
    except (OSError, AttributeError) as exc:
        log.warning("could not set %s priority (%s); running at normal priority",
                    priority, exc)
        return "normal"
    return priority


def worker_main(spec: WorkerSpec, events_queue, control, counters, heartbeat) -> None:
    """Body of one worker process: bind the queue, answer packets until told to stop."""
    from ips.collector import BatchingQueueSink
    from ips.conntrack import note_from_flow
    from ips.nfq import NfqSource, StopServing, apply_verdict, packet_from_queue
    from ips.worker import PacedCollector

    logging.basicConfig(level=logging.INFO, format="%(asctime)s worker%(process)d %(message)s")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the control process coordinates
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    sink = BatchingQueueSink(events_queue)
    raise_priority(spec.priority)
    worker, message, rules = _build_worker(spec, sink)
    # The loaded ruleset is frozen out of the cyclic collector, and full
    # collections come from the maintenance tick, not mid-packet.
    collector_pacing = PacedCollector()
    collector_pacing.start()
    local = [0] * len(COUNTERS)
    pending: list[Any] = []   # engine loaded by the reload thread, swapped by the loop
    last_tick = [time.time()]
    next_maintenance = [0.0]
    verdict_names = {"accept": _INDEX["accepted"], "bypass": _INDEX["bypassed"],
                     "drop": _INDEX["dropped"], "drop_flow": _INDEX["dropped"],
                     "reject": _INDEX["rejected"]}
    # Flows already announced to the collector as bypassed: packets in flight
    # after the bypass get the mark again, one note per flow is enough (a
    # repeated note after the set is cleared is harmless, the ledger keys by tuple).
    announced: set[int] = set()

    def maintenance(now: float, idle: bool = False) -> None:
        heartbeat.value = now
        sink.flush()
        next_maintenance[0] = now + MAINTENANCE_INTERVAL
        if pending:
            # The old ruleset is collected and the new one frozen: one
            # collection per reload, off the per-packet path.
            worker.swap_engine(pending.pop())
            # Counted here, not when loaded: `reloads` means the next packet
            # sees the new rules (a test that waits for it then sends one).
            local[_INDEX["reloads"]] += 1
            collector_pacing.refreeze()
        while control.poll():
            try:
                command = control.recv()
            except EOFError:  # the control process is gone: stop
                command = ("stop",)
            if command[0] == "stop":
                stopping.set()
            elif command[0] == "reload":
                if len(command) > 1:   # the rule list as the control process sees it now
                    spec.rules = list(command[1])
                threading.Thread(target=reload_in_background, daemon=True).start()
        if now - last_tick[0] >= 1.0:
            last_tick[0] = now
            worker.tick(now)
            collector_pacing.tick(idle)
            # The worker counts the alerts it emits (Packet.alerts is not filled inline).
            local[_INDEX["alerts"]] = getattr(worker, "counters", {}).get("alerts", 0)
            for i, value in enumerate(local):
                counters[i] = value

    def handle(nfq_packet) -> None:
        pkt = packet_from_queue(nfq_packet)
        verdict = worker.process(pkt)
        flow = pkt.flow
        done = apply_verdict(nfq_packet, verdict, getattr(flow, "action", None), pkt.rewritten)
        if done == "bypass" and flow is not None and flow.id not in announced:
            if len(announced) >= BYPASS_NOTES_REMEMBERED:
                announced.clear()
            announced.add(flow.id)
            # What only the worker knows (MACs, app_proto), for the kernel's
            # record of this connection when it ends (ips.conntrack).
            sink(note_from_flow(flow))
        local[0] += 1
        local[verdict_names[done]] += 1
        if sink.pending and sink.due():
            sink.flush()
        # Under steady traffic serve() does not return: the heartbeat, the
        # control pipe and the stop flag are looked at from here.
        if pkt.ts >= next_maintenance[0]:
            maintenance(pkt.ts)
            if stopping.is_set():
                raise StopServing

    def reload_in_background() -> None:
        engine, text, _report = load_engine(spec.rules, spec.config, spec.cache_dir)
        if engine is None and spec.rules:
            local[_INDEX["reload_failures"]] += 1
            log.warning("queue %d: reload failed (%s); keeping the running rules",
                        spec.queue_num, text)
            return
        pending.append(engine)

    source = NfqSource(spec.queue_num, handle, fail_open=spec.fail_open,
                       fallback_verdict=ACCEPT if spec.fail_open else DROP)
    control.send(("ready", {"queue": spec.queue_num, "fail_open_flag": source.fail_open_set,
                            "pipeline": message, "rules": rules}))
    try:
        while not stopping.is_set():
            source.serve()    # returns when idle for a moment, or to stop
            maintenance(time.time(), idle=not stopping.is_set())
    finally:
        source.close()
        local[_INDEX["alerts"]] = getattr(worker, "counters", {}).get("alerts", 0)
        for i, value in enumerate(local):
            counters[i] = value
        try:
            worker.finish()
        except Exception:  # noqa: BLE001 - last flows are best effort on the way out
            log.exception("worker finish failed")
        sink.flush()


# ----------------------------------------------------------------------
# collector process

def collector_main(events_queue, data_dir: str, config: Config,
                   accounting: bool = False) -> None:
    """Body of the collector process. `accounting`: the control process
    listens to conntrack DESTROY events, so the kernel's records are the flow
    records of bypassed connections (ips.conntrack.BypassLedger)."""
    from ips.collector import Collector, unbatch
    from ips.conntrack import BypassLedger

    logging.basicConfig(level=logging.INFO, format="%(asctime)s collector %(message)s")
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # stopped by the sentinel, after the workers
    from ips.cli import _profiling_consumers
    from ips.output import EveWriter
    from ips.response import AutoQuarantine
    from ips.store import Store, StoreConsumer

    store = Store(Path(data_dir) / STORE_FILE)
    consumers: list[Any] = [EveWriter(data_dir), StoreConsumer(store), AutoQuarantine(store)]
    if config.profiling:
        # Profilers first, so the anomalies they derive reach EVE and the
        # store; with the store they keep the inventory the dashboard reads.
        profiling = _profiling_consumers(config, store)
        # The dashboard lists devices from the store: a device must appear
        # there within seconds, not after the inventory's replay-sized interval.
        profiling[0].sync_interval = INVENTORY_SYNC_SECONDS
        consumers[:0] = profiling
    collector = Collector(consumers)
    ledger = BypassLedger(active=accounting)
    last_tick = time.time()
    while True:
        try:
            event = events_queue.get(timeout=0.5)
        except queue_module.Empty:
            event = False
        if event is None:
            break
        if event is not False:
            for one in unbatch(event):
                for ready in ledger.feed(one):
                    collector.emit(ready)
        now = time.time()
        if now - last_tick >= 1.0:
            last_tick = now
            collector.tick(now)
    for ready in ledger.done():
        collector.emit(ready)
    collector.done()


# ----------------------------------------------------------------------
# metrics

def render_metrics(status: dict | None = None, data_dir: str | None = None) -> str:
    """Prometheus text exposition of the inline counters.

    `status` is what the control process writes to status.json each second;
    without it, that file is read from `data_dir` (default: $REEFGUARD_DATA_DIR
    or /var/lib/reefguard)."""
    if status is None:
        directory = data_dir or os.environ.get("REEFGUARD_DATA_DIR", DEFAULT_DATA_DIR)
        try:
            status = json.loads((Path(directory) / STATUS_FILE).read_text())
        except (OSError, ValueError):
            status = {}
    totals = status.get("totals", {})
    lines = []

    def metric(name: str, kind: str, help_text: str, samples: list[tuple[str, float]]) -> None:
        lines.append(f"# HELP reefguard_{name} {help_text}")
        lines.append(f"# TYPE reefguard_{name} {kind}")
        for labels, value in samples:
            lines.append(f"reefguard_{name}{labels} {value}")

    metric("up", "gauge", "1 while the inline service runs.",
           [("", 1 if status.get("state") == "running" else 0)])
    metric("fail_open", "gauge", "1 in fail-open mode, 0 in fail-closed mode.",
           [("", 1 if status.get("policy", "fail-open") == "fail-open" else 0)])
    for name, help_text in (("inspected", "Packets inspected by a worker."),
                            ("bypassed", "Packets whose verdict handed the flow to the kernel."),
                            ("dropped", "Packets dropped by a verdict."),
                            ("rejected", "Packets answered with a TCP reset."),
                            ("uninspected", "Packets that passed without inspection "
                                            "(no worker, the queue was full, or a source "
                                            "over the new-flow limit; fail-open)."),
                            ("over_flow_limit", "New-flow packets of sources over the "
                                                "new-flow limit, not queued (fail-open: "
                                                "passed, fail-closed: dropped)."),
                            ("queue_overflow_dropped", "Packets dropped because a queue was "
                                                      "full (fail-closed)."),
                            ("alerts", "Alerts raised."),
                            ("worker_restarts", "Workers restarted by the watchdog."),
                            ("bypass_records", "Flow records of bypassed connections "
                                               "from conntrack accounting."),
                            ("conntrack_events_lost", "Times the kernel dropped conntrack "
                                                      "events for us (socket buffer full).")):
        metric(f"{name}_total", "counter", help_text, [("", totals.get(name, 0))])
    metric("workers_alive", "gauge", "Workers currently running.",
           [("", status.get("workers_alive", 0))])
    per_queue = status.get("queues", {})
    if per_queue:
        metric("queue_waiting", "gauge", "Packets waiting in a kernel queue.",
               [(f'{{queue="{q}"}}', data.get("queue_total", 0)) for q, data in per_queue.items()])
    metric("enforced_changes_total", "counter", "Kernel changes made by enforcement.",
           [("", status.get("enforced_changes", 0))])
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------
# control process

@dataclass
class _WorkerSlot:
    spec: WorkerSpec
    process: Any = None
    control: Any = None
    counters: Any = None
    heartbeat: Any = None
    restarts: int = 0
    started: float = 0.0
    ready: bool = False
    info: dict = field(default_factory=dict)
    retired: list[int] = field(default_factory=list)
    """Counter totals of earlier incarnations of this slot."""


class InlineService:
    """The control process of `reefguard run`."""

    def __init__(self, args) -> None:
        self.args = args
        self.data_dir = Path(args.data_dir)
        self.policy = args.policy
        self.fail_open = args.policy == "fail-open"
        self.config = Config()
        self.config.stream_inline = True
        # Locally generated and veth traffic carries partial checksums
        # (offload); the kernel has already dealt with checksums of what it
        # forwards, and a "bad" checksum must not make a packet skip inspection.
        self.config.checksum_mode = "none"
        # A restarted worker, or a flow older than the service, starts midstream.
        self.config.stream_midstream = True
        self.config.exception_policy = "pass" if self.fail_open else "drop"
        self.config.apply(getattr(args, "set", None) or [])
        self.ctx = multiprocessing.get_context("forkserver")
        self.events = None
        self.collector = None
        self.slots: list[_WorkerSlot] = []
        self.bridge_state = None
        self.plan = None
        self.enforcer = None
        self.stopping = threading.Event()
        self.reload_requested = threading.Event()
        self.worker_restarts = 0
        self.enforced_changes = 0
        self.reload_failures = 0
        self.fastpath: dict = {"pure_ack": "off (not started)", "icmp_echo": "off (not started)"}
        self._fastpath_lock = threading.Lock()
        self._fastpath_generation = 0
        self.store_conn = None
        self._baseline_queue_packets = 0
        self._uninspected = 0
        self.accounting_before: dict[str, str] | None = None
        self.conntrack = None   # ips.conntrack.DestroyListener while it runs

    # -- lifecycle -------------------------------------------------------
    def run(self) -> int:
        from appliance import bridge, firewall
        from appliance.enforce import Enforcer
        from ips import conntrack

        self.data_dir.mkdir(parents=True, exist_ok=True)
        state_path = self.data_dir / STATE_FILE
        if state_path.exists():
            old = json.loads(state_path.read_text() or "{}")
            if old.get("pid") and _pid_alive(old["pid"]) and old["pid"] != os.getpid():
                raise SystemExit(f"reefguard: already running (pid {old['pid']}); "
                                 f"or run `reefguard down --data-dir {self.data_dir}`")
            log.warning("stale state file from pid %s: cleaning up first", old.get("pid"))
            down_from_state(old, remove_bridge=False)
        signal.signal(signal.SIGTERM, lambda *_: self.stopping.set())
        signal.signal(signal.SIGINT, lambda *_: self.stopping.set())
        signal.signal(signal.SIGHUP, lambda *_: self.reload_requested.set())
        self.ctx.set_forkserver_preload(["ips.nfq"])
        state: dict[str, Any] = {"pid": os.getpid(), "started": time.time()}
        try:
            adopt = self.args.bridge is not None and not self.args.create_bridge
            name = self.args.bridge or DEFAULT_BRIDGE
            self.bridge_state = bridge.setup_bridge(name, [self.args.wan, self.args.lan],
                                                    adopt=adopt and _link_exists(name))
            state["bridge"] = self.bridge_state.to_dict()
            self.plan = firewall.FirewallPlan(bridge=name, queue_first=self.args.queue_num,
                                              queue_count=self.args.workers,
                                              fail_open=self.fail_open,
                                              new_flow_limit=getattr(self.args, "new_flow_limit", 2000))
            state["firewall"] = self.plan.to_dict()
            # Counters and timestamps are attached to a conntrack entry when it
            # is created: switched on before any flow can be bypassed.
            self.accounting_before = conntrack.enable_accounting()
            state["conntrack"] = {"sysctl_before": self.accounting_before}
            _write_json(state_path, state)   # before the rules: a crash from here on is undoable
            self.events = self.ctx.Queue(EVENT_QUEUE_MAX)
            accounting = self._open_conntrack_listener()
            self.collector = self.ctx.Process(target=collector_main, name="reefguard-collector",
                                              args=(self.events, str(self.data_dir), self.config,
                                                    accounting))
            self.collector.start()
            if self.conntrack is not None:
                self.conntrack.start()
            cache_dir = str(self.data_dir / "rule-cache")
            for i in range(self.args.workers):
                spec = WorkerSpec(self.args.queue_num + i, self._rule_list(),
                                  self.config, cache_dir, self.fail_open, self.args.inspect,
                                  getattr(self.args, "worker_priority", "realtime"))
                slot = _WorkerSlot(spec)
                self.slots.append(slot)
                self._start_worker(slot)
            self._wait_ready(timeout=120)
            firewall.apply(self.plan)
            # Off until the rules are analysed (all of them parsed: a few
            # seconds for ET Open), in the background.
            threading.Thread(target=self._analyse_fastpath, daemon=True).start()
            self.enforcer = Enforcer(gateways=set(self.args.gateway or []))
            self._baseline_queue_packets = 0
            state["state"] = "running"
            _write_json(state_path, state)
            log.info("inline on %s (%s <-> %s), %d worker(s), %s", name, self.args.wan,
                     self.args.lan, self.args.workers, self.policy)
            self._start_side_servers()
            self._loop()
            return 0
        finally:
            self._shutdown(state_path)

    def _open_conntrack_listener(self) -> bool:
        """Listen to conntrack DESTROY events; False (workers' partial
        records are kept) when this kernel or these rights do not allow it."""
        from ips import conntrack
        from ips.collector import QueueSink

        listener = conntrack.DestroyListener(QueueSink(self.events))
        try:
            listener.open()
        except OSError as exc:
            log.warning("conntrack events unavailable (%s): volume of bypassed flows "
                        "is only what the workers saw before the bypass", exc)
            return False
        self.conntrack = listener
        return True

    def _stop_conntrack_listener(self) -> None:
        """After the workers: report bypassed connections still open (their
        counters so far, zeroed in the kernel), then stop listening."""
        if self.conntrack is None:
            return
        try:
            sent = self.conntrack.dump_open()
            if sent:
                log.info("reported %d bypassed connection(s) still open", sent)
        finally:
            self.conntrack.stop()

    def _poll_feed(self) -> None:
        """`feed.url` set: fetch the vendor's bundle now and every
        `feed.interval` seconds; a newly installed version is swapped in by
        the same live reload as SIGHUP. A refused bundle changes nothing (the
        feed module records why, for the dashboard)."""
        from ips import feed

        keys = feed.default_key_dirs(config_dir=self.config.feed_keys_dir)
        while not self.stopping.is_set():
            try:
                result = feed.apply_from(self.config.feed_url, self.data_dir, keys,
                                         config=self.config,
                                         cache_dir=str(self.data_dir / "rule-cache"))
                if result.outcome == "installed":
                    log.info("feed: version %s installed from %s; reloading",
                             result.status.get("version"), self.config.feed_url)
                    self.reload_requested.set()
            except feed.FeedError as exc:
                log.warning("feed: %s refused: %s", self.config.feed_url, exc)
            except Exception:  # noqa: BLE001 - the poller must outlive one bad attempt
                log.exception("feed: update from %s failed", self.config.feed_url)
            self.stopping.wait(max(60.0, self.config.feed_interval))

    def _loop(self) -> None:
        if self.config.feed_url:
            threading.Thread(target=self._poll_feed, name="feed", daemon=True).start()
        last_status = 0.0
        last_eve_stats = time.time()
        while not self.stopping.is_set():
            self.stopping.wait(0.25)
            if self.stopping.is_set():
                break
            now = time.time()
            self._watchdog(now)
            if self.reload_requested.is_set():
                self.reload_requested.clear()
                threading.Thread(target=self._reload, daemon=True).start()
            if now - last_status >= STATUS_INTERVAL:
                last_status = now
                self._enforce()
                status = self.status()
                _write_json(self.data_dir / STATUS_FILE, status)
                if now - last_eve_stats >= EVE_STATS_INTERVAL:
                    last_eve_stats = now
                    self._emit_stats(status)

    def _shutdown(self, state_path: Path) -> None:
        from appliance import bridge, firewall

        # Rules first: from here on the bridge forwards everything, so
        # stopping the workers cannot cut the LAN whatever the policy.
        leftovers = []
        if self.plan is not None:
            try:
                leftovers = firewall.teardown(self.plan)
            except Exception as exc:  # noqa: BLE001 - keep tearing down the rest
                leftovers = [str(exc)]
        for slot in self.slots:
            if slot.process is not None and slot.process.is_alive():
                try:
                    slot.control.send(("stop",))
                except OSError:
                    pass
        deadline = time.time() + 5
        for slot in self.slots:
            if slot.process is not None:
                slot.process.join(max(0.1, deadline - time.time()))
                if slot.process.is_alive():
                    slot.process.kill()
                    slot.process.join(1)
        if self.events is not None:
            try:
                self._stop_conntrack_listener()
            except Exception:  # noqa: BLE001 - keep tearing down the rest
                log.exception("stopping the conntrack listener failed")
        status = self.status() if self.slots else {}
        if self.events is not None:
            try:
                if status:
                    self._emit_stats(status)
                self.events.put(None, timeout=2)
            except Exception:  # noqa: BLE001
                pass
        if self.collector is not None:
            self.collector.join(10)
            if self.collector.is_alive():
                self.collector.kill()
        if self.accounting_before is not None:
            from ips import conntrack
            conntrack.restore_accounting(self.accounting_before)
        if self.bridge_state is not None:
            bridge.release_bridge(self.bridge_state, remove=self.args.remove_bridge)
        if status:
            status["state"] = "stopped"
            _write_json(self.data_dir / STATUS_FILE, status)
        if leftovers:
            log.error("could not remove: %s (state file kept for `reefguard down`)", leftovers)
        else:
            try:
                state_path.unlink()
            except FileNotFoundError:
                pass

    # -- workers ---------------------------------------------------------
    def _start_worker(self, slot: _WorkerSlot) -> None:
        if slot.counters is not None:
            slot.retired = [a + b for a, b in zip(slot.retired or [0] * len(COUNTERS),
                                                  list(slot.counters))]
        parent_end, child_end = self.ctx.Pipe()
        slot.control = parent_end
        slot.counters = self.ctx.Array("q", len(COUNTERS), lock=False)
        slot.heartbeat = self.ctx.Value("d", time.time(), lock=False)
        slot.ready = False
        slot.started = time.time()
        slot.process = self.ctx.Process(
            target=worker_main, name=f"reefguard-worker-{slot.spec.queue_num}",
            args=(slot.spec, self.events, child_end, slot.counters, slot.heartbeat))
        slot.process.start()
        child_end.close()

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.time() + timeout
        for slot in self.slots:
            while not slot.ready:
                if self.stopping.is_set():
                    raise SystemExit("interrupted while starting")
                if not slot.process.is_alive():
                    raise RuntimeError(f"worker for queue {slot.spec.queue_num} died at start")
                if time.time() > deadline:
                    raise RuntimeError("workers did not start in time")
                self._poll_ready(slot, 0.2)

    def _poll_ready(self, slot: _WorkerSlot, timeout: float) -> None:
        try:
            if slot.control.poll(timeout):
                kind, info = slot.control.recv()
                if kind == "ready":
                    rules = info.pop("rules", None)
                    slot.ready = True
                    slot.info = info
                    slot.heartbeat.value = time.time()
                    log.info("queue %d ready: %s", slot.spec.queue_num, info)
                    if rules is not None:
                        self._write_rules_report(rules)
        except (EOFError, OSError):
            pass

    def _write_rules_report(self, report: dict) -> None:
        try:
            _write_json(self.data_dir / RULES_REPORT_FILE, report)
        except OSError as exc:
            log.warning("rules report not written: %s", exc)

    def _watchdog(self, now: float) -> None:
        for slot in self.slots:
            if not slot.ready:
                self._poll_ready(slot, 0)
            dead = not slot.process.is_alive()
            # A worker still loading rules has not beaten yet; give it time.
            grace = 120.0 if not slot.ready else HEARTBEAT_STALE_SECONDS
            stuck = not dead and now - max(slot.heartbeat.value, slot.started) > grace
            if not (dead or stuck):
                continue
            log.error("worker for queue %d %s; restarting (traffic meanwhile: %s)",
                      slot.spec.queue_num, "died" if dead else "is stuck", self.policy)
            if stuck:
                slot.process.kill()
            slot.process.join(2)
            slot.restarts += 1
            self.worker_restarts += 1
            self._start_worker(slot)

    def _rule_list(self) -> list[str]:
        """The `-S` rules plus the installed signature feed's files, read
        afresh each time, so `reefguard feed apply` takes effect by reload."""
        from ips import feed
        return list(self.args.rules or []) + feed.current_rule_files(self.data_dir)

    def _reload(self) -> None:
        """Compile the rules in the background; workers swap only a set that
        compiled, so a broken rule file keeps the running set."""
        spec = self.slots[0].spec if self.slots else None
        if spec is None or spec.inspect != "full":
            return
        rules = self._rule_list()
        engine, message, report = load_engine(rules, self.config, spec.cache_dir)
        if engine is None and rules:
            self.reload_failures += 1
            log.error("reload failed (%s); keeping the running rules", message)
            return
        log.info("reload: %s; swapping in %d worker(s)", message, len(self.slots))
        if report is not None:
            self._write_rules_report(report)
        # Nothing the new rules might need stays in the kernel while they
        # are swapped in; the fast path follows from their analysis.
        generation = self._new_fastpath_generation()
        self._set_fastpath(None, generation)
        for slot in self.slots:
            slot.spec.rules = list(rules)   # a worker the watchdog restarts loads these
            try:
                slot.control.send(("reload", rules))
            except OSError:
                pass
        self._analyse_fastpath(engine, generation)

    def _new_fastpath_generation(self) -> int:
        with self._fastpath_lock:
            self._fastpath_generation += 1
            return self._fastpath_generation

    def _analyse_fastpath(self, engine=None, generation: int | None = None) -> None:
        """Which packets of unjudged flows the kernel may keep (ips.fastpath),
        from every rule of the running set."""
        from ips import fastpath

        if generation is None:
            generation = self._new_fastpath_generation()
        try:
            if engine is None:
                engine, _message, _report = load_engine(self._rule_list(), self.config,
                                                        str(self.data_dir / "rule-cache"))
            rules = [engine.rule(i) for i in range(len(engine.rules))] if engine else []
            self._set_fastpath(fastpath.Analysis.of(rules), generation)
        except Exception:  # noqa: BLE001 - the fast path is an optimisation: stay off
            log.exception("fast path analysis failed; it stays off")

    def _set_fastpath(self, analysis, generation: int) -> None:
        """Install what `analysis` allows (None: nothing), unless turned off
        in config (`fastpath.pure-ack`, `fastpath.icmp-echo`). An analysis
        overtaken by a later reload (the start-up one takes seconds for ET
        Open) is dropped: it describes rules no longer running."""
        with self._fastpath_lock:
            if generation != self._fastpath_generation:
                return
            self._install_fastpath(analysis)

    def _install_fastpath(self, analysis) -> None:
        from appliance import firewall

        if analysis is None:
            pure_ack, limit, self.fastpath = False, -1, {"pure_ack": "off (analysing the rules)",
                                                         "icmp_echo": "off (analysing the rules)"}
        else:
            pure_ack = self.config.fastpath_pure_ack and analysis.pure_ack
            limit = analysis.icmp_echo_limit if self.config.fastpath_icmp_echo else -1
            self.fastpath = {
                "pure_ack": analysis.describe_pure_ack() if self.config.fastpath_pure_ack
                else "off (fastpath.pure-ack=false)",
                "icmp_echo": analysis.describe_icmp_echo() if self.config.fastpath_icmp_echo
                else "off (fastpath.icmp-echo=false)"}
        try:
            firewall.apply_fastpath(self.plan, pure_ack, limit)
        except RuntimeError as exc:   # e.g. no u32 match in this kernel: stay off
            self.fastpath = {"pure_ack": f"off: {exc}", "icmp_echo": f"off: {exc}"}
            log.warning("fast path not installed: %s", exc)
        log.info("fast path: %s", self.fastpath)

    # -- enforcement, status ---------------------------------------------
    def _enforce(self) -> None:
        from appliance.enforce import wanted_from_store

        if self.enforcer is None:
            return
        try:
            if self.store_conn is None:
                from ips.store import connect
                self.store_conn = connect(self.data_dir / STORE_FILE)
            quarantined, blocked = wanted_from_store(self.store_conn)
            self.enforced_changes += self.enforcer.reconcile(quarantined, blocked)
        except Exception:  # noqa: BLE001 - enforcement retries next second
            log.exception("enforcement failed")

    def status(self) -> dict:
        from appliance import firewall
        from ips.nfq import read_queue_stats

        totals = {name: 0 for name in COUNTERS}
        for slot in self.slots:
            current = list(slot.counters) if slot.counters is not None else [0] * len(COUNTERS)
            for i, name in enumerate(COUNTERS):
                totals[name] += current[i] + (slot.retired[i] if slot.retired else 0)
        queues = {str(q): {"queue_total": s.queue_total, "queue_dropped": s.queue_dropped,
                           "user_dropped": s.user_dropped, "id_sequence": s.id_sequence,
                           "bound": bool(s.peer_portid)}
                  for q, s in read_queue_stats().items()}
        families = self.plan.families if self.plan else ()
        counters = [firewall.policy_counters(f) for f in families]
        sent_to_queue = sum(c["sent_to_queue"] for c in counters)
        # New flows of a source over --new-flow-limit never reached a queue.
        over_limit = sum(c["over_limit"] for c in counters)
        waiting = sum(q["queue_total"] for q in queues.values())
        overflow = sum(q["queue_dropped"] + q["user_dropped"] for q in queues.values())
        # Every packet that hit the NFQUEUE rule was inspected, is waiting,
        # or went past the engine: without a reader (--queue-bypass), through
        # the fail-open flag, or (fail-closed) into the overflow drop count.
        missed = max(0, sent_to_queue - totals["packets"] - waiting)
        # Worker counters are published about once a second, so `missed`
        # jitters; the counter the outside sees must never go down.
        if self.fail_open:
            self._uninspected = max(self._uninspected, missed)
        uninspected = self._uninspected + (over_limit if self.fail_open else 0)
        conntrack_counters = dict(self.conntrack.counters) if self.conntrack is not None else {}
        return {
            "state": "running" if not self.stopping.is_set() else "stopping",
            "time": time.time(), "pid": os.getpid(), "policy": self.policy,
            "bridge": self.plan.bridge if self.plan else None,
            "workers": len(self.slots),
            "workers_alive": sum(1 for s in self.slots if s.process and s.process.is_alive()),
            "totals": {"inspected": totals["packets"], "bypassed": totals["bypassed"],
                       "dropped": totals["dropped"], "rejected": totals["rejected"],
                       "accepted": totals["accepted"], "alerts": totals["alerts"],
                       "errors": totals["errors"], "uninspected": uninspected,
                       "queue_overflow_dropped": overflow if not self.fail_open else 0,
                       "over_flow_limit": over_limit,
                       "sent_to_queue": sent_to_queue,
                       "worker_restarts": self.worker_restarts,
                       "reloads": totals["reloads"],
                       "reload_failures": totals["reload_failures"] + self.reload_failures,
                       "bypass_records": conntrack_counters.get("bypassed", 0),
                       "conntrack_events_lost": conntrack_counters.get("lost", 0)},
            "conntrack": dict(conntrack_counters, listening=self.conntrack is not None),
            "queues": queues,
            "workers_info": [dict(s.info, restarts=s.restarts,
                                  pid=s.process.pid if s.process else None)
                             for s in self.slots],
            "enforced_changes": self.enforced_changes,
            "fastpath": dict(self.fastpath),
        }

    def _emit_stats(self, status: dict) -> None:
        from ips import events
        try:
            self.events.put_nowait(events.Stats(timestamp=time.time(),
                                                counters={"inline": status["totals"]}))
        except Exception:  # noqa: BLE001 - stats are best effort
            pass

    def _start_side_servers(self) -> None:
        if self.args.metrics:
            host, port = _host_port(self.args.metrics)
            start_metrics_server(host, port, lambda: render_metrics(self.status()))
        if self.args.web:
            host, port = _host_port(self.args.web)
            start_web(host, port, self.data_dir)


def start_metrics_server(host: str, port: int, render) -> Any:
    """Serve GET /metrics (Prometheus text) in a daemon thread."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404)
                return
            body = render().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True, name="metrics").start()
    return server


def start_web(host: str, port: int, data_dir: Path) -> bool:
    """Run the dashboard (uvicorn) in a daemon thread."""
    import uvicorn
    from webui.main import create_app
    from webui.settings import WebSettings

    os.environ.setdefault("REEFGUARD_DATA_DIR", str(data_dir))
    settings = WebSettings(store_path=data_dir / STORE_FILE, bind_host=host, port=port,
                           secret_key_file=data_dir / "web-secret")
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True, name="webui").start()
    return True


# ----------------------------------------------------------------------
# helpers

def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


def _write_json(path: Path, data: dict) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(data, indent=1, default=str))
    os.replace(temporary, path)


def _pid_alive(pid: int) -> bool:
    """Whether `pid` is a live ReefGuard process. The state file outlives a
    crash and pids are reused: a pid now held by an unrelated program must
    not be signalled by `down`, `reload` or a feed update."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"reefguard" in cmdline or b"ips.cli" in cmdline


def _link_exists(name: str) -> bool:
    return os.path.exists(f"/sys/class/net/{name}")


def down_from_state(state: dict, remove_bridge: bool = False) -> list[str]:
    """Remove what a (crashed) run recorded in its state file."""
    from appliance import bridge, firewall

    leftovers: list[str] = []
    if state.get("firewall"):
        leftovers += firewall.teardown(firewall.FirewallPlan.from_dict(state["firewall"]))
    if state.get("conntrack"):
        from ips import conntrack
        conntrack.restore_accounting(state["conntrack"].get("sysctl_before") or {})
    if state.get("bridge"):
        bridge.release_bridge(bridge.BridgeState.from_dict(state["bridge"]), remove=remove_bridge)
    return leftovers


# ----------------------------------------------------------------------
# commands

def cmd_run(args) -> int:
    if os.geteuid() != 0:
        raise SystemExit("reefguard run: needs root (bridge, iptables, NFQUEUE)")
    if args.workers < 1 or args.workers > 64:
        raise SystemExit("reefguard run: --workers must be 1..64")
    return InlineService(args).run()


def cmd_down(args) -> int:
    state_path = Path(args.data_dir) / STATE_FILE
    if not state_path.exists():
        print(f"reefguard down: no state file at {state_path}; nothing recorded to remove")
        return 0
    state = json.loads(state_path.read_text() or "{}")
    if state.get("pid") and _pid_alive(state["pid"]) and state["pid"] != os.getpid():
        print(f"reefguard down: pid {state['pid']} is running; stopping it")
        os.kill(state["pid"], signal.SIGTERM)
        for _ in range(100):
            if not state_path.exists() or not _pid_alive(state["pid"]):
                break
            time.sleep(0.1)
        if not state_path.exists():
            return 0
    leftovers = down_from_state(state, remove_bridge=args.remove_bridge)
    if leftovers:
        print(f"reefguard down: could not remove {leftovers}", file=sys.stderr)
        return 1
    state_path.unlink()
    print("reefguard down: removed rules, sets" + (" and bridge" if args.remove_bridge else ""))
    return 0


def request_reload(data_dir: str | Path) -> int | None:
    """Ask the service running for `data_dir` to reload its rules (SIGHUP);
    its pid, or None when no live service is recorded there."""
    state_path = Path(data_dir) / STATE_FILE
    try:
        pid = int(json.loads(state_path.read_text())["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not _pid_alive(pid):
        return None
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        return None
    return pid


def cmd_reload(args) -> int:
    if request_reload(args.data_dir) is None:
        raise SystemExit(f"reefguard reload: no running service recorded in "
                         f"{Path(args.data_dir) / STATE_FILE}")
    return 0


def cmd_lab(args) -> int:
    from appliance.lab import run_lab
    return run_lab(args)


def register(subparsers) -> None:
    """Add `run`, `down`, `reload` and `lab` to the reefguard CLI."""
    p = subparsers.add_parser("run", help="run inline on a bridge (root)")
    p.add_argument("--wan", required=True, help="port towards the router")
    p.add_argument("--lan", required=True, help="port towards the devices")
    p.add_argument("-S", dest="rules", action="append", metavar="RULES", default=[],
                   help="rule file or directory (repeatable)")
    p.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    p.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    p.add_argument("--web", metavar="HOST:PORT", help="serve the dashboard")
    p.add_argument("--metrics", metavar="HOST:PORT", help="serve Prometheus /metrics")
    p.add_argument("--bridge", metavar="NAME",
                   help=f"adopt this bridge if it exists, else create it (default {DEFAULT_BRIDGE})")
    p.add_argument("--create-bridge", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--remove-bridge", action="store_true",
                   help="on stop, remove the bridge if this run created it "
                        "(default: keep it, so the LAN keeps working)")
    p.add_argument("--policy", choices=["fail-open", "fail-closed"], default="fail-open")
    p.add_argument("--queue-num", type=int, default=0, help="first NFQUEUE number")
    p.add_argument("--new-flow-limit", type=int, default=2000, metavar="N",
                   help="new flows per second one source may send to inspection; past "
                        "it the failure policy applies to its new flows, in the kernel "
                        "(default 2000; 0: no limit)")
    p.add_argument("--gateway", action="append", metavar="IP",
                   help="gateway a quarantined device may still use for DNS (repeatable)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", default=[])
    p.add_argument("--inspect", choices=["full", "accept", "bypass"], default="full",
                   help=argparse.SUPPRESS)  # trivial verdicts, for kernel-side tests
    p.add_argument("--worker-priority", choices=["realtime", "high", "normal"],
                   default="realtime",
                   help="scheduling of the worker processes (default realtime: a queued "
                        "packet preempts other processes instead of waiting for a CPU)")
    p.set_defaults(func=cmd_run)

    p = subparsers.add_parser("down", help="remove what a crashed `run` left behind")
    p.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    p.add_argument("--remove-bridge", action="store_true",
                   help="also remove the bridge if `run` created it")
    p.set_defaults(func=cmd_down)

    p = subparsers.add_parser("reload", help="reload rules in the running service (SIGHUP)")
    p.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    p.set_defaults(func=cmd_reload)

    p = subparsers.add_parser("lab", help="IoT lab in network namespaces with the box inline")
    p.add_argument("--duration", type=float, default=None,
                   help="seconds of device traffic after the attacks (0: until Ctrl-C; "
                        "default 20, or until Ctrl-C with --web)")
    p.add_argument("--web", metavar="HOST:PORT", help="serve the dashboard on the host")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--policy", choices=["fail-open", "fail-closed"], default="fail-open")
    p.add_argument("-S", dest="rules", action="append", metavar="RULES", default=[],
                   help="extra rule files (the virtual patches are always loaded)")
    p.add_argument("--data-dir", default=None,
                   help="EVE and store go here (default: a new /tmp/reefguard-lab-* directory, kept)")
    p.set_defaults(func=cmd_lab)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="reefguard")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose > 1 else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
