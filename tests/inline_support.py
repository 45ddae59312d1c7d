"""What a test that runs the box inline needs, in one place.

Inline tests use real namespaces, a real bridge and NFQUEUE; they skip with
the first missing piece named, rather than fail, where the machine cannot
run them (not root, a kernel without nfnetlink_queue).
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
import time
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


def box_status(data_dir: Path) -> dict:
    """The running box's status.json (written by the control process each second)."""
    return json.loads((Path(data_dir) / "status.json").read_text())


def wait_for(predicate, timeout: float = 60.0, interval: float = 0.3) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


class Chatter:
    """Benign traffic in the background (the thermostat's MQTT exchange every
    0.1 s) that must keep working while the box changes its rules:
    `with Chatter(lab) as chatter: ...`, then `chatter.failures == []`."""

    def __init__(self, lab, role: str = "thermo", action: str = "mqtt") -> None:
        self.lab, self.role, self.action = lab, role, action
        self.attempts = 0
        self.failures: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.attempts += 1
            if not self.lab.act(self.role, self.action)["ok"]:
                self.failures.append(time.time())
            time.sleep(0.1)

    def __enter__(self) -> "Chatter":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
