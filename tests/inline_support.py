"""What a test that runs the box inline needs, in one place.

Inline tests use real namespaces, a real bridge and NFQUEUE; they skip with
the first missing piece named, rather than fail, where the machine cannot
run them (not root, a kernel without nfnetlink_queue).
"""
from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path


def why_not_inline(*modules: str) -> str | None:
    """None when the box can run inline here, else the reason it cannot."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, iptables, NFQUEUE)"
    if not Path("/proc/net/netfilter/nfnetlink_queue").exists():
        return "kernel has no nfnetlink_queue (NFQUEUE)"
    if shutil.which("ip") is None or shutil.which("iptables-restore") is None:
        return "needs iproute2 and iptables"
    for module in ("netfilterqueue", *modules):
        try:
            __import__(module)
        except ImportError as exc:
            return f"{module} not importable ({exc})"
    return None


@contextlib.contextmanager
def running_lab(data_dir: Path, rules: list[str], services: bool = True, **box_options):
    """The lab with the box inline on `data_dir`: yields the topology with
    `.box` (the process) and `.data_dir` set. Everything it created (box,
    agents, namespaces, the box's rules) is removed on the way out, failure
    included: stopping the box first lets it remove its own iptables rules."""
    from appliance.lab import LabTopology  # noqa: PLC0415 - needs root-only modules

    topology = LabTopology()
    topology.box = None
    try:
        topology.create()
        if services:
            topology.start_services()
        topology.data_dir = Path(data_dir)
        topology.box = topology.start_box(str(data_dir), rules, **box_options)
        yield topology
    finally:
        if topology.box is not None:
            topology.stop_box(topology.box)
        topology.destroy()
