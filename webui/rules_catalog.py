"""What the rule files under `signatures/` contain, for the Rules page.

This is a display index, not the detection engine's parser: it reads only
msg, sid, rev, classtype, metadata and CVE references, line by line, and a
line it cannot read is counted and skipped. The result is cached per
directory and refreshed when a file's modification time changes.

A *virtual patch* is a rule that names a CVE (``metadata: cve CVE-...`` or
``reference:cve,...``). It applies to a device when the rule's metadata names
the device's type or vendor (keys ``device_type``, ``affected_product``,
``vendor``) or when it has already fired for that device.
"""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

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


def read_catalog(directory: Path) -> Catalog:
    catalog = Catalog()
    if not directory.is_dir():
        return catalog
    for path in sorted(directory.glob("*.rules")):
        catalog.files.append(path.name)
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
                rule = parse_rule_line(stripped, path.name)
                if rule is not None:
                    catalog.rules.append(rule)
                elif not stripped.startswith("#"):
                    catalog.unreadable_lines += 1
    return catalog


_cache: dict[Path, tuple[tuple, Catalog]] = {}
_cache_lock = threading.Lock()


def load_catalog(directory: Path) -> Catalog:
    """Cached `read_catalog`, refreshed when any rule file changes."""
    directory = directory.resolve()
    try:
        stamp = tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size)
                      for p in sorted(directory.glob("*.rules")))
    except OSError:
        stamp = ()
    with _cache_lock:
        cached = _cache.get(directory)
        if cached and cached[0] == stamp:
            return cached[1]
    catalog = read_catalog(directory)
    with _cache_lock:
        _cache[directory] = (stamp, catalog)
    return catalog


_WORD_SPLIT = re.compile(r"[^a-z0-9]+")
_GENERIC_WORDS = {"windows", "linux", "server", "client", "any", "bit", "and", "the",
                  "web", "endpoint", "device", "unknown", "other"}


def _words(text: str) -> set[str]:
    return {w for w in _WORD_SPLIT.split(text.lower()) if len(w) > 2} - _GENERIC_WORDS


def rule_target_words(rule: RuleInfo) -> set[str]:
    words: set[str] = set()
    for key in ("device_type", "affected_product", "vendor"):
        for value in rule.metadata.get(key, ()):
            words |= _words(value)
    return words


def patch_applies(rule: RuleInfo, device_type: str | None, vendor: str | None) -> bool:
    """The rule's target metadata shares a word with the device's type or vendor."""
    words = _words(f"{device_type or ''} {vendor or ''}")
    return bool(words) and bool(words & rule_target_words(rule))
