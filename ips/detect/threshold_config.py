"""threshold.config: Suricata's sensor-side tuning of rule alerts and actions.

    tuning, errors = load(path, variables)
    rule_tuning = tuning.for_rule(rule)      # None when the file leaves it alone

Grammar (Suricata 7/8, `--set threshold-file=PATH`), one entry per line, a
trailing backslash joins the next line, `#` starts a comment line:

    threshold    gen_id G, sig_id S, type limit|threshold|both,
                 track by_src|by_dst|by_rule|by_both|by_flow, count N, seconds T
    event_filter (the same as threshold)
    rate_filter  gen_id G, sig_id S, track by_src|by_dst|by_rule|by_both|by_flow,
                 count N, seconds T, new_action alert|drop|pass|reject, timeout T2
    suppress     gen_id G, sig_id S[, track by_src|by_dst|by_either, ip SPEC]

`sig_id 0` names every rule of generator G, `gen_id 0, sig_id 0` every rule;
a non-zero sid with `gen_id 0` is refused, as Suricata refuses it. SPEC is an
address, a CIDR block, a `[...]` list or a `$VARIABLE` of the rules'.

Precedence, as Suricata's global-thresholds documentation gives it:

* A threshold/event_filter for one sid replaces the rule's own `threshold`
  and `detection_filter`; of several for one sid the last line wins.
* One for every sid (`sig_id 0`) applies only to rules that have no
  threshold of their own (neither keyword, nor a line naming their sid);
  of several, the first line that covers the rule.
* A rate_filter is an entry of the same kind (one per rule, chosen as
  above), except that it is not applied to a rule with its own `threshold`
  or `detection_filter`: Suricata keeps the rule's keyword then.
* Every suppress that names the rule applies. Without an address the rule
  never alerts; with one, a match whose tracked address is in SPEC is not
  logged. Either way the rule's action stands (a suppressed drop rule still
  drops) and its flowbits and the like are set, and, as Suricata looks at
  suppressions first, a suppressed match is not counted by any threshold.

A line that does not parse is returned as an error with its file and line;
the other lines load (Suricata, outside a config test, also skips it).
"""
from __future__ import annotations

from dataclasses import dataclass

from .variables import AddressMatcher, Variables, split_group

__all__ = ["Entry", "RuleTuning", "ThresholdConfig", "load", "parse"]

MAX_ID = (1 << 32) - 1
_THRESHOLD_TYPES = ("limit", "threshold", "both")
_THRESHOLD_TRACKS = ("by_src", "by_dst", "by_rule", "by_both", "by_flow")
_SUPPRESS_TRACKS = ("by_src", "by_dst", "by_either")
# `sdrop` and `log` are read, as Suricata's parser reads them, but change
# nothing ("supported by the parser but not implemented otherwise").
_NEW_ACTIONS = {"alert": "alert", "drop": "drop", "pass": "pass", "reject": "reject",
                "sdrop": None, "log": None}
_KEYS = {
    "threshold": ("gen_id", "sig_id", "type", "track", "count", "seconds"),
    "rate_filter": ("gen_id", "sig_id", "track", "count", "seconds", "new_action", "timeout"),
    "suppress": ("gen_id", "sig_id", "track", "ip"),
}


class ThresholdConfigError(ValueError):
    """A threshold.config line that is not loaded."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One loaded threshold.config line."""

    kind: str
    """"threshold" (also for event_filter), "rate_filter" or "suppress"."""
    gid: int
    """gen_id; 0 with sid 0 covers every generator."""
    sid: int
    """sig_id; 0 covers every rule of the generator."""
    line: int
    """Line number in the file (the first line of a continued entry)."""
    spec: dict | None = None
    """threshold and rate_filter: the same dict a rule's `threshold:` keyword
    gives (type, track, count, seconds), plus new_action and timeout for a
    rate_filter (type "rate")."""
    track: str | None = None
    """suppress: by_src, by_dst or by_either; None suppresses every alert."""
    addresses: AddressMatcher | None = None
    """suppress: the addresses whose alerts are not logged."""


class RuleTuning:
    """What the file makes of one rule: the threshold specs that replace the
    rule's own, a rate_filter, and its suppressions."""

    __slots__ = ("threshold", "detection_filter", "rate_filter", "noalert", "suppressions")

    def __init__(self, threshold, detection_filter, rate_filter, noalert: bool,
                 suppressions: tuple) -> None:
        self.threshold = threshold
        self.detection_filter = detection_filter
        self.rate_filter = rate_filter
        self.noalert = noalert
        # ((track, AddressMatcher), ...)
        self.suppressions = suppressions

    def suppresses(self, source, destination) -> bool:
        """Whether a suppression covers a match between these addresses
        (`address_key`s of the packet's source and destination)."""
        for track, addresses in self.suppressions:
            if track != "by_dst" and source is not None and addresses.match(*source):
                return True
            if track != "by_src" and destination is not None and addresses.match(*destination):
                return True
        return False


class ThresholdConfig:
    """The loaded entries, resolved per rule on first use (a rule loaded from
    the compiled cache is only parsed when a packet first needs it)."""

    __slots__ = ("path", "entries", "_specific", "_wildcard", "_suppress_specific",
                 "_suppress_wildcard", "_resolved")

    def __init__(self, entries: list[Entry], path: str = "") -> None:
        self.path = path
        self.entries = list(entries)
        self._specific: dict[tuple[int, int], Entry] = {}
        self._wildcard: list[Entry] = []
        self._suppress_specific: dict[tuple[int, int], list[Entry]] = {}
        self._suppress_wildcard: list[Entry] = []
        for entry in entries:
            if entry.kind == "suppress":
                if entry.sid:
                    self._suppress_specific.setdefault((entry.gid, entry.sid), []).append(entry)
                else:
                    self._suppress_wildcard.append(entry)
            elif entry.sid:
                self._specific[(entry.gid, entry.sid)] = entry      # the last line wins
            else:
                self._wildcard.append(entry)
        # (gid, sid) -> RuleTuning or None; at most one per loaded rule.
        self._resolved: dict[tuple[int, int], RuleTuning | None] = {}

    def __len__(self) -> int:
        return len(self.entries)

    def for_rule(self, rule) -> RuleTuning | None:
        identity = (rule.gid, rule.sid)
        try:
            return self._resolved[identity]
        except KeyError:
            pass
        tuning = self._resolve(rule)
        self._resolved[identity] = tuning
        return tuning

    def _resolve(self, rule) -> RuleTuning | None:
        identity = (rule.gid, rule.sid)
        own = rule.threshold is not None or rule.detection_filter is not None
        threshold, detection_filter, rate_filter = rule.threshold, rule.detection_filter, None
        changed = False
        entry = self._specific.get(identity)
        if entry is None and not own:
            entry = next((e for e in self._wildcard if e.gid in (0, rule.gid)), None)
        if entry is not None:
            if entry.kind == "threshold":
                threshold, detection_filter, changed = entry.spec, None, True
            elif not own:
                rate_filter, changed = entry.spec, True
        suppressions = []
        noalert = False
        for suppress in (*self._suppress_specific.get(identity, ()),
                         *(e for e in self._suppress_wildcard if e.gid in (0, rule.gid))):
            if suppress.addresses is None:
                noalert = True
            else:
                suppressions.append((suppress.track, suppress.addresses))
        if not changed and not noalert and not suppressions:
            return None
        return RuleTuning(threshold, detection_filter, rate_filter, noalert, tuple(suppressions))


def load(path: str, variables: Variables) -> tuple[ThresholdConfig, list[tuple[str, int, str]]]:
    """Read a threshold.config; errors are (file, line, message), and an
    unreadable file is one error at line 0."""
    try:
        with open(path, "rb") as handle:
            text = handle.read().decode("utf-8", errors="replace")
    except OSError as exc:
        return ThresholdConfig([], path), [(path, 0, f"cannot read: {exc.strerror or exc}")]
    return parse(text, variables, path)


def parse(text: str, variables: Variables, path: str = "threshold.config"
          ) -> tuple[ThresholdConfig, list[tuple[str, int, str]]]:
    entries: list[Entry] = []
    errors: list[tuple[str, int, str]] = []
    for number, line in _logical_lines(text):
        try:
            entries.append(parse_line(line, variables, number))
        except ThresholdConfigError as exc:
            errors.append((path, number, str(exc)))
    return ThresholdConfig(entries, path), errors


def _logical_lines(text: str):
    """(first line number, entry text), joining lines that end in '\\'.
    Lines end at "\n" only, as Suricata reads them (`fgets`)."""
    pending = ""
    start = 0
    for number, raw in enumerate(text.split("\n"), 1):
        stripped = raw.strip()
        if not pending:
            if not stripped or stripped.startswith("#"):
                continue
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        entry = (pending + stripped).strip()
        pending = ""
        if entry:
            yield start, entry
    if pending.strip():
        yield start, pending.strip()


def _number(key: str, value: str, high: int = MAX_ID) -> int:
    if not value.isdigit() or int(value) > high:
        raise ThresholdConfigError(f"{key} must be a number from 0 to {high}, not {value!r}")
    return int(value)


def _choice(key: str, value: str, allowed) -> str:
    lowered = value.lower()
    if lowered not in allowed:
        raise ThresholdConfigError(f"{key} {value!r}: expected one of {', '.join(allowed)}")
    return lowered


def parse_line(line: str, variables: Variables, number: int = 0) -> Entry:
    """One entry; ThresholdConfigError says what is wrong with it."""
    words = line.split(None, 1)
    if not words:
        raise ThresholdConfigError("empty entry")
    directive = words[0].lower()
    if directive == "event_filter":
        directive = "threshold"
    allowed = _KEYS.get(directive)
    if allowed is None:
        raise ThresholdConfigError(
            f"unknown entry {words[0]!r}: expected threshold, event_filter, rate_filter or suppress")
    options: dict[str, str] = {}
    try:
        # Commas inside a suppress address list `[...]` are its own.
        parts = split_group(words[1] if len(words) > 1 else "", keep_empty=True)
    except ValueError as exc:
        raise ThresholdConfigError(str(exc)) from None
    for part in parts:
        pair = part.split(None, 1)
        if len(pair) != 2:
            raise ThresholdConfigError(f"{part!r} is not 'name value'" if part
                                       else "empty option (a stray comma?)")
        key, value = pair[0].lower(), pair[1].strip()
        if key not in allowed:
            raise ThresholdConfigError(f"{directive} has no option {key!r}")
        if key in options:
            raise ThresholdConfigError(f"{key} given twice")
        options[key] = value
    for key in ("gen_id", "sig_id"):
        if key not in options:
            raise ThresholdConfigError(f"{directive} needs {key}")
    gid = _number("gen_id", options["gen_id"])
    sid = _number("sig_id", options["sig_id"])
    if gid == 0 and sid != 0:
        raise ThresholdConfigError(f"sig_id {sid} with gen_id 0: name the rule's generator "
                                   "(gen_id 1 for most rules), as Suricata requires")
    if directive == "suppress":
        return _suppress(options, variables, gid, sid, number)
    missing = [key for key in allowed if key not in options]
    if missing:
        raise ThresholdConfigError(f"{directive} needs {', '.join(missing)}")
    spec = {
        "track": _choice("track", options["track"], _THRESHOLD_TRACKS),
        "count": _number("count", options["count"]),
        "seconds": _number("seconds", options["seconds"]),
    }
    if directive == "threshold":
        kind = options["type"].lower()
        if kind == "backoff":
            # The rule keyword has it (by_flow, with a multiplier);
            # Suricata's global-thresholds page documents no backoff line.
            raise ThresholdConfigError("type backoff is a rule keyword only")
        spec["type"] = _choice("type", kind, _THRESHOLD_TYPES)
    else:
        spec["type"] = "rate"
        spec["new_action"] = _NEW_ACTIONS[_choice("new_action", options["new_action"],
                                                  tuple(_NEW_ACTIONS))]
        spec["timeout"] = _number("timeout", options["timeout"])
    return Entry(directive, gid, sid, number, spec=spec)


def _suppress(options: dict, variables: Variables, gid: int, sid: int, number: int) -> Entry:
    if ("track" in options) != ("ip" in options):
        raise ThresholdConfigError("suppress takes track and ip together, or neither")
    if "track" not in options:
        return Entry("suppress", gid, sid, number)
    track = _choice("track", options["track"], _SUPPRESS_TRACKS)
    spec = options["ip"]
    try:
        addresses = variables.address(spec)
    except ValueError as exc:
        raise ThresholdConfigError(f"ip {spec!r}: {exc}") from None
    return Entry("suppress", gid, sid, number, track=track, addresses=addresses)

