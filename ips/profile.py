"""Behaviour profiles per device, and explainable anomaly events.

Theory of operation
-------------------
Each LAN device (see `ips.inventory` for what counts as one) gets a
`DeviceProfile`: the destinations it talks to (IP, /24 prefix and the DNS name
the device itself resolved), the ports and protocols it uses, LAN peers,
bytes sent per hour, and the hours of the day it is active. Time is packet
time, so replaying days of capture learns exactly what days of live traffic
would.

Lifecycle: a device is *learning* for `config.learning_days` after it was
first seen; every observation goes into the baseline. Then it is
*protected*: the baseline is frozen and departures from it become
`events.DeviceAnomaly` (new_destination, new_port, unusual_time,
unusual_volume). `Profiler.relearn(mac, until=ts)` opens a *relearning*
window (e.g. for a firmware update) during which observations extend the
baseline again. Behaviour that is suspicious without any baseline (scan,
brute_force, known_bad_destination) is reported in every stage, and
new_device once the box itself has finished its first learning period.

No storms: an anomaly is reported once per (device, kind, clock hour). The
first occurrence is emitted at once (so a response can follow quickly);
later ones in the same hour are counted, and when the hour closes one
summary event with the final count is emitted (observed["summary"] = True,
same observed["window_start"]). A destination or port already reported is
not reported again.

Every buffer is bounded (MAX_* below); a device that exceeds a bound keeps
working with what it has, it never grows the collector without limit.
Malformed events (missing fields, odd types) are counted in `self.malformed`
and ignored.
"""
from __future__ import annotations

import ipaddress
import math
import time
from collections import deque
from pathlib import Path
from typing import Any, Iterable

from ips import events, oui
from ips.inventory import (HomeNet, Inventory, device_key, dns_answers, dns_query_names,
                           is_group_ip)

KINDS = ("new_device", "new_destination", "unusual_time", "unusual_volume",
         "new_port", "scan", "brute_force", "known_bad_destination")

DEFAULT_BLOCKLIST = Path(__file__).resolve().parent.parent / "signatures" / "blocklist.txt"

HOUR = 3600.0
DAY = 86400.0

# Kinds whose evidence grows while the behaviour lasts; their end-of-window
# summary shows the latest (largest) observation rather than the first.
GROWING_KINDS = ("scan", "brute_force", "unusual_volume")

MAX_DEVICES = 4096
MAX_DESTINATIONS = 1024       # learned destination IPs per device
MAX_NAMES = 512               # learned DNS names per device
MAX_RESOLVED = 1024           # ip -> name answers remembered per device
MAX_PORTS = 256
MAX_PEERS = 256
MAX_ENDPOINTS = 256           # (destination, proto, port) for the MUD export
MAX_REPORTED = 2048           # destinations/ports already reported
MAX_OPEN_BUCKETS = 6          # hourly volume buckets kept open per device
MAX_RECENT_FLOWS = 4096       # scan window entries per device
MAX_BRUTE_KEYS = 256          # (peer, port) pairs tracked for brute force
WINDOW_ITEMS = 10             # examples kept in an anomaly window

# Detection thresholds. Chosen so a busy but healthy device stays below them:
# a phone opens many connections, but nearly all of them are answered.
SCAN_WINDOW = 300.0
SCAN_MIN_DESTINATIONS = 16
SCAN_MIN_PORTS = 24
SCAN_FAILED_RATIO = 0.6
BRUTE_WINDOW = 600.0
BRUTE_MIN_CONNECTIONS = 8
BRUTE_MIN_LOGIN_FAILURES = 5
BRUTE_SHORT_SECONDS = 30.0
BRUTE_SMALL_BYTES = 8192
VOLUME_FACTOR = 4.0
VOLUME_MIN_EXCESS = 256 * 1024

# Services whose login a password guesser hammers.
WEB_PORTS = frozenset({80, 81, 8080, 8081})
AUTH_PORTS = {21: "FTP", 22: "SSH", 23: "telnet", 2323: "telnet", 80: "web",
              8080: "web", 81: "web", 8081: "web", 3389: "remote desktop",
              5900: "VNC", 8291: "MikroTik", 1883: "MQTT", 554: "RTSP",
              7547: "TR-069"}
SERVICE_NAMES = {**AUTH_PORTS, 53: "DNS", 123: "NTP", 443: "HTTPS", 8883: "MQTT/TLS",
                 67: "DHCP", 68: "DHCP", 5353: "mDNS", 1900: "SSDP", 502: "Modbus",
                 102: "S7", 44818: "EtherNet/IP", 47808: "BACnet", 9999: "TP-Link",
                 54321: "miio", 6666: "Tuya", 6667: "Tuya", 25: "mail"}

TH_RST = 4


def human_bytes(count: float) -> str:
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if count >= size:
            value = count / size
            return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"
    return f"{int(count)} bytes"


def prefix_of(ip: str) -> str:
    """The /24 (IPv4) or /48 (IPv6) a cloud service rotates its addresses in."""
    if ":" in ip:
        try:
            return str(ipaddress.ip_network(f"{ip}/48", strict=False))
        except ValueError:
            return ip
    return ip.rsplit(".", 1)[0] + ".0/24"


def registered_domain(name: str) -> str:
    """Naive registrable domain (last two labels; three under a 2-letter
    second level like co.uk). Enough to tie a.cloud.example to b.cloud.example."""
    labels = name.rstrip(".").lower().split(".")
    if len(labels) >= 3 and len(labels[-2]) <= 3 and len(labels[-1]) == 2:
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])


# ---------------------------------------------------------------------------

class Blocklist:
    """Known-bad IPs, networks and domains, one per line ('#' comments).

    A domain matches itself and its subdomains.
    """

    __slots__ = ("addresses", "networks", "domains", "path")

    def __init__(self, entries: Iterable[str] = (), path: str | None = None) -> None:
        self.addresses: set[str] = set()
        self.networks: list = []
        self.domains: set[str] = set()
        self.path = path
        for line in entries:
            self.add(line)

    @classmethod
    def from_file(cls, path: str | Path) -> "Blocklist":
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                return cls(handle, path=str(path))
        except OSError:
            return cls(path=str(path))

    def add(self, line: str) -> None:
        entry = line.split("#", 1)[0].strip().lower()
        if not entry:
            return
        try:
            if "/" in entry:
                self.networks.append(ipaddress.ip_network(entry, strict=False))
            else:
                self.addresses.add(str(ipaddress.ip_address(entry)))
        except ValueError:
            self.domains.add(entry.rstrip("."))

    def match_ip(self, ip: str | None) -> str | None:
        if not ip:
            return None
        if ip in self.addresses:
            return ip
        if self.networks:
            try:
                address = ipaddress.ip_address(ip)
            except ValueError:
                return None
            for network in self.networks:
                if address.version == network.version and address in network:
                    return str(network)
        return None

    def match_name(self, name: str | None) -> str | None:
        if not name or not self.domains:
            return None
        labels = name.rstrip(".").lower().split(".")
        for start in range(len(labels)):
            candidate = ".".join(labels[start:])
            if candidate in self.domains:
                return candidate
        return None

    def __len__(self) -> int:
        return len(self.addresses) + len(self.networks) + len(self.domains)


class Window:
    """One (device, kind, hour) anomaly window: counted, reported once."""

    __slots__ = ("kind", "start", "end", "count", "items", "last_event", "emitted_count",
                 "latest")

    def __init__(self, kind: str, start: float) -> None:
        self.kind = kind
        self.start = start
        self.end = start + HOUR
        self.count = 0
        self.items: list[str] = []
        self.last_event: events.DeviceAnomaly | None = None
        self.emitted_count = 0
        # (score, observed, explanation) of the most recent occurrence:
        # a scan or brute force grows while it runs, its summary says how far.
        self.latest: tuple | None = None


class DeviceProfile:
    """The learned behaviour of one device, plus its live detection state."""

    __slots__ = (
        "key", "ip", "first_seen", "last_seen", "stage", "stage_until",
        # baseline
        "destinations", "prefixes", "names", "domains", "ports", "peers",
        "endpoints", "hours_of_day", "hours_of_week", "max_up_hour",
        "max_up_by_hour_of_day", "learned_hours", "total_up", "total_down",
        "learned_flows",
        # live state
        "resolved", "buckets", "reported", "recent", "recent_destinations",
        "recent_failed", "recent_ports", "brute", "windows", "flows",
    )

    def __init__(self, key: str, ts: float, learn_until: float) -> None:
        self.key = key
        self.ip: str | None = None
        self.first_seen = ts
        self.last_seen = ts
        self.stage = "learning"
        self.stage_until = learn_until
        self.destinations: dict[str, int] = {}
        self.prefixes: set[str] = set()
        self.names: set[str] = set()
        self.domains: set[str] = set()
        self.ports: dict[str, int] = {}
        self.peers: set[str] = set()
        self.endpoints: dict[tuple[str, str, int], int] = {}
        self.hours_of_day = [0] * 24
        self.hours_of_week = [0] * 168
        self.max_up_hour = 0
        self.max_up_by_hour_of_day = [0] * 24
        self.learned_hours = 0
        self.total_up = 0
        self.total_down = 0
        self.learned_flows = 0
        self.resolved: dict[str, str] = {}
        # hour index -> [bytes up, bytes down, learning?, reported?, top destination, its bytes]
        self.buckets: dict[int, list] = {}
        self.reported: set[str] = set()
        self.recent: deque = deque()
        self.recent_destinations: dict[str, int] = {}
        self.recent_failed = 0
        self.recent_ports: dict[str, dict[int, int]] = {}
        self.brute: dict[tuple[str, int, bool], deque] = {}
        self.windows: dict[str, Window] = {}
        self.flows = 0

    def learning_at(self, ts: float) -> bool:
        """Whether observations at `ts` extend the baseline (and advance the stage)."""
        if self.stage in ("learning", "relearning"):
            if self.stage_until is None or ts < self.stage_until:
                return True
            self.stage = "protected"
        return False

    def summary(self) -> dict[str, Any]:
        """JSON-able profile for the store (`devices.profile`) and the UI."""
        top = sorted(self.destinations.items(), key=lambda kv: -kv[1])[:50]
        return {
            "stage": self.stage, "stage_until": self.stage_until,
            "destinations": [{"ip": ip, "flows": n} for ip, n in top],
            "names": sorted(self.names)[:100], "ports": dict(sorted(self.ports.items())[:100]),
            "peers": sorted(self.peers)[:100], "hours_of_day": list(self.hours_of_day),
            "hours_of_week": list(self.hours_of_week),
            "max_bytes_up_per_hour": self.max_up_hour,
            "max_bytes_up_by_hour_of_day": list(self.max_up_by_hour_of_day),
            "learned_hours": self.learned_hours, "bytes_up": self.total_up,
            "bytes_down": self.total_down, "flows": self.flows,
        }

    def restore(self, summary: dict[str, Any]) -> None:
        """Inverse of summary() for the baseline part (after a restart)."""
        self.stage = summary.get("stage", self.stage)
        self.stage_until = summary.get("stage_until", self.stage_until)
        for item in summary.get("destinations", ()):
            self.destinations[item["ip"]] = item.get("flows", 1)
            self.prefixes.add(prefix_of(item["ip"]))
        for name in summary.get("names", ()):
            self.names.add(name)
            self.domains.add(registered_domain(name))
        self.ports.update(summary.get("ports", {}))
        self.peers.update(summary.get("peers", ()))
        if len(summary.get("hours_of_day", ())) == 24:
            self.hours_of_day = list(summary["hours_of_day"])
        if len(summary.get("hours_of_week", ())) == 168:
            self.hours_of_week = list(summary["hours_of_week"])
        self.max_up_hour = summary.get("max_bytes_up_per_hour", 0)
        if len(summary.get("max_bytes_up_by_hour_of_day", ())) == 24:
            self.max_up_by_hour_of_day = list(summary["max_bytes_up_by_hour_of_day"])
        self.learned_hours = summary.get("learned_hours", 0)


# ---------------------------------------------------------------------------

class Profiler:
    """Collector consumer: learns profiles and returns DeviceAnomaly events."""

    def __init__(self, config, *, inventory=None, store=None,
                 blocklist: Blocklist | None = None, utc_offset_hours: float | None = None,
                 sync_interval: float = 300.0) -> None:
        self.config = config
        self.home = HomeNet(config.home_net)
        self.learning_seconds = float(config.learning_days) * DAY
        extra = getattr(config, "extra", {}) or {}
        if blocklist is None:
            blocklist = Blocklist.from_file(extra.get("profiling.blocklist") or DEFAULT_BLOCKLIST)
        self.blocklist = blocklist
        if utc_offset_hours is None:
            utc_offset_hours = float(extra.get("profiling.utc-offset-hours", 0) or 0)
        self.utc_offset = utc_offset_hours * HOUR
        self.inventory = inventory
        self.store = store
        self.sync_interval = sync_interval
        self.profiles: dict[str, DeviceProfile] = {}
        self.started: float | None = None
        self.now = 0.0
        self.malformed = 0
        self.dropped_devices = 0
        self._last_sync: float | None = None
        self.emitted: list[events.DeviceAnomaly] = []  # bounded below; for tests and the bench
        self.max_emitted = 10_000
        # profiles created since the last hook returned, to announce as new_device
        self._pending: list[DeviceProfile] = []
        self.ip_owner: dict[str, str] = {}
        self.saw_macs = False

    # --- helpers -------------------------------------------------------
    def _local_hour(self, ts: float) -> tuple[int, int]:
        """(hour of day, hour of week with Monday 00:00 = 0) in local time."""
        local = time.gmtime(ts + self.utc_offset)
        return local.tm_hour, local.tm_wday * 24 + local.tm_hour

    def _clock(self, ts: float) -> str:
        return time.strftime("%H:%M", time.gmtime(ts + self.utc_offset))

    def _name(self, key: str) -> str:
        if self.inventory is not None:
            device = self.inventory.devices.get(key)
            if device is not None:
                self.inventory.guess(device)
                name = device.display_name
                return name[0].upper() + name[1:]
        return f"Device {key}"

    def _label(self, profile: DeviceProfile, ip: str) -> str:
        name = profile.resolved.get(ip)
        return f"{ip} ({name})" if name else ip

    def _days(self, profile: DeviceProfile) -> str:
        learned = max(0.0, min(profile.last_seen, profile.stage_until or profile.last_seen)
                      - profile.first_seen) / DAY
        if learned >= 1.5:
            return f"{learned:.0f} days"
        if learned * 24 >= 1.5:
            return f"{learned * 24:.0f} hours"
        return f"{max(1, round(learned * 1440))} minutes"

    def profile(self, key: str, ts: float) -> DeviceProfile | None:
        profile = self.profiles.get(key)
        if profile is None:
            if len(self.profiles) >= MAX_DEVICES:
                self.dropped_devices += 1
                return None
            profile = DeviceProfile(key, ts, ts + self.learning_seconds)
            self.profiles[key] = profile
            if self.started is None:
                self.started = ts
            elif ts >= self.started + self.learning_seconds:
                self._pending.append(profile)
        if ts > profile.last_seen:
            profile.last_seen = ts
        return profile

    def local_device(self, ip: str | None, mac: str | None) -> str | None:
        if ip not in self.home or is_group_ip(ip):
            return None
        return device_key(mac, ip)

    def stage(self, key: str) -> str | None:
        profile = self.profiles.get(oui.normalise_mac(key) or key)
        if profile is None:
            return None
        profile.learning_at(self.now)
        return profile.stage

    def relearn(self, key: str, until: float) -> None:
        """Open a re-learning window (e.g. an announced firmware update)."""
        profile = self.profiles.get(oui.normalise_mac(key) or key) or self.profile(
            oui.normalise_mac(key) or key, self.now)
        if profile is not None:
            profile.stage = "relearning"
            profile.stage_until = until

    # --- anomaly windows ----------------------------------------------
    def _report(self, profile: DeviceProfile, kind: str, ts: float, item: str, *,
                score: float, observed: dict, baseline: dict, explanation: str,
                ip: str | None = None) -> list[events.DeviceAnomaly]:
        out: list[events.DeviceAnomaly] = []
        window = profile.windows.get(kind)
        if window is not None and ts >= window.end:
            out.extend(self._close(profile, window))
            window = None
        if window is None:
            start = math.floor((ts + self.utc_offset) / HOUR) * HOUR - self.utc_offset
            window = Window(kind, start)
            profile.windows[kind] = window
        window.count += 1
        if item and item not in window.items and len(window.items) < WINDOW_ITEMS:
            window.items.append(item)
        window.latest = (score, observed, explanation)
        if window.last_event is None:
            observed = dict(observed, window_start=window.start)
            event = events.DeviceAnomaly(
                timestamp=ts, mac=profile.key, ip=ip or profile.ip, kind=kind,
                score=round(max(0.0, min(1.0, score)), 3), observed=observed,
                baseline=baseline, explanation=explanation, count=1,
                name=self._display(profile.key))
            window.last_event = event
            window.emitted_count = 1
            out.append(event)
        return self._record(out)

    def _close(self, profile: DeviceProfile, window: Window) -> list[events.DeviceAnomaly]:
        profile.windows.pop(window.kind, None)
        first = window.last_event
        if first is None or window.count <= window.emitted_count:
            return []
        span = f"between {self._clock(window.start)} and {self._clock(window.end)}"
        score, observed, explanation = first.score, first.observed, first.explanation
        if window.kind in GROWING_KINDS and window.latest is not None:
            score = max(score, round(max(0.0, min(1.0, window.latest[0])), 3))
            observed, explanation = window.latest[1], window.latest[2]
            suffix = f" (latest figures for the hour {span})"
        elif window.kind in ("new_destination", "new_port"):
            what = "destinations" if window.kind == "new_destination" else "ports"
            suffix = (f" ({window.count} new {what} {span}, e.g. "
                      f"{', '.join(window.items[:5])})")
        else:
            suffix = f" ({window.count} times {span})"
        observed = dict(observed, summary=True, examples=list(window.items),
                        window_start=window.start)
        return [events.DeviceAnomaly(
            timestamp=window.end, mac=first.mac, ip=first.ip, kind=first.kind,
            score=score, observed=observed, baseline=first.baseline,
            explanation=explanation.rstrip(".") + suffix + ".", count=window.count,
            name=first.name)]

    def _record(self, out: list[events.DeviceAnomaly]) -> list[events.DeviceAnomaly]:
        if out and len(self.emitted) < self.max_emitted:
            self.emitted.extend(out[: self.max_emitted - len(self.emitted)])
        return out

    def _display(self, key: str) -> str | None:
        if self.inventory is None:
            return None
        device = self.inventory.devices.get(key)
        return device.user_name if device is not None else None

    # --- hooks ---------------------------------------------------------
    def flow_end(self, flow: events.FlowEnd):
        try:
            out = self._flow_end(flow)
        except (TypeError, ValueError, AttributeError, KeyError):
            self.malformed += 1
            out = []
        return self._announce(out)

    def app_record(self, record: events.AppRecord):
        try:
            out = self._app_record(record)
        except (TypeError, ValueError, AttributeError, KeyError):
            self.malformed += 1
            out = []
        return self._announce(out)

    def _announce(self, out: list[events.DeviceAnomaly]) -> list[events.DeviceAnomaly]:
        """Prepend new_device events for profiles created during this hook."""
        if not self._pending:
            return out
        announced: list[events.DeviceAnomaly] = []
        for profile in self._pending:
            announced.extend(self._check_new_device(profile, profile.first_seen))
        self._pending.clear()
        return announced + out

    def tick(self, ts: float):
        self.now = max(self.now, ts)
        out: list[events.DeviceAnomaly] = []
        for profile in self.profiles.values():
            for window in [w for w in profile.windows.values() if ts >= w.end]:
                out.extend(self._close(profile, window))
        if self.store is not None and (self._last_sync is None
                                       or ts - self._last_sync >= self.sync_interval):
            self.sync(self.store)
            self._last_sync = ts
        return self._record(out)

    def done(self):
        out: list[events.DeviceAnomaly] = []
        for profile in self.profiles.values():
            for window in list(profile.windows.values()):
                out.extend(self._close(profile, window))
            self._fold_buckets(profile, None)
        if self.store is not None:
            self.sync(self.store)
        return self._record(out)

    # --- flows -----------------------------------------------------------
    def _flow_end(self, flow: events.FlowEnd) -> list[events.DeviceAnomaly]:
        ts = flow.end or flow.timestamp
        if self.started is None:
            self.started = ts
        self.now = max(self.now, ts)
        five = flow.tuple
        proto = (five.proto or "").lower()
        if flow.client_mac:
            self.saw_macs = True
        client = self._key_for(five.src_ip, flow.client_mac)
        # A target that never answered (a scan probe) is not a device.
        server = (self._key_for(five.dest_ip, flow.server_mac)
                  if flow.pkts_toclient > 0 else None)
        out: list[events.DeviceAnomaly] = []
        if client is not None:
            out.extend(self._outbound(client, flow, ts, proto, server))
        if server is not None:
            out.extend(self._inbound(server, flow, ts, proto, client))
        return out

    def _outbound(self, key: str, flow: events.FlowEnd, ts: float, proto: str,
                  peer_key: str | None) -> list[events.DeviceAnomaly]:
        five = flow.tuple
        out: list[events.DeviceAnomaly] = []
        profile = self.profile(key, ts)
        if profile is None:
            return out
        self._set_ip(profile, five.src_ip)
        profile.flows += 1
        destination = five.dest_ip
        port = five.dest_port
        service = f"{proto}/{port}" if port else proto
        group = is_group_ip(destination)
        local = destination in self.home
        learning = profile.learning_at(flow.start or ts)
        failed = _failed(flow)
        sent, received = flow.bytes_toserver, flow.bytes_toclient

        # known-bad first: in every stage, and it explains the flow best.
        bad = self.blocklist.match_ip(destination) or self.blocklist.match_name(
            profile.resolved.get(destination))
        if bad is not None:
            out.extend(self._report(
                profile, "known_bad_destination", ts, destination, score=1.0,
                observed={"destination": destination, "name": profile.resolved.get(destination),
                          "port": port, "proto": proto, "blocklist_entry": bad,
                          "bytes_sent": sent, "answered": not failed},
                baseline={"blocklist": self.blocklist.path, "entries": len(self.blocklist)},
                explanation=(f"{self._name(key)} contacted {self._label(profile, destination)} "
                             f"on {_service_text(proto, port)} at {self._clock(flow.start or ts)}; "
                             f"that address is on the blocklist of known malicious hosts "
                             f"({bad})" + ("." if failed else " and it answered.")),
                ip=five.src_ip))
            profile.reported.add(f"d:{destination}")

        hour_of_day, hour_of_week = self._local_hour(flow.start or ts)
        if learning:
            self._learn_outbound(profile, destination, port, service, group, local,
                                 peer_key, hour_of_day, hour_of_week)
        elif not group:
            out.extend(self._check_outbound(profile, flow, ts, destination, port, proto,
                                            service, local, peer_key, hour_of_day))
        out.extend(self._volume(profile, ts, sent, received, destination, learning))
        if not group:
            out.extend(self._scan(profile, ts, destination, port, proto, failed))
            out.extend(self._brute(profile, flow, ts, destination, port, outbound=True))
        return out

    def _inbound(self, key: str, flow: events.FlowEnd, ts: float, proto: str,
                 peer_key: str | None) -> list[events.DeviceAnomaly]:
        five = flow.tuple
        out: list[events.DeviceAnomaly] = []
        profile = self.profile(key, ts)
        if profile is None:
            return out
        self._set_ip(profile, five.dest_ip)
        profile.flows += 1
        learning = profile.learning_at(flow.start or ts)
        if peer_key is not None and learning and len(profile.peers) < MAX_PEERS:
            profile.peers.add(peer_key)
        # The device's upload on a connection it answered is bytes_toclient.
        out.extend(self._volume(profile, ts, flow.bytes_toclient, flow.bytes_toserver,
                                five.src_ip, learning))
        bad = self.blocklist.match_ip(five.src_ip)
        if bad is not None and flow.pkts_toclient > 0:
            out.extend(self._report(
                profile, "known_bad_destination", ts, five.src_ip, score=0.9,
                observed={"source": five.src_ip, "port": five.dest_port, "proto": proto,
                          "blocklist_entry": bad, "bytes_sent": flow.bytes_toclient},
                baseline={"blocklist": self.blocklist.path, "entries": len(self.blocklist)},
                explanation=(f"{self._name(key)} answered a connection from {five.src_ip} "
                             f"on {_service_text(proto, five.dest_port)}; that address is on "
                             f"the blocklist of known malicious hosts ({bad})."),
                ip=five.dest_ip))
        if peer_key is None:  # LAN-to-LAN brute force is reported on the attacker
            out.extend(self._brute(profile, flow, ts, five.src_ip, five.dest_port, outbound=False))
        return out

    def _check_new_device(self, profile: DeviceProfile, ts: float) -> list[events.DeviceAnomaly]:
        vendor = None if profile.key.startswith("ip:") else oui.vendor(profile.key)
        what = (f"a device made by {vendor}" if vendor and vendor != oui.LOCALLY_ADMINISTERED
                else "a device")
        return self._report(
            profile, "new_device", ts, profile.key, score=0.5,
            observed={"mac": profile.key, "vendor": vendor, "ip": profile.ip},
            baseline={"devices_known": len(self.profiles) - 1},
            explanation=(f"A new device appeared on your network at {self._clock(ts)}: "
                         f"{what} ({profile.key}) using {profile.ip}."),
            ip=profile.ip)

    def _learn_outbound(self, profile: DeviceProfile, destination: str, port: int,
                        service: str, group: bool, local: bool, peer_key: str | None,
                        hour_of_day: int, hour_of_week: int) -> None:
        profile.learned_flows += 1
        profile.hours_of_day[hour_of_day] += 1
        profile.hours_of_week[hour_of_week] += 1
        if group:
            return
        if destination in profile.destinations:
            profile.destinations[destination] += 1
        elif len(profile.destinations) < MAX_DESTINATIONS:
            profile.destinations[destination] = 1
            profile.prefixes.add(prefix_of(destination))
        name = profile.resolved.get(destination)
        if name and len(profile.names) < MAX_NAMES:
            profile.names.add(name)
            profile.domains.add(registered_domain(name))
        if service in profile.ports:
            profile.ports[service] += 1
        elif len(profile.ports) < MAX_PORTS:
            profile.ports[service] = 1
        if local and len(profile.peers) < MAX_PEERS:
            profile.peers.add(peer_key or destination)
        endpoint = (name or destination, service.split("/")[0], port)
        if endpoint in profile.endpoints:
            profile.endpoints[endpoint] += 1
        elif len(profile.endpoints) < MAX_ENDPOINTS:
            profile.endpoints[endpoint] = 1

    def _known_destination(self, profile: DeviceProfile, destination: str,
                           local: bool, peer_key: str | None) -> bool:
        if destination in profile.destinations:
            return True
        if local:
            return (peer_key or destination) in profile.peers
        if prefix_of(destination) in profile.prefixes:
            return True
        name = profile.resolved.get(destination)
        return bool(name) and (name in profile.names or registered_domain(name) in profile.domains)

    def _check_outbound(self, profile: DeviceProfile, flow: events.FlowEnd, ts: float,
                        destination: str, port: int, proto: str, service: str,
                        local: bool, peer_key: str | None,
                        hour_of_day: int) -> list[events.DeviceAnomaly]:
        out: list[events.DeviceAnomaly] = []
        key = profile.key
        start = flow.start or ts
        if (f"d:{destination}" not in profile.reported
                and not self._known_destination(profile, destination, local, peer_key)):
            _bounded_add(profile.reported, f"d:{destination}")
            usual = sorted(profile.destinations, key=lambda d: -profile.destinations[d])[:3]
            usual_text = ", ".join(self._label(profile, d) for d in usual)
            history = (f"it only talked to {len(profile.destinations)} addresses such as {usual_text}"
                       if usual else "it talked to no other address")
            where = "a device on your network" if local else "an internet address"
            night = hour_of_day < 6
            out.extend(self._report(
                profile, "new_destination", ts, destination,
                score=0.6 + (0.2 if night else 0) + (0.1 if flow.bytes_toserver > 100_000 else 0),
                observed={"destination": destination, "name": profile.resolved.get(destination),
                          "port": port, "proto": proto, "bytes_sent": flow.bytes_toserver,
                          "local": local, "time": self._clock(start)},
                baseline={"destinations": len(profile.destinations), "examples": usual,
                          "names": sorted(profile.names)[:10]},
                explanation=(f"{self._name(key)} contacted {self._label(profile, destination)}, "
                             f"{where} it never talked to before, on "
                             f"{_service_text(proto, port)} at {self._clock(start)}; in "
                             f"{self._days(profile)} of learning {history}."),
                ip=profile.ip))
        if f"p:{service}" not in profile.reported and service not in profile.ports:
            _bounded_add(profile.reported, f"p:{service}")
            usual = ", ".join(sorted(profile.ports, key=lambda s: -profile.ports[s])[:5]) or "none"
            out.extend(self._report(
                profile, "new_port", ts, service, score=0.7 if port in AUTH_PORTS else 0.5,
                observed={"service": service, "destination": destination, "port": port,
                          "proto": proto},
                baseline={"ports": sorted(profile.ports)[:20]},
                explanation=(f"{self._name(key)} used {_service_text(proto, port)} to reach "
                             f"{self._label(profile, destination)} at {self._clock(start)}, "
                             f"which it never used in {self._days(profile)} of learning "
                             f"(usual: {usual})."),
                ip=profile.ip))
        if profile.learned_flows and profile.hours_of_day[hour_of_day] == 0:
            active = _hour_ranges(profile.hours_of_day)
            out.extend(self._report(
                profile, "unusual_time", ts, self._clock(start),
                score=0.5 + (0.2 if hour_of_day < 6 else 0),
                observed={"hour": hour_of_day, "destination": destination, "service": service},
                baseline={"active_hours": [h for h in range(24) if profile.hours_of_day[h]]},
                explanation=(f"{self._name(key)} was active at {self._clock(start)} "
                             f"(talking to {self._label(profile, destination)}), an hour when it "
                             f"was never active in {self._days(profile)} of learning; it is "
                             f"usually active {active}."),
                ip=profile.ip))
        return out

    # --- volume ----------------------------------------------------------
    def _volume(self, profile: DeviceProfile, ts: float, sent: int, received: int,
                peer: str, learning: bool) -> list[events.DeviceAnomaly]:
        hour_index = int((ts + self.utc_offset) // HOUR)
        bucket = profile.buckets.get(hour_index)
        if bucket is None:
            self._fold_buckets(profile, hour_index)
            # [up, down, learning?, reported?, per-peer bytes up]
            bucket = [0, 0, learning, False, {}]
            profile.buckets[hour_index] = bucket
        bucket[0] += sent
        bucket[1] += received
        per_peer = bucket[4]
        if peer in per_peer or len(per_peer) < 64:
            per_peer[peer] = per_peer.get(peer, 0) + sent
        if learning or bucket[2] or profile.learned_hours == 0:
            return []
        baseline = profile.max_up_hour
        threshold = max(baseline * VOLUME_FACTOR, baseline + VOLUME_MIN_EXCESS)
        if bucket[0] <= threshold:
            return []
        bucket[3] = True
        top_peer = max(per_peer, key=per_peer.get)
        hour_of_day = int(((hour_index * HOUR) % DAY) // HOUR)
        same_hour = profile.max_up_by_hour_of_day[hour_of_day]
        start = hour_index * HOUR - self.utc_offset
        ratio = bucket[0] / max(baseline, 1)
        at_hour = (f", and never more than {human_bytes(same_hour)} at this time of day"
                   if same_hour and same_hour < baseline / 2 else
                   (", and never anything at this time of day" if not same_hour else ""))
        return self._report(
            profile, "unusual_volume", ts, top_peer,
            score=min(1.0, 0.5 + math.log10(max(ratio, 1.0)) / 4),
            observed={"bytes_up": bucket[0], "bytes_down": bucket[1],
                      "top_destination": top_peer, "top_destination_bytes": per_peer[top_peer],
                      "hour_start": start},
            baseline={"max_bytes_up_per_hour": baseline, "max_bytes_up_this_hour": same_hour,
                      "learned_hours": profile.learned_hours},
            explanation=(f"{self._name(profile.key)} sent {human_bytes(bucket[0])} "
                         f"(mostly to {self._label(profile, top_peer)}) between "
                         f"{self._clock(start)} and {self._clock(start + HOUR)}; in "
                         f"{self._days(profile)} it never sent more than "
                         f"{human_bytes(baseline)} in an hour{at_hour}."),
            ip=profile.ip)

    def _fold_buckets(self, profile: DeviceProfile, current: int | None) -> None:
        """Move closed learning-hour buckets into the baseline.

        Flow records arrive after a flow ends, so an hour stays open a little
        while (MAX_OPEN_BUCKETS hours) before it is folded."""
        if not profile.buckets:
            return
        for hour_index in sorted(profile.buckets):
            if current is not None and hour_index > current - 2:
                break
            bucket = profile.buckets.pop(hour_index)
            if bucket[2]:
                hour_of_day = int(((hour_index * HOUR) % DAY) // HOUR)
                profile.max_up_hour = max(profile.max_up_hour, bucket[0])
                profile.max_up_by_hour_of_day[hour_of_day] = max(
                    profile.max_up_by_hour_of_day[hour_of_day], bucket[0])
                profile.learned_hours += 1
                profile.total_up += bucket[0]
                profile.total_down += bucket[1]
        while len(profile.buckets) > MAX_OPEN_BUCKETS:
            profile.buckets.pop(min(profile.buckets))

    # --- scan and brute force ---------------------------------------------
    def _scan(self, profile: DeviceProfile, ts: float, destination: str, port: int,
              proto: str, failed: bool) -> list[events.DeviceAnomaly]:
        recent = profile.recent
        recent.append((ts, destination, port, failed))
        profile.recent_destinations[destination] = profile.recent_destinations.get(destination, 0) + 1
        ports = profile.recent_ports.setdefault(destination, {})
        ports[port] = ports.get(port, 0) + 1
        profile.recent_failed += failed
        while recent and (recent[0][0] < ts - SCAN_WINDOW or len(recent) > MAX_RECENT_FLOWS):
            _, old_destination, old_port, old_failed = recent.popleft()
            profile.recent_failed -= old_failed
            remaining = profile.recent_destinations[old_destination] - 1
            if remaining:
                profile.recent_destinations[old_destination] = remaining
                old_ports = profile.recent_ports[old_destination]
                if old_ports[old_port] > 1:
                    old_ports[old_port] -= 1
                else:
                    del old_ports[old_port]
            else:
                del profile.recent_destinations[old_destination]
                del profile.recent_ports[old_destination]
        distinct = len(profile.recent_destinations)
        widest = len(profile.recent_ports[destination])
        if distinct < SCAN_MIN_DESTINATIONS and widest < SCAN_MIN_PORTS:
            return []
        failed_ratio = profile.recent_failed / len(recent)
        if failed_ratio < SCAN_FAILED_RATIO:
            return []
        horizontal = distinct >= SCAN_MIN_DESTINATIONS
        port_counts: dict[int, int] = {}
        for _, _, p, _ in recent:
            port_counts[p] = port_counts.get(p, 0) + 1
        top_ports = sorted(port_counts, key=lambda p: -port_counts[p])[:3]
        local_targets = sum(1 for d in profile.recent_destinations if d in self.home)
        minutes = max(1, round((ts - recent[0][0]) / 60))
        if horizontal:
            what = (f"tried to reach {distinct} different addresses "
                    f"({local_targets} on your network) on "
                    f"{', '.join(_service_text(proto, p) for p in top_ports)}")
        else:
            what = f"tried {widest} different ports on {destination}"
        return self._report(
            profile, "scan", ts, destination,
            score=min(1.0, 0.7 + 0.3 * failed_ratio * min(1.0, distinct / 64)),
            observed={"destinations": distinct, "local_destinations": local_targets,
                      "ports": top_ports, "failed_ratio": round(failed_ratio, 2),
                      "window_seconds": SCAN_WINDOW, "direction": "outbound",
                      "horizontal": horizontal},
            baseline={"destinations": len(profile.destinations),
                      "scan_threshold": SCAN_MIN_DESTINATIONS},
            explanation=(f"{self._name(profile.key)} {what} within {_minutes(minutes)}, and "
                         f"{failed_ratio:.0%} got no answer: this looks like a network scan, "
                         f"typical of malware trying to spread."),
            ip=profile.ip)

    def _brute(self, profile: DeviceProfile, flow: events.FlowEnd, ts: float, peer: str,
               port: int, *, outbound: bool) -> list[events.DeviceAnomaly]:
        if port not in AUTH_PORTS or port in WEB_PORTS:
            # Short web connections are the normal rhythm of many devices (a
            # camera posting a snapshot to its cloud every few seconds); web
            # password guessing is counted from HTTP 401 answers instead
            # (`app_record`).
            return []
        duration = max(0.0, (flow.end or ts) - (flow.start or ts))
        short = (duration <= BRUTE_SHORT_SECONDS
                 and flow.bytes_toserver + flow.bytes_toclient <= BRUTE_SMALL_BYTES)
        if not short:
            return []
        return self._attempt(profile, ts, peer, port, outbound, connections=1)

    def _attempt(self, profile: DeviceProfile, ts: float, peer: str, port: int,
                 outbound: bool, *, connections: int = 0,
                 login_failures: int = 0) -> list[events.DeviceAnomaly]:
        key = (peer, port, outbound)
        history = profile.brute.get(key)
        if history is None:
            if len(profile.brute) >= MAX_BRUTE_KEYS:
                # drop the stalest pair; a real attack refreshes its own
                stalest = min(profile.brute, key=lambda k: profile.brute[k][-1][0] if profile.brute[k] else 0)
                del profile.brute[stalest]
            history = profile.brute[key] = deque(maxlen=256)
        history.append((ts, connections, login_failures))
        while history and history[0][0] < ts - BRUTE_WINDOW:
            history.popleft()
        total_connections = sum(item[1] for item in history)
        total_failures = sum(item[2] for item in history)
        if total_connections < BRUTE_MIN_CONNECTIONS and total_failures < BRUTE_MIN_LOGIN_FAILURES:
            return []
        service = AUTH_PORTS.get(port, f"port {port}")
        minutes = max(1, round((ts - history[0][0]) / 60))
        attempts = (f"{total_failures} failed logins" if total_failures >= BRUTE_MIN_LOGIN_FAILURES
                    else f"{total_connections} short connections")
        if outbound:
            explanation = (f"{self._name(profile.key)} made {attempts} to the {service} login "
                           f"of {self._label(profile, peer)} within {_minutes(minutes)}: this looks "
                           f"like password guessing, typical of malware such as Mirai.")
        else:
            explanation = (f"{peer} made {attempts} to the {service} login of "
                           f"{self._name(profile.key)[0].lower() + self._name(profile.key)[1:]} "
                           f"within {_minutes(minutes)}: someone is trying to guess its password.")
        return self._report(
            profile, "brute_force", ts, f"{peer}:{port}",
            score=min(1.0, 0.7 + 0.02 * max(total_connections, total_failures)),
            observed={"peer": peer, "port": port, "service": service,
                      "connections": total_connections, "login_failures": total_failures,
                      "window_seconds": BRUTE_WINDOW,
                      "direction": "outbound" if outbound else "inbound"},
            baseline={"threshold_connections": BRUTE_MIN_CONNECTIONS,
                      "threshold_login_failures": BRUTE_MIN_LOGIN_FAILURES},
            explanation=explanation, ip=profile.ip)

    # --- app-layer records -------------------------------------------------
    def _app_record(self, record: events.AppRecord) -> list[events.DeviceAnomaly]:
        fields = record.fields or {}
        five = record.tuple
        ts = record.timestamp
        self.now = max(self.now, ts)
        if record.src_mac:
            self.saw_macs = True
        proto = record.app_proto
        out: list[events.DeviceAnomaly] = []
        if proto == "dhcp":
            # A DHCP exchange is often a device's first sign of life, before
            # it has a usable address: key it by the client hardware address.
            address = next((fields.get(n) for n in ("assigned_ip", "client_ip", "requested_ip")
                            if fields.get(n) and fields.get(n) != "0.0.0.0"), None)
            key = device_key(fields.get("client_mac"), None)
            if key is not None and (address in self.home or five.src_ip in self.home):
                profile = self.profile(key, ts)
                if profile is not None and address in self.home:
                    self._set_ip(profile, address)
            return out
        if proto == "dns":
            # The client of the lookup is the local side talking to port 53.
            if five.src_port == 53 or fields.get("type") in ("response", "answer"):
                client_ip = five.dest_ip
            else:
                client_ip = five.src_ip
            key = self._key_for(client_ip, record.src_mac if client_ip == five.src_ip else None)
            if key is None:
                return out
            profile = self.profile(key, ts)
            if profile is None:
                return out
            for name, address in dns_answers(fields):
                if len(profile.resolved) >= MAX_RESOLVED and address not in profile.resolved:
                    profile.resolved.pop(next(iter(profile.resolved)))
                profile.resolved[address] = name
            for name in dns_query_names(fields):
                out.extend(self._check_name(profile, ts, name, "looked up"))
                if profile.learning_at(ts) and len(profile.names) < MAX_NAMES:
                    profile.names.add(name)
                    profile.domains.add(registered_domain(name))
            return out
        if proto == "http" and fields.get("status") == 401:
            # A refused web login: counted like a failed telnet login, on the
            # client if it is ours (it guesses), else on the server (guessed at).
            client = self._key_for(five.src_ip, record.src_mac)
            server = self._key_for(five.dest_ip, None)
            if client is not None:
                profile = self.profile(client, ts)
                if profile is not None:
                    out.extend(self._attempt(profile, ts, five.dest_ip, five.dest_port, True,
                                             login_failures=1))
            elif server is not None:
                profile = self.profile(server, ts)
                if profile is not None:
                    out.extend(self._attempt(profile, ts, five.src_ip, five.dest_port, False,
                                             login_failures=1))
            return out
        if proto in ("tls", "http"):
            name = fields.get("sni") if proto == "tls" else fields.get("hostname")
            # HTTP records are logged from the flow's point of view: the
            # client is the source whichever packet completed them.
            client_ip = five.src_ip
            key = self._key_for(client_ip, record.src_mac if client_ip == five.src_ip else None)
            if key is not None and isinstance(name, str):
                profile = self.profile(key, ts)
                if profile is not None:
                    out.extend(self._check_name(profile, ts, name, "connected to"))
            return out
        if proto == "telnet":
            attempts = fields.get("login_attempts") or fields.get("attempts") or []
            if isinstance(attempts, dict):
                attempts = [attempts]
            if "result" in fields:
                attempts = list(attempts) + [fields]
            failures = sum(1 for a in attempts if isinstance(a, dict)
                           and str(a.get("result", "")).lower() in ("fail", "failed", "failure", "denied"))
            if not failures:
                return out
            # Which side logs in: the telnet client. The record may complete
            # on either direction; the server is the side on port 23/2323.
            if five.dest_port in (23, 2323) or five.src_port not in (23, 2323):
                client_ip, server_ip, port = five.src_ip, five.dest_ip, five.dest_port
            else:
                client_ip, server_ip, port = five.dest_ip, five.src_ip, five.src_port
            client = self._key_for(client_ip, record.src_mac if client_ip == five.src_ip else None)
            server = self._key_for(server_ip, record.src_mac if server_ip == five.src_ip else None)
            if client is not None:
                profile = self.profile(client, ts)
                if profile is not None:
                    out.extend(self._attempt(profile, ts, server_ip, port or 23, True,
                                             login_failures=failures))
            elif server is not None:
                profile = self.profile(server, ts)
                if profile is not None:
                    out.extend(self._attempt(profile, ts, client_ip, port or 23, False,
                                             login_failures=failures))
        return out

    def _key_for(self, ip: str | None, mac: str | None) -> str | None:
        """Device of a local address. Without a MAC on the record, the
        device that last used the address; "ip:" keys only in captures
        that carry no MACs at all (else a lease change would split a device)."""
        if ip not in self.home or is_group_ip(ip):
            return None
        if mac:
            self.saw_macs = True
            key = device_key(mac, ip)
            if key is not None and len(self.ip_owner) < MAX_RESOLVED * 8:
                self.ip_owner[ip] = key
            return key
        owner = self.ip_owner.get(ip)
        if owner is None and self.inventory is not None:
            owner = self.inventory.ip_owner.get(ip)
        if owner is not None:
            return owner
        return None if self.saw_macs else device_key(None, ip)

    def _set_ip(self, profile: DeviceProfile, ip: str | None) -> None:
        if not ip or profile.ip == ip:
            return
        profile.ip = ip
        if len(self.ip_owner) >= MAX_RESOLVED * 8 and ip not in self.ip_owner:
            self.ip_owner.clear()  # cheap bound; owners are re-learned from the next flows
        self.ip_owner[ip] = profile.key

    def _check_name(self, profile: DeviceProfile, ts: float, name: str,
                    verb: str) -> list[events.DeviceAnomaly]:
        bad = self.blocklist.match_name(name)
        if bad is None:
            return []
        return self._report(
            profile, "known_bad_destination", ts, name, score=1.0,
            observed={"name": name, "blocklist_entry": bad},
            baseline={"blocklist": self.blocklist.path, "entries": len(self.blocklist)},
            explanation=(f"{self._name(profile.key)} {verb} {name} at {self._clock(ts)}; "
                         f"that name is on the blocklist of known malicious hosts ({bad})."),
            ip=profile.ip)

    # --- persistence and export -------------------------------------------
    def apply_store_intent(self, store) -> None:
        """Pick up what the control plane decided: re-learning windows
        (devices.stage/stage_until), destinations the user declared normal
        (setting devices.allowed_destinations) and the learning period."""
        import json
        days = None
        allowed = {}
        for row in store.conn.execute(
                "SELECT key, value FROM settings WHERE key IN"
                " ('profiling.learning_days', 'devices.allowed_destinations')"):
            try:
                value = json.loads(row[1])
            except ValueError:
                continue
            if row[0] == "profiling.learning_days":
                days = value
            else:
                allowed = value if isinstance(value, dict) else {}
        if isinstance(days, (int, float)) and days > 0:
            self.learning_seconds = float(days) * DAY
        for row in store.conn.execute(
                "SELECT mac, stage_until FROM devices WHERE stage='relearning'"):
            profile = self.profiles.get(row[0])
            if (profile is not None and row[1] and row[1] > self.now
                    and (profile.stage != "relearning" or profile.stage_until != row[1])):
                self.relearn(row[0], row[1])
        for mac, destinations in allowed.items():
            profile = self.profiles.get(mac)
            if profile is None or not isinstance(destinations, list):
                continue
            for destination in destinations[:MAX_DESTINATIONS]:
                if not isinstance(destination, str):
                    continue
                if _is_ip(destination):
                    profile.destinations.setdefault(destination, 0)
                else:
                    profile.names.add(destination.lower())
                    profile.domains.add(registered_domain(destination))
                profile.reported.discard(f"d:{destination}")

    def sync(self, store) -> int:
        """Write stage, risk and the profile summary of each device to the store."""
        import json
        self.apply_store_intent(store)
        rows = []
        for key, profile in self.profiles.items():
            profile.learning_at(self.now)
            risk = max((w.last_event.score for w in profile.windows.values()
                        if w.last_event is not None), default=0.0)
            rows.append((key, profile.ip, profile.stage, profile.stage_until,
                         profile.first_seen, profile.last_seen, risk,
                         json.dumps(profile.summary())))
        lock = getattr(store, "_lock", None)
        if lock is not None:
            lock.acquire()
        try:
            store.conn.executemany(
                "INSERT INTO devices (mac, ip, stage, stage_until, first_seen, last_seen, risk, profile)"
                " VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(mac) DO UPDATE SET"
                " stage=excluded.stage, stage_until=excluded.stage_until,"
                " ip=COALESCE(devices.ip, excluded.ip),"
                " first_seen=MIN(COALESCE(devices.first_seen, excluded.first_seen), excluded.first_seen),"
                " last_seen=MAX(COALESCE(devices.last_seen, 0), excluded.last_seen),"
                " risk=MAX(devices.risk, excluded.risk), profile=excluded.profile", rows)
        finally:
            if lock is not None:
                lock.release()
        return len(rows)

    def load(self, store) -> int:
        """Restore baselines written by sync() (after a restart)."""
        import json
        count = 0
        for row in store.conn.execute(
                "SELECT mac, ip, stage, stage_until, first_seen, last_seen, profile FROM devices"):
            profile = self.profile(row[0], row[5] or row[4] or 0.0)
            if profile is None:
                continue
            self._set_ip(profile, row[1])
            profile.first_seen = row[4] or profile.first_seen
            profile.stage, profile.stage_until = row[2] or "learning", row[3]
            if row[6]:
                try:
                    profile.restore(json.loads(row[6]))
                except (ValueError, TypeError, KeyError):
                    self.malformed += 1
            count += 1
        if count and self.started is None:
            self.started = min(p.first_seen for p in self.profiles.values())
        return count

    def to_mud(self, key: str, *, mud_url: str | None = None,
               systeminfo: str | None = None) -> dict[str, Any] | None:
        """The learned outbound behaviour as an RFC 8520 MUD file (dict)."""
        profile = self.profiles.get(oui.normalise_mac(key) or key)
        if profile is None:
            return None
        safe = profile.key.replace(":", "").replace(".", "-")
        acl_name = f"from-ipv4-{safe}"
        back_name = f"to-ipv4-{safe}"
        from_aces, to_aces = [], []
        protocols = {"tcp": 6, "udp": 17}
        for index, ((target, proto, port), _) in enumerate(
                sorted(profile.endpoints.items(), key=lambda kv: -kv[1])):
            if proto not in protocols:
                continue
            is_name = not _is_ip(target)
            if not is_name and target in self.home:
                continue  # LAN peers: MUD expresses those as classes, out of scope
            match_from: dict[str, Any] = {"protocol": protocols[proto]}
            match_to: dict[str, Any] = {"protocol": protocols[proto]}
            if is_name:
                match_from["ietf-acldns:dst-dnsname"] = target
                match_to["ietf-acldns:src-dnsname"] = target
            else:
                match_from["destination-ipv4-network"] = f"{target}/32"
                match_to["source-ipv4-network"] = f"{target}/32"
            from_aces.append({"name": f"cl{index}-frdev",
                              "matches": {"ipv4": match_from,
                                          proto: {"destination-port": {"operator": "eq", "port": port}}},
                              "actions": {"forwarding": "accept"}})
            to_aces.append({"name": f"cl{index}-todev",
                            "matches": {"ipv4": match_to,
                                        proto: {"source-port": {"operator": "eq", "port": port}}},
                            "actions": {"forwarding": "accept"}})
        last_update = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(profile.last_seen))
        return {
            "ietf-mud:mud": {
                "mud-version": 1,
                "mud-url": mud_url or f"https://reefguard.invalid/mud/{safe}.json",
                "last-update": last_update,
                "cache-validity": 48,
                "is-supported": True,
                "systeminfo": systeminfo or f"Learned profile of {profile.key}",
                "from-device-policy": {"access-lists": {"access-list": [{"name": acl_name}]}},
                "to-device-policy": {"access-lists": {"access-list": [{"name": back_name}]}},
            },
            "ietf-access-control-list:acls": {"acl": [
                {"name": acl_name, "type": "ipv4-acl-type", "aces": {"ace": from_aces}},
                {"name": back_name, "type": "ipv4-acl-type", "aces": {"ace": to_aces}},
            ]},
        }


# ---------------------------------------------------------------------------

def is_high_confidence_compromise(anomalies: Iterable[events.DeviceAnomaly]) -> bool:
    """Whether these anomalies (one device's recent ones) justify automatic
    quarantine: the device itself attacks (outbound scan or brute force),
    talks to a known-bad host, or shows two independent strong deviations
    (e.g. a new destination and a 50x upload) within one hour."""
    strong: dict[int, set[str]] = {}
    for anomaly in anomalies:
        direction = (anomaly.observed or {}).get("direction", "outbound")
        if anomaly.kind == "known_bad_destination" and anomaly.score >= 0.9 \
                and "source" not in (anomaly.observed or {}):
            return True
        if anomaly.kind in ("scan", "brute_force") and direction == "outbound" and anomaly.score >= 0.7:
            return True
        if anomaly.kind in ("new_destination", "unusual_volume", "new_port", "unusual_time") \
                and anomaly.score >= 0.7:
            strong.setdefault(int(anomaly.timestamp // HOUR), set()).add(anomaly.kind)
    return any(len(kinds) >= 2 for kinds in strong.values())


def _failed(flow: events.FlowEnd) -> bool:
    """No answer: the probe of a scanner (or a dead host)."""
    if flow.pkts_toclient == 0:
        return True
    if (flow.tuple.proto or "").upper() == "TCP":
        if flow.tcp_flags_tc & TH_RST and flow.bytes_toclient <= 120 * max(1, flow.pkts_toclient):
            return flow.state != "established" or flow.pkts_toclient <= 1
        return flow.state == "new"
    return False


def _minutes(count: int) -> str:
    return "a minute" if count <= 1 else f"{count} minutes"


def _service_text(proto: str, port: int) -> str:
    if not port:
        return proto.upper() or "IP"
    name = SERVICE_NAMES.get(port)
    return f"{proto.upper()} port {port} ({name})" if name else f"{proto.upper()} port {port}"


def _hour_ranges(hours: list[int]) -> str:
    active = [h for h in range(24) if hours[h]]
    if not active:
        return "never"
    ranges, start, previous = [], active[0], active[0]
    for hour in active[1:] + [None]:
        if hour is not None and hour == previous + 1:
            previous = hour
            continue
        ranges.append(f"{start:02d}:00-{previous + 1:02d}:00")
        if hour is not None:
            start = previous = hour
    return "between " + ", ".join(ranges)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


def _bounded_add(items: set[str], item: str) -> None:
    if len(items) >= MAX_REPORTED:
        items.pop()
    items.add(item)


def make_consumers(config, store=None) -> list:
    """The inventory and the profiler, in the order the collector must call
    them (the profiler names devices from the inventory)."""
    inventory = Inventory(config, store)
    profiler = Profiler(config, inventory=inventory, store=store)
    if store is not None:
        inventory.load(store)
        profiler.load(store)
    return [inventory, profiler]
