"""Multi-pattern prefilter: one Hyperscan block-mode database per group.

A group is an inspection buffer plus what else narrows the candidates
(transport class and direction for the packet payload, direction for
app-layer buffers). Every rule contributes exactly one fast pattern to one or
more groups; a scan returns the rules whose fast pattern occurs, and the
verifier decides the rest.

Rules that share a fast pattern share one Hyperscan expression, so a common
pattern costs one callback, not one per rule. Patterns are compiled as
regular expressions made of `\\xHH` escapes: python-hyperscan's literal API
stops at the first NUL byte, and rule patterns often contain one.
HS_FLAG_SINGLEMATCH reports each expression at most once per scan.
"""
from __future__ import annotations

import hyperscan


class PatternGroup:
    """Patterns of one group while the ruleset is being built."""

    __slots__ = ("patterns", "rules_by_pattern")

    def __init__(self) -> None:
        self.patterns: dict[tuple[bytes, bool], int] = {}
        self.rules_by_pattern: list[list[int]] = []

    def add(self, pattern: bytes, nocase: bool, rule_index: int) -> None:
        key = (pattern.lower() if nocase else pattern, nocase)
        pattern_id = self.patterns.get(key)
        if pattern_id is None:
            pattern_id = len(self.rules_by_pattern)
            self.patterns[key] = pattern_id
            self.rules_by_pattern.append([])
        rules = self.rules_by_pattern[pattern_id]
        if not rules or rules[-1] != rule_index:
            rules.append(rule_index)


def _expression(pattern: bytes) -> bytes:
    return b"".join(b"\\x%02x" % byte for byte in pattern)


# Calling into Hyperscan from Python costs a few microseconds however small
# the database; a group of a handful of patterns is cheaper to check with
# `bytes.__contains__` (ASCII-only case folding, as Hyperscan's caseless).
SMALL_GROUP = 2


class Matcher:
    """A compiled group: scan bytes, get candidate rule indices."""

    __slots__ = ("database", "rules_by_pattern", "literals", "longest", "_on_match", "call")

    def __init__(self, database, rules_by_pattern: list[list[int]],
                 literals: list[tuple[bytes, bool, int]] | None = None, longest: int = 0) -> None:
        self.database = database
        self.rules_by_pattern = rules_by_pattern
        self.literals = literals
        self.longest = longest
        """Length of the group's longest pattern: an occurrence that ends past
        byte N of a buffer starts after N - longest (see `scan_appended`)."""
        # The match callback adds a pattern's rules to the caller's set
        # itself: no intermediate list to fill, clear and walk per scan.
        by_pattern = rules_by_pattern

        def on_match(pattern_id, start, end, flags, into):
            into.update(by_pattern[pattern_id])
            return False
        self._on_match = on_match
        self.call = (_literal_scanner(literals, by_pattern) if database is None else database.scan,
                     on_match)
        """(function, handler): `function(data, handler, 0, into)` is `scan(data,
        into)` for non-empty data, one Python frame less per packet (the
        packet loop calls it for every payload)."""

    @classmethod
    def compile(cls, group: PatternGroup) -> "Matcher":
        ordered = sorted(group.patterns.items(), key=lambda item: item[1])
        longest = max((len(pattern) for (pattern, _nocase), _ in ordered), default=0)
        if len(ordered) <= SMALL_GROUP:
            literals = [(pattern, nocase, pattern_id) for (pattern, nocase), pattern_id in ordered]
            return cls(None, group.rules_by_pattern, literals, longest)
        expressions = []
        flags = []
        for (pattern, nocase), _ in ordered:
            expressions.append(_expression(pattern))
            flags.append(hyperscan.HS_FLAG_SINGLEMATCH | (hyperscan.HS_FLAG_CASELESS if nocase else 0))
        database = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        database.compile(expressions=expressions, ids=list(range(len(expressions))),
                         elements=len(expressions), flags=flags)
        return cls(database, group.rules_by_pattern, None, longest)

    def dump(self) -> tuple[bytes | None, list | None, int]:
        """What the on-disk cache keeps: the serialised database or the
        literals, and the longest pattern's length."""
        if self.database is None:
            return None, self.literals, self.longest
        return hyperscan.dumpb(self.database), None, self.longest

    @classmethod
    def load(cls, dumped: tuple[bytes | None, list | None, int],
             rules_by_pattern: list[list[int]]) -> "Matcher":
        blob, literals, longest = dumped
        if blob is None:
            return cls(None, rules_by_pattern, literals, longest)
        database = hyperscan.loadb(blob, hyperscan.HS_MODE_BLOCK)
        database.scratch = hyperscan.Scratch(database)
        return cls(database, rules_by_pattern, None, longest)

    def scan_appended(self, data: bytes, previous_length: int, into: set) -> None:
        """`scan(data, into)` when `into` already holds the scan of
        data[:previous_length]: only occurrences ending in the appended
        bytes can be new, so only they and the `longest - 1` bytes before
        them are scanned (a transaction body growing packet by packet)."""
        start = previous_length - self.longest + 1
        self.scan(data[start:] if start > 0 else data, into)

    def scan(self, data: bytes, into: set) -> None:
        """Add the indices of rules whose fast pattern occurs in `data` to `into`."""
        if not data:
            return
        if self.literals is not None:
            self.call[0](data, None, 0, into)
            return
        # Positional arguments: python-hyperscan parses keywords at ~1 us a
        # call, as much as a scan of a short payload itself.
        self.database.scan(data, self._on_match, 0, into)


def _literal_scanner(literals: list, rules_by_pattern: list):
    """A small group's scan with Hyperscan's call shape (see `Matcher.call`);
    a closure, not a bound method, so a Matcher holds no cycle."""
    def scan(data: bytes, _handler, _flags, into: set) -> None:
        lowered = None
        for pattern, nocase, pattern_id in literals:
            if nocase:
                if lowered is None:
                    lowered = data.lower()
                if pattern in lowered:
                    into.update(rules_by_pattern[pattern_id])
            elif pattern in data:
                into.update(rules_by_pattern[pattern_id])
    return scan
