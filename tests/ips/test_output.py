import json

from ips import events
from ips.output import EveWriter, eve_timestamp, flow_record


def test_timestamp_format_matches_suricata():
    assert eve_timestamp(1255711456.083524) == "2009-10-16T16:44:16.083524+0000"


def test_flow_record_tcp_flags_as_suricata_prints_them():
    f = events.FlowEnd(timestamp=2.0, flow_id=7,
                       tuple=events.FiveTuple("192.0.2.3", 37010, "198.51.100.1", 80, "TCP"),
                       app_proto="http", start=1.0, end=2.0, pkts_toserver=8, pkts_toclient=5,
                       bytes_toserver=607, bytes_toclient=5453, state="closed",
                       reason="shutdown", alerted=True, tcp_flags_ts=0x1e, tcp_flags_tc=0x1a,
                       tcp_state="closed")
    r = flow_record(f)
    assert r["tcp"]["tcp_flags"] == "1e"
    assert r["tcp"]["tcp_flags_tc"] == "1a"
    assert r["tcp"]["syn"] and r["tcp"]["rst"] and "fin" not in r["tcp"]
    assert r["flow"]["alerted"] is True and r["event_type"] == "flow"


def test_writer_emits_one_json_object_per_line(tmp_path):
    w = EveWriter(tmp_path)
    w.stats(events.Stats(timestamp=1.0, counters={"decoder": {"pkts": 3}}))
    w.device_anomaly(events.DeviceAnomaly(timestamp=1.0, mac="02:00:00:00:00:10",
                                          ip="192.0.2.10", kind="new_destination",
                                          score=0.8, observed={"ip": "203.0.113.9"},
                                          baseline={}, explanation="The camera talked to a new host."))
    w.close()
    lines = (tmp_path / "eve.json").read_text().splitlines()
    recs = [json.loads(x) for x in lines]
    assert [r["event_type"] for r in recs] == ["stats", "device_anomaly"]
    assert recs[1]["anomaly"]["kind"] == "new_destination"
    assert recs[1]["device"]["mac"] == "02:00:00:00:00:10"
