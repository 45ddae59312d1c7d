"""Prefilter groups: candidates of a scan, and of a scan of appended bytes."""
from __future__ import annotations

from hypothesis import given, settings, strategies as st

from ips.detect.prefilter import Matcher, PatternGroup

PATTERNS = ((b"ab", False), (b"abcab", False), (b"BCA", True), (b"c", False), (b"aaaa", True))


def _matcher(patterns) -> Matcher:
    group = PatternGroup()
    for index, (pattern, nocase) in enumerate(patterns):
        group.add(pattern, nocase, index)
    return Matcher.compile(group)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40).map(lambda raw: bytes(b"abcABC"[byte % 6] for byte in raw)),
       st.binary(max_size=40).map(lambda raw: bytes(b"abcABC"[byte % 6] for byte in raw)),
       st.sampled_from((PATTERNS, PATTERNS[:2])))   # Hyperscan, and two literals
def test_scan_of_appended_bytes_equals_a_full_scan(first, appended, patterns):
    matcher = _matcher(patterns)
    assert matcher.longest == max(len(pattern) for pattern, _ in patterns)
    whole = first + appended
    expected: set = set()
    matcher.scan(whole, expected)
    found: set = set()
    matcher.scan(first, found)
    matcher.scan_appended(whole, len(first), found)
    assert found == expected


def test_dump_and_load_keep_the_longest_pattern():
    for patterns in (PATTERNS, PATTERNS[:1]):
        matcher = _matcher(patterns)
        loaded = Matcher.load(matcher.dump(), matcher.rules_by_pattern)
        assert loaded.longest == matcher.longest
        found: set = set()
        loaded.scan(b"xxabcabx", found)
        assert found == ({0, 1, 2, 3} if len(patterns) > 1 else {0})
