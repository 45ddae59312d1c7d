"""Application-layer stage: protocol detection and sans-IO parsers.

`AppLayer.on_data(flow, pkt, data, to_server, gap)` is the only entry point the
worker calls (plus `on_flow_end`). It

1. detects the protocol by content first (HTTP methods on any port, TLS record
   headers, MQTT CONNECT, telnet IAC negotiation, ...) and by well-known port
   where content is ambiguous (DNS, DHCP, Modbus, SSDP, mDNS), buffering the
   first bytes of each direction (bounded by DETECT_BUFFER_BYTES) until it can
   decide, then replays them into the parser;
2. feeds the protocol's parser, which returns the transactions the data
   updated (`Tx`), with the sticky buffers detection inspects and, once the
   transaction is complete, the EVE record to log.

Every parser follows the same sans-IO shape (see `template.py`):
`feed(data, to_server, gap) -> list[Tx]`, `finish() -> list[Tx]`, and a list
`events` of anomaly names ("http.request_header_too_large", ...) that this
stage moves onto the packet with `pkt.anomaly()`. Event names carry the
protocol prefix, so the worker can tell them from decoder/stream events.
A parser exception never escapes: it is recorded as "<proto>.parser_error"
and the flow's parsing stops.
"""
from __future__ import annotations

from dataclasses import dataclass, field

DETECT_BUFFER_BYTES = 4096
"""First bytes of a direction held while the protocol is still unknown."""

HTTP_METHODS = (
    b"GET", b"POST", b"HEAD", b"PUT", b"DELETE", b"OPTIONS", b"CONNECT", b"TRACE",
    b"PATCH", b"PROPFIND", b"PROPPATCH", b"MKCOL", b"COPY", b"MOVE", b"LOCK",
    b"UNLOCK", b"SUBSCRIBE", b"UNSUBSCRIBE", b"NOTIFY", b"M-SEARCH", b"SEARCH",
)

TELNET_PORTS = (23, 2323)
DNS_PORTS = (53,)
MDNS_PORT = 5353
DHCP_PORTS = (67, 68)
SSDP_PORT = 1900
MODBUS_PORT = 502
MQTT_PORTS = (1883, 8883)


@dataclass(slots=True)
class Tx:
    """One application transaction as detection and logging see it."""
    app_proto: str
    """"http", "dns", "tls", "dhcp", "mdns", "ssdp", "mqtt", "telnet", "modbus"."""
    tx_id: int
    """Index within the flow, increasing."""
    to_server: bool
    """Direction of the data that updated this transaction now."""
    buffers: dict[str, bytes | list[bytes]] = field(default_factory=dict)
    """Sticky-buffer name (Suricata's) -> value or list of values."""
    record: dict | None = None
    """EVE fields of the protocol once the transaction is complete, else None."""
    complete: bool = False
    """No more data will update this transaction."""


# -- protocol detection --------------------------------------------------------

UNKNOWN = "unknown"      # cannot decide yet: keep buffering
FAILED = "failed"        # no parser will ever take this flow


def _looks_like_http_request(data: bytes) -> str:
    for method in HTTP_METHODS:
        if data.startswith(method + b" "):
            return "http"
        if len(data) <= len(method) and method.startswith(data):
            return UNKNOWN
    return FAILED


def _looks_like_tls(data: bytes) -> str:
    if len(data) < 3:
        return UNKNOWN if data[:1] in (b"", b"\x16") and data[1:2] in (b"", b"\x03") else FAILED
    if data[0] == 0x16 and data[1] == 0x03 and data[2] <= 0x04:
        return "tls"
    return FAILED


def _looks_like_mqtt_connect(data: bytes) -> str:
    if not data:
        return UNKNOWN
    if data[0] != 0x10:
        return FAILED
    # remaining length (1..4 bytes varint) then protocol name "MQTT"/"MQIsdp"
    position = 1
    while position < len(data) and position <= 4 and data[position] & 0x80:
        position += 1
    position += 1
    name = data[position:position + 8]
    for expected in (b"\x00\x04MQTT", b"\x00\x06MQIsdp"):
        if name.startswith(expected):
            return "mqtt"
        if expected.startswith(name):
            return UNKNOWN
    return FAILED


def _looks_like_telnet(data: bytes) -> str:
    if len(data) < 2:
        return UNKNOWN if data[:1] in (b"", b"\xff") else FAILED
    if data[0] == 0xFF and 0xFA <= data[1] <= 0xFE:
        return "telnet"
    return FAILED


def _looks_like_modbus(data: bytes) -> str:
    if len(data) < 8:
        return UNKNOWN
    protocol_id = int.from_bytes(data[2:4], "big")
    length = int.from_bytes(data[4:6], "big")
    if protocol_id == 0 and 2 <= length <= 254 and data[7] != 0:
        return "modbus"
    return FAILED


def _looks_like_dns_tcp(data: bytes) -> str:
    if len(data) < 14:
        return UNKNOWN
    length = int.from_bytes(data[:2], "big")
    question_count = int.from_bytes(data[6:8], "big")
    if length >= 12 and 0 < question_count < 64:
        return "dns"
    return FAILED


def detect_tcp(data: bytes, to_server: bool, client_port: int, server_port: int) -> str:
    """Decide the protocol of a TCP flow from the first bytes of one side.

    Returns a protocol name, UNKNOWN (need more bytes) or FAILED (this side
    does not identify the protocol)."""
    outcomes = []
    if to_server:
        probes = [_looks_like_http_request, _looks_like_tls, _looks_like_mqtt_connect,
                  _looks_like_telnet]
        if server_port in DNS_PORTS:
            probes.append(_looks_like_dns_tcp)
        if server_port == MODBUS_PORT:
            probes.append(_looks_like_modbus)
    else:
        probes = [_looks_like_http_response, _looks_like_tls_server, _looks_like_telnet]
        if server_port == MODBUS_PORT:
            probes.append(_looks_like_modbus)
        if server_port in DNS_PORTS:
            probes.append(_looks_like_dns_tcp)
    for probe in probes:
        outcome = probe(data)
        if outcome not in (UNKNOWN, FAILED):
            return outcome
        outcomes.append(outcome)
    if server_port in TELNET_PORTS and data:
        # Telnet servers often start with a banner instead of negotiation.
        return "telnet"
    return UNKNOWN if UNKNOWN in outcomes else FAILED


def _looks_like_http_response(data: bytes) -> str:
    prefix = b"HTTP/1."
    if data.startswith(prefix):
        return "http"
    return UNKNOWN if prefix.startswith(data) else FAILED


def _looks_like_tls_server(data: bytes) -> str:
    # A server answers with a handshake (ServerHello) or an alert record.
    if len(data) >= 3 and data[0] in (0x15, 0x16) and data[1] == 0x03 and data[2] <= 0x04:
        return "tls"
    return _looks_like_tls(data)


def detect_udp(data: bytes, client_port: int, server_port: int) -> str | None:
    ports = (client_port, server_port)
    if MDNS_PORT in ports:
        return "mdns"
    if any(p in DNS_PORTS for p in ports):
        return "dns"
    if client_port in DHCP_PORTS and server_port in DHCP_PORTS:
        return "dhcp"
    if SSDP_PORT in ports or data.startswith((b"M-SEARCH * HTTP/1.", b"NOTIFY * HTTP/1.")):
        return "ssdp"
    return None


# -- the stage -----------------------------------------------------------------

def _parser_for(name: str, config, tcp: bool = False):
    # Imported lazily so that a broken optional parser cannot stop the stage.
    if name == "http":
        from ips.applayer.http import HttpParser
        return HttpParser(config)
    if name == "dns":
        from ips.applayer.dns import DnsParser
        return DnsParser(config, tcp=tcp)
    if name == "mdns":
        from ips.applayer.mdns import MdnsParser
        return MdnsParser(config)
    if name == "tls":
        from ips.applayer.tls import TlsParser
        return TlsParser(config)
    if name == "dhcp":
        from ips.applayer.dhcp import DhcpParser
        return DhcpParser(config)
    if name == "ssdp":
        from ips.applayer.ssdp import SsdpParser
        return SsdpParser(config)
    if name == "mqtt":
        from ips.applayer.mqtt import MqttParser
        return MqttParser(config)
    if name == "telnet":
        from ips.applayer.telnet import TelnetParser
        return TelnetParser(config)
    if name == "modbus":
        from ips.applayer.modbus import ModbusParser
        return ModbusParser(config)
    return None


class AppLayer:
    """Detects each flow's protocol and drives its parser. Per-flow state lives
    in `flow.app` (a dict this stage owns):

    * "parser": the protocol parser object, once detected;
    * "pending": {True: bytearray, False: bytearray} first bytes per direction
      while detecting (each <= DETECT_BUFFER_BYTES);
    * "failed": {True: bool, False: bool} a side that identified nothing;
    * "done": True when the flow will not be parsed (detection failed, error).
    """

    __slots__ = ("config",)

    def __init__(self, config) -> None:
        self.config = config

    def on_data(self, flow, pkt, data: bytes, to_server: bool, gap: bool = False) -> list[Tx]:
        try:
            return self._on_data(flow, pkt, data, to_server, gap)
        except Exception:  # noqa: BLE001 - one bad flow must not stop the worker
            state = self._state(flow)
            state["done"] = True
            state["parser"] = None
            if pkt is not None:
                pkt.anomaly(f"{flow.app_proto or 'applayer'}.parser_error")
            return []

    def inspection_done(self, flow) -> bool:
        """True when no parser will look at this flow's data again: detection
        gave up, the parser stopped (tunnel, error), or a TLS handshake is
        over and the rest is encrypted. The verdict stage may then bypass the
        flow (together with the stream depth and pending rule state)."""
        state = getattr(flow, "app", None)
        if not state:
            return False
        if state.get("done"):
            return True
        parser = state.get("parser")
        return bool(parser is not None and getattr(parser, "handshake_done", False))

    def on_flow_end(self, flow) -> list[Tx]:
        state = getattr(flow, "app", None)
        if not state or state.get("parser") is None:
            return []
        try:
            return state["parser"].finish()
        except Exception:  # noqa: BLE001
            return []

    # -- internals -------------------------------------------------------------

    @staticmethod
    def _state(flow) -> dict:
        state = getattr(flow, "app", None)
        if state is None:
            state = {}
            flow.app = state
        return state

    def _on_data(self, flow, pkt, data, to_server, gap) -> list[Tx]:
        state = self._state(flow)
        if state.get("done"):
            return []
        parser = state.get("parser")
        if parser is None:
            if not data:
                return []
            if flow.proto == 17:
                name = detect_udp(data, flow.client_port, flow.server_port)
                if name is None:
                    state["done"] = True
                    return []
                return self._start(flow, state, pkt, name, [(to_server, data)], gap)
            return self._detect_tcp(flow, state, pkt, data, to_server, gap)
        return self._feed(flow, state, pkt, data, to_server, gap)

    def _detect_tcp(self, flow, state, pkt, data, to_server, gap) -> list[Tx]:
        if gap:
            # Detection needs the start of the stream; after loss we give up
            # on this flow rather than guess from the middle of a message.
            state["done"] = True
            return []
        pending = state.setdefault("pending", {True: bytearray(), False: bytearray()})
        failed = state.setdefault("failed", {True: False, False: False})
        if failed[to_server]:
            # This side did not identify anything; keep its bytes bounded in
            # case the other side identifies the flow.
            room = DETECT_BUFFER_BYTES - len(pending[to_server])
            pending[to_server] += data[:max(0, room)]
            return []
        pending[to_server] += data[: DETECT_BUFFER_BYTES - len(pending[to_server])]
        outcome = detect_tcp(bytes(pending[to_server]), to_server,
                             flow.client_port, flow.server_port)
        if outcome == UNKNOWN and len(pending[to_server]) >= DETECT_BUFFER_BYTES:
            outcome = FAILED
        if outcome == FAILED:
            failed[to_server] = True
            if failed[not to_server] or len(pending[not to_server]) >= DETECT_BUFFER_BYTES:
                state["done"] = True
                state.pop("pending", None)
            return []
        if outcome == UNKNOWN:
            return []
        # Replay what both sides sent so far, the other side first only when
        # it came first logically (a server banner before the client speaks).
        order = [(not to_server, bytes(pending[not to_server])), (to_server, bytes(pending[to_server]))]
        state.pop("pending", None)
        return self._start(flow, state, pkt, outcome, [(d, b) for d, b in order if b], False)

    def _start(self, flow, state, pkt, name, chunks, gap) -> list[Tx]:
        parser = _parser_for(name, self.config, tcp=flow.proto == 6)
        if parser is None:
            state["done"] = True
            return []
        flow.app_proto = name
        state["parser"] = parser
        txs: list[Tx] = []
        for direction, chunk in chunks:
            txs.extend(self._feed(flow, state, pkt, chunk, direction, gap))
        return _unique(txs)

    def _feed(self, flow, state, pkt, data, to_server, gap) -> list[Tx]:
        parser = state["parser"]
        txs = parser.feed(data, to_server, gap)
        if parser.events:
            if pkt is not None:
                for event in parser.events:
                    pkt.anomaly(event)
            parser.events.clear()
        return txs


def _unique(txs: list[Tx]) -> list[Tx]:
    seen: set[int] = set()
    out = []
    for tx in txs:
        if id(tx) not in seen:
            seen.add(id(tx))
            out.append(tx)
    return out
