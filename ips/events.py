"""Events that leave the capture plane.

Workers emit these; consumers (EVE writer, store, device profiler, web feed)
subscribe to them through the collector's explicit list (`ips.collector`).
Every event is frozen and slotted: once emitted it is a fact, and it is cheap
to pass between processes (they pickle).

Field conventions follow Suricata's EVE schema so the JSON writer is a thin
mapping: addresses are strings, ports ints, `proto` is "TCP"/"UDP"/"ICMP"/...
"""
from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from operator import attrgetter
from typing import Any


def quick_pickle(cls):
    """Pickle a frozen slotted dataclass as (class, field values).

    Every event crosses the worker → collector queue pickled; the
    `__getstate__` dataclasses generate for slotted classes calls
    `dataclasses.fields()` on each object, which was 8 % of an inline
    worker's time on short connections."""
    names = tuple(f.name for f in fields(cls))
    if len(names) == 1:
        name = names[0]

        def __reduce__(self):  # noqa: N807 - pickle protocol
            return cls, (getattr(self, name),)
    else:
        values = attrgetter(*names)

        def __reduce__(self):  # noqa: N807 - pickle protocol
            return cls, values(self)
    cls.__reduce__ = __reduce__
    return cls


class _Factory:
    """Marks an argument left to its field's default_factory."""

    def __repr__(self) -> str:
        return "<factory>"


_FACTORY = _Factory()


def quick_init(cls):
    """Give a frozen slotted dataclass a faster `__init__`, same signature.

    The generated one sets each field through `object.__setattr__(self,
    name, value)` (frozen: its own `__setattr__` raises); this one calls the
    field's slot descriptor directly, which stores the same value, in half
    the time (a worker builds several events per connection). A class with
    anything unusual (init=False, kw_only, __post_init__) keeps its own."""
    if "__post_init__" in cls.__dict__:
        return cls
    params, lines = [], []
    namespace = {"_FACTORY": _FACTORY}
    for index, item in enumerate(fields(cls)):
        if not item.init or item.kw_only:
            return cls
        name = item.name
        namespace[f"_set{index}"] = cls.__dict__[name].__set__
        if item.default is not MISSING:
            namespace[f"_default{index}"] = item.default
            params.append(f"{name}=_default{index}")
        elif item.default_factory is not MISSING:
            namespace[f"_factory{index}"] = item.default_factory
            params.append(f"{name}=_FACTORY")
            lines.append(f"    if {name} is _FACTORY:\n        {name} = _factory{index}()")
        else:
            params.append(name)
        lines.append(f"    _set{index}(self, {name})")
    source = f"def __init__(self, {', '.join(params)}):\n" + "\n".join(lines or ["    pass"]) + "\n"
    exec(source, namespace)  # noqa: S102 - source built from the class's own field names
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    cls.__init__ = init
    return cls


@quick_pickle
@quick_init
@dataclass(frozen=True, slots=True)
class FiveTuple:
    """The flow key as seen from the flow's initiator (client)."""
    src_ip: str
    """Address of the side that started the flow."""
    src_port: int
    """Source port, 0 for protocols without ports."""
    dest_ip: str
    """Address of the responder."""
    dest_port: int
    """Destination port, 0 for protocols without ports."""
    proto: str
    """Transport name as EVE writes it: "TCP", "UDP", "ICMP", "IPv6-ICMP"."""


@quick_pickle
@quick_init
@dataclass(frozen=True, slots=True)
class Alert:
    """A signature matched."""
    timestamp: float
    """Packet time (seconds since the epoch) of the packet that completed the match."""
    flow_id: int
    """Stable id of the flow the packet belongs to (0 when flowless)."""
    pcap_cnt: int
    """1-based index of the packet in the capture (0 inline)."""
    src_ip: str
    """Source of the packet that matched (packet direction, as Suricata logs it)."""
    src_port: int
    """Source port of that packet."""
    dest_ip: str
    """Destination of that packet."""
    dest_port: int
    """Destination port of that packet."""
    proto: str
    """Transport name."""
    app_proto: str | None
    """Detected application protocol of the flow, if any."""
    action: str
    """"allowed" or "blocked": the verdict the inline box gives."""
    gid: int
    """Generator id of the rule (1 for text rules)."""
    signature_id: int
    """The rule's sid."""
    rev: int
    """The rule's revision."""
    signature: str
    """The rule's msg."""
    category: str
    """Classification description (classification.config)."""
    severity: int
    """Priority, 1 (high) .. 4."""
    metadata: dict[str, list[str]] = field(default_factory=dict)
    """Rule metadata as EVE prints it: key -> list of values."""
    tx_id: int | None = None
    """Application transaction the alert belongs to, when it has one."""
    app: dict[str, Any] | None = None
    """App-layer record to log beside the alert (e.g. {"http": {...}})."""
    src_mac: str | None = None
    """Ethernet source of the packet, for the device inventory."""
    flow: dict[str, Any] | None = None
    """Flow counters at alert time, as EVE's alert.flow object."""
    vlan: tuple = ()
    """VLAN ids of the packet, outermost first (EVE's "vlan")."""
    direction: str | None = None
    """"to_server" or "to_client": the packet's direction in its flow."""
    pkt_src: str = "wire/pcap"
    """Where the packet came from, as EVE's pkt_src: "wire/pcap", or
    "stream (flow timeout)" for the end-of-flow inspection."""


@quick_pickle
@quick_init
@dataclass(frozen=True, slots=True)
class FlowEnd:
    """A flow finished (timeout, close, eviction or end of input)."""
    timestamp: float
    """Time the flow record was written (last packet time)."""
    flow_id: int
    """Stable flow id."""
    tuple: FiveTuple
    """Flow key, client side first."""
    app_proto: str | None
    """Detected application protocol."""
    start: float
    """Time of the first packet."""
    end: float
    """Time of the last packet."""
    pkts_toserver: int
    """Packets client -> server."""
    pkts_toclient: int
    """Packets server -> client."""
    bytes_toserver: int
    """Bytes (whole IP packets) client -> server."""
    bytes_toclient: int
    """Bytes server -> client."""
    state: str
    """"new", "established", "closed" (Suricata's vocabulary)."""
    reason: str
    """"timeout", "shutdown", "forced" (evicted), "tcp_closed"."""
    alerted: bool
    """Whether any alert fired on the flow."""
    action: str = "pass"
    """"pass", "drop" (blocked flow) or "bypass" (handed to the kernel)."""
    tcp_flags_ts: int = 0
    """OR of TCP flags seen client -> server."""
    tcp_flags_tc: int = 0
    """OR of TCP flags seen server -> client."""
    tcp_state: str | None = None
    """Final TCP state name, TCP only."""
    client_mac: str | None = None
    """Ethernet address the client side sent from."""
    server_mac: str | None = None
    """Ethernet address the server side sent from."""
    vlan: tuple = ()
    """VLAN ids of the flow, outermost first (EVE's "vlan")."""


@quick_pickle
@quick_init
@dataclass(frozen=True, slots=True)
class Anomaly:
    """The decoder or a stream/app-layer parser met something malformed."""
    timestamp: float
    """Packet time."""
    pcap_cnt: int
    """Packet index in the capture (0 inline)."""
    type: str
    """"decode", "stream" or "applayer", as in Suricata's anomaly records."""
    event: str
    """Event name, e.g. "ipv4.trunc_pkt", "tcp.hlen_too_small"."""
    src_ip: str | None = None
    """Packet source, when it got that far."""
    dest_ip: str | None = None
    """Packet destination, when it got that far."""
    src_port: int = 0
    dest_port: int = 0
    proto: str | None = None
    flow_id: int = 0
    layer: str | None = None
    """Protocol layer where it happened, for applayer anomalies."""


@quick_pickle
@quick_init
@dataclass(frozen=True, slots=True)
class AppRecord:
    """One application-layer transaction or message (http, dns, tls, dhcp, ...).

    It is both the EVE record of that protocol and the device observation the
    profiler consumes: `fields` is exactly what EVE writes under the protocol's
    key (e.g. {"hostname": ..., "url": ...} for http).
    """
    timestamp: float
    """Packet time of the packet that completed the record."""
    flow_id: int
    """Flow id."""
    pcap_cnt: int
    """Packet index."""
    tuple: FiveTuple
    """Addresses of the packet that completed the record."""
    app_proto: str
    """"http", "dns", "tls", "dhcp", "mdns", "ssdp", "mqtt", "telnet", "modbus", ..."""
    fields: dict[str, Any]
    """Protocol fields, EVE-shaped."""
    tx_id: int = 0
    """Transaction index within the flow."""
    src_mac: str | None = None
    """Ethernet source of the packet, so the inventory can key on it."""
    vlan: tuple = ()
    """VLAN ids of the flow, outermost first (EVE's "vlan")."""


@quick_pickle
@quick_init
@dataclass(frozen=True, slots=True)
class DeviceAnomaly:
    """A device behaved unlike its learned profile (issue: profiling)."""
    timestamp: float
    """Packet time of the evidence that triggered it."""
    mac: str
    """Device MAC address."""
    ip: str | None
    """Device's address at the time."""
    kind: str
    """new_device, new_destination, unusual_time, unusual_volume, new_port,
    scan, brute_force or known_bad_destination."""
    score: float
    """0..1, how far from the baseline."""
    observed: dict[str, Any]
    """What was seen."""
    baseline: dict[str, Any]
    """What the profile says is normal."""
    explanation: str
    """One sentence a home user understands."""
    count: int = 1
    """How many times it recurred in this window (no storms)."""
    name: str | None = None
    """Device's display name, if known."""


@quick_pickle
@quick_init
@dataclass(frozen=True, slots=True)
class Stats:
    """Counters, written at the end of a replay and periodically inline."""
    timestamp: float
    """When the counters were read."""
    counters: dict[str, Any]
    """Nested counters as EVE's stats record shows them."""
