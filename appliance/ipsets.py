"""The kernel address sets that enforcement fills (ipset).

Sets are matched by iptables rules in `appliance.firewall` before anything
reaches a queue, so blocked and quarantined traffic never costs userspace
time. Only `hash:ip` / `hash:net` set types are used: `hash:mac` and
`hash:net,net` are missing from some kernels (this one included), so MAC
quarantine and per-device destination blocks are iptables rules in chains the
enforcer rewrites atomically instead (see `appliance.enforce`).

Changes go through `ipset restore`, one batch per reconcile, so a set never
shows a half-applied state to the packet path for longer than one batch.
"""
from __future__ import annotations

import ipaddress
import subprocess
from dataclasses import dataclass
from typing import Callable, Iterable

Runner = Callable[[list[str], str | None], str]

PREFIX = "REEFGUARD-"
# name -> (ipset type, family)
QUARANTINE = {4: PREFIX + "QUARANTINE4", 6: PREFIX + "QUARANTINE6"}
"""Addresses of quarantined devices (matched as source and destination)."""
BLOCKED_DESTINATIONS = {4: PREFIX + "BLOCKDST4", 6: PREFIX + "BLOCKDST6"}
"""Destinations blocked for every device (matched both ways)."""
GATEWAYS = {4: PREFIX + "GATEWAY4", 6: PREFIX + "GATEWAY6"}
"""Where a quarantined device may still reach DNS."""

# Bound on any one set: enforcement comes from user clicks and anomaly
# decisions, never from per-packet data, so this is generous.
MAX_ELEMENTS = 65536


@dataclass(frozen=True, slots=True)
class SetSpec:
    name: str
    """ipset name (at most 31 characters)."""
    family: int
    """4 or 6."""
    kind: str = "hash:ip"
    """ipset type."""


ALL_SETS: tuple[SetSpec, ...] = tuple(
    SetSpec(names[family], family)
    for names in (QUARANTINE, BLOCKED_DESTINATIONS, GATEWAYS) for family in (4, 6))


def run_command(argv: list[str], stdin: str | None = None) -> str:
    """Run a command; raise RuntimeError with its stderr when it fails."""
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): "
                           f"{done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


def family_of(address: str) -> int:
    return ipaddress.ip_address(address.split("/", 1)[0]).version


def create_all(run: Runner = run_command, sets: Iterable[SetSpec] = ALL_SETS) -> list[str]:
    """Create our sets (existing ones are kept); return the names."""
    lines = []
    names = []
    for spec in sets:
        family = "inet" if spec.family == 4 else "inet6"
        lines.append(f"create {spec.name} {spec.kind} family {family} maxelem {MAX_ELEMENTS}")
        names.append(spec.name)
    run(["ipset", "restore", "-exist"], "\n".join(lines) + "\n")
    return names


def destroy(names: Iterable[str], run: Runner = run_command) -> list[str]:
    """Destroy the named sets; return the names that could not be destroyed
    (missing sets count as destroyed)."""
    failed = []
    for name in names:
        try:
            run(["ipset", "destroy", name], None)
        except RuntimeError as exc:
            if "does not exist" not in str(exc):
                failed.append(name)
    return failed


def members(name: str, run: Runner = run_command) -> set[str]:
    """Current elements of a set, as the kernel holds them."""
    out = run(["ipset", "save", name], None)
    result = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] == "add" and parts[1] == name:
            result.add(parts[2])
    return result


def render_sync(name: str, current: set[str], wanted: set[str]) -> list[str]:
    """ipset-restore lines that turn `current` into `wanted`."""
    lines = [f"del {name} {address}" for address in sorted(current - wanted)]
    lines += [f"add {name} {address}" for address in sorted(wanted - current)]
    return lines


def sync(wanted_by_set: dict[str, set[str]], run: Runner = run_command) -> int:
    """Make each set hold exactly the wanted addresses; return changes made."""
    lines: list[str] = []
    for name, wanted in wanted_by_set.items():
        if len(wanted) > MAX_ELEMENTS:
            wanted = set(sorted(wanted)[:MAX_ELEMENTS])
        lines += render_sync(name, members(name, run), wanted)
    if lines:
        run(["ipset", "restore", "-exist"], "\n".join(lines) + "\n")
    return len(lines)
