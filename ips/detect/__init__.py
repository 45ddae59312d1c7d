"""Detection engine: Suricata rules → matches for each packet.

    engine, report = DetectEngine.load(paths, config, cache_dir=None)
    matches = engine.inspect(pkt, flow, stream, txs)

Theory of operation
-------------------
Load: every rule line is parsed (`parser`); refused or broken rules go to the
`LoadReport` with file, line, sid and reason, and never stop the others.
Loaded rules are ordered as Suricata orders them (action: pass, drop, reject,
alert; then flowbit setters before readers; then priority) and each gets one
fast pattern in one prefilter group (`prefilter`). Rules with no usable
pattern sit in small lists bucketed by transport/direction (packet rules) or
app protocol (transaction rules).

Inspect, per packet:
1. A flow passed by a `pass` rule is not inspected again (Suricata 7: a pass
   match on a flow passes the whole flow).
2. Packet rules: the packet payload and, for TCP, the new part of the
   reassembled stream are scanned, and so are the packet header buffers
   (`tcp.hdr`, ...) that some rule's fast pattern is in; candidates plus the
   no-pattern bucket are verified cheapest first: header, flow, packet
   keywords, flowbits, header buffers, payload.
3. Transaction rules: each tx's buffers are scanned per buffer group; a rule
   is verified when all its buffers are present; it alerts at most once per
   (rule, flow, tx_id).
4. A match applies its flowbit actions, then thresholds decide whether it is
   reported, and threshold.config (`threshold_config`) may suppress its
   alert, replace its threshold or, by a rate_filter, change its action. A
   `pass` match stops the packet.

Stream semantics. `stream` is (window, new_offset). A payload rule on TCP
whose data went into the stream is matched against the window, and reported
only if it matches the window but does *not* match `window[:new_offset]`:
i.e. the match needs bytes that arrived with this packet, so the same stream
match is never reported twice and matches spanning segments are found. Such
a rule is not also tried on the bare packet payload (Suricata skips packet
inspection for packets added to the stream). Rules that need the packet
(`dsize`, `tcp-pkt`, `flow:no_stream`) are matched on the packet payload;
`tcp-stream`/`flow:only_stream` rules only on the stream. When `stream` is
None (UDP, no reassembly, midstream not picked up) payload rules other than
stream-only ones are matched on the packet payload, as Suricata does. Depth
and offset in stream matches count from the window start.

Bounds. Per buffer scan at most `config.max_verify_per_packet` candidates are
verified (the rest are counted in `stats["verify_capped"]`); each rule
verification has a step budget (`verify.STEPS_PER_INSPECTION`); pcre sees at
most `verify.PCRE_MAX_INPUT` bytes; payload inspection stops once a flow
direction has had `config.stream_depth` bytes inspected.
"""
from __future__ import annotations

import itertools
import os
from bisect import bisect_right
from collections import Counter

from ips.applayer import detection_failed

from . import cache as cache_module
from . import packet_buffers, packet_checks, state, threshold_config, transforms, verify
from .parser import PAYLOAD, STICKY_ALIASES, Rule, RuleError, parse_header, parse_rule
from .prefilter import Matcher, PatternGroup
from .variables import Variables, address_key

__all__ = ["DetectEngine", "LoadReport", "Match", "Rule"]

_ACTION_RANK = {"pass": 0, "drop": 1, "reject": 2, "alert": 3}
_PROTO_CLASSES = ("tcp", "udp", "icmp", "other")
# Rules whose fixed header outcome one flow direction remembers (see
# `inspect`); past this, the rest are checked on every packet.
HEADER_MEMO_MAX = 4096
# Addresses whose address-index rules are remembered (see `_side_parts`).
ADDRESS_RULES_MAX = 65536
# Transaction buffer scans remembered across flows (see `_inspect_tx`):
# values up to this long, this many bytes of them in all. Longer values
# (bodies) are remembered per flow, this many.
TX_SCAN_CACHE_VALUE_MAX = 1024
TX_SCAN_CACHE_BYTES = 4 << 20
TX_SCAN_MEMO_MAX = 64
TX_SCAN_PLANS_MAX = 1024
_DIRECTIONS = ("ts", "tc")
# Alternative names a tx may use for the buffer a rule names.
_BUFFER_FALLBACKS = {
    "file.data": ("http.response_body", "http.request_body"),
    "http.response_body": ("file.data",),
}


_PROTO_CLASS = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmp"}
# Third part of a packet group key naming a header buffer's group:
# (proto class, direction, HEADER_GROUP, buffer) beside the port groups'
# (proto class, direction, "dport" | "sport", port).
HEADER_GROUP = "header"
_GENERATIONS = itertools.count(1)


def _proto_class(proto: int) -> str:
    return _PROTO_CLASS.get(proto, "other")


def _rule_proto_classes(rule: Rule) -> tuple[str, ...]:
    transports = rule.transports
    precheck = _quick_reject(rule)
    if precheck is not None and precheck[0] is not None:
        # `alert ip ... (ip_proto:41; ...)` only ever sees protocol 41: it
        # need not sit in the tcp, udp and icmp lists, looked at for every
        # new flow direction.
        transports = precheck[0]
    if transports is None:
        return _PROTO_CLASSES
    return tuple(sorted({_proto_class(proto) for proto in transports}))


def _rule_directions(rule: Rule) -> tuple[str, ...]:
    if rule.direction_hint is None or rule.direction in ("<>", "=>"):
        return _DIRECTIONS
    return (rule.direction_hint,)


class Match:
    """One rule that matched the packet."""

    __slots__ = ("rule", "tx_id", "from_stream", "noalert", "action")

    def __init__(self, rule: Rule, tx_id: int | None = None, from_stream: bool = False) -> None:
        self.rule = rule
        self.tx_id = tx_id
        self.from_stream = from_stream
        self.noalert = rule.noalert
        # What this match does: the rule's action, unless a threshold.config
        # rate_filter has changed it for now.
        self.action = rule.action

    def __repr__(self) -> str:
        return f"Match(sid={self.rule.sid}, tx_id={self.tx_id}, from_stream={self.from_stream})"


class LoadReport:
    """What happened to each rule line."""

    __slots__ = ("loaded", "skipped", "errors", "files", "details", "threshold_entries",
                 "threshold_errors")

    def __init__(self) -> None:
        self.loaded = 0
        self.skipped: list[tuple[str, int, int | None, str, str | None]] = []
        self.errors: list[tuple[str, int, int | None, str, str | None]] = []
        self.files: list[str] = []
        # threshold.config (`threshold-file`): entries loaded, and the lines
        # that were not, as (file, line, message).
        self.threshold_entries = 0
        self.threshold_errors: list[tuple[str, int, str]] = []
        # (file, line) of a skipped rule -> what exactly was refused, when
        # the keyword alone does not say (the event an event keyword names).
        self.details: dict[tuple[str, int], str] = {}

    def by_reason(self) -> Counter:
        return Counter(reason for _, _, _, reason, _ in self.skipped)

    def by_keyword(self) -> Counter:
        return Counter(f"{reason}: {keyword}" if keyword else reason
                       for _, _, _, reason, keyword in self.skipped)


def load_classifications(path: str | None = None) -> dict[str, tuple[str, int]]:
    """classification.config → {shortname: (description, priority)}."""
    if path is None:
        here = os.path.dirname(os.path.abspath(__file__))
        path = os.path.join(here, "..", "..", "signatures", "classification.config")
    table = {}
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                line = line.strip()
                if not line.startswith("config classification:"):
                    continue
                parts = [p.strip() for p in line.split(":", 1)[1].split(",")]
                if len(parts) == 3 and parts[2].isdigit():
                    table[parts[0]] = (parts[1], int(parts[2]))
    except OSError:
        pass
    return table


def _iter_rule_lines(path: str, data: bytes):
    """(line number, rule text) for each rule in a file, joining '\\' continuations."""
    text = data.decode("utf-8", errors="replace")
    pending = ""
    start = 0
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not pending:
            if not stripped or stripped.startswith("#"):
                continue
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1]
            continue
        yield start, pending + stripped
        pending = ""
    if pending:
        yield start, pending


def _state_rank(setters, readers) -> int:
    """Suricata's order within a kind of state: setters, then rules that set
    and read, then readers, then the rest."""
    if setters:
        return 1 if readers else 0
    return 2 if readers else 3


def _sort_key(rule: Rule):
    """Suricata's signature order (SCSigOrderSignatures): action, then
    flowbits, flowint and host/pair bits each setters first, priority, sid."""
    flowint_reader = any(getattr(c, "name", "") == "flowint" for c in rule.packet_checks)
    return (_ACTION_RANK[rule.action],
            _state_rank(rule.flowbit_actions, rule.flowbit_checks),
            _state_rank(rule.flowint_actions, flowint_reader),
            _state_rank(rule.xbit_actions, rule.xbit_checks),
            rule.priority, rule.sid)


class DetectEngine:
    """Loaded ruleset and its prefilter databases."""

    __slots__ = ("rules", "config", "packet_matchers", "packet_no_pattern", "packet_by_port",
                 "quick",
                 "_inspected_classes",
                 "tx_matchers",
                 "tx_no_pattern", "thresholds", "stats", "max_verify", "max_flow_bytes",
                 "packet_alert_max", "tx_groups_by_buffer", "rule_texts", "address_index",
                 "_variables", "_classifications", "generation", "_tx_scan_plans",
                 "_tx_scan_cached_bytes", "xbits", "_side_plans", "_address_rules", "_budget",
                 "_headers", "packet_by_event", "tx_by_event", "tuning")

    def __init__(self, rules: list, config) -> None:
        # rules[i] is a parsed Rule, or None until first needed when loaded
        # from the cache (parsing is deterministic, so the text is enough).
        self.rules = rules
        # Rule index -> `RuleHeader` of a rule not parsed yet (see `_header_rule`).
        self._headers: dict = {}
        # Per-flow detection state is tied to the ruleset it was built for.
        self.generation = next(_GENERATIONS)
        self._inspected_classes = None
        self.rule_texts: list[tuple[str, int, str]] = []
        self.config = config
        self._variables = None
        self._classifications = None
        # (proto class, direction) -> {(ip version, address prefix): [rule index]}
        self.address_index: dict[tuple, dict[tuple, list[int]]] = {}
        self.packet_matchers: dict[tuple, Matcher] = {}
        self.packet_no_pattern: dict[tuple, list[int]] = {}
        # Header-only rules bucketed by port, as Suricata's port groups: a
        # rule for "any -> any 5432" is only looked at for packets to 5432.
        # {(proto_class, direction): ({dport: [rule]}, {sport: [rule]})}
        self.packet_by_port: dict[tuple, tuple[dict, dict]] = {}
        # Per rule index: (IP protocols, destination ports) it can only ever
        # match, or None. Checked inline before any verification call, since
        # tiny fast patterns ("|00 01|" for TFTP) make many candidates whose
        # port alone rules them out (Suricata's port groups do the same).
        self.quick: list[tuple | None] = []
        self.tx_matchers: dict[tuple, Matcher] = {}
        self.tx_no_pattern: dict[str, list[int]] = {}
        # Rules whose only selective part is an event keyword, by event name:
        # looked up only for a packet (decode-event, stream-event) or a
        # transaction (app-layer-event) that carries events, so they cost
        # nothing on the rest. {event name: [rule index]}
        self.packet_by_event: dict[str, list[int]] = {}
        self.tx_by_event: dict[str, list[int]] = {}
        # base buffer name -> [(group buffer name, transform chain)], built with the matchers
        self.tx_groups_by_buffer: dict[str, list[tuple[str, tuple]]] = {}
        # direction -> tx buffer name -> (((matcher, transform chain), ...),
        #                                {buffer value: rule indices found})
        self._tx_scan_plans: dict[str, dict[str, tuple]] = {"ts": {}, "tc": {}}
        self._tx_scan_cached_bytes = 0
        # (IP protocol, to_server) -> `_side_plan`, filled on first use.
        self._side_plans: dict[tuple, tuple] = {}
        # id(address range index) -> {address: its rules}: the groups that
        # share an index (see `_shared_range_indexes`) share its answers.
        self._address_rules: dict[int, dict] = {}
        self._budget = verify.Budget()
        self.thresholds = state.Thresholds()
        # threshold.config's suppressions, thresholds and rate filters, or None
        self.tuning: threshold_config.ThresholdConfig | None = None
        self.xbits = state.XBits()
        self.stats: Counter = Counter()
        self.max_verify = max(1, int(getattr(config, "max_verify_per_packet", 256)))
        self.max_flow_bytes = int(getattr(config, "stream_depth", 1 << 20)) or (1 << 20)
        self.packet_alert_max = int(getattr(config, "packet_alert_max", 15))

    # -- loading -----------------------------------------------------------
    @classmethod
    def load(cls, rule_paths: list[str], config, cache_dir: str | None = None,
             classification_path: str | None = None) -> tuple["DetectEngine", LoadReport]:
        """The rules, and the threshold file `config.threshold_file` names.

        The threshold file is read afresh at every load, never cached: it
        tunes rules by id, and editing it must not cost a recompile."""
        engine, report = cls._load_rules(rule_paths, config, cache_dir, classification_path)
        report.threshold_entries, report.threshold_errors = 0, []
        path = getattr(config, "threshold_file", "")
        if path:
            tuning, report.threshold_errors = threshold_config.load(path, engine._variables)
            report.threshold_entries = len(tuning)
            engine.tuning = tuning if len(tuning) else None
        return engine, report

    @classmethod
    def _load_rules(cls, rule_paths: list[str], config, cache_dir: str | None,
                    classification_path: str | None) -> tuple["DetectEngine", LoadReport]:
        variables = Variables.from_config(config)
        texts = []
        report = LoadReport()
        for path in rule_paths:
            try:
                with open(path, "rb") as handle:
                    texts.append((path, handle.read()))
                report.files.append(path)
            except OSError as exc:
                report.errors.append((path, 0, None, "unreadable-file", str(exc)))
        key = None
        if cache_dir:
            variables_text = repr(sorted(variables.addresses.items())) + repr(sorted(variables.ports.items()))
            key = cache_module.ruleset_key(texts, variables_text + repr(classification_path))
            cached = cache_module.load(cache_dir, key)
            if cached is not None:
                try:
                    return cls._from_cache(cached, config, variables, classification_path,
                                           [path for path, _ in texts])
                except Exception:  # noqa: BLE001 - a bad cache entry must only cost a rebuild
                    pass
        classifications = load_classifications(classification_path)
        rules = []
        seen: dict[tuple[int, int], Rule] = {}
        for path, data in texts:
            for line_number, text in _iter_rule_lines(path, data):
                try:
                    rule = parse_rule(text, variables, classifications)
                except RuleError as exc:
                    sid = _guess_sid(text)
                    entry = (path, line_number, sid, exc.reason, exc.keyword)
                    if exc.syntax:
                        report.errors.append(entry[:3] + (f"syntax: {exc.detail}"[:200], exc.keyword))
                    else:
                        report.skipped.append(entry)
                        if exc.detail:
                            report.details[(path, line_number)] = exc.detail[:200]
                    continue
                except (ValueError, TypeError, IndexError, OverflowError, RecursionError) as exc:
                    report.errors.append((path, line_number, _guess_sid(text),
                                          f"syntax: {exc}"[:200], None))
                    continue
                rule.file = path
                rule.line = line_number
                identity = (rule.gid, rule.sid)
                previous = seen.get(identity)
                if previous is not None:
                    # Suricata keeps one rule per gid:sid; the higher revision wins.
                    loser = rule if rule.rev <= previous.rev else previous
                    report.skipped.append((loser.file, loser.line, loser.sid, "duplicate-sid", None))
                    if loser is previous:
                        rules[rules.index(previous)] = rule
                        seen[identity] = rule
                    continue
                seen[identity] = rule
                rules.append(rule)
        rules.sort(key=_sort_key)
        for index, rule in enumerate(rules):
            rule.index = index
        report.loaded = len(rules)
        engine = cls(rules, config)
        engine._variables = variables
        engine._classifications = classifications
        engine.rule_texts = [(rule.file, rule.line, rule.text) for rule in rules]
        groups = engine._build_groups()
        engine.quick = [_quick_reject(rule) for rule in rules]
        engine.address_index = _shared_range_indexes(engine.address_index)
        for group_key, group in groups.items():
            target = engine.tx_matchers if group_key[0] == "tx" else engine.packet_matchers
            target[group_key[1:]] = Matcher.compile(group)
        engine._index_tx_groups()
        if cache_dir and key:
            cache_module.store(cache_dir, key, {
                "rule_texts": engine.rule_texts, "report": report,
                "databases": {group_key: (matcher_for(engine, group_key).dump(),
                                          groups[group_key].rules_by_pattern)
                              for group_key in groups},
                "packet_no_pattern": engine.packet_no_pattern,
                "packet_by_port": engine.packet_by_port,
                "quick": engine.quick,
                "tx_no_pattern": engine.tx_no_pattern,
                "address_index": engine.address_index,
                "packet_by_event": engine.packet_by_event,
                "tx_by_event": engine.tx_by_event,
            })
        return engine, report

    @classmethod
    def _from_cache(cls, cached: dict, config, variables: Variables,
                    classification_path: str | None, paths: list[str]) -> tuple["DetectEngine", LoadReport]:
        # Same bytes in the same order: rename the cached file names to today's paths.
        renamed = dict(zip(cached["report"].files, paths))
        texts = [(renamed.get(file, file), line, text) for file, line, text in cached["rule_texts"]]
        report = cached["report"]
        report.skipped = [(renamed.get(entry[0], entry[0]),) + tuple(entry[1:]) for entry in report.skipped]
        report.errors = [(renamed.get(entry[0], entry[0]),) + tuple(entry[1:]) for entry in report.errors]
        report.details = {(renamed.get(file, file), line): detail
                          for (file, line), detail in getattr(report, "details", {}).items()}
        report.files = list(paths)
        engine = cls([None] * len(texts), config)
        engine.rule_texts = texts
        engine._variables = variables
        engine._classifications = load_classifications(classification_path)
        for group_key, (dumped, rules_by_pattern) in cached["databases"].items():
            target = engine.tx_matchers if group_key[0] == "tx" else engine.packet_matchers
            target[group_key[1:]] = Matcher.load(dumped, rules_by_pattern)
        engine.packet_no_pattern = cached["packet_no_pattern"]
        engine.packet_by_port = cached["packet_by_port"]
        engine.quick = cached["quick"]
        engine.tx_no_pattern = cached["tx_no_pattern"]
        engine.address_index = cached["address_index"]
        engine.packet_by_event = cached["packet_by_event"]
        engine.tx_by_event = cached["tx_by_event"]
        engine._index_tx_groups()
        return engine, report

    def take_state(self, running: "DetectEngine") -> None:
        """At a live reload: carry over the running engine's thresholds and
        xbits, as Suricata keeps them in its host tables, so that a rule
        update does not hand a brute-forcer a fresh budget or clear a bit
        another rule waits for. Both are keyed by names and (gid, sid), not
        rule indices, so a rule that keeps its id keeps its state; entries of
        removed rules age out of the bounded tables."""
        self.thresholds = running.thresholds
        self.xbits = running.xbits

    def inspects(self, proto: int) -> bool:
        """Whether any loaded rule can match a packet of this IP protocol.

        A flow of a protocol no rule looks at is judged from its first
        packet (the box bypasses it in the kernel)."""
        classes = self._inspected_classes
        if classes is None:
            classes = set()
            for table in (self.packet_matchers, self.packet_no_pattern, self.address_index):
                classes.update(key[0] for key, value in table.items() if value)
            classes.update(key[0] for key, (by_dst, by_src) in self.packet_by_port.items()
                           if by_dst or by_src)
            if self.tx_matchers or self.tx_no_pattern or self.tx_by_event:
                classes.update(("tcp", "udp"))
            if self.packet_by_event:
                classes.update(_PROTO_CLASSES)
            self._inspected_classes = classes
        return _proto_class(proto) in classes

    def rule(self, index: int) -> Rule:
        """The parsed rule at `index` (parsed on first use after a cached load)."""
        rule = self.rules[index]
        if rule is None:
            file, line, text = self.rule_texts[index]
            rule = parse_rule(text, self._variables, self._classifications, checked=True)
            rule.file, rule.line, rule.index = file, line, index
            self.rules[index] = rule
            self._headers.pop(index, None)
        return rule

    def _header_rule(self, index: int, context: "_PacketContext") -> Rule | None:
        """The rule at `index` if its fixed header part holds for the
        packet (`_static_header_match`), else None. A rule not parsed yet is
        first judged on its header line alone: most candidates a flow
        direction rules out fail on their ports or networks, and need no
        parse of their options."""
        rule = self.rules[index]
        if rule is None:
            header = self._headers.get(index)
            if header is None:
                header = self._headers[index] = parse_header(self.rule_texts[index][2],
                                                             self._variables)
            if not self._static_header_match(header, context):
                return None
            rule = self.rule(index)
        return rule if self._static_header_match(rule, context) else None

    def _tx_scan_plan(self, name: str, direction: str) -> tuple:
        """((matcher, transform chain) pairs that scan tx buffer `name`,
        cache of their results by buffer value)."""
        base_name = STICKY_ALIASES.get(name, name)
        bases = [base_name] + [alias for alias, targets in _BUFFER_FALLBACKS.items()
                               if base_name in targets]
        scans = []
        for base in bases:
            for group_name, chain in self.tx_groups_by_buffer.get(base, ()):
                matcher = self.tx_matchers.get((group_name, direction))
                if matcher is not None:
                    scans.append((matcher, chain))
        plan = (tuple(scans), {})
        # Buffer names are the parsers' (a few dozen); SSDP's follow header
        # names from the wire, hence the bound.
        known = self._tx_scan_plans[direction]
        if len(known) < TX_SCAN_PLANS_MAX:
            known[name] = plan
        return plan

    def _index_tx_groups(self) -> None:
        by_buffer: dict[str, set] = {}
        for buffer_name, _direction in self.tx_matchers:
            base, chain = transforms.split(buffer_name)
            by_buffer.setdefault(base, set()).add((buffer_name, chain))
        self.tx_groups_by_buffer = {base: sorted(groups) for base, groups in by_buffer.items()}
        self._tx_scan_plans = {"ts": {}, "tc": {}}

    def _add_no_pattern(self, rule: Rule, proto_class: str, direction: str) -> None:
        key = (proto_class, direction)
        if proto_class in ("tcp", "udp") and rule.direction == "->":
            destination_ports = rule.destination_ports.single_ports()
            source_ports = rule.source_ports.single_ports()
            by_destination, by_source = self.packet_by_port.setdefault(key, ({}, {}))
            if destination_ports:
                for port in destination_ports:
                    by_destination.setdefault(port, []).append(rule.index)
                return
            if source_ports:
                for port in source_ports:
                    by_source.setdefault(port, []).append(rule.index)
                return
        self.packet_no_pattern.setdefault(key, []).append(rule.index)

    def _build_groups(self) -> dict[tuple, PatternGroup]:
        groups: dict[tuple, PatternGroup] = {}
        home = self._variables.address("$HOME_NET")
        for rule in self.rules:
            directions = _rule_directions(rule)
            fast = rule.fast_pattern
            if rule.tx_buffers or rule.tx_events:
                # A transaction rule whose fast pattern is in the packet
                # payload is prefiltered on the payload (its verification
                # reads the payload too), not verified for every tx.
                if fast is None:
                    if rule.tx_events:
                        # Every event is required: its first one selects it.
                        self.tx_by_event.setdefault(rule.tx_events[0], []).append(rule.index)
                    else:
                        self.tx_no_pattern.setdefault(rule.app_proto or "", []).append(rule.index)
                    continue
                buffer, content = fast
                for direction in directions:
                    groups.setdefault(("tx", buffer, direction), PatternGroup()).add(
                        content.fast_bytes, content.nocase, rule.index)
                continue
            if fast is None and rule.packet_events:
                self.packet_by_event.setdefault(rule.packet_events[0], []).append(rule.index)
                continue
            address_ranges = None
            if fast is None and not _port_bucketable(rule):
                address_ranges = _address_ranges(rule, home)
            port_groups = _port_groups(rule) if fast is not None else ()
            for proto_class in _rule_proto_classes(rule):
                for direction in directions:
                    if fast is None and address_ranges:
                        pending = self.address_index.setdefault((proto_class, direction), [])
                        for version, low, high in address_ranges:
                            pending.append((version, low, high, rule.index))
                    elif fast is None:
                        self._add_no_pattern(rule, proto_class, direction)
                    elif fast[0] != PAYLOAD:
                        # A packet header buffer's pattern: scanned in that
                        # header of every packet of the class (ports are
                        # checked with the rest of the header).
                        groups.setdefault(("packet", proto_class, direction, HEADER_GROUP, fast[0]),
                                          PatternGroup()).add(
                            fast[1].fast_bytes, fast[1].nocase, rule.index)
                    elif port_groups and proto_class in ("tcp", "udp"):
                        for side, port in port_groups:
                            groups.setdefault(("packet", proto_class, direction, side, port),
                                              PatternGroup()).add(
                                fast[1].fast_bytes, fast[1].nocase, rule.index)
                    else:
                        groups.setdefault(("packet", proto_class, direction), PatternGroup()).add(
                            fast[1].fast_bytes, fast[1].nocase, rule.index)
        return groups

    def _side_plan(self, proto: int, to_server: bool) -> tuple:
        """Where a packet of this IP protocol and direction finds its
        header-only rules and its prefilter groups, gathered once per
        (protocol, direction) so a new flow direction costs a few lookups:
        (header-only rules for any packet, by destination port, by source
        port, address range index, its answers by address (bounded by
        ADDRESS_RULES_MAX), protocol's matcher, port-group matchers by
        destination port, by source port, header buffer scans: (buffer,
        transform chain, `Matcher.call`) each)."""
        key = (proto, to_server)
        plan = self._side_plans.get(key)
        if plan is not None:
            return plan
        proto_class = _proto_class(proto)
        direction = "ts" if to_server else "tc"
        group = (proto_class, direction)
        matchers_by_dport: dict = {}
        matchers_by_sport: dict = {}
        header_scans = []
        for group_key, matcher in self.packet_matchers.items():
            if len(group_key) == 4 and group_key[:2] == group:
                if group_key[2] == HEADER_GROUP:
                    base, chain = transforms.split(group_key[3])
                    header_scans.append((base, chain) + matcher.call)
                    continue
                target = matchers_by_dport if group_key[2] == "dport" else matchers_by_sport
                target[group_key[3]] = matcher
        rules_by_dport, rules_by_sport = self.packet_by_port.get(group, ({}, {}))
        by_address = self.address_index.get(group) or None
        address_rules = self._address_rules.setdefault(id(by_address), {})
        plan = (tuple(self.packet_no_pattern.get(group, ())), rules_by_dport, rules_by_sport,
                by_address, address_rules, self.packet_matchers.get(group),
                matchers_by_dport, matchers_by_sport, tuple(header_scans))
        if len(self._side_plans) < 512:     # 256 IP protocols, two directions
            self._side_plans[key] = plan
        return plan

    def _side_parts(self, pkt, flow, source, destination) -> tuple[tuple, tuple, tuple]:
        """(header-only candidate rules, payload prefilter matchers, header
        buffer scans) of a packet's flow direction: all depend only on its
        protocol, ports and addresses. `source`, `destination`: the
        `address_key`s."""
        (no_pattern, rules_by_dport, rules_by_sport, by_address, address_rules, generic,
         matchers_by_dport, matchers_by_sport, header_scans) = self._side_plan(pkt.proto, pkt.to_server)
        sport, dport = pkt.sport, pkt.dport
        scanners = () if generic is None else (generic.call,)
        if matchers_by_dport:
            matcher = matchers_by_dport.get(dport)
            if matcher is not None:
                scanners += (matcher.call,)
        if matchers_by_sport:
            matcher = matchers_by_sport.get(sport)
            if matcher is not None:
                scanners += (matcher.call,)
        found = set(no_pattern)
        if rules_by_dport:
            found.update(rules_by_dport.get(dport, ()))
        if rules_by_sport:
            found.update(rules_by_sport.get(sport, ()))
        if by_address is not None:
            # The same hosts open flow after flow: an address's rules (two
            # bisections over ET's ~25,000 listed ranges) are remembered.
            for address in (source, destination):
                if address is None:
                    continue
                rules = address_rules.get(address)
                if rules is None:
                    rules = _ranges_lookup(by_address, address)
                    if len(address_rules) >= ADDRESS_RULES_MAX:
                        address_rules.clear()
                    address_rules[address] = rules
                found.update(rules)
        if not found:
            return (), scanners, header_scans
        return self._header_filter(found, pkt, flow, source, destination), scanners, header_scans

    # -- inspection ----------------------------------------------------------
    def inspect(self, pkt, flow, stream, txs) -> list[Match]:
        """Matches for one packet; never raises on malformed input."""
        # One frame per packet: the try costs nothing until something raises.
        try:
            to_server = pkt.to_server
            proto = pkt.proto
            # What depends only on the flow direction (header-only candidates,
            # which candidates' fixed header part holds, address keys, bytes
            # inspected) is kept in the flow, computed once per direction.
            side = None
            detect = flow.detect if flow is not None else None
            if detect is not None:
                if detect.get("pass"):
                    return []
                side_key = "side_ts" if to_server else "side_tc"
                side = detect.get(side_key)
                if side is None or side.generation != self.generation:
                    side = detect[side_key] = self._new_side(pkt, flow, side)
                header_rules = side.header_rules
                scanners = side.scanners
                header_scans = side.header_scans
                if side.iponly:
                    header_rules = header_rules + side.iponly
                    side.iponly = ()
            else:
                header_rules, scanners, header_scans = self._side_parts(
                    pkt, flow, address_key(pkt.src), address_key(pkt.dst))

            payload = pkt.payload or b""
            window = None
            new_offset = 0
            if stream is not None and proto == 6:
                window, new_offset = stream
            # Only a loaded event rule makes a packet's events worth a look.
            events = pkt.events if self.packet_by_event else ()
            if (not header_rules and not txs and window is None and not payload and not events
                    and not header_scans):
                return []

            # Bound payload work per flow direction.
            inspect_payload = True
            if side is not None:
                seen = side.inspected
                if seen >= self.max_flow_bytes:
                    inspect_payload = False
                    self.stats["flow_inspect_capped"] += 1
                else:
                    grown = len(payload) if window is None else max(len(window) - new_offset, len(payload))
                    side.inspected = seen + grown

            candidates: set[int] = set()
            if inspect_payload:
                # The window already holds this packet's new bytes; scanning the
                # bare payload as well would only find the same candidates.
                data = window if window is not None else payload
                if data:
                    for scan, handler in scanners:
                        scan(data, handler, 0, candidates)
            if header_scans:
                # Header buffers are the packet's own, outside the payload bound.
                for name, chain, scan, handler in header_scans:
                    header = packet_buffers.read(pkt, name)
                    if header:
                        scan(transforms.apply(chain, header) if chain else header, handler, 0,
                             candidates)
            if len(candidates) > self.max_verify:
                ordered = sorted(candidates)
                self.stats["verify_capped"] += len(ordered) - self.max_verify
                candidates = set(ordered[:self.max_verify])
            if header_rules:
                candidates.update(header_rules)
            if events:
                candidates.update(_selected_by(self.packet_by_event, events))
            if side is not None and candidates:
                # Most candidates of a frequent short pattern are rules whose
                # ports or networks this flow direction has already failed: one
                # set difference in C instead of a lookup each, and a packet
                # left with nothing costs no context and no loop.
                failed = side.header_failed
                if failed:
                    candidates -= failed
            if not candidates and not txs:
                return []
            if side is not None:
                context = _PacketContext(pkt, flow, side.source, side.destination, side)
                known = side.header_known
            else:
                context = _PacketContext(pkt, flow, address_key(pkt.src), address_key(pkt.dst))
                known = None
            matches: list[Match] = []
            stop = False
            if candidates:
                quick = self.quick
                rules = self.rules
                dport = pkt.dport
                # Rule order (pass, drop, reject, alert; flowbit setters first) is
                # the index order, so verification follows it.
                for index in sorted(candidates):
                    # A candidate's fixed header part (protocol, addresses, ports,
                    # flow direction) holds or fails for every packet of the flow
                    # direction: remembered, so a short fast pattern frequent in
                    # traffic costs one dictionary lookup for the rules whose ports
                    # or networks rule them out, not a header match per packet.
                    header_ok = known.get(index) if known is not None else None
                    if header_ok is False:
                        continue
                    if header_ok is None:
                        precheck = quick[index]
                        if precheck is not None:
                            protos, dports = precheck
                            if (protos is not None and proto not in protos) or (
                                    dports is not None and dport not in dports):
                                if known is not None and len(known) < HEADER_MEMO_MAX:
                                    known[index] = False
                                    side.header_failed.add(index)
                                continue
                        rule = self._header_rule(index, context)
                        header_ok = rule is not None
                        if known is not None and len(known) < HEADER_MEMO_MAX:
                            known[index] = header_ok
                            if not header_ok:
                                side.header_failed.add(index)
                        if not header_ok:
                            continue
                    else:
                        rule = rules[index] or self.rule(index)
                    if not inspect_payload and PAYLOAD in rule.buffers:
                        continue
                    try:
                        result = self._verify_packet_rule(rule, context, window, new_offset)
                    except Exception:  # noqa: BLE001 - one rule's failure must not blind the rest
                        self.stats["verify_errors"] += 1
                        continue
                    if result is None:
                        continue
                    if self._report(rule, context, None, result, matches):
                        stop = True
                        break

            if not stop and txs:
                for tx in txs:
                    if self._inspect_tx(tx, context, matches):
                        break
            if matches:
                self._cap_alerts(matches)
            return matches
        except Exception:  # noqa: BLE001 - detection must not take the worker down
            self.stats["inspect_errors"] += 1
            return []

    def inspect_undecoded(self, pkt) -> list[Match]:
        """Matches for a packet the decoder gave up on (`ipv4.trunc_pkt`,
        `tcp.pkt_too_small`, ...): only rules whose every condition is an
        event (decode-event or stream-event alone) can match it. As in
        Suricata, a packet whose IP header was read keeps its protocol, so
        `alert tcp` rules see a broken TCP header, with their addresses
        checked and the ports as 0; before that (no IP protocol) only the
        "decoder event only" group applies: rules on any protocol and any
        address (`pkthdr`, `ip ... any any -> any any`)."""
        try:
            events = pkt.events
            if not events or not self.packet_by_event:
                return []
            candidates = _selected_by(self.packet_by_event, events)
            matches: list[Match] = []
            proto = pkt.proto
            source = address_key(pkt.src) if pkt.src is not None else None
            destination = address_key(pkt.dst) if pkt.dst is not None else None
            context = _PacketContext(pkt, None, source, destination)
            for index in sorted(candidates):
                rule = self.rules[index] or self.rule(index)
                if not (_events_only(rule) and _carries(events, rule.packet_events)):
                    continue
                if rule.transports is not None and not (proto and proto in rule.transports):
                    continue
                if rule.ip_version and pkt.ip_version != rule.ip_version:
                    continue
                if source is None or destination is None:
                    if not _header_is_any(rule):
                        continue
                elif not (_addresses_match(rule, source, destination, pkt.sport, pkt.dport, proto)
                          or (rule.direction == "<>" and _addresses_match(
                              rule, destination, source, pkt.dport, pkt.sport, proto))):
                    continue
                if self._report(rule, context, None, False, matches):
                    break
            if matches:
                self._cap_alerts(matches)
            return matches
        except Exception:  # noqa: BLE001 - detection must not take the worker down
            self.stats["inspect_errors"] += 1
            return []

    def _new_side(self, pkt, flow, previous: "_FlowSide | None") -> "_FlowSide":
        side = _FlowSide()
        side.generation = self.generation
        side.source = source = address_key(pkt.src)
        side.destination = destination = address_key(pkt.dst)
        header_rules, side.scanners, side.header_scans = self._side_parts(pkt, flow, source, destination)
        # Suricata inspects IP-only rules (addresses alone decide) on the
        # first packet of each flow direction, not on every packet; what
        # they do (a drop, a flowbit) holds for the flow from there.
        rules = self.rules
        iponly = tuple(index for index in header_rules if _ip_only(rules[index]))
        side.iponly = iponly
        if iponly:
            pending = set(iponly)
            header_rules = tuple(index for index in header_rules if index not in pending)
        side.header_rules = header_rules
        side.header_known = {}
        side.header_failed = set()
        # A rule reload keeps the flow's inspection bound: bytes seen stay seen.
        side.inspected = previous.inspected if previous is not None else 0
        return side

    def _header_filter(self, found: set, pkt, flow, source, destination) -> tuple[int, ...]:
        """The rules of `found` (header-only rules) whose fixed header part
        (protocol, ports, addresses, flow direction) this packet satisfies
        (see `inspect`)."""
        quick = self.quick
        proto, dport = pkt.proto, pkt.dport
        context = _PacketContext(pkt, flow, source, destination)
        kept = []
        for index in sorted(found):
            precheck = quick[index]
            if precheck is not None:
                protos, dports = precheck
                if (protos is not None and proto not in protos) or (
                        dports is not None and dport not in dports):
                    continue
            if self._header_rule(index, context) is not None:
                kept.append(index)
        return tuple(kept)

    def _cap_alerts(self, matches: list[Match]) -> None:
        alerting = [m for m in matches if not m.noalert]
        if len(alerting) > self.packet_alert_max:
            self.stats["alerts_capped"] += len(alerting) - self.packet_alert_max
            keep = set(map(id, alerting[:self.packet_alert_max]))
            matches[:] = [m for m in matches if m.noalert or id(m) in keep]

    def _report(self, rule: Rule, context: "_PacketContext", tx_id, from_stream: bool,
                matches: list[Match]) -> bool:
        """Apply a match's effects; returns True when a pass rule stops the packet."""
        flow = context.flow
        state.apply_flowbits(rule, flow)
        pkt = context.pkt
        if rule.xbit_actions:
            self.xbits.apply(rule, pkt)
        if rule.flowint_actions:
            packet_checks.apply_flowints(rule, flow)
        detection_filter, threshold, rate_filter = rule.detection_filter, rule.threshold, None
        alert = True
        tuning = self.tuning.for_rule(rule) if self.tuning is not None else None
        if tuning is not None:
            if tuning.suppressions and tuning.suppresses(context.source, context.destination):
                # As Suricata, suppressions come first: the alert is not
                # logged, the action stands, and no threshold counts it.
                detection_filter = threshold = None
                alert = False
            else:
                detection_filter, threshold = tuning.detection_filter, tuning.threshold
                rate_filter = tuning.rate_filter
                alert = not tuning.noalert
        if detection_filter is not None:
            logged, act = self.thresholds.check(rule, detection_filter, pkt, flow,
                                                "detection_filter")
            if not act:
                return False
            alert = alert and logged
        if threshold is not None:
            logged, act = self.thresholds.check(rule, threshold, pkt, flow, "threshold")
            if not act:
                return False
            alert = alert and logged
        match = Match(rule, tx_id, bool(from_stream))
        if rate_filter is not None:
            match.action = self.thresholds.rate(rule, rate_filter, pkt, flow) or rule.action
        if not alert:
            # Thresholded or suppressed: the action stands (a limited drop
            # rule still drops), the alert is not logged.
            match.noalert = True
        matches.append(match)
        if match.action == "pass":
            if flow is not None and getattr(flow, "detect", None) is not None:
                flow.detect["pass"] = True
            return True
        return False

    @staticmethod
    def _static_header_match(rule: Rule, context: "_PacketContext") -> bool:
        """The header checks whose outcome is fixed for a flow direction:
        protocol, `flow:to_server/to_client`, addresses and ports (the flow
        key holds all of them)."""
        pkt = context.pkt
        if rule.transports is not None and pkt.proto not in rule.transports:
            return False
        if rule.ip_version and pkt.ip_version != rule.ip_version:
            return False
        if rule.flow_to_server is not None:
            if context.flow is None or bool(pkt.to_server) != rule.flow_to_server:
                return False
        source, destination = context.source, context.destination
        source_port, destination_port = pkt.sport, pkt.dport
        if rule.direction == "=>" and not pkt.to_server:
            source, destination = destination, source
            source_port, destination_port = destination_port, source_port
        if _addresses_match(rule, source, destination, source_port, destination_port, pkt.proto):
            return True
        if rule.direction == "<>":
            return _addresses_match(rule, destination, source, destination_port, source_port, pkt.proto)
        return False

    @staticmethod
    def _flow_state_match(rule: Rule, context: "_PacketContext") -> bool:
        """The header checks that follow the flow's state: app protocol and
        `flow:established`/`not_established`."""
        flow = context.flow
        if rule.app_proto is not None:
            app_proto = getattr(flow, "app_proto", None) if flow is not None else None
            if app_proto is None or _normal_app_proto(app_proto) != rule.app_proto:
                return False
        if rule.app_layer_protocol is not None:
            negated, name = rule.app_layer_protocol
            app_proto = _layer_protocol(flow, context.pkt.to_server)
            if app_proto == "unknown" and name != "unknown":
                # As Suricata: while a direction's protocol is still being
                # detected, app-layer-protocol (negated or not) has nothing
                # to compare and does not match.
                return False
            if (app_proto == name) == negated:
                return False
        if rule.flow_established is not None:
            if flow is None or bool(flow.established) != rule.flow_established:
                return False
        return True

    def _verify_packet_rule(self, rule: Rule, context: "_PacketContext", window, new_offset):
        """None when the rule does not match; else whether the match came from
        the stream. The caller has checked `_static_header_match`."""
        if not self._flow_state_match(rule, context):
            return None
        pkt = context.pkt
        if rule.packet_events and not _carries(pkt.events, rule.packet_events):
            return None
        if rule.tx_events:
            return None     # only a transaction carries app-layer events
        for check in rule.packet_checks:
            if not check.match(pkt):
                return None
        if rule.flowbit_checks and not state.flowbits_match(rule, context.flow):
            return None
        if rule.xbit_checks and not self.xbits.match(rule, pkt):
            return None
        variables = None
        if rule.packet_buffers:
            # Header buffers before the payload: a few dozen bytes each, and
            # a variable one extracts (byte_extract, byte_math) is then
            # there for the payload's keywords.
            variables = {}
            if not self._packet_buffers_match(rule, pkt, variables):
                return None
        matchers = rule.buffers.get(PAYLOAD)
        if matchers is None:
            return False
        if window is not None and not rule.packet_only:
            if window and self._buffer_match(matchers, window) and not (
                    new_offset > 0 and self._buffer_match(matchers, window[:new_offset])):
                return True
            # Anchored contents (depth/offset/startswith) count from the start
            # of the newly inspected data, as in Suricata's stream chunks: a
            # second SMB message in the same stream must match `depth:8`.
            if 0 < new_offset < len(window) and self._buffer_match(matchers, window[new_offset:]):
                return True
            return None
        if rule.stream_only and pkt.proto == 6:
            return None
        if self._buffer_match(matchers, pkt.payload or b"", variables):
            return False
        return None

    def _packet_buffers_match(self, rule: Rule, pkt, variables: dict) -> bool:
        """Whether every packet header buffer of `rule` (`tcp.hdr`, ...) is
        in the packet and matches."""
        for name in rule.packet_buffers:
            base, chain = transforms.split(name)
            data = packet_buffers.read(pkt, base)
            if data is None:
                return False
            if chain:
                data = transforms.apply(chain, data)
            if not self._buffer_match(rule.buffers[name], data, variables):
                return False
        return True

    def _buffer_match(self, matchers: list, data: bytes, variables: dict | None = None) -> bool:
        # One budget object, refilled for each inspection (never nested).
        budget = self._budget
        budget.steps = verify.STEPS_PER_INSPECTION
        budget.exhausted = False
        result = verify.inspect_buffer(matchers, data, {} if variables is None else variables, budget)
        if budget.exhausted:
            self.stats["verify_budget_exhausted"] += 1
        return result

    def _inspect_tx(self, tx, context: "_PacketContext", matches: list[Match]) -> bool:
        buffers = tx.buffers or {}
        direction = "ts" if tx.to_server else "tc"
        candidates: set[int] = set()
        # Which rules a buffer's fast patterns select is a function of the
        # buffer's bytes alone, and device traffic repeats itself: the same
        # method, host, header names, status line, often the same URI, in
        # every connection (and a tx is offered on several packets). Short
        # values are remembered across flows, bounded in bytes; a value never
        # seen is scanned, so an attacker gains nothing but a miss. A long
        # value (a body) is remembered for its transaction only.
        plans = self._tx_scan_plans[direction]
        memo = None
        for name, value in buffers.items():
            plan = plans.get(name)
            if plan is None:
                plan = self._tx_scan_plan(name, direction)
            scans, cache = plan
            if not scans:
                continue
            kind = type(value)
            if kind is bytes:
                size = len(value)
                key = value if size <= TX_SCAN_CACHE_VALUE_MAX else None
                elements = (value,)
            else:
                key, size = _cache_key(value)
                elements = value if kind is list or kind is tuple else (value,)
            if key is not None:
                known = cache.get(key)
                if known is not None:
                    candidates.update(known)
                    continue
            elif kind is bytes:
                if memo is None:
                    memo = self._flow_scan_memo(context.flow)
                memo_key = (tx.app_proto, tx.tx_id, name, direction)
                known = memo.get(memo_key)
                if known is not None:
                    previous, previous_found = known
                    if previous == value:
                        candidates.update(previous_found)
                        continue
                    if value.startswith(previous) and not any(chain for _m, chain in scans):
                        # The body grew: scan what was appended, not all of it.
                        found = set(previous_found)
                        for matcher, _chain in scans:
                            matcher.scan_appended(value, len(previous), found)
                        candidates.update(found)
                        memo[memo_key] = (value, tuple(found))
                        continue
            found: set[int] = set()
            for matcher, chain in scans:
                for element in elements:
                    matcher.scan(transforms.apply(chain, element) if chain else element, found)
            candidates.update(found)
            if key is not None:
                self._tx_scan_cached_bytes += size + 64
                if self._tx_scan_cached_bytes > TX_SCAN_CACHE_BYTES:
                    for by_name in self._tx_scan_plans.values():
                        for _scans, other in by_name.values():
                            other.clear()
                    self._tx_scan_cached_bytes = size + 64
                cache[key] = tuple(found)
            elif kind is bytes:
                if len(memo) >= TX_SCAN_MEMO_MAX:
                    memo.clear()
                memo[memo_key] = (value, tuple(found))
        payload = context.pkt.payload
        if payload:
            matcher = self.tx_matchers.get((PAYLOAD, direction))
            if matcher is not None:
                matcher.scan(payload, candidates)
        ordered = sorted(candidates)
        if len(ordered) > self.max_verify:
            self.stats["verify_capped"] += len(ordered) - self.max_verify
            ordered = ordered[:self.max_verify]
        extra = self.tx_no_pattern.get(_normal_app_proto(tx.app_proto) or "", ())
        if extra:
            ordered = sorted(set(ordered).union(extra))
        tx_events = tx.events
        if tx_events and self.tx_by_event:
            selected = _selected_by(self.tx_by_event, tx_events)
            if selected:
                ordered = sorted(set(ordered).union(selected))
        flow = context.flow
        alerted = None
        detect = getattr(flow, "detect", None) if flow is not None else None
        if detect is not None:
            # (rule index, tx) pairs that fired, for this ruleset: after a
            # reload an index names another rule, which must not be muted.
            entry = detect.get("tx_alerted")
            if entry is None or entry[0] != self.generation:
                entry = detect["tx_alerted"] = (self.generation, set())
            alerted = entry[1]
        # The fixed header part of a candidate is remembered per flow
        # direction as for packet rules (see `inspect`): a rule this
        # direction's ports or networks rule out is not parsed or checked
        # again for its next transactions.
        side = context.side
        known = failed = None
        if side is not None:
            known, failed = side.header_known, side.header_failed
        rules = self.rules
        for index in ordered:
            if failed is not None and index in failed:
                continue
            identity = (index, tx.app_proto, tx.tx_id)
            if alerted is not None and (identity in alerted
                                        or (identity, tx.to_server) in alerted):
                continue
            try:
                header_ok = known.get(index) if known is not None else None
                if header_ok is None:
                    rule = self._header_rule(index, context)
                    header_ok = rule is not None
                    if known is not None and len(known) < HEADER_MEMO_MAX:
                        known[index] = header_ok
                        if not header_ok:
                            failed.add(index)
                elif header_ok:
                    rule = rules[index] or self.rule(index)
                if not header_ok or not self._verify_tx_rule(rule, context, tx, buffers):
                    continue
            except Exception:  # noqa: BLE001 - one rule's failure must not blind the rest
                self.stats["verify_errors"] += 1
                continue
            if alerted is not None:
                if len(alerted) < 65536:
                    # A rule bound to neither direction (a buffer both sides
                    # have, no flow:to_*) fires once per direction of the
                    # transaction, as Suricata's per-direction detect state.
                    alerted.add(identity if rule.direction_hint is not None
                                else (identity, tx.to_server))
            if self._report(rule, context, tx.tx_id, False, matches):
                return True
        return False

    def _flow_scan_memo(self, flow) -> dict:
        detect = getattr(flow, "detect", None)
        if detect is None:
            return {}
        entry = detect.get("tx_scans")
        if entry is None or entry[0] != self.generation:
            entry = detect["tx_scans"] = (self.generation, {})
        return entry[1]

    def _verify_tx_rule(self, rule: Rule, context: "_PacketContext", tx, buffers: dict) -> bool:
        """Whether a candidate matches the transaction. The caller has checked
        `_static_header_match`."""
        if rule.app_proto is not None and _normal_app_proto(tx.app_proto) != rule.app_proto:
            return False
        if not self._flow_state_match(rule, context):
            return False
        pkt = context.pkt
        if rule.tx_events and not _carries(tx.events, rule.tx_events):
            return False
        if rule.packet_events and not _carries(pkt.events, rule.packet_events):
            return False
        for check in rule.packet_checks:
            if not check.match(pkt):
                return False
        if not state.flowbits_match(rule, context.flow):
            return False
        if rule.xbit_checks and not self.xbits.match(rule, pkt):
            return False
        variables: dict = {}
        for name, matchers in rule.buffers.items():
            if name == PAYLOAD:
                if not self._buffer_match(matchers, pkt.payload or b"", variables):
                    return False
                continue
            base, chain = transforms.split(name)
            value = _lookup_buffer(buffers, base, tx.to_server)
            if value is None:
                return False
            if type(value) is bytes:
                if not self._buffer_match(matchers, transforms.apply(chain, value) if chain
                                          else value, variables):
                    return False
                continue
            elements = value if isinstance(value, (list, tuple)) else (value,)
            if not any(self._buffer_match(matchers, transforms.apply(chain, element) if chain
                                          else element, variables)
                       for element in elements):
                return False
        return True


def _header_is_any(rule: Rule) -> bool:
    return (rule.source.any and rule.destination.any and rule.source_ports.any
            and rule.destination_ports.any)


def _ip_only(rule: Rule | None) -> bool:
    """Suricata's IP-only rule (SignatureIsIPOnly): no app protocol, no
    buffer or packet keyword, no flow keyword, flowbits only set, and any
    ports for tcp/udp: its addresses alone decide it."""
    if rule is None:
        return False
    if (rule.app_proto is not None or rule.buffers or rule.packet_checks or rule.packet_events
            or rule.tx_events or rule.flow_established is not None
            or rule.flow_to_server is not None or rule.flow_stateless
            or rule.stream_only or rule.packet_only or rule.flowbit_checks or rule.xbit_checks
            or rule.xbit_actions or rule.flowint_actions or rule.app_layer_protocol):
        return False
    if any(action[0] != "set" for action in rule.flowbit_actions):
        return False
    if rule.transports is None or not rule.transports & {6, 17}:
        return True
    return rule.source_ports.any and rule.destination_ports.any


def _events_only(rule: Rule) -> bool:
    """A rule whose only conditions are packet events (and informational options)."""
    return not (rule.buffers or rule.packet_checks or rule.flowbit_checks or rule.xbit_checks
                or rule.tx_events or rule.app_proto or rule.app_layer_protocol
                or rule.flow_established is not None or rule.flow_to_server is not None)


def _selected_by(by_event: dict, raised) -> set[int]:
    """The rules an event index (`packet_by_event`, `tx_by_event`) selects
    for the events raised."""
    return {index for name in raised for index in by_event.get(name, ())}


def _carries(raised, wanted: tuple) -> bool:
    """Whether every event a rule names is among those raised."""
    if not raised:
        return False
    for name in wanted:
        if name not in raised:
            return False
    return True


def matcher_for(engine: DetectEngine, group_key: tuple) -> Matcher:
    target = engine.tx_matchers if group_key[0] == "tx" else engine.packet_matchers
    return target[group_key[1:]]


def _quick_reject(rule: Rule) -> tuple | None:
    """(protocols, destination ports) a rule is confined to, for the inline
    pre-check in `inspect`; None when it cannot be stated simply."""
    protos = None
    if rule.transports is not None:
        protos = frozenset(rule.transports)
    for check in rule.packet_checks:
        compare = getattr(check, "compare", None)
        if getattr(check, "name", None) == "ip_proto" and getattr(compare, "op", None) == "":
            protos = frozenset({compare.number})
    dports = None
    if rule.direction == "->" and not rule.destination_ports.any:
        ports = rule.destination_ports.single_ports()
        if ports:
            dports = frozenset(ports)
    if protos is None and dports is None:
        return None
    return (protos, dports)


def _port_groups(rule: Rule) -> tuple:
    """(("dport" | "sport"), port) pairs of the port-specific prefilter groups
    a packet rule's fast pattern goes to, or () for its protocol's group.

    As Suricata's port groups: a rule for `any any -> any 135` cannot match
    a packet to another port, so its pattern ("|05|", "|00|") is only looked
    for in packets to 135. Frequent short patterns of port-confined rules
    were most of the prefilter's match callbacks and candidates on mixed
    traffic, each rejected by its port right after. The destination side is
    used when it names ports, else the source side (`$HOME_NET 3389 -> any`
    answers from a port); other rules stay in the protocol's group."""
    if rule.direction != "->":
        return ()
    ports = rule.destination_ports.single_ports()
    if ports:
        return tuple(("dport", port) for port in ports)
    ports = rule.source_ports.single_ports()
    if ports:
        return tuple(("sport", port) for port in ports)
    return ()


def _port_bucketable(rule: Rule) -> bool:
    """Whether a header-only rule names specific ports (port groups are the
    more selective index for `$EXTERNAL_NET any -> $HOME_NET 22` scan rules,
    whose address sides cover everyone)."""
    if rule.direction != "->" or not any(proto in (rule.transports or ()) for proto in (6, 17)):
        return False
    return bool(rule.destination_ports.single_ports() or rule.source_ports.single_ports())


def _address_ranges(rule: Rule, home) -> list | None:
    """The address side of a header-only rule worth indexing, as ranges.

    That is the narrower side (by addresses covered) among those that hold
    no home-network address: for `alert ip [bad hosts] any -> $HOME_NET any`
    it is the bad-host list, so a packet becomes a candidate only when one of
    its addresses is on it. A side overlapping $HOME_NET would make every
    LAN packet a candidate; such rules are checked by port bucket or always.
    """
    best = None
    best_span = None
    for side in (rule.source, rule.destination):
        if side.any or side.negative or not side.positive:
            continue
        if any(home.match(version, low) or home.match(version, high)
               for version, low, high in side.positive):
            continue
        span = sum(high - low + 1 for _version, low, high in side.positive)
        if best_span is None or span < best_span:
            best, best_span = list(side.positive), span
    return best


def build_range_index(entries: list) -> dict:
    """{version: (starts, rule_sets)} from (version, low, high, rule) entries.

    The address line is cut at every range boundary; `rule_sets[i]` holds
    the rules whose range covers [starts[i], starts[i+1]). One bisect per
    packet address gives the exact candidate rules.
    """
    by_version: dict[int, list] = {}
    for version, low, high, rule_index in entries:
        by_version.setdefault(version, []).append((low, high, rule_index))
    index = {}
    for version, items in by_version.items():
        points = sorted({low for low, _h, _r in items} | {high + 1 for _l, high, _r in items})
        starts_at: dict[int, list] = {}
        ends_at: dict[int, list] = {}
        for low, high, rule_index in items:
            starts_at.setdefault(low, []).append(rule_index)
            ends_at.setdefault(high + 1, []).append(rule_index)
        active: dict[int, int] = {}
        rule_sets = []
        for point in points:
            for rule_index in ends_at.get(point, ()):
                active[rule_index] -= 1
                if not active[rule_index]:
                    del active[rule_index]
            for rule_index in starts_at.get(point, ()):
                active[rule_index] = active.get(rule_index, 0) + 1
            rule_sets.append(tuple(sorted(active)))
        index[version] = (points, rule_sets)
    return index


def _shared_range_indexes(entries_by_group: dict) -> dict:
    """`build_range_index` for each (proto class, direction) group, one
    object for groups whose indexes are equal: `alert ip [list] any -> any
    any` rules (ET's CIARMY, DROP, compromised-host lists) give every group
    the same index, and sharing it shares its answers per address (see
    `_side_parts`) and keeps the compiled cache small."""
    distinct: list[dict] = []
    shared = {}
    for group, entries in entries_by_group.items():
        index = build_range_index(entries)
        shared[group] = next((known for known in distinct if known == index), index)
        if shared[group] is index:
            distinct.append(index)
    return shared


def _ranges_lookup(index: dict, address: tuple[int, int]) -> tuple:
    entry = index.get(address[0])
    if entry is None:
        return ()
    points, rule_sets = entry
    position = bisect_right(points, address[1]) - 1
    return rule_sets[position] if position >= 0 else ()


_LEGACY_NAMES: dict[str, tuple[str, ...]] = {}
for _legacy, _canonical in STICKY_ALIASES.items():
    _LEGACY_NAMES[_canonical] = _LEGACY_NAMES.get(_canonical, ()) + (_legacy,)


def _lookup_buffer(buffers: dict, name: str, to_server: bool):
    value = buffers.get(name)
    if value is not None:
        return value
    for legacy in _LEGACY_NAMES.get(name, ()):
        if legacy in buffers:
            return buffers[legacy]
    if name == "file.data":
        return buffers.get("http.request_body" if to_server else "http.response_body")
    if name == "http.response_body":
        return buffers.get("file.data")
    return None


def _cache_key(value) -> tuple:
    """(key, size) of a list of byte strings (http.request_header) for the
    scan cache; (None, 0) when it is not one or is too long to keep."""
    if type(value) is not list and type(value) is not tuple:
        return None, 0
    size = 0
    for element in value:
        if type(element) is not bytes:
            return None, 0
        size += len(element)
    if size > TX_SCAN_CACHE_VALUE_MAX:
        return None, 0
    return tuple(value), size


_APP_PROTO_ALIASES = {"http1": "http", "ssl": "tls", "ike": "ikev2"}
_NORMAL_APP_PROTO: dict = {}


def _layer_protocol(flow, to_server: bool) -> str:
    """What app-layer-protocol compares with in this direction: the flow's
    protocol, "failed" once detection gave up on the direction (or the
    flow), "unknown" while it is still being detected."""
    if flow is None:
        return "unknown"
    app_proto = getattr(flow, "app_proto", None)
    if app_proto:
        return _normal_app_proto(app_proto)
    return "failed" if detection_failed(flow, to_server) else "unknown"


def _normal_app_proto(name):
    normal = _NORMAL_APP_PROTO.get(name)
    if normal is not None or name is None:
        return normal
    lowered = str(name).lower()
    normal = _APP_PROTO_ALIASES.get(lowered, lowered)
    if len(_NORMAL_APP_PROTO) < 256:     # the parsers' names, a few dozen
        _NORMAL_APP_PROTO[name] = normal
    return normal


def _addresses_match(rule: Rule, source, destination, source_port: int, destination_port: int,
                     proto: int) -> bool:
    # Ports first: an integer comparison rejects most candidates before the
    # address groups' binary searches.
    if proto in (6, 17, 132):
        if not rule.source_ports.any and not rule.source_ports.match(source_port):
            return False
        if not rule.destination_ports.any and not rule.destination_ports.match(destination_port):
            return False
    elif not (rule.source_ports.any and rule.destination_ports.any):
        return False
    if not rule.source.any:
        if source is None or not rule.source.match(*source):
            return False
    if not rule.destination.any:
        if destination is None or not rule.destination.match(*destination):
            return False
    return True


class _PacketContext:
    __slots__ = ("pkt", "flow", "source", "destination", "side")

    def __init__(self, pkt, flow, source, destination, side=None) -> None:
        self.pkt = pkt
        self.flow = flow
        self.source = source
        self.destination = destination
        self.side = side


class _FlowSide:
    """Detection state of one direction of a flow, for one loaded ruleset
    (`generation`: a rule reload starts it afresh, as rule indices change)."""

    __slots__ = ("generation", "header_rules", "iponly", "header_known", "header_failed",
                 "inspected", "source", "destination", "scanners", "header_scans")

    generation: int
    header_rules: tuple
    """Header-only candidate rules whose fixed header part holds, checked on
    every packet."""
    iponly: tuple
    """The IP-only ones among them, until the direction's first packet has
    been inspected (then empty)."""
    header_known: dict
    """Rule index -> whether its fixed header part holds (bounded by HEADER_MEMO_MAX)."""
    header_failed: set
    """The indices `header_known` maps to False."""
    inspected: int
    """Payload bytes inspected so far (the `stream_depth` bound)."""
    source: tuple | None
    destination: tuple | None
    """`address_key` of the packets' addresses in this direction."""
    scanners: tuple
    """`Matcher.call` of the prefilter groups for this direction's payloads
    (`_side_parts`)."""
    header_scans: tuple
    """(buffer, transform chain, `Matcher.call`) of the prefilter groups of
    packet header buffers (`tcp.hdr`, ...); empty unless a rule's fast
    pattern is in one."""


def _guess_sid(text: str) -> int | None:
    import re
    match = re.search(r"[;(\s]sid\s*:\s*(\d+)", text)
    return int(match.group(1)) if match else None
