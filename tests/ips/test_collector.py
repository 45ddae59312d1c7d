from ips import events
from ips.collector import Collector


def _alert(**kw):
    base = dict(timestamp=1.0, flow_id=1, pcap_cnt=1, src_ip="192.0.2.1", src_port=1,
                dest_ip="198.51.100.1", dest_port=80, proto="TCP", app_proto=None,
                action="allowed", gid=1, signature_id=1, rev=1, signature="x",
                category="c", severity=2)
    base.update(kw)
    return events.Alert(**base)


class Recorder:
    def __init__(self):
        self.seen = []

    def alert(self, a):
        self.seen.append(a)

    def device_anomaly(self, a):
        self.seen.append(a)


class Broken:
    def alert(self, a):
        raise RuntimeError("boom")


class Deriver:
    def alert(self, a):
        return [events.DeviceAnomaly(timestamp=a.timestamp, mac="02:00:00:00:00:01", ip=a.src_ip,
                                     kind="scan", score=0.9, observed={}, baseline={},
                                     explanation="x")]


def test_broken_consumer_does_not_stop_others():
    rec = Recorder()
    c = Collector([Broken(), rec])
    c.emit(_alert())
    assert len(rec.seen) == 1
    assert c.errors == {"Broken.alert": 1}


def test_derived_events_reach_every_consumer():
    rec = Recorder()
    c = Collector([Deriver(), rec])
    c.emit(_alert())
    kinds = [type(e).__name__ for e in rec.seen]
    assert kinds == ["Alert", "DeviceAnomaly"]


def test_rejects_non_events():
    import pytest
    with pytest.raises(TypeError):
        Collector([]).emit(object())


class Summariser:
    """Derives an event at the end of input, like the profiler's summaries."""

    def done(self):
        return [events.DeviceAnomaly(timestamp=9.0, mac="02:00:00:00:00:01", ip=None,
                                     kind="scan", score=0.9, observed={}, baseline={},
                                     explanation="summary")]


def test_events_derived_at_the_end_reach_outputs_before_they_close(tmp_path):
    import json
    from ips.output import EveWriter
    writer = EveWriter(tmp_path)
    collector = Collector([writer, Summariser()])   # the writer comes first
    collector.done()
    assert collector.errors == {}
    kinds = [json.loads(line)["event_type"] for line in (tmp_path / "eve.json").read_text().splitlines()]
    assert kinds == ["device_anomaly"]
    assert writer._eve.closed


def test_batching_sink_puts_one_list_and_flushes_on_time_count_and_demand():
    import queue as queue_module

    from ips.collector import BatchingQueueSink, unbatch

    channel = queue_module.Queue()
    sink = BatchingQueueSink(channel)
    sink("a")
    sink("b")
    assert channel.empty() and not sink.due()          # held until flushed or due
    sink.first -= sink.MAX_DELAY
    assert sink.due()
    sink.flush()
    assert unbatch(channel.get_nowait()) == ["a", "b"] and not sink.pending
    for i in range(sink.MAX_EVENTS):
        sink(i)
    assert unbatch(channel.get_nowait()) == list(range(sink.MAX_EVENTS))   # full: sent at once
    assert unbatch("single") == ["single"]
    full = queue_module.Queue(maxsize=1)
    full.put("x")
    lossy = BatchingQueueSink(full)
    lossy("y")
    lossy("z")
    lossy.flush()                                   # never blocks the packet path
    assert lossy.dropped == 2 and not lossy.pending


def test_every_event_crosses_the_queue_pickled_unchanged():
    import dataclasses
    import pickle

    from ips import conntrack, events

    five = events.FiveTuple("192.0.2.10", 40000, "203.0.113.10", 80, "TCP")
    samples = [five, events.Stats(timestamp=1.0, counters={"a": {"b": 1}})]
    for cls in (events.Alert, events.FlowEnd, events.Anomaly, events.AppRecord,
                events.DeviceAnomaly, conntrack.ConntrackEntry, conntrack.BypassNote,
                conntrack.ListenerState, conntrack.ConntrackEnd):
        values = {}
        for f in dataclasses.fields(cls):
            if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING:
                continue
            values[f.name] = five if f.name == "tuple" else 1
        samples.append(cls(**values))
    for event in samples:
        copy = pickle.loads(pickle.dumps(event, pickle.HIGHEST_PROTOCOL))
        assert copy == event and type(copy) is type(event)
