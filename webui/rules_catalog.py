"""What the running rule files contain, for the Rules page: those under
`signatures/` and the installed vendor feed's (`ips.feed`), so a virtual
patch that arrived by feed is listed like a shipped one.

This is a display index, not the detection engine's parser: it reads only
msg, sid, rev, classtype, metadata and CVE references, line by line, and a
line it cannot read is counted and skipped. The result is cached per
directory and refreshed when a file's modification time changes.

A *virtual patch* is a rule that names a CVE (``metadata: cve CVE-...`` or
``reference:cve,...``). It applies to a device when the rule's target metadata
(ET Open's keys: ``affected_product``, ``device_type``, ``vendor``) names the
device, or when it has already fired for that device. A rule that names a
``vendor`` applies only to devices of that vendor when the device's vendor is
known: a Hikvision patch does not protect a Dahua camera, although both are
cameras.
"""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

MAX_RULE_LINE = 64 * 1024
_ACTIONS = ("alert", "drop", "reject", "pass", "rejectsrc", "rejectdst", "rejectboth")
_MSG = re.compile(r'\bmsg\s*:\s*"((?:\\.|[^"\\])*)"')
_REFERENCE_CVE = re.compile(r"reference\s*:\s*cve\s*,\s*(?:CVE-)?([0-9]{4}-[0-9]+)", re.I)
_CVE = re.compile(r"CVE[-_]([0-9]{4})[-_]([0-9]+)", re.I)


@dataclass(frozen=True, slots=True)
class RuleInfo:
    sid: int
    """Rule id."""
    rev: int
    """Revision."""
    msg: str
    """The rule's message."""
    classtype: str
    """Classification short name ("" when the rule has none)."""
    file: str
    """File name inside the signatures directory."""
    enabled_in_file: bool
    """False when the line is commented out in the file."""
    cves: tuple[str, ...]
    """CVE ids the rule names, "CVE-YYYY-NNNN"."""
    metadata: dict[str, tuple[str, ...]]
    """Rule metadata, key -> values."""


@dataclass(slots=True)
class Catalog:
    rules: list[RuleInfo] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    unreadable_lines: int = 0

    @property
    def patches(self) -> list[RuleInfo]:
        return [rule for rule in self.rules if rule.cves]

    def sids_for_cve(self, cve: str) -> list[int]:
        wanted = normalize_cve(cve)
        return [rule.sid for rule in self.rules if wanted in rule.cves]

    def categories(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for rule in self.rules:
            key = rule.classtype or "unclassified"
            counts[key] = counts.get(key, 0) + 1
        return dict(sorted(counts.items()))


def normalize_cve(text: str) -> str:
    match = _CVE.search(text.strip())
    if match:
        return f"CVE-{match.group(1)}-{match.group(2)}"
    return text.strip().upper()


def _option(options: str, name: str) -> str | None:
    """Value of a simple option (sid, rev, classtype, metadata): these sit
    at the end of real rules, so search from the right; str.rfind is far
    cheaper than a regex over a long rule."""
    at = options.rfind(name + ":")
    while at > 0 and options[at - 1] not in " ;(":
        at = options.rfind(name + ":", 0, at)
    if at < 0:
        return None
    end = options.find(";", at)
    return options[at + len(name) + 1:end if end >= 0 else len(options)].strip()


def parse_rule_line(line: str, file: str) -> RuleInfo | None:
    """One rule line (possibly commented out) -> RuleInfo; None when the line
    is not a rule (blank, a plain comment) or is unreadable."""
    text = line.strip()
    enabled = True
    if text.startswith("#"):
        text = text.lstrip("#").strip()
        enabled = False
    if not text.split(" ", 1)[0] in _ACTIONS or "(" not in text:
        return None
    options = text[text.index("("):]
    sid = _option(options, "sid")
    if not sid or not sid.isdigit():
        return None
    rev = _option(options, "rev")
    classtype = _option(options, "classtype") or ""
    msg = _MSG.search(options, 0, 4096)
    metadata: dict[str, list[str]] = {}
    cves: list[str] = []
    block = _option(options, "metadata")
    if block:
        for item in block.split(","):
            parts = item.strip().split(None, 1)
            if len(parts) == 2:
                metadata.setdefault(parts[0], []).append(parts[1].strip())
    for value in metadata.get("cve", []):
        cves.append(normalize_cve(value))
    if "cve," in options:
        for number in _REFERENCE_CVE.findall(options):
            cves.append(normalize_cve("CVE-" + number))
    return RuleInfo(
        sid=int(sid), rev=int(rev) if rev and rev.isdigit() else 1,
        msg=msg.group(1).replace('\\"', '"').replace("\\;", ";") if msg else "",
        classtype=classtype, file=file, enabled_in_file=enabled,
        cves=tuple(dict.fromkeys(cves)),
        metadata={key: tuple(values) for key, values in metadata.items()})


FEED_LABEL = "feed/"
"""Prefix of `RuleInfo.file` for the installed feed's rule files."""


def _sources(directory: Path, feed_files: Sequence[Path]) -> list[tuple[Path, str]]:
    """(path, label) of every rule file the catalog covers."""
    sources = [(path, path.name) for path in sorted(directory.glob("*.rules"))] \
        if directory.is_dir() else []
    sources += [(Path(path), FEED_LABEL + Path(path).name) for path in feed_files]
    return sources


def read_catalog(directory: Path, feed_files: Sequence[Path] = ()) -> Catalog:
    catalog = Catalog()
    for path, label in _sources(directory, feed_files):
        catalog.files.append(label)
        try:
            handle = path.open("r", encoding="utf-8", errors="replace")
        except OSError:
            continue
        with handle:
            for line in handle:
                if len(line) > MAX_RULE_LINE:
                    catalog.unreadable_lines += 1
                    continue
                stripped = line.strip()
                if not stripped:
                    continue
                rule = parse_rule_line(stripped, label)
                if rule is not None:
                    catalog.rules.append(rule)
                elif not stripped.startswith("#"):
                    catalog.unreadable_lines += 1
    return catalog


_cache: dict[tuple, tuple[tuple, Catalog]] = {}
_cache_lock = threading.Lock()


def load_catalog(directory: Path, feed_files: Sequence[Path] = ()) -> Catalog:
    """Cached `read_catalog`, refreshed when any rule file changes (or the
    installed feed does: its files live in a directory per version)."""
    directory = directory.resolve()
    sources = _sources(directory, feed_files)
    try:
        stamp = tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p, _ in sources)
    except OSError:
        stamp = ()
    key = (directory, tuple(str(p) for p in feed_files))
    with _cache_lock:
        cached = _cache.get(key)
        if cached and cached[0] == stamp:
            return cached[1]
    catalog = read_catalog(directory, feed_files)
    with _cache_lock:
        if len(_cache) > 16:      # one entry per feed version seen: keep a few
            _cache.clear()
        _cache[key] = (stamp, catalog)
    return catalog


def running_catalog(settings) -> Catalog:
    """The catalog of what the box runs: `settings.signatures_dir` plus the
    feed installed in the data directory (the store's directory)."""
    from ips import feed
    try:
        feed_files = [Path(p) for p in feed.current_rule_files(settings.store_path.parent)]
    except OSError:
        feed_files = []
    return load_catalog(settings.signatures_dir, feed_files)


_WORD_SPLIT = re.compile(r"[^a-z0-9]+")
_GENERIC_WORDS = {"windows", "linux", "server", "client", "any", "bit", "and", "the",
                  "web", "endpoint", "device", "unknown", "other"}


def _words(text: str) -> set[str]:
    return {w for w in _WORD_SPLIT.split(text.lower()) if len(w) > 2} - _GENERIC_WORDS


TARGET_KEYS = ("device_type", "affected_product", "vendor")
"""Metadata keys that say which devices a rule protects (ET Open's convention)."""


def rule_target_words(rule: RuleInfo) -> set[str]:
    words: set[str] = set()
    for key in TARGET_KEYS:
        for value in rule.metadata.get(key, ()):
            words |= _words(value)
    return words


_NOT_ALNUM = re.compile(r"[^a-z0-9]+")


def _squashed(text: str) -> str:
    """Lower case, letters and digits only: "TP-LINK TECHNOLOGIES CO.,LTD." ->
    "tplinktechnologiescoltd", so "TP-Link" and "D-Link" stay apart (as words
    both would be "link")."""
    return _NOT_ALNUM.sub("", text.lower())


# A rule's device_type -> the inventory's types (ips.inventory) that device
# can show up as: a DVR speaks RTSP/ONVIF like a camera; the inventory has
# no router or NAS type, so those show up as a web-managed device.
_SEEN_AS = {"camera": {"camera"}, "dvr": {"dvr", "camera"}, "nvr": {"nvr", "camera"},
            "router": {"router"}, "nas": {"nas"}}
# Inventory types that say nothing about what the device is.
_UNSPECIFIC_TYPES = {"web managed device", "mud described iot device", "iot device"}


def _type_fits(rule: RuleInfo, device_type: str | None) -> bool:
    """A vendor's router patch is not a patch for the same vendor's plug:
    when the rule names a device type and the inventory knows what the
    device is, the two must agree."""
    rule_types = {t.lower() for t in rule.metadata.get("device_type", ())}
    device = _NOT_ALNUM.sub(" ", (device_type or "").lower()).strip()
    if not rule_types or not device or device in _UNSPECIFIC_TYPES:
        return True
    words = _words(device)
    return any(words & _SEEN_AS.get(t, {t}) for t in rule_types)


def patch_applies(rule: RuleInfo, device_type: str | None, vendor: str | None) -> bool:
    """Does the rule protect this device? When both the rule and the device name
    a vendor, the vendors decide (the OUI's long name contains the rule's
    short one), and a device type both name must agree; otherwise the rule's
    target metadata must share a word with the device's type or vendor."""
    rule_vendors = [_squashed(v) for v in rule.metadata.get("vendor", ()) if _squashed(v)]
    if rule_vendors and vendor and _squashed(vendor):
        return (any(name in _squashed(vendor) for name in rule_vendors)
                and _type_fits(rule, device_type))
    words = _words(f"{device_type or ''} {vendor or ''}")
    return bool(words) and bool(words & rule_target_words(rule))
