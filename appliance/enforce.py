"""Enforcement: the only thing that changes kernel state after start-up.

Declarative: the control process reads the active quarantine/block requests
(store table `blocks`) every second and calls `Enforcer.reconcile()` with the
whole wanted state; the enforcer computes the difference against what the
kernel holds and applies it in one batch per mechanism:

* quarantined device addresses  -> ipset REEFGUARD-QUARANTINE4/6 (both ways)
* quarantined MACs              -> rules in REEFGUARD-QUARANTINE-MAC
* destination blocked for all   -> ipset REEFGUARD-BLOCKDST4/6 (both ways)
* device -> destination blocks  -> rules in REEFGUARD-BLOCK-PAIRS

(Rules instead of sets where this kernel lacks `hash:mac` / `hash:net,net`.)
A quarantined device keeps DHCP and DNS to the gateway (REEFGUARD-QUARANTINE,
see `appliance.firewall.quarantine_exceptions`). Malformed requests are
skipped and counted, never raised: a bad row in the store must not stop the
other blocks from being enforced.

Reading the sets back costs one `ipset save` process per set; every second,
that is CPU taken from the traffic the box forwards. So while the wanted
state is unchanged the kernel is trusted for `VERIFY_SECONDS`, then read
again: a set flushed by hand is repaired within that time, and a change of
the wanted state is applied at once.
"""
from __future__ import annotations

import ipaddress
import logging
import re
import time

from appliance import firewall, ipsets
from appliance.ipsets import Runner, run_command

log = logging.getLogger("reefguard.enforce")

_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
MAX_RULES = 4096  # bound on rule-based entries (MACs and pairs) per family
VERIFY_SECONDS = 30.0


def normalise_mac(mac: str | None) -> str | None:
    if not mac:
        return None
    mac = mac.strip().lower().replace("-", ":")
    return mac if _MAC.match(mac) else None


def normalise_address(address: str | None, allow_network: bool = False) -> str | None:
    if not address:
        return None
    try:
        if allow_network and "/" in address:
            return str(ipaddress.ip_network(address.strip(), strict=False))
        return str(ipaddress.ip_address(address.strip()))
    except ValueError:
        return None


def _family(address: str) -> int:
    return ipsets.family_of(address)


class Enforcer:
    """Keeps the kernel's block state equal to the wanted state."""

    __slots__ = ("run", "families", "skipped", "applied", "_rules_applied", "gateways",
                 "clock", "_sets_applied", "_sets_verified")

    def __init__(self, run: Runner = run_command, families: tuple[int, ...] = (4, 6),
                 gateways: set[str] | None = None, clock=time.monotonic) -> None:
        self.run = run
        self.families = families
        self.skipped = 0          # malformed requests ignored
        self.applied = 0          # kernel changes made
        self.clock = clock
        self._rules_applied: dict[int, str] = {}
        self._sets_applied: dict[str, set[str]] | None = None
        self._sets_verified = float("-inf")
        self.gateways: set[str] = set()
        if gateways:
            self.set_gateways(gateways)

    def set_gateways(self, addresses: set[str]) -> None:
        """Where quarantined devices may still reach DNS."""
        wanted = {family: set() for family in self.families}
        for address in addresses:
            normal = normalise_address(address)
            if normal and _family(normal) in wanted:
                wanted[_family(normal)].add(normal)
        self.gateways = {a for group in wanted.values() for a in group}
        ipsets.sync({ipsets.GATEWAYS[f]: wanted[f] for f in self.families}, self.run)

    def reconcile(self, quarantined: set[tuple[str | None, str | None]],
                  blocked: set[tuple[str | None, str]]) -> int:
        """Make the kernel enforce exactly these requests; return changes made.

        `quarantined`: (mac, ip) pairs, either may be None.
        `blocked`: (device_ip or None for every device, destination ip/net)."""
        quarantine_ips = {family: set() for family in self.families}
        blocked_for_all = {family: set() for family in self.families}
        macs: set[str] = set()
        pairs = {family: set() for family in self.families}
        for mac, ip in quarantined:
            good_mac, good_ip = normalise_mac(mac), normalise_address(ip)
            if good_mac is None and good_ip is None:
                self.skipped += 1
                continue
            if good_mac:
                macs.add(good_mac)
            if good_ip and _family(good_ip) in quarantine_ips:
                quarantine_ips[_family(good_ip)].add(good_ip)
        for device, destination in blocked:
            good_destination = normalise_address(destination, allow_network=True)
            good_device = normalise_address(device) if device else None
            if good_destination is None or (device and good_device is None):
                self.skipped += 1
                continue
            family = _family(good_destination)
            if family not in pairs or (good_device and _family(good_device) != family):
                self.skipped += 1
                continue
            if good_device is None and "/" not in good_destination:
                blocked_for_all[family].add(good_destination)
            else:
                pairs[family].add((good_device, good_destination))
        wanted_sets = {**{ipsets.QUARANTINE[f]: quarantine_ips[f] for f in self.families},
                       **{ipsets.BLOCKED_DESTINATIONS[f]: blocked_for_all[f] for f in self.families}}
        changes = 0
        now = self.clock()
        if wanted_sets != self._sets_applied or now - self._sets_verified >= VERIFY_SECONDS:
            self._sets_applied = None          # unknown until sync returns
            changes = ipsets.sync(wanted_sets, self.run)
            self._sets_applied, self._sets_verified = wanted_sets, now
        for family in self.families:
            payload = self.render_rules(family, macs, pairs[family],
                                        quarantine_ips=bool(quarantine_ips[family]),
                                        blocked_for_all=bool(blocked_for_all[family]))
            if self._rules_applied.get(family) != payload:
                self.run([firewall.RESTORE[family], "-w", "--noflush"], payload)
                self._rules_applied[family] = payload
                changes += 1
        self.applied += changes
        return changes

    @staticmethod
    def render_rules(family: int, macs: set[str], pairs: set[tuple[str | None, str]],
                     quarantine_ips: bool = False, blocked_for_all: bool = False) -> str:
        """Payload rewriting the block chains in one transaction.

        REEFGUARD-BLOCK holds only the checks that have something to match:
        every forwarded packet crosses it, bypassed bulk flows included, and
        with nothing blocked (the usual case) it is empty, which keeps six set
        and chain lookups per packet off the kernel fast path."""
        block, quarantine_set, blocked_set = (firewall.BLOCK_CHAIN, ipsets.QUARANTINE[family],
                                              ipsets.BLOCKED_DESTINATIONS[family])
        lines = ["*filter",
                 f":{block} - [0:0]",
                 f":{firewall.QUARANTINE_MAC_CHAIN} - [0:0]",
                 f":{firewall.BLOCK_PAIRS_CHAIN} - [0:0]"]
        if quarantine_ips:
            lines.append(f"-A {block} -m set --match-set {quarantine_set} src "
                         f"-j {firewall.QUARANTINE_CHAIN}")
            lines.append(f"-A {block} -m set --match-set {quarantine_set} dst "
                         f"-j {firewall.QUARANTINE_CHAIN}")
        if macs:
            lines.append(f"-A {block} -j {firewall.QUARANTINE_MAC_CHAIN}")
        if blocked_for_all:
            lines.append(f"-A {block} -m set --match-set {blocked_set} dst -j DROP")
            lines.append(f"-A {block} -m set --match-set {blocked_set} src -j DROP")
        if pairs:
            lines.append(f"-A {block} -j {firewall.BLOCK_PAIRS_CHAIN}")
        for mac in sorted(macs)[:MAX_RULES]:
            lines.append(f"-A {firewall.QUARANTINE_MAC_CHAIN} -m mac --mac-source {mac} "
                         f"-j {firewall.QUARANTINE_CHAIN}")
        for device, destination in sorted(pairs, key=lambda p: (p[0] or "", p[1]))[:MAX_RULES]:
            if device is None:
                lines.append(f"-A {firewall.BLOCK_PAIRS_CHAIN} -d {destination} -j DROP")
                lines.append(f"-A {firewall.BLOCK_PAIRS_CHAIN} -s {destination} -j DROP")
            else:
                lines.append(f"-A {firewall.BLOCK_PAIRS_CHAIN} -s {device} -d {destination} -j DROP")
                lines.append(f"-A {firewall.BLOCK_PAIRS_CHAIN} -s {destination} -d {device} -j DROP")
        lines.append("COMMIT")
        return "\n".join(lines) + "\n"


def wanted_from_store(conn, now: float | None = None):
    """Active rows of the store's `blocks` table as reconcile() arguments."""
    now = time.time() if now is None else now
    quarantined: set[tuple[str | None, str | None]] = set()
    blocked: set[tuple[str | None, str]] = set()
    rows = conn.execute(
        "SELECT kind, mac, device_ip, destination FROM blocks"
        " WHERE active=1 AND (expires IS NULL OR expires > ?)", (now,)).fetchall()
    for kind, mac, device_ip, destination in rows:
        if kind == "quarantine":
            quarantined.add((mac, device_ip))
        elif kind == "block_destination" and destination:
            blocked.add((device_ip, destination))
    return quarantined, blocked
