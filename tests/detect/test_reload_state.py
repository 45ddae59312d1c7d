"""A live rule reload keeps thresholds and xbits (Suricata keeps them in its
host tables): an update must not give a brute-forcer a fresh budget."""
from __future__ import annotations

from ips.collector import Collector
from ips.config import Config
from ips.worker import Worker
from tests.detect.factories import alerting, engine, packet, sids

BRUTE_FORCE = ('alert tcp any any -> any 23 (msg:"telnet login burst"; content:"login"; '
               'threshold:type both, track by_src, count 5, seconds 60; sid:1;)\n'
               'alert tcp any any -> any 23 (msg:"first login"; content:"login"; '
               'threshold:type limit, track by_src, count 1, seconds 600; sid:2;)\n')
XBITS = ('alert tcp any any -> any 80 (content:"stage1"; xbits:set,seen,track ip_src,expire 300; '
         'noalert; sid:10;)\n'
         'alert tcp any any -> any 80 (content:"stage2"; xbits:isset,seen,track ip_src; sid:11;)\n')


def login(ts: float):
    return packet(b"login: root", dport=23, ts=ts)


def test_thresholds_count_on_across_a_reload():
    before, _ = engine(BRUTE_FORCE)
    fired = [alerting(before.inspect(login(float(i)), None, None, [])) for i in range(3)]
    assert fired == [[2], [], []]
    after, _ = engine(BRUTE_FORCE + 'alert tcp any any -> any 9 (content:"new"; sid:3;)\n')
    after.take_state(before)
    fired = [alerting(after.inspect(login(float(i)), None, None, [])) for i in range(3, 6)]
    # Without the carried state: [[2], [], []] again, and sid 1 only at the 5th after the reload.
    assert fired == [[], [1], []]


def test_xbits_survive_a_reload():
    before, report = engine(XBITS)
    assert report.loaded == 2 and not report.errors
    before.inspect(packet(b"stage1", ts=1.0), None, None, [])
    after, _ = engine(XBITS)
    after.take_state(before)
    assert sids(after.inspect(packet(b"stage2", ts=2.0), None, None, [])) == [11]
    fresh, _ = engine(XBITS)
    assert sids(fresh.inspect(packet(b"stage2", ts=2.0), None, None, [])) == []


def test_worker_swap_carries_the_state_over():
    first, _ = engine(BRUTE_FORCE)
    worker = Worker(Config(), first, Collector([]))
    first.inspect(login(1.0), None, None, [])
    second, _ = engine(BRUTE_FORCE)
    worker.swap_engine(second)
    assert worker.engine is second and second.thresholds is first.thresholds
    assert alerting(second.inspect(login(2.0), None, None, [])) == []   # sid 2's limit was used


def test_a_reload_does_not_mute_a_new_rule_on_an_open_transaction():
    from tests.detect.factories import FakeFlow, FakeTx
    old_rule = 'alert http any any -> any any (http.uri; content:"/cgi"; sid:20;)\n'
    new_rule = 'drop http any any -> any any (http.uri; content:"/cgi-bin/sh"; sid:21;)\n'
    flow = FakeFlow(app_proto="http")
    request = FakeTx("http", 0, True, {"http.uri": b"/cgi-bin/sh"})
    before, _ = engine(old_rule)
    assert sids(before.inspect(packet(b"GET"), flow, None, [request])) == [20]
    after, report = engine(new_rule + old_rule)     # sid 21 now has the index sid 20 had
    assert report.loaded == 2
    after.take_state(before)
    assert 21 in sids(after.inspect(packet(b"GET"), flow, None, [request]))
