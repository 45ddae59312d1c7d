"""One-line factories for events (mitmproxy's tflow style)."""
from __future__ import annotations

from ips import events

T0 = 1704067200.0  # Monday 2024-01-01 00:00 UTC


def flow(src="192.0.2.10", dst="198.51.100.10", dport=443, *, ts=T0, proto="TCP",
         up=1000, down=1000, pkts_up=5, pkts_down=5, client_mac="44:47:cc:00:00:10",
         server_mac="02:00:5e:00:00:01", state="closed", sport=40000, duration=1.0,
         flags_tc=0x13, flow_id=1):
    return events.FlowEnd(
        timestamp=ts + duration, flow_id=flow_id,
        tuple=events.FiveTuple(src, sport, dst, dport, proto), app_proto=None,
        start=ts, end=ts + duration, pkts_toserver=pkts_up, pkts_toclient=pkts_down,
        bytes_toserver=up, bytes_toclient=down, state=state, reason="tcp_closed",
        alerted=False, tcp_flags_ts=0x1b, tcp_flags_tc=flags_tc,
        client_mac=client_mac, server_mac=server_mac)


def record(app_proto, fields, *, src="192.0.2.10", dst="198.51.100.10", sport=40000,
           dport=443, ts=T0, src_mac="44:47:cc:00:00:10", proto="UDP"):
    return events.AppRecord(timestamp=ts, flow_id=1, pcap_cnt=0,
                            tuple=events.FiveTuple(src, sport, dst, dport, proto),
                            app_proto=app_proto, fields=fields, src_mac=src_mac)
