"""Copy-me test for a rule keyword (see docs/adding-a-rule-keyword.md).

It exercises `ttl` the way a new keyword should be tested: parsed from rule
text, inspected by the engine against a real decoded packet, boundary
values on both sides, and a bad value reported without stopping the rest
of the file from loading.
"""
from scapy.all import IP, UDP, Ether, Raw

from ips.config import Config
from ips.decode import decode
from ips.detect import DetectEngine
from ips.packet import Packet


def _packet(ttl: int) -> Packet:
    frame = (Ether(src="02:00:00:00:00:0a", dst="02:00:00:00:00:14")
             / IP(src="192.0.2.10", dst="198.51.100.7", ttl=ttl) / UDP(sport=5000, dport=6000) / Raw(b"hello"))
    pkt = Packet(bytes(frame), ts=1.0)
    assert decode(pkt, False)
    return pkt


def _engine(tmp_path, *rules: str):
    path = tmp_path / "k.rules"
    path.write_text("\n".join(rules) + "\n")
    return DetectEngine.load([str(path)], Config())


def _sids(engine, pkt) -> list[int]:
    return [m.rule.sid for m in engine.inspect(pkt, None, None, ())]


def test_keyword_matches_and_respects_boundaries(tmp_path):
    engine, report = _engine(
        tmp_path,
        'alert udp any any -> any any (msg:"low ttl"; ttl:<5; sid:1;)',
        'alert udp any any -> any any (msg:"ttl range"; ttl:10-20; sid:2;)',
        'alert udp any any -> any any (msg:"ttl exact"; ttl:64; sid:3;)')
    assert report.loaded == 3
    assert _sids(engine, _packet(4)) == [1]
    assert _sids(engine, _packet(5)) == []          # '<5' excludes 5
    assert _sids(engine, _packet(15)) == [2]
    assert _sids(engine, _packet(64)) == [3]


def test_bad_value_is_reported_with_line_and_keyword_others_load(tmp_path):
    engine, report = _engine(
        tmp_path,
        'alert udp any any -> any any (msg:"ok"; ttl:64; sid:1;)',
        'alert udp any any -> any any (msg:"bad"; ttl:sixty; sid:2;)')
    assert report.loaded == 1
    (file, line, sid, reason, keyword), = report.errors + report.skipped
    assert (line, sid, keyword) == (2, 2, "ttl")
    assert _sids(engine, _packet(64)) == [1]
