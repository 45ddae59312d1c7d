import json

from ips import events
from ips.output import EveWriter, eve_ip, eve_timestamp, flow_json, flow_record


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


def test_flow_json_is_the_generic_encoding_of_flow_record():
    from itertools import product

    from ips.output import _encode
    tuples = (events.FiveTuple("192.0.2.3", 37010, "198.51.100.1", 80, "TCP"),
              events.FiveTuple("2001:db8::1", 0, "2001:db8::2", 0, "IPv6-ICMP"),
              events.FiveTuple('a"b\\c\u00e9', 1, "x\ny", 2, "UDP"))
    for five, app_proto, tcp_state, flags, alerted, start, written in product(
            tuples, (None, "", "http", 'odd"proto'), (None, "closed", "syn_sent"),
            ((0, 0), (0x1e, 0x1a), (0xff, 0x00), (0x02, 0x12)), (True, False),
            (1255711456.083524, 1.9999996, 0.0), (3.5, 7.25)):
        f = events.FlowEnd(timestamp=start + written, flow_id=(1 << 52) | 12345, tuple=five,
                           app_proto=app_proto, start=start, end=start + 3.5,
                           pkts_toserver=8, pkts_toclient=5, bytes_toserver=607,
                           bytes_toclient=5453, state="closed", reason="timeout",
                           alerted=alerted, action="pass", tcp_flags_ts=flags[0],
                           tcp_flags_tc=flags[1], tcp_state=tcp_state)
        assert flow_json(f) == _encode(flow_record(f))
    # Unexpected types take the generic path and still give the same text.
    odd = events.FlowEnd(timestamp=2.0, flow_id=7, tuple=events.FiveTuple(None, 1.5, "b", 2, "TCP"),
                         app_proto="http", start=1.0, end=2.0, pkts_toserver=1, pkts_toclient=0,
                         bytes_toserver=60, bytes_toclient=0, state="new", reason="shutdown",
                         alerted=1, tcp_state="none")
    assert flow_json(odd) == _encode(flow_record(odd))
    assert json.loads(flow_json(odd))["flow"]["alerted"] == 1


def test_timestamp_cache_gives_the_formatted_second_of_each_time():
    from datetime import datetime, timezone
    for ts in (0.0, 1.5, 1255711456.083524, 1255711455.9999996, 1700000000.25, 0.0):
        second, fraction = divmod(int(round(ts * 1_000_000)), 1_000_000)
        expected = datetime.fromtimestamp(second, tz=timezone.utc).strftime(
            "%Y-%m-%dT%H:%M:%S") + f".{fraction:06d}+0000"
        assert eve_timestamp(ts) == expected


def test_anomaly_json_is_the_generic_encoding_of_anomaly_record():
    from itertools import product

    from ips.output import _encode, anomaly_json, anomaly_record
    for flow_id, pcap_cnt, addresses, proto, layer, event in product(
            (0, (1 << 52) | 99), (0, 17), (None, ("192.0.2.1", 1, "192.0.2.2", 2),
                                          ("2001:db8::1", 0, None, 0), ('q"\\\u00e9', 3, "b", 4)),
            (None, "", "TCP", "IPv6-ICMP"), (None, "", "http"),
            ("stream.ack_unseen_data", 'odd"event\n')):
        src_ip, src_port, dest_ip, dest_port = addresses or (None, 0, None, 0)
        a = events.Anomaly(timestamp=1255711456.083524, pcap_cnt=pcap_cnt, type="stream",
                           event=event, src_ip=src_ip, dest_ip=dest_ip, src_port=src_port,
                           dest_port=dest_port, proto=proto, flow_id=flow_id, layer=layer)
        assert anomaly_json(a) == _encode(anomaly_record(a))


def test_app_json_is_the_generic_encoding_of_app_record():
    from itertools import product

    from ips.output import _encode, app_json, app_record
    fields = ({}, {"hostname": "cam.local", "url": '/a"b\\c\u00e9', "status": 200,
                   "nested": {"list": [1, 2.5, None, True], "bytes": b"x"}},
              {"queries": [{"rrname": "example.com", "rrtype": "A"}], "ttl": 3.0})
    for app_proto, pcap_cnt, tx_id, five, value in product(
            ("http", "dns", "proto", "odd\"proto"), (0, 42), (0, 7, None),
            (events.FiveTuple("192.0.2.3", 37010, "198.51.100.1", 80, "TCP"),
             events.FiveTuple("2001:db8::1", 5353, "ff02::fb", 5353, "UDP"),
             events.FiveTuple(None, 1, "b", 2, "UDP")), fields):
        r = events.AppRecord(timestamp=1255711456.083524, flow_id=(1 << 52) | 5, pcap_cnt=pcap_cnt,
                             tuple=five, app_proto=app_proto, fields=value, tx_id=tx_id,
                             src_mac="02:00:00:00:00:01")
        assert app_json(r) == _encode(app_record(r))


def test_ipv6_addresses_are_written_in_full_as_suricata_does():
    # Suricata's EVE and fast.log print every IPv6 group as four hex digits;
    # suricata-verify cases match src_ip against that form.
    assert eve_ip("2001:db8::1") == "2001:0db8:0000:0000:0000:0000:0000:0001"
    assert eve_ip("192.0.2.1") == "192.0.2.1" and eve_ip(None) is None
    assert eve_ip("not:an:address") == "not:an:address"
    f = events.FlowEnd(timestamp=2.0, flow_id=7, tuple=events.FiveTuple("2001:db8::1", 0, "ff02::fb", 0,
                                                                         "UDP"),
                       app_proto=None, start=1.0, end=2.0, pkts_toserver=1, pkts_toclient=0,
                       bytes_toserver=60, bytes_toclient=0, state="new", reason="timeout",
                       alerted=False, tcp_state=None)
    record = json.loads(flow_json(f))
    assert (record["src_ip"], record["dest_ip"]) == (
        "2001:0db8:0000:0000:0000:0000:0000:0001", "ff02:0000:0000:0000:0000:0000:0000:00fb")


def test_vlan_ids_are_logged_as_suricata_does():
    from ips.output import _encode
    f = events.FlowEnd(timestamp=2.0, flow_id=7, tuple=events.FiveTuple("192.0.2.1", 1, "192.0.2.2", 2,
                                                                         "TCP"),
                       app_proto=None, start=1.0, end=2.0, pkts_toserver=1, pkts_toclient=0,
                       bytes_toserver=60, bytes_toclient=0, state="new", reason="timeout",
                       alerted=False, tcp_state="none", vlan=(100, 200))
    assert flow_json(f) == _encode(flow_record(f))
    assert json.loads(flow_json(f))["vlan"] == [100, 200]
    assert "vlan" not in json.loads(flow_json(events.FlowEnd(**{**{k: getattr(f, k) for k in f.__slots__},
                                                              "vlan": ()})))
