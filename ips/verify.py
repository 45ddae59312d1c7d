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

Match keys may end in `__find`, `__contains`, `__startswith` or
`__endswith` (substring tests on the value at the path before them), as
suricata-verify's run.py reads them. Checks may also be `stats: {KEY: VALUE}`
(the last stats record) and `shell:`; `file-compare` is reported as skipped
(ReefGuard extracts no files).

The case runs as suricata-verify runs Suricata: with `--init-errors-fatal`,
so a rule that does not load is the exit code 1 the case's `exit-code`
(default 0) is compared with; with `--simulate-ips` when the case's folder
name contains "ips"; with the case's `suricata.yaml` settings ReefGuard has
(`vars.address-groups`/`port-groups`, `stream.*`, `packet-alert-max`,
`threshold-file`); with its `args`, `${TEST_DIR}` expanded as run.py
expands it; and a rules file named `min<VERSION>.rules` is read only at
that version or later.

`requires:` (of a case or a check, and a check's `version`/`min-version`/
`lt-version`/`feature`) is honoured against the Suricata version ReefGuard
mirrors (`COMPAT_VERSION`) and the features it has (`FEATURES`); so is
`skip:`. A case that needs what ReefGuard cannot provide (a custom `command`,
no capture, a Suricata source file, a feature) is reported as SKIP with its
reason, never passed. So is a check that counts EVE records of an
application protocol ReefGuard has no parser for (e.g. `event_type: smb`). A
case passes when every check that ran passed; it is skipped when none ran.
"""
from __future__ import annotations

import os
import platform
import re
import shlex
import shutil
import string
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

# Suricata build features (`suricata --build-info`) ReefGuard has an
# equivalent of: its parsers are the ones Suricata writes in Rust, EVE is
# JSON, TLS records carry JA3, patterns compile with Hyperscan.
FEATURES = {"RUST", "HAVE_LIBJANSSON", "HAVE_JA3", "Hyperscan"}

SURICATA_HOME_NET = "[192.168.0.0/16,10.0.0.0/8,172.16.0.0/12]"

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

    @property
    def skipped(self) -> bool:
        """Nothing ran and nothing broke: a requirement ReefGuard does not meet."""
        return self.error is None and not any(c.ok is not None for c in self.checks)


# ---------------------------------------------------------------------------
def _version_parts(text: Any) -> list[int]:
    """The components a version names: "7" -> [7], "6.0.11" -> [6, 0, 11]."""
    return [int(p) for p in re.findall(r"\d+", str(text))][:3]


def _version_tuple(text: Any) -> tuple[int, ...]:
    parts = _version_parts(text)
    while len(parts) < 3:
        parts.append(0)
    return tuple(parts)


def requirements_met(requires: dict | None) -> tuple[bool, str]:
    """Whether ReefGuard meets a suricata-verify `requires:` block, and if
    not, which requirement it misses. Unknown requirement kinds are not met."""
    if not requires:
        return True, ""
    for key, value in requires.items():
        if key == "min-version":
            if COMPAT_VERSION < _version_tuple(value):
                return False, f"min-version {value}"
        elif key == "lt-version":
            if COMPAT_VERSION >= _version_tuple(value):
                return False, f"lt-version {value}"
        elif key == "gt-version":
            if COMPAT_VERSION <= _version_tuple(value):
                return False, f"gt-version {value}"
        elif key == "version":
            # "7" is any 7.x.y, "7.0" any 7.0.y.
            named = _version_parts(value)
            if list(COMPAT_VERSION[:len(named)]) != named:
                return False, f"version {value}"
        elif key == "features":
            missing = [f for f in value or () if f not in FEATURES]
            if missing:
                return False, f"feature {', '.join(map(str, missing))}"
        elif key == "env":
            missing = [e for e in value or () if e not in os.environ]
            if missing:
                return False, f"environment variable {', '.join(missing)}"
        elif key == "files":
            # Paths in Suricata's source tree: there is none here.
            if value:
                return False, f"Suricata source file {', '.join(map(str, value))}"
        elif key == "os":
            if not platform.system().lower().startswith(str(value).lower()):
                return False, f"os {value}"
        elif key == "arch":
            if not platform.machine().lower().startswith(str(value).lower()):
                return False, f"arch {value}"
        elif key == "pcap":
            continue            # whether a capture is needed: run_case looks
        else:
            # `script` and `lambda` run code against a Suricata build; any
            # other kind is one this runner does not know.
            return False, f"{key} {value!r}"
    return True, ""


def _check_requires(check: dict) -> dict:
    """A check's own requirements: its `requires:` plus the shorthand keys."""
    requires = dict(check.get("requires") or {})
    for key in ("version", "min-version", "lt-version"):
        if check.get(key) is not None:
            requires[key] = check[key]
    if check.get("feature") is not None:
        requires["features"] = [check["feature"]]
    return requires


def skip_reason(spec: dict) -> str | None:
    """suricata-verify's `skip:` (true, or a list of uid/feature conditions)."""
    skip = spec.get("skip")
    if skip is True:
        return "skipped by default"
    for item in skip if isinstance(skip, list) else ():
        if not isinstance(item, dict):
            continue
        if "uid" in item and os.getuid() == item["uid"]:
            return item.get("msg") or f"not for uid {item['uid']}"
        if "feature" in item and item["feature"] in FEATURES:
            return item.get("msg") or f"not for feature {item['feature']}"
    return None


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


_STRING_TESTS = {
    "__find": lambda value, expected: isinstance(value, str) and expected in value,
    "__contains": lambda value, expected: (isinstance(value, (str, list, dict))
                                           and expected in value),
    "__startswith": lambda value, expected: isinstance(value, str) and value.startswith(expected),
    "__endswith": lambda value, expected: isinstance(value, str) and value.endswith(expected),
}


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
        else:
            path, _, test = key.rpartition(".")
            string_test = _STRING_TESTS.get(test) if path else None
            if string_test is not None:
                value = lookup(record, path)
                if value is _MISSING or not string_test(value, expected):
                    return False
            elif not _equal(expected, lookup(record, key)):
                return False
    return True


# ---------------------------------------------------------------------------
def find_cases(root: Path) -> list[Path]:
    return sorted(p.parent for p in root.rglob("test.yaml"))


def case_environment(case_dir: Path, outdir: Path | None = None) -> dict[str, str]:
    """The variables suricata-verify's run.py offers a case's `args` and
    `command` (`${TEST_DIR}/threshold.config`). SRCDIR, Suricata's source
    tree, does not exist here: an argument naming it stays unexpanded."""
    env = {"TEST_DIR": str(case_dir), "TZ": "UTC"}
    if outdir is not None:
        env["OUTPUT_DIR"] = str(outdir)
    return env


def _parse_args(args: list[str] | None, config: Config, env: dict[str, str] | None = None) -> None:
    tokens: list[str] = []
    for item in args or []:
        text = str(item)
        if env:
            # As run.py: string.Template over its environment, unknown
            # names left as they are.
            text = string.Template(text).safe_substitute(env)
        tokens += shlex.split(text)
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


def _rules_for(case_dir: Path) -> list[Path]:
    """The case's rule files; `min<VERSION>.rules` only from that version."""
    rules = []
    for path in sorted(case_dir.glob("*.rules")):
        stem = path.name[:-len(".rules")]
        if stem.startswith("min") and re.fullmatch(r"\d+(\.\d+)*", stem[3:]):
            if COMPAT_VERSION < _version_tuple(stem[3:]):
                continue
        rules.append(path)
    return rules


def _apply_case_yaml(case_dir: Path, config: Config) -> None:
    """The settings of the case's own suricata.yaml that ReefGuard has."""
    path = case_dir / "suricata.yaml"
    if not path.exists():
        return
    try:
        # Suricata's files open with a %YAML 1.1 directive PyYAML reads.
        doc = yaml.safe_load(path.read_text(errors="replace")) or {}
    except yaml.YAMLError:
        return
    if not isinstance(doc, dict):
        return

    def get(*keys):
        node = doc
        for key in keys:
            if not isinstance(node, dict) or key not in node:
                return None
            node = node[key]
        return node

    settings = {
        "stream.midstream": get("stream", "midstream"),
        "stream.inline": get("stream", "inline"),
        "stream.reassembly.depth": get("stream", "reassembly", "depth"),
        "packet-alert-max": get("packet-alert-max"),
        "threshold-file": get("threshold-file"),
    }
    # Every address and port group, not only HOME_NET and EXTERNAL_NET: a
    # threshold.config may suppress `ip $SUPPRESS`, a rule name `$DNS_SERVERS`.
    for kind in ("address-groups", "port-groups"):
        groups = get("vars", kind)
        for name, value in (groups.items() if isinstance(groups, dict) else ()):
            if isinstance(value, (str, int)) and not isinstance(value, bool):
                settings[f"vars.{kind}.{name}"] = value
    for key, value in settings.items():
        if value is None or (key == "stream.inline" and str(value).lower() == "auto"):
            continue
        if isinstance(value, bool):
            value = "yes" if value else "no"
        if key == "threshold-file":
            # A relative path is the case's own file.
            value = str(case_dir / str(value))
        try:
            config.set(key, str(value))
        except ValueError:
            pass


def case_config(case_dir: Path, spec: dict, outdir: Path | None = None) -> Config:
    """The engine settings a case runs with: its suricata.yaml, then
    --simulate-ips when its folder name contains "ips" (as run.py does),
    then its `args` (with `${TEST_DIR}` and the like expanded)."""
    config = Config()
    # Suricata's default suricata.yaml, which the cases are written for (the
    # appliance's default adds the documentation ranges its lab uses).
    config.home_net = SURICATA_HOME_NET
    _apply_case_yaml(case_dir, config)
    if "ips" in case_dir.name:
        config.stream_inline = True
    _parse_args(spec.get("args"), config, case_environment(case_dir, outdir))
    return config


def _stats_check(check: dict, records: list[dict]) -> CheckResult:
    stats = None
    for record in records:
        if record.get("event_type") == "stats":
            stats = record.get("stats")
    desc = f"stats {check}"
    if stats is None:
        return CheckResult(False, desc, "no stats record")
    for key, expected in check.items():
        actual = lookup(stats, str(key))
        if actual is _MISSING:
            return CheckResult(None, desc, f"ReefGuard's stats have no {key}")
        if not _equal(expected, actual):
            return CheckResult(False, desc, f"{key}: expected {expected}, got {actual}")
    return CheckResult(True, desc)


def _records(path: Path, result: CaseResult) -> list[dict] | None:
    import json
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            result.error = f"invalid EVE line in {path.name}: {line[:80]}"
            return None
    return records


def run_case(case_dir: Path, root: Path, outdir: Path) -> CaseResult:
    from ips.cli import load_engine
    from ips.replay import replay

    name = str(case_dir.relative_to(root)) if case_dir != root else case_dir.name
    result = CaseResult(name)
    try:
        spec = yaml.safe_load((case_dir / "test.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        result.error = f"test.yaml: {exc}"
        return result
    requires = spec.get("requires") or {}
    ok, why = requirements_met(requires)
    why = f"requires {why}" if not ok else skip_reason(spec)
    if why is None and "command" in spec:
        why = "a custom Suricata command line"
    if why is None and any(p.name.endswith("firewall.rules") for p in case_dir.glob("*.rules")):
        why = "Suricata's firewall mode"
    if why is not None:
        result.checks.append(CheckResult(None, "case", why))
        return result
    if spec.get("pcap"):
        pcaps = [case_dir / spec["pcap"]]
    else:
        pcaps = sorted(list(case_dir.glob("*.pcap")) + list(case_dir.glob("*.pcapng")))
    if not pcaps or not pcaps[0].exists():
        if spec.get("pcap") is False or requires.get("pcap") is False:
            result.checks.append(CheckResult(None, "case", "runs without a capture"))
        else:
            result.error = "no capture found"
        return result
    try:
        config = case_config(case_dir, spec, outdir)
    except ValueError as exc:
        result.error = str(exc)
        return result
    if outdir.exists():
        shutil.rmtree(outdir)
    outdir.mkdir(parents=True)

    # Suricata runs with --init-errors-fatal: one rule that does not load is
    # exit code 1, and nothing is replayed.
    engine, report = load_engine([str(r) for r in _rules_for(case_dir)], config, quiet=True)
    refused = [] if report is None else [*report.errors, *report.skipped]
    exit_code = 1 if refused else 0
    expected_exit = int(spec.get("exit-code", 0))
    detail = f"expected exit code {expected_exit}, got {exit_code}"
    if refused:
        detail += "; refused: " + "; ".join(f"{f}:{line} {reason}" for f, line, _, reason, _
                                            in refused[:3])
    result.checks.append(CheckResult(exit_code == expected_exit, "rules load", detail))
    # Suricata skips a threshold.config line it cannot read and runs on
    # (only a config test fails on it): shown, not failed.
    for file, line, message in [] if report is None else report.threshold_errors:
        result.checks.append(CheckResult(None, "threshold file", f"{file}:{line}: {message}"))
    if exit_code == 0:
        summary = replay([str(p) for p in pcaps], engine, outdir, config, progress=False)
        if summary.errors:
            result.checks.append(CheckResult(None, "capture", "; ".join(summary.errors)))

    files: dict[str, list[dict] | None] = {}

    def records_of(filename: str) -> list[dict] | None:
        if filename not in files:
            path = outdir / filename
            files[filename] = _records(path, result) if path.exists() else None
        return files[filename]

    for check in spec.get("checks") or []:
        if "filter" in check:
            f = check["filter"] or {}
            match = f.get("match") or {}
            desc = f"filter {match}"
            ok, why = requirements_met(_check_requires(f))
            if not ok:
                result.checks.append(CheckResult(None, desc, f"requires {why}"))
                continue
            event_type = match.get("event_type")
            if event_type and event_type not in SUPPORTED_EVENT_TYPES:
                result.checks.append(CheckResult(
                    None, desc, f"no {event_type} parser in ReefGuard"))
                continue
            records = records_of(str(f.get("filename", "eve.json")))
            if result.error:
                return result
            if records is None:
                result.checks.append(CheckResult(False, desc, f"{f.get('filename', 'eve.json')} "
                                                 "does not exist"))
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
        elif "stats" in check:
            records = records_of("eve.json")
            if result.error:
                return result
            result.checks.append(_stats_check(check["stats"] or {}, records or []))
        elif "shell" in check:
            sh = check["shell"] or {}
            ok, why = requirements_met(_check_requires(sh))
            if not ok:
                result.checks.append(CheckResult(None, f"shell {sh.get('args')}", f"requires {why}"))
                continue
            env = dict(os.environ, **case_environment(case_dir, outdir))
            proc = subprocess.run(sh["args"], shell=True, cwd=outdir, env=env,
                                  capture_output=True, text=True, timeout=60)
            out = proc.stdout.strip()
            if "expect" in sh:
                ok = out == str(sh["expect"]).strip()
                result.checks.append(CheckResult(ok, f"shell {sh['args']}",
                                                 f"expected {sh['expect']!r}, got {out!r}"))
            else:
                result.checks.append(CheckResult(proc.returncode == 0,
                                                 f"shell {sh['args']}", proc.stderr[-200:]))
        elif "file-compare" in check:
            result.checks.append(CheckResult(None, "file-compare", "ReefGuard extracts no files"))
        else:
            result.checks.append(CheckResult(None, f"check {list(check)}", "unknown check type"))
    return result


def main(dirs: list[str], *, keep: str | None = None, filter_: str | None = None,
         verbose: bool = False) -> int:
    passed = failed = skipped_cases = 0
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
            elif res.skipped:
                # As suricata-verify's SKIPPED: neither passed nor failed,
                # and counted on its own line so it cannot go unnoticed.
                skipped_cases += 1
                print(f"SKIP {res.name}: " + "; ".join(c.detail for c in skipped))
                continue
            else:
                failed += 1
                print(f"FAIL {res.name}" + (f": {res.error}" if res.error else ""))
            for c in res.checks:
                if c.ok is False or (verbose and c.ok is None) or (c.ok is None and not res.passed):
                    tag = "  fail" if c.ok is False else "  skip"
                    print(f"{tag}: {c.description}: {c.detail}")
    if not keep:
        shutil.rmtree(base_out, ignore_errors=True)
    if skipped_cases:
        print(f"{skipped_cases} skipped: a requirement ReefGuard does not meet (SKIP lines above)")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1
