"""Test helpers: a stand-in Flow, packet factories and a mini pipeline that
runs captures through TcpReassembler and AppLayer (decode via dpkt, so these
tests do not depend on ips.decode/ips.flow while those are being written)."""
from __future__ import annotations

import socket
from pathlib import Path

import dpkt

from ips.applayer import AppLayer, Tx
from ips.config import Config
from ips.packet import PROTO_TCP, PROTO_UDP, TH_ACK, TH_SYN, Packet
from ips.stream import TcpReassembler

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
PCAPS = DATA / "pcaps"


class FakeFlow:
    """The slots of ips.flow.Flow this stage uses."""

    __slots__ = ("proto", "client_ip", "client_port", "server_ip", "server_port",
                 "established", "midstream", "app_proto", "app", "stream", "tcp_state", "state")

    def __init__(self, proto=PROTO_TCP, client_ip="192.0.2.10", client_port=40000,
                 server_ip="198.51.100.1", server_port=80):
        self.proto = proto
        self.client_ip, self.client_port = client_ip, client_port
        self.server_ip, self.server_port = server_ip, server_port
        self.established = False
        self.midstream = False
        self.app_proto = None
        self.app = None
        self.stream = None
        self.tcp_state = None
        self.state = None


def tcp_packet(*, seq: int, payload: bytes = b"", flags: int = TH_ACK, ack: int = 0,
               to_server: bool = True) -> Packet:
    packet = Packet(b"")
    packet.proto = PROTO_TCP
    packet.seq, packet.ack, packet.tcp_flags = seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, flags
    packet.payload = payload
    packet.to_server = to_server
    return packet


def handshake(reassembler: TcpReassembler, flow, client_isn=1000, server_isn=5000) -> None:
    reassembler.on_packet(flow, tcp_packet(seq=client_isn, flags=TH_SYN))
    reassembler.on_packet(flow, tcp_packet(seq=server_isn, flags=TH_SYN | TH_ACK,
                                           ack=client_isn + 1, to_server=False))
    reassembler.on_packet(flow, tcp_packet(seq=client_isn + 1, ack=server_isn + 1))


def _ip_text(raw: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET6 if len(raw) == 16 else socket.AF_INET, raw)


def read_frames(path: Path):
    with open(path, "rb") as handle:
        magic = handle.read(4)
        handle.seek(0)
        reader = dpkt.pcapng.Reader(handle) if magic == b"\x0a\x0d\x0d\x0a" else dpkt.pcap.Reader(handle)
        linktype = reader.datalink()
        for ts, frame in reader:
            yield ts, frame, linktype


def decode(frame: bytes, linktype: int):
    try:
        if linktype == 1:
            ether = dpkt.ethernet.Ethernet(frame)
            ip = ether.data
        elif linktype == 113:
            ip = dpkt.sll.SLL(frame).data
        elif linktype in (0, 108, 101, 228, 229):
            raw = frame[4:] if linktype in (0, 108) else frame
            ip = dpkt.ip.IP(raw) if raw[0] >> 4 == 4 else dpkt.ip6.IP6(raw)
        else:
            return None
    except (dpkt.UnpackError, IndexError):
        return None
    if not isinstance(ip, (dpkt.ip.IP, dpkt.ip6.IP6)):
        return None
    return ip


class Pipeline:
    """capture -> (dpkt decode) -> flow stand-in -> stream -> applayer."""

    def __init__(self, config: Config | None = None):
        self.config = config or Config()
        self.reassembler = TcpReassembler(self.config)
        self.applayer = AppLayer(self.config)
        self.flows: dict = {}
        self.txs: list[tuple[FakeFlow, Tx]] = []
        self.anomalies: list[str] = []

    def run(self, path: Path) -> "Pipeline":
        for _ts, frame, linktype in read_frames(path):
            ip = decode(frame, linktype)
            if ip is None:
                continue
            l4 = ip.data
            if isinstance(l4, dpkt.tcp.TCP):
                proto = PROTO_TCP
            elif isinstance(l4, dpkt.udp.UDP):
                proto = PROTO_UDP
            else:
                continue
            src, dst = _ip_text(ip.src), _ip_text(ip.dst)
            key = (proto, src, l4.sport, dst, l4.dport)
            reverse = (proto, dst, l4.dport, src, l4.sport)
            if key in self.flows:
                flow, to_server = self.flows[key], True
            elif reverse in self.flows:
                flow, to_server = self.flows[reverse], False
            else:
                # SYN/ACK first: the sender is the server.
                if proto == PROTO_TCP and l4.flags & TH_SYN and l4.flags & TH_ACK:
                    flow = FakeFlow(proto, dst, l4.dport, src, l4.sport)
                    self.flows[reverse] = flow
                    to_server = False
                else:
                    flow = FakeFlow(proto, src, l4.sport, dst, l4.dport)
                    self.flows[key] = flow
                    to_server = True
            packet = Packet(frame)
            packet.proto = proto
            packet.to_server = to_server
            packet.payload = bytes(l4.data)
            if proto == PROTO_TCP:
                packet.seq, packet.ack, packet.tcp_flags = l4.seq, l4.ack, l4.flags
                chunk = self.reassembler.on_packet(flow, packet)
                if chunk is not None and (chunk.data or chunk.gap):
                    self._collect(flow, self.applayer.on_data(flow, packet, chunk.data, to_server, chunk.gap))
            elif packet.payload:
                self._collect(flow, self.applayer.on_data(flow, packet, packet.payload, to_server))
            if packet.anomalies:
                self.anomalies.extend(packet.anomalies)
        for flow in self.flows.values():
            self._collect(flow, self.applayer.on_flow_end(flow))
        return self

    def _collect(self, flow, txs):
        for tx in txs:
            self.txs.append((flow, tx))

    def records(self, app_proto: str) -> list[dict]:
        """Final record of each complete transaction, once per transaction."""
        seen, out = set(), []
        for _flow, tx in self.txs:
            if tx.app_proto == app_proto and tx.complete and tx.record is not None and id(tx) not in seen:
                seen.add(id(tx))
                out.append(tx.record)
        return out


def feed_all(parser, pieces):
    """Feed (to_server, bytes[, gap]) pieces; return every Tx returned."""
    out = []
    for piece in pieces:
        to_server, data, *rest = piece
        out.extend(parser.feed(data, to_server, bool(rest and rest[0])))
    return out


def payloads(path: Path, *, udp: bool | None = None):
    """(src_port, dst_port, payload) of each packet with a payload."""
    for _ts, frame, linktype in read_frames(path):
        ip = decode(frame, linktype)
        if ip is None:
            continue
        l4 = ip.data
        if not isinstance(l4, (dpkt.tcp.TCP, dpkt.udp.UDP)):
            continue
        if udp is not None and isinstance(l4, dpkt.udp.UDP) != udp:
            continue
        if len(l4.data):
            yield l4.sport, l4.dport, bytes(l4.data)
