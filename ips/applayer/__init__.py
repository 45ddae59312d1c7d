"""Application-layer stage: protocol detection and sans-IO parsers.

Entry points the worker calls: `on_stream(flow, pkt, chunk)` for TCP (what
`TcpReassembler.on_packet` returned, possibly None), `on_data(flow, pkt, data,
to_server, gap)` for UDP, and at flow end `on_flow_end(flow, releases)` then
`pending_txs(flow, to_server)` for the last inspection. TCP data reaches the
parsers when the stream releases it (`Chunk.app`: on the peer's ACK in IDS
mode, at once inline); a transaction updated by a packet of the other
direction is offered to detection on the next packet of its own direction,
seen from that direction (`Tx.view`), as Suricata inspects it. The stage

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

import importlib
from dataclasses import dataclass, field

_NO_TXS: list = []   # shared empty result: never mutated by callers

MAX_DEFERRED_TXS = 64
"""Transactions per direction waiting for a packet of their direction."""

DETECT_BUFFER_BYTES = 4096
"""First bytes of a direction held while the protocol is still unknown."""

HTTP_METHODS = (
    b"GET", b"POST", b"HEAD", b"PUT", b"DELETE", b"OPTIONS", b"CONNECT", b"TRACE",
    b"PATCH", b"PROPFIND", b"PROPPATCH", b"MKCOL", b"COPY", b"MOVE", b"LOCK",
    b"UNLOCK", b"SUBSCRIBE", b"UNSUBSCRIBE", b"NOTIFY", b"M-SEARCH", b"SEARCH",
    b"PRI",     # the cleartext HTTP/2 preface, "PRI * HTTP/2.0": flagged by the HTTP parser
)

TELNET_PORTS = (23, 2323)
DNS_PORTS = (53,)
MDNS_PORT = 5353
DHCP_PORTS = (67, 68)
SSDP_PORT = 1900
MODBUS_PORT = 502
MQTT_PORTS = (1883, 8883)
FTP_PORTS = (21,)
SMTP_PORTS = (25, 465, 587, 2525)


@dataclass(slots=True)
class Tx:
    """One application transaction as detection and logging see it."""
    app_proto: str
    """"http", "dns", "tls", "dhcp", "mdns", "ssdp", "mqtt", "telnet", "modbus", "ftp-data"."""
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
    logged: bool = False
    """The complete record was emitted (set by the consumer that logs it;
    a tx can be offered to detection in both directions after completion)."""
    events: tuple = ()
    """App-layer event names raised on this transaction (`app-layer-event`
    matches them; `ips.event_names.APPLAYER_EVENTS`). The parser also lists
    them in its `events`, which become the packet's anomaly records."""

    def partial_record(self) -> dict | None:
        """The EVE record when complete, else what is known so far (for an
        alert on an incomplete transaction: Suricata logs the tx's current
        state, e.g. the status of a response whose body is still arriving)."""
        if self.record is not None:
            return self.record
        try:
            return self.snapshot()
        except Exception:  # noqa: BLE001 - logging must not fail on a half-parsed tx
            return None

    # Parser hooks, overridden by a parser's own Tx subclass (a subclass, not
    # callables stored on the tx: a closure over the parser's state would
    # make a reference cycle per transaction, which only the cyclic GC frees).
    def snapshot(self) -> dict | None:
        """The EVE fields known so far of an incomplete transaction."""
        return None

    def view(self, to_server: bool) -> dict | None:
        """The buffers as seen from one direction, for parsers whose buffer
        names exist on both sides (http.header); None: `buffers` as is."""
        return None


# -- protocol detection --------------------------------------------------------

UNKNOWN = "unknown"      # cannot decide yet: keep buffering
FAILED = "failed"        # no parser will ever take this flow


_HTTP_REQUEST_STARTS = tuple(method + b" " for method in HTTP_METHODS)
_HTTP_METHOD_LENGTH = max(len(method) for method in HTTP_METHODS)


def _looks_like_http_request(data: bytes) -> str:
    # Servers skip empty lines before the request line (RFC 9112, 2.2), and
    # many take the method in any case and a tab after it; libhtp and
    # Suricata's detection do too. So does this probe: otherwise
    # "\r\npost\t/cgi-bin/..." would never reach the HTTP rules.
    if data.startswith(_HTTP_REQUEST_STARTS):
        return "http"
    # Blanks before the method too (libhtp's IDS personality skips them).
    head = data.lstrip(b"\r\n \t")[:_HTTP_METHOD_LENGTH + 1].upper().replace(b"\t", b" ")
    # One startswith over all methods; methods hold no space, so data that
    # starts with one "METHOD " is never also a prefix of another method.
    if head.startswith(_HTTP_REQUEST_STARTS):
        return "http"
    if len(head) <= _HTTP_METHOD_LENGTH:
        for method in HTTP_METHODS:
            if method.startswith(head):
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


def _looks_like_ssh(data: bytes) -> str:
    """Either side opens with its version banner (RFC 4253 4.2)."""
    if data.startswith(b"SSH-"):
        return "ssh"
    return UNKNOWN if b"SSH-".startswith(data) else FAILED


_SMB_MAGICS = (b"\xffSMB", b"\xfeSMB", b"\xfdSMB")


def _looks_like_smb(data: bytes) -> str:
    """A NetBIOS session message carrying SMB1, SMB2/3 or an SMB3 transform."""
    if not data or data[0] != 0:
        return FAILED
    if len(data) < 8:
        return UNKNOWN
    return "smb" if data[4:8] in _SMB_MAGICS else FAILED


def _first_line(data: bytes) -> bytes | None:
    end = data.find(b"\n")
    return None if end < 0 else data[:end]


def _looks_like_mail_or_ftp_banner(data: bytes, server_port: int) -> str:
    """A server's "220" greeting: FTP or SMTP when the line or the port says
    which; otherwise wait for the client's first command."""
    if not data.startswith(b"220"):
        return UNKNOWN if b"220".startswith(data) else FAILED
    line = _first_line(data)
    if line is None:
        return UNKNOWN if len(data) < DETECT_BUFFER_BYTES else FAILED
    upper = line.upper()
    if b"SMTP" in upper or server_port in SMTP_PORTS:
        return "smtp"
    if b"FTP" in upper or server_port in FTP_PORTS:
        return "ftp"
    return UNKNOWN


_SMTP_COMMANDS = (b"EHLO", b"HELO")
_FTP_COMMANDS = (b"USER ", b"AUTH TLS", b"AUTH SSL", b"FEAT", b"SYST", b"OPTS ")


def _looks_like_mail_or_ftp_client(data: bytes, server_port: int, peer: bytes) -> str:
    """The client's first command: EHLO/HELO is SMTP; USER and friends are
    FTP when the server greeted with "220" or listens on the FTP port (POP3
    and IRC clients send USER too)."""
    upper = data[:8].upper()
    if upper.startswith(_SMTP_COMMANDS):
        return "smtp"
    if upper.startswith(_FTP_COMMANDS):
        return "ftp" if server_port in FTP_PORTS or peer.startswith(b"220") else FAILED
    if any(command.startswith(upper) for command in _SMTP_COMMANDS + _FTP_COMMANDS):
        return UNKNOWN
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


def detect_tcp(data: bytes, to_server: bool, client_port: int, server_port: int,
               peer: bytes = b"") -> str:
    """Decide the protocol of a TCP flow from the first bytes of one side
    (`peer`: what the other side sent first, if anything).

    Returns a protocol name, UNKNOWN (need more bytes) or FAILED (this side
    does not identify the protocol)."""
    outcomes = []
    if to_server:
        probes = [_looks_like_http_request, _looks_like_tls, _looks_like_mqtt_connect,
                  _looks_like_telnet, _looks_like_ssh, _looks_like_smb,
                  lambda data: _looks_like_mail_or_ftp_client(data, server_port, peer)]
        if server_port in DNS_PORTS:
            probes.append(_looks_like_dns_tcp)
        if server_port == MODBUS_PORT:
            probes.append(_looks_like_modbus)
    else:
        probes = [_looks_like_http_response, _looks_like_tls_server, _looks_like_telnet,
                  _looks_like_ssh, _looks_like_smb,
                  lambda data: _looks_like_mail_or_ftp_banner(data, server_port)]
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

def _preload_parsers() -> None:
    """Import the parser modules (and TLS's certificate decoder) now, when a
    worker starts, rather than on the first flow of each protocol: that
    first import costs up to 0.1 s, a stall for the packet inline. A module
    that fails to import is left to fail again, counted, in `_parser_for`."""
    for name in _PARSERS:
        try:
            _parser_for(name, None, probe=True)
            if name == "tls":
                importlib.import_module("ips.applayer.tls").load_x509()
        except Exception:  # noqa: BLE001 - a broken optional parser cannot stop the stage
            continue


# app_proto -> (module, class), imported on first use
_PARSERS = {
    "http": ("ips.applayer.http", "HttpParser"),
    "dns": ("ips.applayer.dns", "DnsParser"),
    "mdns": ("ips.applayer.mdns", "MdnsParser"),
    "tls": ("ips.applayer.tls", "TlsParser"),
    "dhcp": ("ips.applayer.dhcp", "DhcpParser"),
    "ssdp": ("ips.applayer.ssdp", "SsdpParser"),
    "mqtt": ("ips.applayer.mqtt", "MqttParser"),
    "telnet": ("ips.applayer.telnet", "TelnetParser"),
    "modbus": ("ips.applayer.modbus", "ModbusParser"),
    "ftp": ("ips.applayer.ftp", "FtpParser"),
    "ftp-data": ("ips.applayer.ftp", "FtpDataParser"),
}
_PARSER_CLASSES: dict[str, type] = {}
DETECTION_ONLY = frozenset({"smtp", "ssh", "smb"})
"""Named from their first bytes and not parsed: the flow's app_proto is
set, so rules on their raw bytes (`alert smtp ... content:"EHLO"`) apply."""
WITHOUT_BUFFERS = DETECTION_ONLY | {"ftp"}
"""No transaction carries a sticky buffer of these (FTP's control channel is
read only for its data connections): the rule parser refuses such rules."""
DETECTED_PROTOCOLS = frozenset(_PARSERS) | DETECTION_ONLY
"""Every app_proto a flow can get here: a rule on any other could never fire."""
FTP_DATA_WAIT = 120.0
"""Seconds an announced FTP data connection is expected (packet time)."""
MAX_FTP_EXPECTED = 16384
"""Announced (data client, data server) pairs kept per worker; the oldest
go first. Large, so that evicting a device's pair takes thousands of
control connections within FTP_DATA_WAIT (MAX_FTP_ANNOUNCED each)."""
MAX_FTP_ANNOUNCED = 64
"""Announcements one control connection may make: beyond, it floods."""


def _parser_for(name: str, config, tcp: bool = False, probe: bool = False):
    """A new parser for `name` (None: no such protocol); `probe`: only import it."""
    cls = _PARSER_CLASSES.get(name)
    if cls is None:
        where = _PARSERS.get(name)
        if where is None:
            return None
        cls = _PARSER_CLASSES[name] = getattr(importlib.import_module(where[0]), where[1])
    if probe:
        return None
    if name == "dns":
        return cls(config, tcp=tcp)
    return cls(config)


class AppLayer:
    """Detects each flow's protocol and drives its parser. Per-flow state lives
    in `flow.app` (a dict this stage owns):

    * "parser": the protocol parser object, once detected;
    * "pending": {True: bytearray, False: bytearray} first bytes per direction
      while detecting (each <= DETECT_BUFFER_BYTES);
    * "failed": {True: bool, False: bool} a side that identified nothing;
    * "done": True when the flow will not be parsed (detection failed, error).
    """

    __slots__ = ("config", "ftp_expected")

    def __init__(self, config) -> None:
        self.config = config
        # (data client, data server) -> until when (packet time): the pairs
        # FTP control connections announced data connections between.
        self.ftp_expected: dict[tuple[str, str], float] = {}
        _preload_parsers()

    def on_data(self, flow, pkt, data: bytes, to_server: bool, gap: bool = False) -> list[Tx]:
        # One frame with its guard: this runs per datagram and per stream release.
        try:
            state = getattr(flow, "app", None)
            if state is None:
                state = flow.app = {}
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

    def on_stream(self, flow, pkt, chunk) -> list[Tx]:
        """TCP entry point: feed what the stream released to the parsers
        (`Chunk.app`, (to_server, data, gap) in order) and return the
        transactions to inspect on this packet, presented in the packet's
        direction.

        Transactions a release updated in the other direction than the
        packet's (IDS mode: a server ACK releases the client's request) wait
        for the next packet of their direction, which is when Suricata
        inspects them: a to-server tx is inspected on a to-server packet."""
        state = flow.app
        deferred = state.get("deferred") if state else None
        if chunk is None:
            if not deferred:
                return _NO_TXS
            releases = ()
        else:
            releases = chunk.app
            if chunk.at_start and flow.app_proto is None and chunk.data and pkt is not None:
                self._peek(flow, chunk.window, pkt.to_server)
            if not releases and not deferred:
                return _NO_TXS
            if state and state.get("done"):
                # No parser will look at this flow again: skip the releases.
                releases = ()
        to_server = pkt.to_server if pkt is not None else None
        now: list[Tx] = []
        for direction, data, gap in releases:
            txs = self.on_data(flow, pkt, data, direction, gap)
            if not txs:
                continue
            if direction == to_server:
                now.extend(txs)
            else:
                self._defer(flow, direction, txs)
        if to_server is None:
            return _NO_TXS
        state = flow.app
        deferred = state.get("deferred")
        if deferred and deferred[to_server]:
            now = deferred[to_server] + now
            deferred[to_server] = []
        if not now:
            return _NO_TXS
        if state.get("reversed"):
            to_server = not to_server
        # One tx (the common case) is unique as it is.
        return _present(now if len(now) == 1 else _unique(now), to_server)

    def _peek(self, flow, window: bytes, to_server: bool) -> None:
        """Name the protocol from bytes not yet given to the parsers (IDS
        mode waits for the ACK), so `alert http` raw-content rules apply to
        the packet that carries the first request, as they would inline."""
        state = flow.app
        if state and (state.get("done") or state.get("parser") is not None):
            return
        data = window[:DETECT_BUFFER_BYTES]
        name = detect_tcp(data, to_server, flow.client_port, flow.server_port)
        if name in (UNKNOWN, FAILED) and to_server and getattr(flow, "midstream", False):
            name = detect_tcp(data, False, flow.server_port, flow.client_port)
        if name not in (UNKNOWN, FAILED):
            flow.app_proto = name

    @staticmethod
    def roles_reversed(flow) -> bool:
        """Midstream pickup took the server for the client: the parsers see
        the flow the other way round (log HTTP records with the real client
        as source, as Suricata does after swapping such a flow)."""
        state = getattr(flow, "app", None)
        return bool(state and state.get("reversed"))

    def has_deferred(self, flow) -> bool:
        """Whether transactions wait for a packet of their direction (they
        are inspected and logged with it: the flow must not be bypassed
        before that packet comes)."""
        state = getattr(flow, "app", None)
        deferred = state.get("deferred") if state else None
        return bool(deferred and (deferred[True] or deferred[False]))

    def pending_txs(self, flow, to_server: bool) -> list[Tx]:
        """Transactions still waiting to be inspected in one direction (flow
        end: the worker inspects them with a pseudo packet, as Suricata's
        flow-timeout packets do). Takes them off the waiting list."""
        state = getattr(flow, "app", None)
        deferred = state.get("deferred") if state else None
        if not deferred or not deferred[to_server]:
            return []
        txs, deferred[to_server] = deferred[to_server], []
        return _present(txs, to_server != bool(state.get("reversed")))

    def on_flow_end(self, flow, releases=()) -> list[Tx]:
        """End of flow: feed the stream's last releases (`TcpReassembler.flush`),
        complete what is open, and return every tx that changed (the worker
        logs the complete ones not yet `logged`)."""
        touched: list[Tx] = []
        for direction, data, gap in releases:
            txs = self.on_data(flow, None, data, direction, gap)
            if txs:
                touched.extend(txs)
                self._defer(flow, direction, txs)
        state = getattr(flow, "app", None)
        if state and state.get("parser") is not None:
            try:
                touched.extend(state["parser"].finish())
            except Exception:  # noqa: BLE001
                pass
        return _unique(touched) if touched else touched

    @staticmethod
    def _defer(flow, direction: bool, txs: list[Tx]) -> None:
        state = flow.app
        deferred = state.get("deferred")
        if deferred is None:
            deferred = state["deferred"] = {True: [], False: []}
        waiting = deferred[direction]
        for tx in txs:
            if tx not in waiting:
                if len(waiting) >= MAX_DEFERRED_TXS:
                    waiting.pop(0)
                waiting.append(tx)

    # -- internals -------------------------------------------------------------

    @staticmethod
    def _state(flow) -> dict:
        state = getattr(flow, "app", None)
        if state is None:
            state = {}
            flow.app = state
        return state

    def _detect_tcp(self, flow, state, pkt, data, to_server, gap) -> list[Tx]:
        if gap:
            # Detection needs the start of the stream; after loss we give up
            # on this flow rather than guess from the middle of a message.
            state["done"] = True
            return []
        pending = state.get("pending")
        if pending is None and to_server and data.startswith(_HTTP_REQUEST_STARTS):
            # The common case: the client's first bytes are an HTTP request.
            # What the general path below decides for them, without the
            # detection buffers (it leaves `failed` behind, so do we).
            state["failed"] = {True: False, False: False}
            return self._start(flow, state, pkt, "http",
                               [(True, bytes(data[:DETECT_BUFFER_BYTES]))], False)
        if pending is None:
            pending = state["pending"] = {True: bytearray(), False: bytearray()}
        failed = state.get("failed")
        if failed is None:
            failed = state["failed"] = {True: False, False: False}
        if failed[to_server]:
            # This side did not identify anything; keep its bytes bounded in
            # case the other side identifies the flow.
            room = DETECT_BUFFER_BYTES - len(pending[to_server])
            pending[to_server] += data[:max(0, room)]
            return []
        pending[to_server] += data[: DETECT_BUFFER_BYTES - len(pending[to_server])]
        outcome = detect_tcp(bytes(pending[to_server]), to_server,
                             flow.client_port, flow.server_port, bytes(pending[not to_server]))
        if outcome == FAILED and to_server and getattr(flow, "midstream", False) \
                and not pending[False]:
            # Midstream pickup may take the server for the client (its packet
            # came first): data that only a server sends (an HTTP status
            # line, a TLS ServerHello) reverses the flow's roles for the
            # parsers, as Suricata swaps such a flow.
            reversed_outcome = detect_tcp(bytes(pending[to_server]), False,
                                          flow.server_port, flow.client_port)
            if reversed_outcome not in (UNKNOWN, FAILED):
                state["reversed"] = True
                outcome = reversed_outcome
        if outcome == UNKNOWN and len(pending[to_server]) >= DETECT_BUFFER_BYTES:
            outcome = FAILED
        if outcome == FAILED and self._ftp_data_expected(flow):
            # An announced FTP data connection that no probe names otherwise
            # (an HTTP request to the announced port stays HTTP).
            outcome = "ftp-data"
        elif outcome == FAILED:
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
        """Start the parser on what each side sent so far. The transactions
        the last chunk's side updated are returned (they belong to the data
        being handled now); those of the other side wait for that side's
        next packet, as on_stream defers them: a request whose method only
        the server's reply revealed as HTTP is still inspected as a request."""
        if name in DETECTION_ONLY:
            flow.app_proto = name
            state["done"] = True
            state.pop("pending", None)
            return []
        parser = _parser_for(name, self.config, tcp=flow.proto == 6)
        if parser is None:
            state["done"] = True
            return []
        flow.app_proto = name
        state["parser"] = parser
        current = chunks[-1][0] if chunks else None
        txs: list[Tx] = []
        for direction, chunk in chunks:
            updated = self._feed(flow, state, pkt, chunk, direction, gap)
            if direction == current:
                txs.extend(updated)
            elif updated:
                self._defer(flow, direction, updated)
        return _unique(txs)

    def _feed(self, flow, state, pkt, data, to_server, gap) -> list[Tx]:
        parser = state["parser"]
        if state.get("reversed"):
            to_server = not to_server
        txs = parser.feed(data, to_server, gap)
        if flow.app_proto == "ftp" and parser.expected:
            self._expect_ftp_data(flow, state, parser.expected)
        if parser.events:
            if pkt is not None:
                for event in parser.events:
                    pkt.anomaly(event)
            parser.events.clear()
        return txs


    def _expect_ftp_data(self, flow, state: dict, announced: list) -> None:
        """Keep the pairs an FTP control connection announced a data
        connection between: passive (PASV/EPSV), the client connects to the
        announced address (the server's when EPSV names none); active
        (PORT/EPRT), the server connects to the client's announced address.

        Pairs, not ports: a server can announce one port and then, in a
        multi-line reply the client skips, hundreds of others; any unnamed
        flow between the pair in FTP_DATA_WAIT is taken for a data
        connection (more inspection, never less: a probe's name wins)."""
        count = state.get("ftp_announced", 0)
        expected = self.ftp_expected
        until = flow.last + FTP_DATA_WAIT
        for host, _port, active in announced:
            if count >= MAX_FTP_ANNOUNCED:
                break
            count += 1
            key = (flow.server_ip, host) if active else (flow.client_ip, host or flow.server_ip)
            expected.pop(key, None)
            expected[key] = until
            while len(expected) > MAX_FTP_EXPECTED:
                del expected[next(iter(expected))]
        state["ftp_announced"] = count
        announced.clear()

    def _ftp_data_expected(self, flow) -> bool:
        """Whether an FTP control connection announced a data connection
        between this flow's client and server, recently enough."""
        until = self.ftp_expected.get((flow.client_ip, flow.server_ip))
        return until is not None and flow.start <= until


def detection_failed(flow, to_server: bool) -> bool:
    """Whether protocol detection gave up on this direction of a flow that
    has no app protocol (app-layer-protocol:failed): that side identified
    nothing, or the flow will not be parsed."""
    state = getattr(flow, "app", None)
    if not state:
        return False
    failed = state.get("failed")
    return bool(state.get("done") or (failed is not None and failed.get(to_server)))


def _present(txs: list[Tx], to_server: bool) -> list[Tx]:
    """Show each tx as seen from `to_server` (direction and buffers)."""
    for tx in txs:
        tx.to_server = to_server
        buffers = tx.view(to_server)
        if buffers is not None:
            tx.buffers = buffers
    return txs


def _unique(txs: list[Tx]) -> list[Tx]:
    seen: set[int] = set()
    out = []
    for tx in txs:
        if id(tx) not in seen:
            seen.add(id(tx))
            out.append(tx)
    return out
