"""Option-by-option verification of a candidate rule.

The prefilter only says "this rule's fast pattern is somewhere in a buffer".
This module decides whether the rule really matches, with Suricata's
semantics for payload keywords:

* Each inspection buffer (packet payload, `http.uri`, `dns.query`, ...) has
  its own ordered list of matchers. Relative keywords (`distance`, `within`,
  relative `pcre`, `isdataat:..,relative`, relative `byte_*`) are anchored at
  the end of the previous positional match in the same list.
* When a later relative matcher fails, an earlier content is retried at its
  next occurrence (Suricata's backtracking in
  detect-engine-content-inspection.c), so `content:"a"; content:"b";
  distance:0; within:1;` finds "ab" in "a a ab".
* A negated content succeeds when the content is absent from its window and
  leaves the anchor where it was.

Work is bounded: every inspection carries a step budget (`Budget`); when it
runs out the rule does not match and the overrun is counted, so a payload
crafted to make backtracking explode costs a fixed amount of CPU.
"""
from __future__ import annotations

import binascii
import re

# Caps that bound the work per inspection.
PCRE_MAX_INPUT = 64 * 1024       # bytes of a buffer a pcre sees
STEPS_PER_INSPECTION = 4096      # matcher attempts (incl. backtracking) per rule and buffer
MAX_BACKTRACK_PCRE = 32          # re-tries of one pcre at later positions


class Budget:
    """Per-inspection step counter; `exhausted` is sticky so callers can count it."""

    __slots__ = ("steps", "exhausted")

    def __init__(self, steps: int = STEPS_PER_INSPECTION) -> None:
        self.steps = steps
        self.exhausted = False

    def spend(self) -> bool:
        self.steps -= 1
        if self.steps < 0:
            self.exhausted = True
            return False
        return True


class Inspection:
    """State shared by the matchers of one rule against one buffer."""

    __slots__ = ("buffer", "lowered", "variables", "budget", "failed", "failed_from")

    def __init__(self, buffer: bytes, variables: dict, budget: Budget) -> None:
        self.buffer = buffer
        self.lowered = None
        self.variables = variables
        self.budget = budget
        # Backtracking memo (see `_run`), started on the first backtrack.
        self.failed: set | None = None
        """(matcher index, anchor) pairs known not to lead to a match."""
        self.failed_from: dict | None = None
        """matcher index -> lowest anchor from which every later one fails too."""

    def lower(self) -> bytes:
        if self.lowered is None:
            self.lowered = self.buffer.lower()
        return self.lowered


def _value(value, variables: dict) -> int | None:
    """A numeric option that may name a byte_extract or byte_math variable."""
    if isinstance(value, str):
        return variables.get(value)
    return value


def _count(count, variables: dict, base: int | None) -> int | None:
    """The byte count of a byte_test/byte_jump, which may name a
    byte_extract or byte_math variable; None (no match) when the variable
    holds a count the keyword could not have been written with."""
    if isinstance(count, str):
        count = variables.get(count)
        if count is None or not (1 <= count <= (23 if base is not None else 8)):
            return None
    return count


class Content:
    """`content` with its modifiers."""

    __slots__ = ("pattern", "nocase", "negated", "offset", "depth", "distance", "within",
                 "startswith", "endswith", "fast_pattern", "fast_pattern_only",
                 "fast_pattern_chop", "rawbytes", "relative_next")

    def __init__(self, pattern: bytes, negated: bool = False) -> None:
        self.pattern = pattern
        self.negated = negated
        self.nocase = False
        self.offset = None      # int or variable name
        self.depth = None
        self.distance = None
        self.within = None
        self.startswith = False
        self.endswith = False
        self.fast_pattern = False
        self.fast_pattern_only = False
        self.fast_pattern_chop = None   # (offset, length)
        self.rawbytes = False
        self.relative_next = False      # a later matcher anchors on this one

    @property
    def relative(self) -> bool:
        return self.distance is not None or self.within is not None

    @property
    def fast_bytes(self) -> bytes:
        if self.fast_pattern_chop is not None:
            start, length = self.fast_pattern_chop
            return self.pattern[start:start + length]
        return self.pattern

    def window(self, inspection: Inspection, prev: int) -> tuple[int, int] | None:
        """Search region [start, end) for this content, Suricata's arithmetic."""
        variables = inspection.variables
        size = len(inspection.buffer)
        if self.relative:
            start = prev
            end = size
            distance = 0
            if self.distance is not None:
                distance = _value(self.distance, variables)
                if distance is None:
                    return None
                start = max(0, prev + distance)
            if self.within is not None:
                within = _value(self.within, variables)
                if within is None:
                    return None
                limit = prev + distance + within
                # Suricata's depth is unsigned: a negative limit (a large
                # negative distance) wraps and is capped at the buffer end.
                if limit >= 0:
                    end = min(end, limit)
            # depth/offset never join distance/within on one content (the
            # parser refuses it, as Suricata does).
        else:
            start = 0
            end = size
            if self.startswith:
                end = min(end, len(self.pattern))
            if self.offset is not None:
                start = _value(self.offset, variables)
                if start is None:
                    return None
            if self.depth is not None:
                depth = _value(self.depth, variables)
                if depth is None:
                    return None
                end = min(end, start + depth)
        if end - start < len(self.pattern):
            return None
        return start, end

    def positions(self, inspection: Inspection, prev: int):
        window = self.window(inspection, prev)
        haystack = inspection.lower() if self.nocase else inspection.buffer
        pattern = self.pattern
        found_any = False
        if window is not None:
            start, end = window
            size = len(inspection.buffer)
            position = haystack.find(pattern, start, end)
            while position != -1:
                match_end = position + len(pattern)
                if not self.endswith or match_end == size:
                    if self.negated:
                        found_any = True
                        break
                    yield match_end
                if not inspection.budget.spend():
                    return
                position = haystack.find(pattern, position + 1, end)
        if self.negated and not found_any:
            yield prev


class Pcre:
    """`pcre:"/re/flags"` compiled with Python's `re` (refused where incompatible)."""

    __slots__ = ("_regex", "pending", "negated", "relative", "source", "relative_next")

    def __init__(self, regex, negated: bool, relative: bool, source: str,
                 pending: tuple | None = None) -> None:
        self._regex = regex
        self.pending = pending
        """(pattern, flags) still to compile when `regex` is None (see `regex`)."""
        self.negated = negated
        self.relative = relative
        self.source = source
        self.relative_next = False

    @property
    def regex(self):
        """The compiled regex; compiled on first use for a rule from the
        cache, whose patterns all compiled when the cache was built."""
        regex = self._regex
        if regex is None:
            pattern, flags = self.pending
            regex = self._regex = re.compile(pattern, flags)
        return regex

    def positions(self, inspection: Inspection, prev: int):
        buffer = inspection.buffer
        base = prev if self.relative else 0
        subject = buffer[base:base + PCRE_MAX_INPUT]
        match = self.regex.search(subject)
        if self.negated:
            if match is None:
                yield prev
            return
        tries = 0
        while match is not None:
            yield base + match.end()
            tries += 1
            if tries >= MAX_BACKTRACK_PCRE or not inspection.budget.spend():
                return
            match = self.regex.search(subject, match.start() + 1)


class IsDataAt:
    __slots__ = ("position", "relative", "negated", "relative_next")

    def __init__(self, position, relative: bool, negated: bool) -> None:
        self.position = position
        self.relative = relative
        self.negated = negated
        self.relative_next = False

    def positions(self, inspection: Inspection, prev: int):
        position = _value(self.position, inspection.variables)
        if position is None:
            return
        # Suricata's bounds differ: relative, N bytes must remain after the
        # previous match (prev + N <= len, so `isdataat:!1,relative` means
        # "ends here"); absolute, offset N must exist (N < len).
        if self.relative:
            present = prev + position <= len(inspection.buffer)
        else:
            present = position < len(inspection.buffer)
        if present != self.negated:
            yield prev


class UintCheck:
    """Suricata's integer comparisons (detect/uint.rs): N, =N, !N, !=N, <N,
    <=N, >N, >=N, A-B and A<>B (exclusive ranges), !A-B, and bitmasks
    &M=V / &M!=V. Numbers are decimal or 0x hex, with an optional kb/mb/gb
    (or kib/mib/gib) multiplier."""

    __slots__ = ("mode", "low", "high", "mask")

    _NUMBER = r"(0[xX][0-9a-fA-F]+|\d+)\s*(kib|kb|mib|mb|gib|gb)?"
    _FORM = re.compile(r"^\s*(!=|!|<=|>=|<|>|=)?\s*" + _NUMBER
                       + r"\s*(?:(<>|-)\s*" + _NUMBER + r")?\s*$", re.I)
    _MASK = re.compile(r"^\s*&\s*" + _NUMBER + r"\s*(!=|=)\s*" + _NUMBER + r"\s*$", re.I)
    _UNITS = {"kb": 1 << 10, "kib": 1 << 10, "mb": 1 << 20, "mib": 1 << 20,
              "gb": 1 << 30, "gib": 1 << 30}

    @classmethod
    def _number(cls, digits: str, unit: str | None) -> int:
        return int(digits, 0) * (cls._UNITS[unit.lower()] if unit else 1)

    def __init__(self, text: str) -> None:
        self.mask = None
        masked = self._MASK.match(text)
        if masked is not None:
            mask, mask_unit, op, value, value_unit = masked.groups()
            self.mask = self._number(mask, mask_unit)
            self.mode = "mask=" if op == "=" else "mask!="
            self.low = self.high = self._number(value, value_unit)
            return
        match = self._FORM.match(text)
        if match is None:
            raise ValueError(f"bad number comparison {text!r}")
        op, first, first_unit, range_op, second, second_unit = match.groups()
        low = self._number(first, first_unit)
        if range_op:
            if op not in (None, "!"):
                raise ValueError(f"bad range {text!r}")
            self.mode = "notrange" if op == "!" else "range"
            self.low, self.high = low, self._number(second, second_unit)
            if self.low >= self.high:
                raise ValueError(f"empty range {text!r}")
        else:
            self.mode = {None: "=", "!=": "!"}.get(op, op)
            self.low = self.high = low

    def __call__(self, value: int) -> bool:
        mode = self.mode
        if mode == "=":
            return value == self.low
        if mode == "<":
            return value < self.low
        if mode == ">":
            return value > self.low
        if mode == "<=":
            return value <= self.low
        if mode == ">=":
            return value >= self.low
        if mode == "!":
            return value != self.low
        if mode == "range":
            return self.low < value < self.high
        if mode == "mask=":
            return value & self.mask == self.low
        if mode == "mask!=":
            return value & self.mask != self.low
        return not (self.low < value < self.high)


class BufferSize:
    """`bsize`: length of the whole buffer."""

    __slots__ = ("check", "relative_next")

    def __init__(self, check: UintCheck) -> None:
        self.check = check
        self.relative_next = False

    def positions(self, inspection: Inspection, prev: int):
        if self.check(len(inspection.buffer)):
            yield prev


class IntegerBuffer:
    """An integer field a parser keeps as a short big-endian buffer
    (`dns.opcode`, `dns.rcode`, `tls.cert_chain_len`: one byte; `dns.rrtype`:
    two), against an integer comparison."""

    __slots__ = ("check", "relative_next")

    def __init__(self, check: UintCheck) -> None:
        self.check = check
        self.relative_next = False

    def positions(self, inspection: Inspection, prev: int):
        buffer = inspection.buffer
        if buffer and self.check(int.from_bytes(buffer, "big")):
            yield prev


_BASE64_RUN = re.compile(rb"[A-Za-z0-9+/]*")


def decode_base64(data: bytes, start: int = 0, end: int | None = None) -> bytes:
    """Base64 as Suricata's base64_decode reads it (RFC 4648): the run of
    alphabet characters at the start, up to the first other byte (padding
    included); a last group of 2 or 3 characters still gives its bytes."""
    run = _BASE64_RUN.match(data, start, len(data) if end is None else end).group()
    whole = len(run) - len(run) % 4
    out = binascii.a2b_base64(run[:whole]) if whole else b""
    rest = run[whole:]
    if len(rest) >= 2:
        out += binascii.a2b_base64(rest + b"=" * (4 - len(rest)))
    return out


class Base64Decode:
    """`base64_decode[:bytes N][, offset M][, relative]`, carrying the
    `base64_data` matchers that inspect what it decoded. It does not move
    the anchor; it matches when something was decoded and the base64_data
    matchers (if any) match it, so a failure there backtracks like any
    relative match."""

    __slots__ = ("bytes", "offset", "relative", "data_matchers", "relative_next")

    def __init__(self, count: int = 0, offset: int = 0, relative: bool = False) -> None:
        self.bytes = count          # 0: to the end of the buffer
        self.offset = offset
        self.relative = relative
        self.data_matchers: list = []
        self.relative_next = False

    def positions(self, inspection: Inspection, prev: int):
        buffer = inspection.buffer
        start = (prev if self.relative else 0) + self.offset
        if start < 0 or start >= len(buffer):
            return
        end = len(buffer) if not self.bytes else min(len(buffer), start + self.bytes)
        decoded = decode_base64(buffer, start, end)
        if not decoded:
            return
        if self.data_matchers and not _run(self.data_matchers, 0, Inspection(
                decoded, inspection.variables, inspection.budget), 0):
            return
        yield prev


class BufferIn:
    """The whole buffer is one of these values (`tls.version`), or, negated,
    is none of them."""

    __slots__ = ("values", "negated", "relative_next")

    def __init__(self, values: frozenset, negated: bool = False) -> None:
        self.values = values
        self.negated = negated
        self.relative_next = False

    def positions(self, inspection: Inspection, prev: int):
        if (bytes(inspection.buffer) in self.values) != self.negated:
            yield prev


def read_number(buffer: bytes, position: int, count: int, little: bool,
                base: int | None) -> tuple[int, int] | None:
    """Read `count` bytes at `position` as an integer: (value, bytes
    consumed), or None when out of range or not a number.

    With a `base` (the `string` option) the bytes are read as C's strtoull
    reads them, as Suricata does: leading white space and a sign are
    skipped, digits are taken up to the first byte that is not one (the
    rest of the `count` bytes is ignored), no digit at all or a value past
    64 bits is no number; the bytes consumed are the characters strtoull
    took, which is how far Suricata moves the detection pointer. `count` 0
    reads as many digits as there are."""
    if position < 0 or position + count > len(buffer):
        return None
    if base is None:
        return int.from_bytes(buffer[position:position + count], "little" if little else "big"), count
    return _strtoull(buffer, position, position + count if count else len(buffer), base)


# strtoull's view of a number, per base: blanks, a sign, (0x for hex), then
# digits. Leading zeros are matched apart so that a long run of them still
# reads as its value; more than 23 significant digits is past 64 bits in
# every base used here. One C-speed match, whatever the payload: a hostile
# run of 100,000 digits or blanks costs no Python loop and raises nothing.
_BLANK_SIGN = rb"[ \t\n\v\f\r]*([+-]?)"
_NUMBERS = {
    8: re.compile(_BLANK_SIGN + rb"(0*)([0-7]{0,23})([0-7]?)"),
    10: re.compile(_BLANK_SIGN + rb"(0*)([0-9]{0,23})([0-9]?)"),
    16: re.compile(_BLANK_SIGN + rb"(?:0[xX](?=[0-9a-fA-F]))?(0*)([0-9a-fA-F]{0,23})([0-9a-fA-F]?)"),
}


def _strtoull(buffer: bytes, start: int, end: int, base: int) -> tuple[int, int] | None:
    """(the number strtoull reads in buffer[start:end], the characters it
    consumed), with no copy of the slice."""
    match = _NUMBERS[base].match(buffer, start, end)
    sign, zeros, digits, more = match.groups()
    if not zeros and not digits:
        return None                      # no number there
    if more:
        return None                      # past 64 bits (ERANGE): Suricata does not match
    value = int(digits, base) if digits else 0
    if value >= 1 << 64:
        return None
    return ((-value) % (1 << 64) if sign == b"-" else value), match.end() - start


class ByteTest:
    __slots__ = ("count", "op", "negated", "value", "offset", "relative", "little", "base",
                 "bitmask", "relative_next")

    def __init__(self) -> None:
        self.relative_next = False
        self.bitmask = None

    def positions(self, inspection: Inspection, prev: int):
        variables = inspection.variables
        offset = _value(self.offset, variables)
        value = _value(self.value, variables)
        if offset is None or value is None:
            return
        position = prev + offset if self.relative else offset
        count = _count(self.count, variables, self.base)
        if count is None:
            return
        read = read_number(inspection.buffer, position, count, self.little, self.base)
        if read is None:
            return
        number = read[0]
        if self.bitmask is not None:
            number &= self.bitmask
            shift = (self.bitmask & -self.bitmask).bit_length() - 1
            number >>= max(shift, 0)
        op = self.op
        if op == "<":
            result = number < value
        elif op == ">":
            result = number > value
        elif op == "=":
            result = number == value
        elif op == "<=":
            result = number <= value
        elif op == ">=":
            result = number >= value
        elif op == "&":
            result = (number & value) != 0
        else:  # "^"
            result = (number ^ value) != 0
        if result != self.negated:
            yield prev


class ByteJump:
    __slots__ = ("count", "offset", "relative", "little", "base", "multiplier", "align",
                 "from_beginning", "from_end", "post_offset", "bitmask", "relative_next")

    def __init__(self) -> None:
        self.relative_next = False
        self.multiplier = 1
        self.align = False
        self.from_beginning = False
        self.from_end = False
        self.post_offset = 0
        self.bitmask = None

    def positions(self, inspection: Inspection, prev: int):
        offset = _value(self.offset, inspection.variables)
        if offset is None:
            return
        buffer = inspection.buffer
        position = prev + offset if self.relative else offset
        count = _count(self.count, inspection.variables, self.base)
        if count is None or not buffer:
            return
        if count == 0 and self.base is None:
            # Nothing to read: the jump is post_offset from here.
            if not 0 <= position <= len(buffer):
                return
            read = (0, 0)
        else:
            read = read_number(buffer, position, count, self.little, self.base)
        if read is None:
            return
        number, consumed = read
        if self.bitmask is not None:
            number &= self.bitmask
        jump = number * self.multiplier
        if self.align and jump % 4:
            jump += 4 - jump % 4
        if self.from_beginning:
            target = jump
        elif self.from_end:
            target = len(buffer) + jump
        else:
            # From after what was read: for a string, the digits strtoull
            # took, not the byte count ("2x" jumps from after the "2").
            target = position + consumed + jump
        target += self.post_offset
        # Suricata: before the buffer starts from its start; at or past its
        # end, no match (a jump to exactly the end does not match).
        if target < 0:
            target = 0
        elif target >= len(buffer):
            return
        yield target


class ByteExtract:
    __slots__ = ("count", "offset", "name", "relative", "little", "base", "multiplier",
                 "align", "relative_next")

    def __init__(self) -> None:
        self.relative_next = False
        self.multiplier = 1
        self.align = 0

    def positions(self, inspection: Inspection, prev: int):
        position = prev + self.offset if self.relative else self.offset
        read = read_number(inspection.buffer, position, self.count, self.little, self.base)
        if read is None:
            return
        number, consumed = read
        number *= self.multiplier
        if self.align and number % self.align:
            number += self.align - number % self.align
        inspection.variables[self.name] = number
        yield position + consumed          # a string: past the digits read, as Suricata


_UINT64 = (1 << 64) - 1


class ByteMath:
    """`byte_math`: a number read from the buffer, combined with `rvalue` (a
    number or a byte_extract/byte_math variable) and kept as variable
    `result` for the keywords after it; the anchor moves past what was
    read, as byte_extract's. Suricata's arithmetic: unsigned 64-bit,
    wrapping; a division by zero does not match; the bitmask applies to
    the result, shifted right by the mask's trailing zero bits."""

    __slots__ = ("count", "offset", "operator", "rvalue", "result", "relative", "little", "base",
                 "bitmask", "relative_next")

    def __init__(self) -> None:
        self.relative = False
        self.little = False
        self.base = None
        self.bitmask = None
        self.relative_next = False

    def positions(self, inspection: Inspection, prev: int):
        variables = inspection.variables
        count = self.count
        if isinstance(count, str):
            count = variables.get(count)
            if count is None or not 1 <= count <= 10:
                return
        if self.base is None and count > 8:
            return                  # a binary read stops at 8 bytes: Suricata never matches
        rvalue = _value(self.rvalue, variables)
        if rvalue is None:
            return
        position = prev + self.offset if self.relative else self.offset
        read = read_number(inspection.buffer, position, count, self.little, self.base)
        if read is None:
            return
        number, consumed = read
        operator = self.operator
        if operator == "+":
            number = (number + rvalue) & _UINT64
        elif operator == "-":
            number = (number - rvalue) & _UINT64
        elif operator == "*":
            number = (number * rvalue) & _UINT64
        elif operator == "/":
            if not rvalue:
                return
            number //= rvalue
        elif operator == "<<":
            # Past 63 bits every bit is shifted out (C leaves it undefined;
            # a variable rvalue could otherwise ask Python for a huge number).
            number = (number << rvalue) & _UINT64 if rvalue < 64 else 0
        else:  # ">>"
            number = number >> rvalue if rvalue < 64 else 0
        mask = self.bitmask
        if mask is not None:
            number &= mask
            if number and mask:
                number >>= (mask & -mask).bit_length() - 1
        variables[self.result] = number
        yield position + consumed


def inspect_buffer(matchers: list, buffer: bytes, variables: dict, budget: Budget) -> bool:
    """True when the ordered matcher list matches `buffer`."""
    # Every positive content must occur somewhere in the buffer, whatever
    # its position modifiers: one C-speed `in` each rules out most candidates
    # (about half of the failing ones on mixed traffic) before any anchor,
    # window or backtracking is set up.
    lowered = None
    if type(buffer) is bytes:
        for matcher in matchers:
            if type(matcher) is Content and not matcher.negated:
                if matcher.nocase:
                    if lowered is None:
                        lowered = buffer.lower()
                    if matcher.pattern not in lowered:
                        return False
                elif matcher.pattern not in buffer:
                    return False
    inspection = Inspection(buffer, variables, budget)
    inspection.lowered = lowered
    return _run(matchers, 0, inspection, 0)


# Matchers whose outcome depends only on (buffer, anchor): none of them
# writes a variable (byte_extract, byte_math does), so a failed (index,
# anchor) stays failed for the rest of one inspection.
_PURE_MATCHERS = (Content, Pcre, IsDataAt, BufferSize, BufferIn, ByteTest, ByteJump)


def _run(matchers: list, index: int, inspection: Inspection, prev: int) -> bool:
    """Whether matchers[index:] match with the anchor at `prev`.

    Backtracking can reach the same (index, anchor) from many earlier
    occurrences: in `content:"<"; content:".length"; distance:0; pcre:..R`
    every "<" of a script leads to the same ".length" positions, so the
    search is quadratic in the buffer and a large script body used to
    exhaust the step budget (12 ms per rule). Once a list backtracks (and
    holds only `_PURE_MATCHERS`), a failure found without exhausting the
    budget is remembered: the same (index, anchor) is not explored again,
    and for an open-ended relative content (no within/depth: the later the
    anchor, the fewer its occurrences) no later anchor is either. Skipping
    only subtrees that cannot match, the result is the same, except that a
    search that used to run out of budget may now finish."""
    if index == len(matchers):
        return True
    failed = inspection.failed
    if failed is not None:
        if (index, prev) in failed:
            return False
        lowest = inspection.failed_from.get(index)
        if lowest is not None and prev >= lowest:
            return False
    matcher = matchers[index]
    budget = inspection.budget
    for new_prev in matcher.positions(inspection, prev):
        if _run(matchers, index + 1, inspection, new_prev):
            return True
        # Only a later *relative* matcher can succeed at another occurrence
        # of this one; otherwise the failure is final (Suricata does the same).
        if not matcher.relative_next:
            break
        if not budget.spend():
            return False
        if inspection.failed is None and all(type(m) in _PURE_MATCHERS for m in matchers):
            inspection.failed = set()
            inspection.failed_from = {}
    failed = inspection.failed
    if failed is not None and not budget.exhausted:
        failed.add((index, prev))
        if (matcher.relative_next and type(matcher) is Content and not matcher.negated
                and matcher.within is None and matcher.depth is None
                and matcher.distance is not None):
            lowest = inspection.failed_from.get(index)
            if lowest is None or prev < lowest:
                inspection.failed_from[index] = prev
    return False


def link_relative(matchers: list) -> None:
    """Mark each matcher whose successor anchors on it, enabling backtracking."""
    for index in range(len(matchers) - 1):
        following = matchers[index + 1]
        matchers[index].relative_next = bool(getattr(following, "relative", False))
