"""Engine settings, with Suricata-style dotted keys for `--set KEY=VALUE`.

One flat dataclass, because a flat list of knobs is easier to audit than a
tree. `Config.set()` accepts the dotted names a Suricata user already knows.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"not a boolean: {text!r}")


def _size(text: str) -> int:
    """Parse '1mb', '64kb', '1048576' as Suricata does."""
    t = text.strip().lower()
    for suffix, mult in (("gb", 1 << 30), ("mb", 1 << 20), ("kb", 1 << 10), ("b", 1)):
        if t.endswith(suffix):
            return int(float(t[: -len(suffix)]) * mult)
    return int(t)


@dataclass(slots=True)
class Config:
    # checksum validation: "none", "all", "auto" (as Suricata's -k)
    checksum_mode: str = "auto"
    # stream
    stream_midstream: bool = False
    stream_inline: bool = False
    stream_depth: int = 1 << 20            # bytes per direction (stream.reassembly.depth)
    stream_max_pending: int = 256 * 1024   # out-of-order bytes held per direction
    # flow table
    flow_memcap: int = 64 << 20            # bytes, approximated per flow
    flow_max: int = 200_000                # hard cap on flow count
    flow_timeout_new: float = 30.0
    flow_timeout_established: float = 300.0
    flow_timeout_closed: float = 10.0
    flow_timeout_udp: float = 60.0
    flow_timeout_icmp: float = 30.0
    # detection
    packet_alert_max: int = 15
    max_verify_per_packet: int = 256       # candidate rules verified per buffer scan
    # Suricata's threshold.config: suppress, threshold/event_filter and
    # rate_filter entries, read with the rules (empty: none)
    threshold_file: str = ""
    # exception policy: what happens to a packet or flow the engine cannot handle
    exception_policy: str = "pass"         # "pass" (fail-open) or "drop" (fail-closed)
    # home network (rule variables)
    home_net: str = "[192.168.0.0/16,10.0.0.0/8,172.16.0.0/12,192.0.2.0/24,2001:db8::/32]"
    external_net: str = "!$HOME_NET"
    # profiling
    profiling: bool = True
    learning_days: float = 7.0
    # signature feed: directory of trusted vendor keys (*.pub), besides the
    # shipped signatures/feed-keys/ (docs/feed.md)
    feed_keys_dir: str = "/etc/reefguard/feed-keys"
    # where `reefguard run` polls for signed bundles (empty: no polling), and how often
    feed_url: str = ""
    feed_interval: float = 6 * 3600.0
    # inline: pure ACKs of established connections stay in the kernel when no
    # loaded rule can match one (ips.fastpath)
    fastpath_pure_ack: bool = True
    # ... and ICMP echo too small for any loaded rule to match
    fastpath_icmp_echo: bool = True
    extra: dict = field(default_factory=dict)

    KEYS = {
        "stream.midstream": ("stream_midstream", _bool),
        "stream.inline": ("stream_inline", _bool),
        "stream.reassembly.depth": ("stream_depth", _size),
        "stream.reassembly.memcap": ("stream_max_pending", _size),
        "flow.memcap": ("flow_memcap", _size),
        "packet-alert-max": ("packet_alert_max", int),
        "threshold-file": ("threshold_file", str),
        "exception-policy": ("exception_policy", str),
        "vars.address-groups.HOME_NET": ("home_net", str),
        "vars.address-groups.EXTERNAL_NET": ("external_net", str),
        "profiling.enabled": ("profiling", _bool),
        "profiling.learning-days": ("learning_days", float),
        "feed.keys-dir": ("feed_keys_dir", str),
        "feed.url": ("feed_url", str),
        "feed.interval": ("feed_interval", float),
        "fastpath.pure-ack": ("fastpath_pure_ack", _bool),
        "fastpath.icmp-echo": ("fastpath_icmp_echo", _bool),
    }

    def set(self, key: str, value: str) -> None:
        """Apply one `--set key=value`. Unknown keys are kept in `extra`
        (Suricata accepts many keys that do not change ReefGuard), so that
        conformance cases setting e.g. `mpm-algo` still run."""
        target = self.KEYS.get(key)
        if target is None:
            self.extra[key] = value
            return
        name, parse = target
        try:
            setattr(self, name, parse(value))
        except ValueError as exc:
            raise ValueError(f"--set {key}={value}: {exc}") from None

    def apply(self, assignments: list[str]) -> "Config":
        for item in assignments:
            if "=" not in item:
                raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
            key, value = item.split("=", 1)
            self.set(key.strip(), value.strip())
        return self

    @property
    def checksums(self) -> bool:
        return self.checksum_mode != "none"

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}
