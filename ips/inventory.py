"""Device inventory: which devices live behind the box, and what they are.

Theory of operation
-------------------
A *device* is a MAC address on the LAN side: the side of a flow whose IP is in
`config.home_net`. Multicast and broadcast MACs are never devices. Captures
without link-layer addresses (raw IP) key devices by IP instead
(``"ip:192.0.2.10"``), which is weaker (DHCP may move a device) and is shown
as such.

The inventory is a collector consumer (`ips.collector`). From `FlowEnd` it
learns IPs over time, first/last seen, the services a device answers on and
the ports it contacts; from `AppRecord` it collects identity hints: DHCP
(hostname opt 12, vendor class opt 60, parameter list opt 55, MUD URL opt
161), mDNS and SSDP announcements, HTTP User-Agent / Server, TLS SNI and
JA3/JA4. Every hint is kept as a small bounded list per source.

The device-type guess is *rules as data* (`TYPE_RULES`): each rule names
conditions on hint sources (regular expressions, case-insensitive) and a
confidence; the matching rule with the highest confidence wins and its
matched conditions become the evidence list the UI shows ("vendor: Signify
B.V.", "mdns: _hue._tcp.local"). A user override (name, type) always wins
and is persisted in the store's `devices.user_name` / `user_type`, which the
control plane writes and `sync()` reads back, so it sticks across restarts.

Persistence: `sync(store)` upserts changed devices into `devices` and
`device_ips`; the collector calls it periodically through `tick()` when the
inventory was built with a store, and once more at `done()`.
"""
from __future__ import annotations

import functools
import ipaddress
import json
import re
from typing import Any, Iterable

from ips import events, oui

# Bounds: one home/factory LAN, with room to spare. Every container below is
# capped so a spoofing flood (random MACs/IPs) cannot grow the collector.
MAX_DEVICES = 4096
MAX_IPS_PER_DEVICE = 16
MAX_VALUES_PER_HINT = 16
MAX_PORTS_PER_DEVICE = 64
MAX_IP_OWNERS = 8192

# A device that sent nothing for this long is shown offline.
OFFLINE_AFTER = 15 * 60.0


# ---------------------------------------------------------------------------
# HOME_NET

class HomeNet:
    """Membership test for the `home_net` address group ("[a/n,b/n,!c/n]")."""

    __slots__ = ("include", "exclude", "_cache")

    def __init__(self, text: str) -> None:
        self.include: list = []
        self.exclude: list = []
        self._cache: dict[str, bool] = {}
        for item in text.strip().strip("[]").split(","):
            item = item.strip()
            negate = item.startswith("!")
            item = item.lstrip("!").strip("[]")
            if not item or item.startswith("$") or item == "any":
                continue  # variables are resolved by the rule loader, not here
            try:
                network = ipaddress.ip_network(item, strict=False)
            except ValueError:
                continue
            (self.exclude if negate else self.include).append(network)

    def __contains__(self, ip: str | None) -> bool:
        if not ip:
            return False
        known = self._cache.get(ip)
        if known is not None:
            return known
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            answer = False
        else:
            answer = (any(address in n for n in self.include if n.version == address.version)
                      and not any(address in n for n in self.exclude if n.version == address.version))
        if len(self._cache) >= MAX_IP_OWNERS:
            self._cache.clear()  # cheap bound; misses only cost a recompute
        self._cache[ip] = answer
        return answer


@functools.lru_cache(maxsize=8192)  # bounded; called for every flow side
def is_group_ip(ip: str | None) -> bool:
    """Multicast, broadcast or unspecified: a destination, never a device."""
    if not ip:
        return True
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return True
    if address.is_multicast or address.is_unspecified:
        return True
    return address.version == 4 and (ip == "255.255.255.255" or ip.endswith(".255"))


def device_key(mac: str | None, ip: str | None) -> str | None:
    """Inventory key for one side of a conversation, or None if not a device."""
    normal = oui.normalise_mac(mac)
    if normal is not None:
        if oui.is_group_mac(normal) or normal == "00:00:00:00:00:00":
            return None
        return normal
    if ip and not is_group_ip(ip):
        return f"ip:{ip}"
    return None


# ---------------------------------------------------------------------------
# Type rules (data). Condition keys are hint sources (see Device.hints) plus
# "vendor"; values are case-insensitive regular expressions that must match
# at least one recorded value. "listens"/"contacts" values look like "tcp/9999".

TYPE_RULES: tuple[dict[str, Any], ...] = (
    {"type": "Hue bridge", "model": "Philips Hue bridge", "confidence": 0.95,
     "when": {"vendor": r"philips lighting|signify", "mdns": r"_hue\._tcp"}},
    {"type": "Hue bridge", "model": "Philips Hue bridge", "confidence": 0.9,
     "when": {"ssdp_server": r"ipbridge"}},
    {"type": "smart lighting", "model": "Philips Hue device", "confidence": 0.6,
     "when": {"vendor": r"philips lighting|signify"}},
    {"type": "smart speaker", "model": "Sonos speaker", "confidence": 0.95,
     "when": {"vendor": r"sonos", "ssdp_server|mdns|user_agent|http_server": r"sonos"}},
    {"type": "smart speaker", "model": "Sonos speaker", "confidence": 0.85,
     "when": {"ssdp_server|mdns|user_agent|http_server": r"sonos"}},
    {"type": "smart speaker", "model": "Sonos speaker", "confidence": 0.7,
     "when": {"vendor": r"sonos"}},
    {"type": "smart plug", "model": "TP-Link Kasa", "confidence": 0.9,
     "when": {"vendor": r"tp-link", "listens|contacts": r"^(tcp|udp)/9999$"}},
    {"type": "smart plug", "model": "TP-Link Kasa", "confidence": 0.65,
     "when": {"listens": r"^tcp/9999$"}},
    {"type": "smart plug", "model": "TP-Link Kasa", "confidence": 0.6,
     "when": {"listens|contacts": r"^udp/9999$"}},
    {"type": "smart home device", "model": "Xiaomi (miio)", "confidence": 0.9,
     "when": {"vendor": r"xiaomi|chuangmi|lumi|roborock|yeelink",
              "listens|contacts": r"^udp/54321$"}},
    {"type": "smart home device", "model": "Xiaomi (miio)", "confidence": 0.75,
     "when": {"listens|contacts": r"^udp/54321$"}},
    {"type": "smart home device", "model": "Tuya", "confidence": 0.8,
     "when": {"contacts|listens": r"^(udp|tcp)/666[678]$"}},
    {"type": "thermostat", "model": "Nest", "confidence": 0.9,
     "when": {"vendor": r"nest labs", "sni|dns|hostname": r"nest"}},
    {"type": "Nest device", "model": "Nest", "confidence": 0.75,
     "when": {"sni|dns": r"nest\.com|nestlabs"}},
    {"type": "Nest device", "model": "Nest", "confidence": 0.7,
     "when": {"vendor": r"nest labs"}},
    {"type": "smart speaker", "model": "Amazon Echo", "confidence": 0.9,
     "when": {"vendor": r"amazon technologies", "sni|dns": r"alexa|avs-|amazon"}},
    {"type": "smart speaker", "model": "Amazon Echo", "confidence": 0.75,
     "when": {"sni|dns|hostname": r"avs-alexa|alexa\.amazon|^amazon-|echo"}},
    {"type": "IP camera", "model": None, "confidence": 0.85,
     "when": {"vendor": r"hikvision|dahua|axis comm|reolink|amcrest|hanwha|vivotek|foscam",
              }},
    {"type": "IP camera", "model": "ONVIF camera", "confidence": 0.8,
     "when": {"listens|contacts": r"^udp/3702$", "listens": r"^tcp/554$"}},
    {"type": "IP camera", "model": "RTSP camera", "confidence": 0.7,
     "when": {"listens": r"^tcp/554$"}},
    {"type": "IP camera", "model": "ONVIF device", "confidence": 0.6,
     "when": {"ssdp_server|http_server|mdns|url": r"onvif"}},
    {"type": "PLC", "model": "Siemens S7", "confidence": 0.9,
     "when": {"vendor": r"siemens", "listens": r"^tcp/102$"}},
    {"type": "PLC", "model": "S7comm", "confidence": 0.75,
     "when": {"listens": r"^tcp/102$"}},
    {"type": "PLC", "model": "Modbus/TCP", "confidence": 0.8,
     "when": {"listens": r"^tcp/502$"}},
    {"type": "PLC", "model": "EtherNet/IP", "confidence": 0.8,
     "when": {"listens": r"^(tcp/44818|udp/2222)$"}},
    {"type": "building controller", "model": "BACnet", "confidence": 0.8,
     "when": {"listens": r"^udp/47808$"}},
    {"type": "media streamer", "model": "Chromecast", "confidence": 0.9,
     "when": {"mdns": r"_googlecast\._tcp"}},
    {"type": "printer", "model": None, "confidence": 0.8,
     "when": {"mdns": r"_ipp\._tcp|_printer\._tcp|_pdl-datastream"}},
    {"type": "printer", "model": None, "confidence": 0.65,
     "when": {"listens": r"^tcp/(9100|631|515)$"}},
    {"type": "phone", "model": "Android", "confidence": 0.7,
     "when": {"dhcp_vendor_class": r"android-dhcp"}},
    {"type": "phone or tablet", "model": "Apple iOS", "confidence": 0.6,
     "when": {"user_agent": r"iphone|ipad|cfnetwork"}},
    {"type": "computer", "model": "Windows", "confidence": 0.6,
     "when": {"dhcp_vendor_class": r"msft"}},
    {"type": "MUD-described IoT device", "model": None, "confidence": 0.5,
     "when": {"mud_url": r"."}},
    {"type": "web-managed device", "model": None, "confidence": 0.3,
     "when": {"http_server": r"boa|goahead|lighttpd|mini_httpd|uc-httpd"}},
)


def _compile_rules(rules: Iterable[dict[str, Any]]) -> list[tuple[dict, list[tuple[tuple[str, ...], re.Pattern]]]]:
    compiled = []
    for rule in rules:
        conditions = [(tuple(key.split("|")), re.compile(pattern, re.IGNORECASE))
                      for key, pattern in rule["when"].items()]
        compiled.append((rule, conditions))
    return compiled


_DEFAULT_RULES = _compile_rules(TYPE_RULES)


# ---------------------------------------------------------------------------

class Device:
    """What the inventory knows about one device."""

    __slots__ = ("key", "vendor", "ips", "hostname", "first_seen", "last_seen",
                 "hints", "type_guess", "model_guess", "confidence", "evidence",
                 "user_name", "user_type", "dirty", "_guessed")

    def __init__(self, key: str, ts: float) -> None:
        self.key = key
        self.vendor = None if key.startswith("ip:") else oui.vendor(key)
        self.ips: dict[str, list[float]] = {}
        self.hostname: str | None = None
        self.first_seen = ts
        self.last_seen = ts
        # source -> recent distinct values, oldest first, bounded
        self.hints: dict[str, list[str]] = {}
        self.type_guess: str | None = None
        self.model_guess: str | None = None
        self.confidence = 0.0
        self.evidence: list[dict[str, str]] = []
        self.user_name: str | None = None
        self.user_type: str | None = None
        self.dirty = True
        self._guessed = False

    def add_hint(self, source: str, value: Any) -> None:
        if value is None or value == "":
            return
        text = str(value)[:256]
        values = self.hints.setdefault(source, [])
        if text in values:
            return
        if len(values) >= MAX_VALUES_PER_HINT:
            values.pop(0)
        values.append(text)
        self.dirty = True
        self._guessed = False

    def seen(self, ts: float, ip: str | None) -> None:
        if ts > self.last_seen:
            self.last_seen = ts
        if ts < self.first_seen:
            self.first_seen = ts
        if ip:
            span = self.ips.get(ip)
            if span is None:
                if len(self.ips) >= MAX_IPS_PER_DEVICE:
                    oldest = min(self.ips, key=lambda k: self.ips[k][1])
                    del self.ips[oldest]
                self.ips[ip] = [ts, ts]
                self.dirty = True
            else:
                span[0] = min(span[0], ts)
                span[1] = max(span[1], ts)

    @property
    def ip(self) -> str | None:
        """The most recently used address."""
        if not self.ips:
            return None
        return max(self.ips, key=lambda k: self.ips[k][1])

    @property
    def display_name(self) -> str:
        """How explanations refer to the device, e.g. "the Hue bridge"."""
        if self.user_name:
            return self.user_name
        kind = self.user_type or self.type_guess
        if kind:
            return f"the {kind} ({self.key})"
        if self.vendor and not self.vendor.startswith("locally"):
            return f"the {self.vendor} device ({self.key})"
        return f"device {self.key}"

    def as_dict(self, now: float | None = None) -> dict[str, Any]:
        return {
            "mac": self.key, "ip": self.ip, "ips": {k: list(v) for k, v in self.ips.items()},
            "vendor": self.vendor, "hostname": self.hostname,
            "type": self.user_type or self.type_guess, "type_guess": self.type_guess,
            "model_guess": self.model_guess, "confidence": self.confidence,
            "evidence": list(self.evidence), "user_name": self.user_name,
            "user_type": self.user_type, "first_seen": self.first_seen,
            "last_seen": self.last_seen, "hints": {k: list(v) for k, v in self.hints.items()},
            "online": None if now is None else (now - self.last_seen) <= OFFLINE_AFTER,
        }


class Inventory:
    """Collector consumer that maintains the device list."""

    def __init__(self, config, store=None, *, sync_interval: float = 60.0,
                 rules: Iterable[dict[str, Any]] = TYPE_RULES) -> None:
        self.home = HomeNet(config.home_net)
        self.devices: dict[str, Device] = {}
        # local IP -> device key, to attribute records whose MAC is the
        # other side's (e.g. an HTTP response carries the server's MAC).
        self.ip_owner: dict[str, str] = {}
        self.saw_macs = False  # once a capture shows MACs, "ip:" devices are not made
        self.rules = _DEFAULT_RULES if rules is TYPE_RULES else _compile_rules(rules)
        self.store = store
        self.sync_interval = sync_interval
        self.now = 0.0
        self._last_sync = None
        self.dropped_devices = 0
        self.malformed = 0

    # --- device bookkeeping ------------------------------------------
    def device(self, key: str, ts: float, ip: str | None = None) -> Device | None:
        device = self.devices.get(key)
        if device is None:
            if len(self.devices) >= MAX_DEVICES:
                self.dropped_devices += 1
                return None
            device = Device(key, ts)
            self.devices[key] = device
        device.seen(ts, ip)
        if ip:
            if len(self.ip_owner) >= MAX_IP_OWNERS and ip not in self.ip_owner:
                self.ip_owner.clear()
            self.ip_owner[ip] = key
        return device

    def local_side(self, ip: str | None, mac: str | None) -> str | None:
        """Device key for one side, if that side is on our LAN.

        A record without a MAC (a kernel conntrack record, or a target that
        never answered inline) belongs to the device that last used the
        address; an "ip:" device is made only for captures with no MACs at
        all, else every such record would split a device in two."""
        if ip not in self.home or is_group_ip(ip):
            return None
        if mac:
            self.saw_macs = True
            return device_key(mac, ip)
        owner = self.ip_owner.get(ip)
        if owner is not None and not owner.startswith("ip:"):
            return owner
        return None if self.saw_macs else device_key(None, ip)

    def key_for_ip(self, ip: str | None) -> str | None:
        """Device that last used local address `ip` (for MAC-less records)."""
        return self.local_side(ip, None)

    def get(self, key: str) -> Device | None:
        return self.devices.get(oui.normalise_mac(key) or key)

    def name_of(self, key: str) -> str:
        device = self.devices.get(key)
        return device.display_name if device else f"device {key}"

    def set_override(self, key: str, *, name: str | None = None,
                     type_: str | None = None) -> None:
        device = self.devices.get(key) or self.device(key, self.now)
        if device is None:
            return
        device.user_name = name
        device.user_type = type_
        device.dirty = True

    # --- hooks --------------------------------------------------------
    def flow_end(self, flow: events.FlowEnd):
        ts = flow.end or flow.timestamp
        self.now = max(self.now, ts)
        five = flow.tuple
        proto = (five.proto or "").lower()
        client = self.local_side(five.src_ip, flow.client_mac)
        # A target that never answered (a scan probe) is not a device.
        server = (self.local_side(five.dest_ip, flow.server_mac)
                  if flow.pkts_toclient > 0 else None)
        start = flow.start or ts
        if client is not None:
            device = self.device(client, start, five.src_ip)
            if device is not None:
                device.seen(ts, five.src_ip)
            if device is not None and five.dest_port and len(device.hints.get("contacts", ())) < MAX_PORTS_PER_DEVICE:
                # Only well-known and registered ports: ephemeral ones are noise.
                if five.dest_port < 49152:
                    device.add_hint("contacts", f"{proto}/{five.dest_port}")
        if server is not None:
            device = self.device(server, start, five.dest_ip)
            if device is not None:
                device.seen(ts, five.dest_ip)
            # A service counts only if the device answered on it.
            if device is not None and five.dest_port:
                device.add_hint("listens", f"{proto}/{five.dest_port}")
        return None

    def app_record(self, record: events.AppRecord):
        self.now = max(self.now, record.timestamp)
        try:
            self._observe(record)
        except (TypeError, ValueError, AttributeError, KeyError):
            # A parser field of an unexpected shape must not stop the
            # inventory; the record is simply not used.
            self.malformed += 1
        return None

    def tick(self, ts: float):
        self.now = max(self.now, ts)
        if self.store is not None and (self._last_sync is None
                                       or ts - self._last_sync >= self.sync_interval):
            self.sync(self.store)
            self._last_sync = ts
        return None

    def done(self):
        if self.store is not None:
            self.sync(self.store)
        return None

    # --- app-layer observations --------------------------------------
    def _observe(self, record: events.AppRecord) -> None:
        fields = record.fields or {}
        five = record.tuple
        ts = record.timestamp
        proto = record.app_proto
        sender = self.local_side(five.src_ip, record.src_mac) if record.src_mac else self.key_for_ip(five.src_ip)
        if sender is None and five.src_ip in self.home:
            sender = self.key_for_ip(five.src_ip)
        receiver = self.key_for_ip(five.dest_ip)

        if proto == "dhcp":
            key = device_key(fields.get("client_mac"), None) or sender
            if key is None:
                return
            ip = None
            for name in ("assigned_ip", "client_ip", "requested_ip"):
                value = fields.get(name)
                if value and value != "0.0.0.0" and value in self.home:
                    ip = value
                    break
            # A DHCP server reply carries the server's MAC as src_mac but the
            # client's in client_mac; only client_mac identifies the device.
            device = self.device(key, ts, ip)
            if device is None:
                return
            hostname = fields.get("hostname") or fields.get("client_fqdn")
            if hostname:
                device.hostname = str(hostname)[:64]
                device.add_hint("hostname", hostname)
            device.add_hint("dhcp_vendor_class", fields.get("vendor_class") or fields.get("vendor_class_identifier"))
            params = fields.get("parameter_request_list") or fields.get("params")
            if isinstance(params, (list, tuple)):
                params = ",".join(str(p) for p in params)
            device.add_hint("dhcp_params", params)
            device.add_hint("mud_url", fields.get("mud_url"))
            return

        if proto in ("mdns", "ssdp"):
            # Only what a device says about itself (answers, NOTIFY, search
            # responses) describes it; a phone *asking* for _hue._tcp is not
            # a Hue bridge.
            if sender is None:
                return
            device = self.device(sender, ts, five.src_ip)
            if device is None:
                return
            if proto == "mdns":
                if str(fields.get("type", "")).lower() in ("query", "request"):
                    return
                for name in _mdns_names(fields):
                    device.add_hint("mdns", name)
                    if name.endswith(".local") and "._" not in name and not device.hostname:
                        device.hostname = name[:-6][:64]
            else:
                method = str(fields.get("method", "")).upper()
                if method == "M-SEARCH":
                    device.add_hint("user_agent", fields.get("user_agent") or fields.get("http_user_agent"))
                    return
                device.add_hint("ssdp_server", fields.get("server"))
                device.add_hint("ssdp_usn", fields.get("usn"))
                device.add_hint("ssdp_type", fields.get("nt") or fields.get("st"))
                device.add_hint("ssdp_location", fields.get("location"))
                for name in ("friendly_name", "model_name", "manufacturer", "model"):
                    device.add_hint(f"upnp_{name}", fields.get(name))
            return

        if proto == "http":
            # HTTP records are logged from the flow's point of view (the
            # worker puts the client first, as Suricata does), with the
            # client's MAC; the response headers belong to the server.
            client_ip, server_ip = five.src_ip, five.dest_ip
            client = sender
            server = self.key_for_ip(server_ip) if server_ip in self.home else None
            if client is not None:
                device = self.device(client, ts, client_ip)
                if device is not None:
                    device.add_hint("user_agent", fields.get("http_user_agent"))
            if server is not None:
                device = self.device(server, ts, server_ip)
                if device is not None:
                    device.add_hint("http_server", fields.get("server"))
                    upnp = fields.get("upnp")
                    if isinstance(upnp, dict):
                        for name in ("manufacturer", "modelName", "friendlyName", "deviceType"):
                            device.add_hint(f"upnp_{name}", upnp.get(name))
                    url = fields.get("url")
                    if url and "onvif" in str(url).lower():
                        device.add_hint("url", url)
            return

        if proto == "tls":
            if sender is None:
                return
            device = self.device(sender, ts, five.src_ip)
            if device is None:
                return
            device.add_hint("sni", fields.get("sni"))
            ja3 = fields.get("ja3")
            if isinstance(ja3, dict):
                ja3 = ja3.get("hash")
            device.add_hint("ja3", ja3)
            ja4 = fields.get("ja4")
            if isinstance(ja4, dict):
                ja4 = ja4.get("hash") or ja4.get("string")
            device.add_hint("ja4", ja4)
            return

        if proto == "dns":
            client = receiver if five.dest_ip in self.home and five.src_port == 53 else sender
            if client is None:
                return
            device = self.device(client, ts, None)
            if device is None:
                return
            for name in dns_query_names(fields):
                device.add_hint("dns", name)

    # --- type guess ---------------------------------------------------
    def guess(self, device: Device) -> None:
        """(Re)compute type/model/confidence/evidence for one device."""
        if device._guessed:
            return
        best = None
        for rule, conditions in self.rules:
            evidence = []
            for sources, pattern in conditions:
                hit = None
                for source in sources:
                    values = [device.vendor] if source == "vendor" else device.hints.get(source, ())
                    for value in values:
                        if value and pattern.search(value):
                            hit = {"source": source, "value": value}
                            break
                    if hit:
                        break
                if hit is None:
                    break
                evidence.append(hit)
            else:
                if best is None or rule["confidence"] > best[0]["confidence"]:
                    best = (rule, evidence)
        if best is not None:
            rule, evidence = best
            device.type_guess = rule["type"]
            device.model_guess = rule.get("model")
            device.confidence = rule["confidence"]
            device.evidence = evidence
        else:
            device.type_guess = device.model_guess = None
            device.confidence = 0.0
            device.evidence = ([{"source": "vendor", "value": device.vendor}]
                               if device.vendor else [])
        device._guessed = True

    def guesses(self) -> dict[str, Device]:
        for device in self.devices.values():
            self.guess(device)
        return self.devices

    # --- persistence --------------------------------------------------
    def sync(self, store) -> int:
        """Upsert changed devices into the store; read user overrides back.

        Returns the number of device rows written. `store` is an
        `ips.store.Store`; only its connection and lock are used.
        """
        conn = store.conn
        lock = getattr(store, "_lock", None)
        rows, ip_rows = [], []
        for device in self.devices.values():
            if not device.dirty:
                continue
            self.guess(device)
            rows.append((device.key, device.ip, device.vendor, device.hostname,
                         device.type_guess, device.model_guess, device.confidence,
                         json.dumps(device.evidence), device.first_seen, device.last_seen))
            ip_rows.extend((device.key, ip, span[0], span[1]) for ip, span in device.ips.items())
            device.dirty = False
        if lock is not None:
            lock.acquire()
        try:
            if rows:
                conn.executemany(
                    "INSERT INTO devices (mac, ip, vendor, hostname, type_guess,"
                    " model_guess, confidence, evidence, first_seen, last_seen)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT(mac) DO UPDATE SET"
                    " ip=COALESCE(excluded.ip, devices.ip), vendor=excluded.vendor,"
                    " hostname=COALESCE(excluded.hostname, devices.hostname),"
                    " type_guess=excluded.type_guess, model_guess=excluded.model_guess,"
                    " confidence=excluded.confidence, evidence=excluded.evidence,"
                    " first_seen=MIN(COALESCE(devices.first_seen, excluded.first_seen), excluded.first_seen),"
                    " last_seen=MAX(COALESCE(devices.last_seen, 0), excluded.last_seen)", rows)
            if ip_rows:
                conn.executemany(
                    "INSERT INTO device_ips (mac, ip, first_seen, last_seen) VALUES (?,?,?,?)"
                    " ON CONFLICT(mac, ip) DO UPDATE SET"
                    " first_seen=MIN(device_ips.first_seen, excluded.first_seen),"
                    " last_seen=MAX(device_ips.last_seen, excluded.last_seen)", ip_rows)
            # The control plane writes overrides; the store is their truth.
            for row in conn.execute("SELECT mac, user_name, user_type FROM devices"
                                    " WHERE user_name IS NOT NULL OR user_type IS NOT NULL"):
                device = self.devices.get(row[0])
                if device is not None:
                    device.user_name, device.user_type = row[1], row[2]
        finally:
            if lock is not None:
                lock.release()
        return len(rows)

    def load(self, store) -> int:
        """Restore devices from the store (after a restart)."""
        count = 0
        for row in store.conn.execute(
                "SELECT mac, vendor, hostname, user_name, user_type, first_seen,"
                " last_seen FROM devices"):
            device = self.device(row[0], row[6] or row[5] or 0.0)
            if device is None:
                continue
            device.first_seen = row[5] or device.first_seen
            device.hostname = row[2]
            device.user_name, device.user_type = row[3], row[4]
            device.dirty = False
            count += 1
        for row in store.conn.execute("SELECT mac, ip, first_seen, last_seen FROM device_ips"):
            device = self.devices.get(row[0])
            if device is not None and len(device.ips) < MAX_IPS_PER_DEVICE:
                device.ips[row[1]] = [row[2], row[3]]
                self.ip_owner[row[1]] = row[0]
        return count


# ---------------------------------------------------------------------------
# Field helpers shared with the profiler. Parsers emit EVE-shaped dicts; these
# accept the shapes Suricata uses (v1 per-record, v2 grouped/answers lists).

def _iter_records(fields: dict, *names: str):
    for name in names:
        value = fields.get(name)
        if isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    yield item


def dns_query_names(fields: dict) -> list[str]:
    names = []
    rrname = fields.get("rrname")
    if isinstance(rrname, str):
        names.append(rrname)
    for item in _iter_records(fields, "queries", "query"):
        if isinstance(item.get("rrname"), str):
            names.append(item["rrname"])
    return [n.rstrip(".").lower() for n in names if n]


def dns_answers(fields: dict) -> list[tuple[str, str]]:
    """(name, address) pairs from A/AAAA answers (and CNAME chains' names)."""
    pairs = []
    query = dns_query_names(fields)
    for item in _iter_records(fields, "answers", "answer"):
        rdata = item.get("rdata")
        rrtype = str(item.get("rrtype", "A")).upper()
        if isinstance(rdata, str) and rrtype in ("A", "AAAA"):
            name = item.get("rrname") or (query[0] if query else None)
            if isinstance(name, str):
                pairs.append((name.rstrip(".").lower(), rdata))
    grouped = fields.get("grouped")
    if isinstance(grouped, dict) and query:
        for rrtype in ("A", "AAAA"):
            for rdata in grouped.get(rrtype, ()) or ():
                if isinstance(rdata, str):
                    pairs.append((query[0], rdata))
    if fields.get("type") == "answer" and isinstance(fields.get("rdata"), str) \
            and str(fields.get("rrtype", "A")).upper() in ("A", "AAAA") and query:
        pairs.append((query[0], fields["rdata"]))
    return pairs


def _mdns_names(fields: dict) -> list[str]:
    names = []
    for item in _iter_records(fields, "answers", "answer", "additionals", "authorities"):
        for key in ("rrname", "rdata"):
            value = item.get(key)
            if isinstance(value, str):
                names.append(value)
    for key in ("service_types", "instances", "names", "services"):
        value = fields.get(key)
        if isinstance(value, list):
            names.extend(v for v in value if isinstance(v, str))
    for key in ("hostname", "name", "rrname"):
        value = fields.get(key)
        if isinstance(value, str):
            names.append(value)
    return [n.rstrip(".") for n in names if n][:32]
