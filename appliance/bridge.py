"""The bridge the box sits on, and the br_netfilter switches.

`setup_bridge` creates a bridge (or adopts an existing one), enslaves the wan
and lan ports and brings everything up; it returns a `BridgeState` that says
exactly what it changed, so `release_bridge` undoes only that.

Decision: on shutdown the bridge *stays* by default, even one we created. A
plain bridge is a wire: an inline box whose service stops must leave the LAN
working, not cut it off. The iptables rules are gone at that point, so the
bridge just forwards. `reefguard down --remove-bridge` removes a bridge we
created (and releases the ports we enslaved); an adopted bridge is never
removed.

br_netfilter: the `net.bridge.bridge-nf-call-*` switches are per network
namespace; their previous values are recorded and restored on release.
"""
from __future__ import annotations

import logging
import subprocess
from dataclasses import asdict, dataclass, field

log = logging.getLogger("reefguard.bridge")

BRIDGE_SYSCTLS = ("bridge-nf-call-iptables", "bridge-nf-call-ip6tables")
SYSCTL_DIR = "/proc/sys/net/bridge/"


@dataclass(slots=True)
class BridgeState:
    name: str
    """Bridge name."""
    created: bool = False
    """We created the bridge (False: adopted)."""
    enslaved: list[str] = field(default_factory=list)
    """Ports we attached (they were not in the bridge before)."""
    sysctl_before: dict[str, str] = field(default_factory=dict)
    """br_netfilter switches as they were before we set them."""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "BridgeState":
        return cls(**data)


def enable_br_netfilter() -> dict[str, str]:
    """Load br_netfilter and make bridged IP traffic traverse iptables;
    return the previous switch values."""
    try:
        subprocess.run(["modprobe", "br_netfilter"], capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        pass  # built into the kernel, or no modprobe: the sysctl check below decides
    before = {}
    for name in BRIDGE_SYSCTLS:
        path = SYSCTL_DIR + name
        try:
            with open(path) as handle:
                before[name] = handle.read().strip()
            with open(path, "w") as handle:
                handle.write("1\n")
        except OSError as exc:
            raise RuntimeError(f"br_netfilter is not available ({path}: {exc})") from None
    return before


def restore_sysctls(before: dict[str, str]) -> None:
    for name, value in before.items():
        try:
            with open(SYSCTL_DIR + name, "w") as handle:
                handle.write(value + "\n")
        except OSError:
            log.warning("could not restore net.bridge.%s", name)


def setup_bridge(name: str, ports: list[str], adopt: bool = False) -> BridgeState:
    """Create (or adopt when `adopt`) bridge `name`, enslave `ports`, set all up."""
    from pyroute2 import IPRoute

    state = BridgeState(name=name)
    with IPRoute() as ipr:
        found = ipr.link_lookup(ifname=name)
        if found:
            kind = ipr.get_links(found[0])[0].get_attr("IFLA_LINKINFO")
            kind = kind.get_attr("IFLA_INFO_KIND") if kind is not None else None
            if kind != "bridge":
                raise RuntimeError(f"{name} exists and is not a bridge")
            bridge_index = found[0]
        else:
            if adopt:
                raise RuntimeError(f"bridge {name} does not exist (adopt asked)")
            ipr.link("add", ifname=name, kind="bridge")
            state.created = True
            bridge_index = ipr.link_lookup(ifname=name)[0]
        try:
            for port in ports:
                indexes = ipr.link_lookup(ifname=port)
                if not indexes:
                    raise RuntimeError(f"interface {port} does not exist")
                link = ipr.get_links(indexes[0])[0]
                master = link.get_attr("IFLA_MASTER")
                if master == bridge_index:
                    continue
                if master:
                    raise RuntimeError(f"{port} is already enslaved to another device")
                ipr.link("set", index=indexes[0], master=bridge_index)
                state.enslaved.append(port)
            for port in ports:
                ipr.link("set", index=ipr.link_lookup(ifname=port)[0], state="up")
            ipr.link("set", index=bridge_index, state="up")
        except BaseException:
            release_bridge(state, remove=True)
            raise
    state.sysctl_before = enable_br_netfilter()
    return state


def release_bridge(state: BridgeState, remove: bool = False) -> None:
    """Undo `setup_bridge`. The bridge itself goes only with `remove` and only
    if we created it; ports we enslaved are released in that case."""
    from pyroute2 import IPRoute

    restore_sysctls(state.sysctl_before)
    if not (remove and state.created):
        return
    with IPRoute() as ipr:
        for port in state.enslaved:
            indexes = ipr.link_lookup(ifname=port)
            if indexes:
                try:
                    ipr.link("set", index=indexes[0], master=0)
                except Exception:  # noqa: BLE001 - best effort on the way out
                    log.warning("could not release %s", port)
        indexes = ipr.link_lookup(ifname=state.name)
        if indexes:
            ipr.link("del", index=indexes[0])
