"""Multi-day behaviour scenarios for the device profiler.

    python tests/scenarios/generate.py OUTDIR

writes OUTDIR/<scenario>/input.pcap and OUTDIR/<scenario>/expected.json for
every scenario in SCENARIOS. Each capture holds `DAYS` days of a small home
LAN behaving regularly, then one deviation on the last day:

* camera  (Hikvision OUI) 192.0.2.10: hourly upload to its cloud, DNS, NTP
* plug    (TP-Link OUI)   192.0.2.11: hourly heartbeat to its cloud, DNS, NTP
* thermostat (Nest OUI)   192.0.2.12: half-hourly reports, 07:00-23:00 only
* router  192.0.2.1: DHCP and DNS server, and the internet gateway's MAC

Only documentation addresses are used (LAN 192.0.2.0/24, internet
198.51.100.0/24 and 203.0.113.0/24). Traffic is sampled sparse (a few flows
per hour), so eight days is a few thousand packets.

The same flow list renders two ways: `flow_events()` builds the FlowEnd and
AppRecord events the worker would emit (to drive the profiler directly),
`write_pcap()` renders packets with scapy (to replay through the worker).
expected.json lists the (mac, kind) anomalies that must appear after
`detect_after` (the end of learning) and states that nothing may appear before.
"""
from __future__ import annotations

import json
import random
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ips import events  # noqa: E402

START = 1704067200.0            # 2024-01-01 00:00 UTC, a Monday
DAYS = 8
LEARNING_DAYS = 7
HOUR = 3600.0
DAY = 86400.0
DETECT_AFTER = START + LEARNING_DAYS * DAY

ROUTER = ("02:00:5e:00:00:01", "192.0.2.1")
CAMERA = ("44:47:cc:00:00:10", "192.0.2.10")
PLUG = ("d0:37:45:00:00:11", "192.0.2.11")
THERMOSTAT = ("18:b4:30:00:00:12", "192.0.2.12")
NEWCOMER = ("24:6f:28:00:00:13", "192.0.2.13")

NTP = "198.51.100.123"
CLOUDS = {
    CAMERA: ("cam.cloud.example", "198.51.100.10"),
    PLUG: ("plug.cloud.example", "203.0.113.20"),
    THERMOSTAT: ("thermo.cloud.example", "198.51.100.30"),
}
C2 = ("c2.bad.example", "198.51.100.66")


@dataclass
class FlowSpec:
    """One conversation, enough to render it as events or packets."""
    ts: float
    client: tuple[str, str]            # (mac, ip); mac of the router for internet hosts
    server: tuple[str, str]
    server_port: int
    proto: str = "TCP"
    up: int = 0                        # payload bytes client -> server
    down: int = 0                      # payload bytes server -> client
    answered: bool = True
    reset: bool = False                # TCP: answered with RST (closed port)
    client_port: int = 0
    app: tuple | None = None           # ("dns", name, ip) ("tls", sni) ("dhcp", {...}) ("telnet", user, pw)
    flow_id: int = 0


# ---------------------------------------------------------------------------

def _lookup(rng, ts, device, name, address):
    return FlowSpec(ts, device, ROUTER, 53, "UDP", up=30 + len(name), down=46 + len(name),
                    app=("dns", name, address))


def benign(rng: random.Random, days: int = DAYS) -> list[FlowSpec]:
    flows: list[FlowSpec] = []
    for device, hostname, vendor_class in ((CAMERA, "ipcam-livingroom", "udhcp 1.24.2"),
                                           (PLUG, "HS110", "udhcp 1.19.4"),
                                           (THERMOSTAT, "Nest-Thermostat", "dhcpcd-6.8.2")):
        flows.append(FlowSpec(START + 60 + rng.random() * 60, (device[0], "0.0.0.0"),
                              ("ff:ff:ff:ff:ff:ff", "255.255.255.255"), 67, "UDP",
                              up=300, answered=False, client_port=68,
                              app=("dhcp", {"hostname": hostname, "vendor_class": vendor_class,
                                            "params": "1,3,6,12,15,28,42", "ip": device[1]})))
    for day in range(days):
        for hour in range(24):
            base = START + day * DAY + hour * HOUR
            # camera: one clip upload per hour, a lookup first
            name, address = CLOUDS[CAMERA]
            at = base + 300 + rng.random() * 2400
            if hour % 3 == 0:
                flows.append(_lookup(rng, at - 1, CAMERA, name, address))
            flows.append(FlowSpec(at, CAMERA, ("", address), 443, up=rng.randint(5_000, 8_000),
                                  down=rng.randint(600, 1200), app=("tls", name)))
            # plug: heartbeat every hour
            name, address = CLOUDS[PLUG]
            at = base + 600 + rng.random() * 2400
            if hour % 4 == 0:
                flows.append(_lookup(rng, at - 1, PLUG, name, address))
            flows.append(FlowSpec(at, PLUG, ("", address), 443, up=rng.randint(400, 700),
                                  down=rng.randint(300, 500), app=("tls", name)))
            # thermostat: reports once an hour during the day only
            if 7 <= hour < 23:
                name, address = CLOUDS[THERMOSTAT]
                for half in (0,):
                    at = base + half + 120 + rng.random() * 2400
                    if hour % 4 == 3:
                        flows.append(_lookup(rng, at - 1, THERMOSTAT, name, address))
                    flows.append(FlowSpec(at, THERMOSTAT, ("", address), 443,
                                          up=rng.randint(900, 1500), down=rng.randint(400, 900),
                                          app=("tls", name)))
            # NTP: camera and plug every 6 hours, thermostat at 07:00
            if hour % 6 == 3:
                for device in (CAMERA, PLUG):
                    flows.append(FlowSpec(base + 1000 + rng.random() * 600, device, ("", NTP), 123,
                                          "UDP", up=48, down=48, client_port=123))
            if hour == 7:
                flows.append(FlowSpec(base + 30, THERMOSTAT, ("", NTP), 123, "UDP",
                                      up=48, down=48, client_port=123))
    return flows


# --- deviations on the last day -------------------------------------------

def new_destination_night(rng, last):
    return [FlowSpec(last + 3 * HOUR + 600, CAMERA, ("", "203.0.113.50"), 443,
                     up=3_000, down=2_000)]


def exfil_volume(rng, last):
    # 50x its usual hourly upload, to its usual cloud, at night.
    name, address = CLOUDS[CAMERA]
    return [FlowSpec(last + 3 * HOUR + 120 + i * 60, CAMERA, ("", address), 443,
                     up=50 * 6_500 // 10, down=2_000, app=("tls", name)) for i in range(10)]


def telnet_scan(rng, last):
    flows = []
    at = last + 14 * HOUR
    targets = [f"192.0.2.{n}" for n in range(20, 45)] + [f"203.0.113.{n}" for n in range(100, 130)]
    for i, target in enumerate(targets):
        # LAN addresses nobody uses stay silent; a few internet hosts answer
        # (one accepts, some refuse with RST), as on a real sweep.
        internet = target.startswith("203.")
        flows.append(FlowSpec(at + i * 2.0, PLUG, ("", target), 23,
                              answered=internet and i % 7 == 0,
                              reset=internet and i % 3 == 0 and i % 7 != 0))
    return flows


def telnet_bruteforce(rng, last):
    attacker = (ROUTER[0], "203.0.113.66")
    return [FlowSpec(last + 11 * HOUR + i * 15, attacker, CAMERA, 23, up=40, down=60,
                     app=("telnet", "root", password))
            for i, password in enumerate(["xc3511", "vizxv", "admin", "888888", "xmhdipc",
                                          "default", "juantech", "123456", "54321", "support",
                                          "root", "12345", "pass", "user", "1111", "smcadmin"])]


def known_bad(rng, last):
    name, address = C2
    return [_lookup(rng, last + 15 * HOUR, THERMOSTAT, name, address),
            FlowSpec(last + 15 * HOUR + 1, THERMOSTAT, ("", address), 443, up=2_000, down=4_000)]


def new_port(rng, last):
    name, address = CLOUDS[THERMOSTAT]
    return [FlowSpec(last + 12 * HOUR + 900, THERMOSTAT, ("", address), 8883, up=1_200, down=800)]


def unusual_time(rng, last):
    name, address = CLOUDS[THERMOSTAT]
    return [FlowSpec(last + 2 * HOUR + 1800, THERMOSTAT, ("", address), 443, up=1_200, down=600,
                     app=("tls", name))]


def new_device(rng, last):
    return [FlowSpec(last + 10 * HOUR, (NEWCOMER[0], "0.0.0.0"),
                     ("ff:ff:ff:ff:ff:ff", "255.255.255.255"), 67, "UDP", up=300,
                     answered=False, client_port=68,
                     app=("dhcp", {"hostname": "ESP_0A1B2C", "vendor_class": "",
                                   "params": "1,3,28,6,15", "ip": NEWCOMER[1]})),
            _lookup(rng, last + 10 * HOUR + 5, NEWCOMER, "a1.tuya.example", "203.0.113.77"),
            FlowSpec(last + 10 * HOUR + 6, NEWCOMER, ("", "203.0.113.77"), 443, up=900,
                     down=700, app=("tls", "a1.tuya.example"))]


def nothing(rng, last):
    return []


SCENARIOS = {
    "new_destination_night": (new_destination_night, [(CAMERA, "new_destination")],
                              "the camera contacts an unknown internet host at 03:10"),
    "exfil_volume": (exfil_volume, [(CAMERA, "unusual_volume")],
                     "the camera uploads 50x its usual hourly volume between 03:00 and 04:00"),
    "telnet_scan": (telnet_scan, [(PLUG, "scan"), (PLUG, "new_port"), (PLUG, "new_destination")],
                    "the plug sweeps TCP/23 on the LAN and the internet (Mirai-style)"),
    "telnet_bruteforce": (telnet_bruteforce, [(CAMERA, "brute_force")],
                          "an internet host guesses the camera's telnet password"),
    "known_bad": (known_bad, [(THERMOSTAT, "known_bad_destination")],
                  "the thermostat resolves and contacts the lab C2 198.51.100.66"),
    "new_port": (new_port, [(THERMOSTAT, "new_port")],
                 "the thermostat talks to its own cloud on TCP/8883 instead of 443"),
    "unusual_time": (unusual_time, [(THERMOSTAT, "unusual_time")],
                     "the thermostat reports to its cloud at 02:30, it never does at night"),
    "new_device": (new_device, [(NEWCOMER, "new_device")],
                   "an unknown Espressif device joins the LAN on the last day"),
    "benign": (nothing, [], "no deviation: nothing may be reported"),
}


def build(name: str, seed: int = 5737, days: int = DAYS) -> tuple[list[FlowSpec], list[tuple[str, str]]]:
    """Flows of one scenario (time-ordered, with ids) and its expected (mac, kind).

    `days` shortens the capture (learning is then `days - 1` days): the
    deviation always happens on the last day."""
    deviation, expected, _ = SCENARIOS[name]
    normal = sorted(benign(random.Random(seed), days), key=lambda f: f.ts)
    last = START + (days - 1) * DAY
    flows = normal + sorted(deviation(random.Random(seed + 1), last), key=lambda f: f.ts)
    # Ids: benign flows first, so their rendering is the same in every scenario.
    for index, flow in enumerate(flows, 1):
        flow.flow_id = index
        if not flow.client_port:
            flow.client_port = 32768 + (index * 7919) % 28000
        if not flow.server[0] and not flow.server[1].startswith("192.0.2."):
            flow.server = (ROUTER[0], flow.server[1])   # internet hosts sit behind the router
    flows.sort(key=lambda f: f.ts)
    return flows, [(device[0], kind) for device, kind in expected]


# --- rendering as events -------------------------------------------------------

IP_HEADER = 20
TCP_HEADER = 32
UDP_HEADER = 8
MSS = 1400


def _segments(size: int) -> int:
    return (size + MSS - 1) // MSS if size else 0


def flow_events(flows: list[FlowSpec]) -> list[object]:
    """What the worker emits for these flows (AppRecords, then the FlowEnd)."""
    out: list[tuple[float, int, object]] = []
    for flow in flows:
        tcp = flow.proto == "TCP"
        header = IP_HEADER + (TCP_HEADER if tcp else UDP_HEADER)
        up_pkts, down_pkts = _segments(flow.up), _segments(flow.down)
        if tcp:
            if flow.answered and not flow.reset:
                pkts_up, pkts_down = 3 + up_pkts, 2 + down_pkts + (1 if up_pkts else 0)
                state, flags_tc = "closed", 0x13
            elif flow.reset:
                pkts_up, pkts_down, state, flags_tc = 1, 1, "closed", 0x14
            else:
                pkts_up, pkts_down, state, flags_tc = 1, 0, "new", 0
        else:
            pkts_up = max(1, up_pkts)
            pkts_down = max(1, down_pkts) if flow.answered else 0
            state, flags_tc = "established" if flow.answered else "new", 0
        bytes_up = pkts_up * header + (flow.up if not tcp or flow.answered and not flow.reset else 0)
        bytes_down = pkts_down * header + (flow.down if flow.answered and not flow.reset else 0)
        duration = 0.05 + 0.01 * (pkts_up + pkts_down)
        five = events.FiveTuple(flow.client[1], flow.client_port, flow.server[1],
                                flow.server_port, flow.proto)
        for record in _app_records(flow, five):
            out.append((record.timestamp, 0, record))
        out.append((flow.ts + duration + 1, 1, events.FlowEnd(
            timestamp=flow.ts + duration, flow_id=flow.flow_id, tuple=five,
            app_proto=flow.app[0] if flow.app else None, start=flow.ts,
            end=flow.ts + duration, pkts_toserver=pkts_up, pkts_toclient=pkts_down,
            bytes_toserver=bytes_up, bytes_toclient=bytes_down, state=state,
            reason="tcp_closed" if tcp and flow.answered else "timeout", alerted=False,
            tcp_flags_ts=0x1b if tcp else 0, tcp_flags_tc=flags_tc,
            client_mac=flow.client[0],
            server_mac=(flow.server[0] or None) if flow.answered or flow.reset else None)))
    out.sort(key=lambda item: (item[0], item[1]))
    return [item[2] for item in out]


def _app_records(flow: FlowSpec, five: events.FiveTuple) -> list[events.AppRecord]:
    if not flow.app:
        return []
    kind = flow.app[0]
    reverse = events.FiveTuple(five.dest_ip, five.dest_port, five.src_ip, five.src_port, five.proto)
    common = {"flow_id": flow.flow_id, "pcap_cnt": 0}
    if kind == "dns":
        _, name, address = flow.app
        query = {"version": 3, "type": "request", "id": flow.flow_id & 0xFFFF,
                 "queries": [{"rrname": name, "rrtype": "A"}]}
        answer = dict(query, type="response", qr=True, rcode="NOERROR",
                      answers=[{"rrname": name, "rrtype": "A", "ttl": 300, "rdata": address}])
        return [events.AppRecord(timestamp=flow.ts, tuple=five, app_proto="dns", fields=query,
                                 src_mac=flow.client[0], **common),
                events.AppRecord(timestamp=flow.ts + 0.01, tuple=reverse, app_proto="dns",
                                 fields=answer, tx_id=0, src_mac=flow.server[0], **common)]
    if kind == "tls":
        return [events.AppRecord(timestamp=flow.ts + 0.03, tuple=five, app_proto="tls",
                                 fields={"sni": flow.app[1], "version": "TLS 1.2"},
                                 src_mac=flow.client[0], **common)]
    if kind == "dhcp":
        options = flow.app[1]
        fields = {"type": "request", "client_mac": flow.client[0], "dhcp_type": "request",
                  "hostname": options["hostname"], "params": options["params"],
                  "requested_ip": options["ip"]}
        if options.get("vendor_class"):
            fields["vendor_class"] = options["vendor_class"]
        return [events.AppRecord(timestamp=flow.ts, tuple=five, app_proto="dhcp", fields=fields,
                                 src_mac=flow.client[0], **common)]
    if kind == "telnet":
        return [events.AppRecord(timestamp=flow.ts + 0.2, tuple=five, app_proto="telnet",
                                 fields={"login": flow.app[1], "password": flow.app[2],
                                         "result": "failed"},
                                 src_mac=flow.client[0], **common)]
    return []


# --- rendering as packets ------------------------------------------------------

def packets(flows: list[FlowSpec]):
    """scapy packets for these flows, time-ordered."""
    from scapy.layers.dhcp import BOOTP, DHCP
    from scapy.layers.dns import DNS, DNSQR, DNSRR
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.l2 import Ether

    out = []
    for flow in flows:
        cmac, cip = flow.client
        smac, sip = flow.server
        if not smac:  # a silent LAN address: the frame goes to a made-up unicast MAC
            smac = "02:00:5e:00:00:fe" if not sip.startswith("255.") else "ff:ff:ff:ff:ff:ff"
        up = Ether(src=cmac, dst=smac) / IP(src=cip, dst=sip, ttl=64)
        down = Ether(src=smac, dst=cmac) / IP(src=sip, dst=cip, ttl=60)
        t = flow.ts
        step = 0.01
        sport, dport = flow.client_port, flow.server_port

        def emit(frame, when):
            frame.time = when
            out.append(frame)

        if flow.proto == "UDP":
            if flow.app and flow.app[0] == "dns":
                _, name, address = flow.app
                emit(up / UDP(sport=sport, dport=dport) / DNS(id=flow.flow_id & 0xFFFF, rd=1,
                                                              qd=DNSQR(qname=name)), t)
                emit(down / UDP(sport=dport, dport=sport) / DNS(
                    id=flow.flow_id & 0xFFFF, qr=1, rd=1, ra=1, qd=DNSQR(qname=name),
                    an=DNSRR(rrname=name, type="A", ttl=300, rdata=address)), t + step)
            elif flow.app and flow.app[0] == "dhcp":
                options = flow.app[1]
                mac_bytes = bytes.fromhex(cmac.replace(":", ""))
                dhcp_options = [("message-type", "request"), ("requested_addr", options["ip"]),
                                ("hostname", options["hostname"].encode())]
                if options.get("vendor_class"):
                    dhcp_options.append(("vendor_class_id", options["vendor_class"].encode()))
                dhcp_options += [("param_req_list", [int(x) for x in options["params"].split(",")]),
                                 "end"]
                emit(up / UDP(sport=68, dport=67) / BOOTP(chaddr=mac_bytes + b"\0" * 10,
                                                          xid=flow.flow_id) / DHCP(options=dhcp_options), t)
            else:
                emit(up / UDP(sport=sport, dport=dport) / (b"\x23" + b"\0" * max(0, flow.up - 1)), t)
                if flow.answered:
                    emit(down / UDP(sport=dport, dport=sport) / (b"\x24" + b"\0" * max(0, flow.down - 1)),
                         t + step)
            continue

        client_seq, server_seq = 1000 + flow.flow_id * 7, 5000 + flow.flow_id * 13
        emit(up / TCP(sport=sport, dport=dport, flags="S", seq=client_seq), t)
        if not flow.answered and not flow.reset:
            continue
        if flow.reset:
            emit(down / TCP(sport=dport, dport=sport, flags="RA", seq=0, ack=client_seq + 1), t + step)
            continue
        emit(down / TCP(sport=dport, dport=sport, flags="SA", seq=server_seq, ack=client_seq + 1), t + step)
        client_seq += 1
        server_seq += 1
        t += 2 * step
        emit(up / TCP(sport=sport, dport=dport, flags="A", seq=client_seq, ack=server_seq), t)
        for sender, data in _conversation(flow):
            for offset in range(0, len(data), MSS):
                chunk = data[offset:offset + MSS]
                t += step
                if sender == "client":
                    emit(up / TCP(sport=sport, dport=dport, flags="PA", seq=client_seq, ack=server_seq) / chunk, t)
                    client_seq += len(chunk)
                else:
                    emit(down / TCP(sport=dport, dport=sport, flags="PA", seq=server_seq, ack=client_seq) / chunk, t)
                    server_seq += len(chunk)
        t += step
        emit(up / TCP(sport=sport, dport=dport, flags="FA", seq=client_seq, ack=server_seq), t)
        emit(down / TCP(sport=dport, dport=sport, flags="FA", seq=server_seq, ack=client_seq + 1), t + step)
        emit(up / TCP(sport=sport, dport=dport, flags="A", seq=client_seq + 1, ack=server_seq + 1), t + 2 * step)
    out.sort(key=lambda p: float(p.time))
    return out


def _conversation(flow: FlowSpec) -> list[tuple[str, bytes]]:
    """Application bytes in order: (sender, data)."""
    if flow.app and flow.app[0] == "telnet":
        _, user, password = flow.app
        return [("server", b"\r\nlogin: "), ("client", user.encode() + b"\r\n"),
                ("server", b"Password: "), ("client", password.encode() + b"\r\n"),
                ("server", b"\r\nLogin incorrect\r\n")]
    exchange = []
    up = flow.up
    if flow.app and flow.app[0] == "tls":
        hello = _client_hello(flow.app[1])
        exchange.append(("client", hello))
        up = max(0, up - len(hello))
        exchange.append(("server", _tls_records(min(flow.down, 1200), 0x16)))
        exchange.append(("client", _tls_records(up, 0x17)))
        return exchange
    exchange.append(("client", bytes(up)))
    if flow.down:
        exchange.append(("server", bytes(flow.down)))
    return exchange


def _tls_records(size: int, content_type: int) -> bytes:
    out = bytearray()
    while size > 5:
        body = min(size - 5, 16000)
        out += bytes([content_type, 3, 3]) + body.to_bytes(2, "big") + bytes(body)
        size -= body + 5
    return bytes(out)


def _client_hello(server_name: str) -> bytes:
    """A minimal TLS 1.2 ClientHello with an SNI extension."""
    name = server_name.encode()
    sni = (len(name) + 3).to_bytes(2, "big") + b"\x00" + len(name).to_bytes(2, "big") + name
    extensions = b"\x00\x00" + len(sni).to_bytes(2, "big") + sni
    extensions += b"\x00\x0a\x00\x04\x00\x02\x00\x17" + b"\x00\x0b\x00\x02\x01\x00"
    ciphers = b"\xc0\x2f\xc0\x2b\x00\x9c\x00\x2f"
    body = (b"\x03\x03" + bytes(32) + b"\x00" + len(ciphers).to_bytes(2, "big") + ciphers
            + b"\x01\x00" + len(extensions).to_bytes(2, "big") + extensions)
    handshake = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + len(handshake).to_bytes(2, "big") + handshake


_rendered: dict[tuple, tuple[float, bytes]] = {}


def frames(flows: list[FlowSpec]) -> list[tuple[float, bytes]]:
    """(time, bytes) of every packet; flows rendered before are reused
    (scapy is slow, and the benign days are the same in every scenario)."""
    out = []
    for flow in flows:
        key = (flow.flow_id, flow.ts, flow.client, flow.server, flow.server_port, flow.up, repr(flow.app))
        cached = _rendered.get(key)
        if cached is None:
            cached = [(float(p.time), bytes(p)) for p in packets([flow])]
            if len(_rendered) < 50_000:
                _rendered[key] = cached
        out.extend(cached)
    out.sort(key=lambda item: item[0])
    return out


def write_pcap(flows: list[FlowSpec], path: str | Path) -> int:
    """Classic pcap, microsecond timestamps, Ethernet link type."""
    import struct
    rendered = frames(flows)
    with open(path, "wb") as handle:
        handle.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for when, data in rendered:
            seconds = int(when)
            micros = int(round((when - seconds) * 1_000_000))
            if micros >= 1_000_000:
                seconds, micros = seconds + 1, micros - 1_000_000
            handle.write(struct.pack("<IIII", seconds, micros, len(data), len(data)))
            handle.write(data)
    return len(rendered)


def expected_json(name: str, expected: list[tuple[str, str]], days: int = DAYS) -> dict:
    return {"scenario": name, "description": SCENARIOS[name][2],
            "learning_days": days - 1, "days": days,
            "detect_after": START + (days - 1) * DAY,
            "home_net": "[192.0.2.0/24]",
            "expected": [{"mac": mac, "kind": kind} for mac, kind in expected],
            "before_detect_after": "no anomaly may be reported during the benign learning days"}


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    root = Path(argv[1])
    for name in SCENARIOS:
        flows, expected = build(name)
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        count = write_pcap(flows, folder / "input.pcap")
        (folder / "expected.json").write_text(json.dumps(expected_json(name, expected), indent=2) + "\n")
        print(f"{name}: {len(flows)} flows, {count} packets")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
