"""`reefguard verify DIR`: run suricata-verify style conformance cases.

A case is a folder with `test.yaml`, one `.rules` file and a capture (the
folder's `*.pcap`, or `pcap:` in test.yaml). The case runs through exactly
the replay pipeline (`ips.replay`), then each check in `checks:` is applied
to the EVE records:

    - filter: {count: N, match: {event_type: alert, alert.signature_id: 1}}
    - shell: {args: "cat fast.log | wc -l | xargs", expect: 1}

Match keys are dotted paths (`alert.signature_id`, `http.url`, `flow.start`),
may index lists (`dns.queries[0].rrname`), and may be the special forms
`has-key: PATH` / `not-has-key: PATH`; a nested mapping matches as a subset.

`requires:` (of a case or a check) is honoured against the Suricata version
ReefGuard mirrors (`COMPAT_VERSION`). A check that counts EVE records of an
application protocol ReefGuard has no parser for (e.g. `event_type: smb`) is
reported as SKIP with its reason, never silently passed; a case passes when
every check that ran passed and at least one ran.
"""
from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ips.config import Config

# The Suricata release whose behaviour these conformance cases are held to.
COMPAT_VERSION = (8, 0, 0)

# EVE event types ReefGuard can produce. Checks counting other types are
# reported as skipped (no parser), not passed.
SUPPORTED_EVENT_TYPES = {
    "alert", "flow", "anomaly", "stats", "drop", "http", "dns", "tls",
    "dhcp", "mdns", "ssdp", "mqtt", "telnet", "modbus", "device_anomaly",
}


@dataclass
class CheckResult:
    ok: bool | None          # None = skipped
    description: str
    detail: str = ""


@dataclass
class CaseResult:
    name: str
    checks: list[CheckResult] = field(default_factory=list)
    error: str | None = None

    @property
    def passed(self) -> bool:
        ran = [c for c in self.checks if c.ok is not None]
        return self.error is None and bool(ran) and all(c.ok for c in ran)


# ---------------------------------------------------------------------------
def _version_tuple(text: Any) -> tuple[int, ...]:
    parts = [int(p) for p in re.findall(r"\d+", str(text))]
    while len(parts) < 3:
        parts.append(0)
    return tuple(parts[:3])


def requirements_met(requires: dict | None) -> tuple[bool, str]:
    if not requires:
        return True, ""
    for key, value in requires.items():
        if key == "min-version" and COMPAT_VERSION < _version_tuple(value):
            return False, f"min-version {value}"
        if key == "lt-version" and COMPAT_VERSION >= _version_tuple(value):
            return False, f"lt-version {value}"
        if key == "gt-version" and COMPAT_VERSION <= _version_tuple(value):
            return False, f"gt-version {value}"
        if key == "version" and _version_tuple(value)[:2] != COMPAT_VERSION[:2]:
            return False, f"version {value}"
    return True, ""


_MISSING = object()


def lookup(record: Any, path: str) -> Any:
    """Resolve a dotted path with optional [index] parts; _MISSING if absent."""
    node = record
    for part in path.split("."):
        m = re.fullmatch(r"([^\[]*)((?:\[\d+\])*)", part)
        name, indexes = (m.group(1), m.group(2)) if m else (part, "")
        if name:
            if name == "__len":
                return len(node) if isinstance(node, (list, dict, str)) else _MISSING
            if not isinstance(node, dict) or name not in node:
                return _MISSING
            node = node[name]
        for idx in re.findall(r"\[(\d+)\]", indexes):
            if not isinstance(node, list) or int(idx) >= len(node):
                return _MISSING
            node = node[int(idx)]
    return node


def _equal(expected: Any, actual: Any) -> bool:
    if actual is _MISSING:
        return False
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return False
        return all(_equal(v, lookup(actual, k)) for k, v in expected.items())
    if isinstance(expected, list):
        return (isinstance(actual, list) and len(expected) == len(actual)
                and all(_equal(e, a) for e, a in zip(expected, actual)))
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual or expected == actual
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        return expected == actual
    return str(expected) == str(actual)


def record_matches(record: dict, match: dict) -> bool:
    for key, expected in match.items():
        if key == "has-key":
            if lookup(record, str(expected)) is _MISSING:
                return False
        elif key == "not-has-key":
            if lookup(record, str(expected)) is not _MISSING:
                return False
        elif not _equal(expected, lookup(record, key)):
            return False
    return True


# ---------------------------------------------------------------------------
def find_cases(root: Path) -> list[Path]:
    return sorted(p.parent for p in root.rglob("test.yaml"))


def _parse_args(args: list[str] | None, config: Config) -> None:
    tokens: list[str] = []
    for item in args or []:
        tokens += shlex.split(str(item))
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok == "-k" and i + 1 < len(tokens):
            config.checksum_mode = tokens[i + 1]
            i += 2
        elif tok == "--set" and i + 1 < len(tokens):
            config.apply([tokens[i + 1]])
            i += 2
        elif tok.startswith("--set="):
            config.apply([tok[len("--set="):]])
            i += 1
        elif tok == "--simulate-ips":
            # Suricata's IPS mode on a pcap: stream.inline "auto" turns
            # inline, so data is inspected as it arrives and drops block.
            config.stream_inline = True
            i += 1
        else:
            # Other Suricata flags (--runmode, ...) do not change
            # ReefGuard's replay; note them but carry on.
            config.extra.setdefault("ignored_args", []).append(tok)
            i += 1


def run_case(case_dir: Path, root: Path, outdir: Path) -> CaseResult:
    from ips.cli import load_engine
    from ips.replay import replay
    import json

    name = str(case_dir.relative_to(root)) if case_dir != root else case_dir.name
    result = CaseResult(name)
    try:
        spec = yaml.safe_load((case_dir / "test.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        result.error = f"test.yaml: {exc}"
        return result
    ok, why = requirements_met(spec.get("requires"))
    if not ok:
        result.checks.append(CheckResult(None, "case", f"requires {why}"))
        return result
    if spec.get("pcap"):
        pcaps = [case_dir / spec["pcap"]]
    else:
        pcaps = sorted(list(case_dir.glob("*.pcap")) + list(case_dir.glob("*.pcapng")))
    if not pcaps or not pcaps[0].exists():
        result.error = "no capture found"
        return result
    rules = sorted(case_dir.glob("*.rules"))
    config = Config()
    try:
        _parse_args(spec.get("args"), config)
    except ValueError as exc:
        result.error = str(exc)
        return result
    engine, report = load_engine([str(r) for r in rules], config, quiet=True)
    if report is not None and report.errors:
        result.checks.append(CheckResult(None, "rules", f"{len(report.errors)} rule errors: "
                                         f"{list(report.errors)[:2]}"))
    if outdir.exists():
        shutil.rmtree(outdir)
    outdir.mkdir(parents=True)
    summary = replay([str(p) for p in pcaps], engine, outdir, config, progress=False)
    if summary.errors:
        result.checks.append(CheckResult(None, "capture", "; ".join(summary.errors)))
    records = []
    for line in (outdir / "eve.json").read_text().splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            result.error = f"invalid EVE line: {line[:80]}"
            return result

    for check in spec.get("checks") or []:
        if "filter" in check:
            f = check["filter"] or {}
            match = f.get("match") or {}
            desc = f"filter {match}"
            ok, why = requirements_met(f.get("requires"))
            if not ok:
                result.checks.append(CheckResult(None, desc, f"requires {why}"))
                continue
            event_type = match.get("event_type")
            if event_type and event_type not in SUPPORTED_EVENT_TYPES:
                result.checks.append(CheckResult(
                    None, desc, f"no {event_type} parser in ReefGuard"))
                continue
            count = sum(1 for r in records if record_matches(r, match))
            if "count" in f:
                expected = int(f["count"])
                result.checks.append(CheckResult(count == expected, desc,
                                                 f"expected {expected}, got {count}"))
            elif "min-count" in f or "max-count" in f:
                lo = int(f.get("min-count", 0))
                hi = int(f.get("max-count", 1 << 62))
                result.checks.append(CheckResult(lo <= count <= hi, desc,
                                                 f"expected {lo}..{hi}, got {count}"))
            else:
                result.checks.append(CheckResult(count > 0, desc, f"got {count}"))
        elif "shell" in check:
            sh = check["shell"]
            proc = subprocess.run(sh["args"], shell=True, cwd=outdir,
                                  capture_output=True, text=True, timeout=60)
            out = proc.stdout.strip()
            if "expect" in sh:
                ok = out == str(sh["expect"]).strip()
                result.checks.append(CheckResult(ok, f"shell {sh['args']}",
                                                 f"expected {sh['expect']!r}, got {out!r}"))
            else:
                result.checks.append(CheckResult(proc.returncode == 0,
                                                 f"shell {sh['args']}", proc.stderr[-200:]))
        else:
            result.checks.append(CheckResult(None, f"check {list(check)}", "unknown check type"))
    return result


def main(dirs: list[str], *, keep: str | None = None, filter_: str | None = None,
         verbose: bool = False) -> int:
    passed = failed = 0
    base_out = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="reefguard-verify-"))
    for d in dirs:
        root = Path(d)
        if not root.exists():
            print(f"reefguard verify: {d}: no such directory", file=sys.stderr)
            failed += 1
            continue
        for case in find_cases(root):
            name = str(case.relative_to(root)) if case != root else case.name
            if filter_ and filter_ not in name:
                continue
            out = base_out / name.replace("/", "__")
            try:
                res = run_case(case, root, out)
            except Exception as exc:  # noqa: BLE001 - one broken case must not stop the run
                res = CaseResult(name, error=f"{type(exc).__name__}: {exc}")
            skipped = [c for c in res.checks if c.ok is None]
            if res.passed:
                passed += 1
                note = f" ({len(skipped)} check(s) skipped)" if skipped else ""
                print(f"PASS {res.name}{note}")
            else:
                failed += 1
                print(f"FAIL {res.name}" + (f": {res.error}" if res.error else ""))
            for c in res.checks:
                if c.ok is False or (verbose and c.ok is None) or (c.ok is None and not res.passed):
                    tag = "  fail" if c.ok is False else "  skip"
                    print(f"{tag}: {c.description}: {c.detail}")
    if not keep:
        shutil.rmtree(base_out, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1
