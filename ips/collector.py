"""The collector: fan-out of events to consumers, in one explicit list.

Consumers are plain objects whose methods are named after the hook they
handle (mitmproxy's addon style)::

    alert(Alert)  flow_end(FlowEnd)  anomaly(Anomaly)  app_record(AppRecord)
    device_anomaly(DeviceAnomaly)  stats(Stats)  tick(timestamp)  done()  close()

A hook may return an iterable of new events (the device profiler returns
`DeviceAnomaly` events); those are fed to every consumer in turn. A consumer
that raises is logged and counted, never fatal: one broken consumer must not
stop alerts from being written.

Inline, every worker process sends its events to the one collector process
(`QueueSink`); the collector is the single writer of the store.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Iterable

from ips import events

log = logging.getLogger("reefguard.collector")

HOOKS: dict[type, str] = {
    events.Alert: "alert",
    events.FlowEnd: "flow_end",
    events.Anomaly: "anomaly",
    events.AppRecord: "app_record",
    events.DeviceAnomaly: "device_anomaly",
    events.Stats: "stats",
}

# Derived events may trigger further events; bound the chain so a consumer
# bug cannot loop forever.
MAX_DERIVED_DEPTH = 4


class Collector:
    def __init__(self, consumers: Iterable[Any]) -> None:
        self.consumers = list(consumers)
        self.errors: dict[str, int] = {}
        self.counts: dict[str, int] = {}
        # Each event type's hook name and handlers, resolved once: emit() runs
        # for every flow record and app-layer record, so no getattr per
        # consumer there.
        self._routes: dict[type, tuple[str, list]] = {
            event_type: (hook, [(consumer, getattr(consumer, hook)) for consumer in self.consumers
                                if getattr(consumer, hook, None) is not None])
            for event_type, hook in HOOKS.items()}

    def emit(self, event: Any, _depth: int = 0) -> None:
        route = self._routes.get(type(event))
        if route is None:
            raise TypeError(f"not an event: {event!r}")
        hook, handlers = route
        self.counts[hook] = self.counts.get(hook, 0) + 1
        pending = []
        for consumer, method in handlers:
            try:
                derived = method(event)
            except Exception:  # noqa: BLE001 - a consumer bug must not kill the pipeline
                self._failed(consumer, hook)
                continue
            if derived:
                pending.extend(derived)
        # Every consumer sees an event before the events derived from it.
        if _depth < MAX_DERIVED_DEPTH:
            for new_event in pending:
                self.emit(new_event, _depth + 1)

    # The worker's emit callable: one call per event, not two.
    __call__ = emit

    def tick(self, timestamp: float) -> None:
        for consumer in self.consumers:
            derived = self._safecall(consumer, "tick", timestamp)
            for new_event in derived or ():
                self.emit(new_event, 1)

    def done(self) -> None:
        """End of input. Every consumer's `done` runs first and the events
        they derive (a profiler's end-of-window summaries) reach every
        consumer; only then are outputs closed (`close` hook)."""
        pending = []
        for consumer in self.consumers:
            pending.extend(self._safecall(consumer, "done") or ())
        for new_event in pending:
            self.emit(new_event, 1)
        for consumer in self.consumers:
            self._safecall(consumer, "close")

    def _safecall(self, consumer: Any, hook: str, *args: Any):
        method = getattr(consumer, hook, None)
        if method is None:
            return None
        try:
            return method(*args)
        except Exception:  # noqa: BLE001 - a consumer bug must not kill the pipeline
            self._failed(consumer, hook)
            return None

    def _failed(self, consumer: Any, hook: str) -> None:
        name = f"{type(consumer).__name__}.{hook}"
        self.errors[name] = self.errors.get(name, 0) + 1
        if self.errors[name] <= 3:
            log.exception("consumer %s failed", name)


class QueueSink:
    """Worker-side end of the worker → collector channel (multiprocessing)."""

    def __init__(self, queue) -> None:
        self.queue = queue
        self.dropped = 0

    def __call__(self, event: Any) -> None:
        try:
            self.queue.put_nowait(event)
        except Exception:  # queue full: never block the packet path
            self.dropped += 1


class BatchingQueueSink(QueueSink):
    """Collects events and puts them on the queue as one list.

    Each `put` wakes the queue's feeder thread, which pickles and writes
    while holding the GIL the packet path needs; an inline worker emits a
    flow record and an app-layer record or two per short connection, so it
    batches them and `flush()`es every few packets' worth of time (the
    worker calls it at most `MAX_DELAY` after the first pending event, and
    whenever the queue goes idle)."""

    MAX_EVENTS = 64
    MAX_DELAY = 0.05

    def __init__(self, queue) -> None:
        super().__init__(queue)
        self.pending: list[Any] = []
        self.first = 0.0

    def __call__(self, event: Any) -> None:
        if not self.pending:
            self.first = time.monotonic()
        self.pending.append(event)
        if len(self.pending) >= self.MAX_EVENTS:
            self.flush()

    def due(self) -> bool:
        return bool(self.pending) and time.monotonic() - self.first >= self.MAX_DELAY

    def flush(self) -> None:
        if not self.pending:
            return
        batch, self.pending = self.pending, []
        try:
            self.queue.put_nowait(batch)
        except Exception:  # queue full: never block the packet path
            self.dropped += len(batch)


def unbatch(item: Any) -> list[Any]:
    """The events in one queue item (a single event or a batch)."""
    return item if isinstance(item, list) else [item]
