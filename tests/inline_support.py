"""What a test that runs the box inline needs, in one place.

Inline tests use real namespaces, a real bridge and NFQUEUE; they skip with
the first missing piece named, rather than fail, where the machine cannot
run them (not root, a kernel without nfnetlink_queue).
"""
from __future__ import annotations

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
