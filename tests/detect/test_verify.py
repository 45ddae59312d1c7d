"""Payload semantics of the verifier (content positions, backtracking, pcre, byte_*)."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from ips.detect import verify
from ips.detect.parser import parse_rule
from ips.detect.variables import Variables

VARIABLES = Variables("[192.168.0.0/16]", "!$HOME_NET")


def matches(options: str, data: bytes, buffer: str = "payload") -> bool:
    rule = parse_rule(f"alert tcp any any -> any any ({options} sid:1;)", VARIABLES, {})
    return verify.inspect_buffer(rule.buffers[buffer], data, {}, verify.Budget())


def test_distance_within_backtracks_to_later_occurrence():
    # The first "a" is followed by "x"; only the last "a" has "b" right after.
    assert matches('content:"a"; content:"b"; distance:0; within:1;', b"ax ax ab")
    assert not matches('content:"a"; content:"b"; distance:0; within:1;', b"ax ax ax b")


def test_alert_distance_within_case():
    rule = 'content:"AllWorkAndNoPlayMakesWill"; content:"DullBoy"; distance:1; within:7;'
    assert matches(rule, b"AllWorkAndNoPlayMakesWill DullBoy")
    assert not matches(rule, b"AllWorkAndNoPlayMakesWillDullBoy")   # distance 1 skips the D


def test_depth_offset_and_startswith_endswith():
    assert matches('content:"GET"; depth:3;', b"GET /")
    assert not matches('content:"GET"; depth:3;', b" GET /")
    assert matches('content:"B"; offset:2; depth:1;', b"ABB")
    assert not matches('content:"B"; offset:2; depth:1;', b"ABA")
    assert matches('content:"AAA"; endswith;', b"xxAAA")
    assert not matches('content:"AAA"; endswith;', b"AAAxx")
    assert matches('content:"ab"; startswith;', b"abc")
    assert not matches('content:"ab"; startswith;', b"cab")


def test_negated_content_and_negated_endswith():
    assert matches('content:"GET"; content:!"evil"; distance:0;', b"GET good")
    assert not matches('content:"GET"; content:!"evil"; distance:0;', b"GET evil")
    assert matches('content:!".google.com"; endswith;', b"www.google.com.evil")
    assert not matches('content:!".google.com"; endswith;', b"www.google.com")


def test_nocase_and_hex():
    assert matches('content:"uid=0|28|root|29|"; nocase;', b"UID=0(ROOT)")
    assert not matches('content:"uid=0|28|root|29|";', b"UID=0(ROOT)")


def test_bug_docs_5030_endswith_with_distance_within():
    rule = 'content:"yYYYYYYYYYYYYYYYY"; distance:9; within:29; endswith;'
    assert matches(rule, b"012345678xxyYYYYYYYYYYYYYYYY")
    assert not matches(rule, b"0123yYYYYYYYYYYYYYYYY")


def test_bug_5162_chain():
    options = ('content:"|fe|SMB"; depth:8; content:"|09 00|"; distance:8; within:2; '
               'content:"|05 00 00|"; distance:0; content:"|0c 00|"; distance:19; within:2; '
               'content:"|15 00 00 00|"; distance:20; within:4; pcre:"/^\\x00/R";')
    data = (b"\x00\x00\x00\x00\xfeSMB" + b"\x00" * 8 + b"\x09\x00" + b"\x05\x00\x00" + b"\x11" * 19
            + b"\x0c\x00" + b"\x22" * 20 + b"\x15\x00\x00\x00" + b"\x00")
    assert matches(options, data)
    assert not matches(options, data[:-1] + b"\x01")


def test_uricontent_relative_chain_sig19():
    options = ('uricontent:"now"; uricontent:"this"; uricontent:"is"; within:12; '
               'uricontent:"big"; within:8; uricontent:"string"; within:8;')
    assert matches(options, b"/this_this_now_is_is_____big_string_now", "http.uri")


def test_pcre_relative_and_modifiers():
    assert matches('content:"GET"; pcre:"/^\\s+\\/index/R";', b"GET  /index")
    assert not matches('content:"GET"; pcre:"/^\\/index/R";', b"GET  /index")
    assert matches('pcre:"/ONE/i";', b"xxone")
    assert matches('pcre:!"/two/";', b"one")


def test_isdataat_and_bsize():
    assert matches('content:"A"; isdataat:2,relative;', b"Axyz")
    assert not matches('content:"A"; isdataat:3,relative;', b"Axy")
    assert matches('content:"A"; isdataat:!3,relative;', b"Axy")
    # Suricata's bounds: relative needs N bytes left (1 + 2 <= 3), absolute
    # needs offset N to exist (3 < 3 fails); !1,relative is "ends here".
    assert matches('content:"A"; isdataat:2,relative;', b"Axy")
    assert not matches('content:"A"; isdataat:!2,relative;', b"Axy")
    assert not matches('isdataat:3;', b"Axy") and matches('isdataat:2;', b"Axy")
    assert matches('content:"xy"; isdataat:!1,relative;', b"Axy")
    assert not matches('content:"x"; isdataat:!1,relative;', b"Axy")
    assert matches('http.uri; bsize:3;', b"abc", "http.uri")
    assert not matches('http.uri; bsize:<3;', b"abc", "http.uri")


def test_byte_test_jump_extract():
    data = b"\x00\x04abcdLEN=0010"
    assert matches('byte_test:2,=,4,0;', data)
    assert matches('byte_jump:2,0; content:"LEN"; within:3;', data)
    assert matches('content:"LEN="; byte_test:4,=,10,0,relative,string,dec;', data)
    assert matches('byte_extract:2,0,size; content:"d"; offset:size;', b"\x00\x05abcd")
    assert not matches('byte_extract:2,0,size; content:"a"; offset:size;', b"\x00\x05abcd")
    assert matches('byte_test:1,&,0x80,0;', b"\x81")
    # The byte count itself from a byte_extract variable (Suricata 7).
    assert matches('byte_extract:1,0,n; byte_test:n,=,0x0102,0,relative;', b"\x02\x01\x02")
    assert matches('byte_extract:1,0,n; byte_jump:n,0,relative; content:"X"; within:1;',
                   b"\x01\x01YX")
    assert not matches('byte_extract:1,0,n; byte_jump:n,0,relative; content:"X"; within:1;',
                       b"\x01\x01XY")
    assert not matches('byte_extract:1,0,n; byte_test:n,>,0,0,relative;', b"\x09" + b"\xff" * 9)


def test_byte_keywords_move_by_what_they_read_and_stay_in_the_buffer():
    # A string moves the pointer past the digits strtoull took, not `count`.
    assert matches('content:"L="; byte_jump:3,0,string,dec,relative; content:"OK"; within:2;',
                   b"L=4;xxxOK")
    assert matches('content:"X"; byte_extract:3,0,n,string,dec,relative; content:"|3b|"; within:1;',
                   b"X7;Zab")
    # A jump to the very end does not match; one before the start restarts at 0.
    assert not matches('content:"AB"; byte_jump:1,0,relative; isdataat:!1,relative;', b"AB\x01x")
    assert matches('byte_jump:1,1,post_offset -10; content:"|00 01|"; within:2;', b"\x00\x01Qxx")


def test_negative_distance_with_within_wraps_as_suricatas_unsigned_depth():
    # prev 3 - 10 + 4 < 0: Suricata's depth wraps and is capped at the end.
    assert matches('content:"aBc"; nocase; content:"abca"; distance:-10; within:4;', b"abcaBcd")
    assert not matches('content:"abc"; content:"abca"; distance:-2; within:4;', b"abcaBcd")


def test_uint_check_forms():
    assert verify.UintCheck("8<>20")(10) and not verify.UintCheck("8<>20")(8)
    assert verify.UintCheck(">=10")(10) and not verify.UintCheck(">10")(10)
    assert verify.UintCheck("!9")(10) and not verify.UintCheck("!9")(9)
    with pytest.raises(ValueError):
        verify.UintCheck("20<>8")


def test_budget_bounds_pathological_backtracking():
    budget = verify.Budget(steps=500)
    rule = parse_rule('alert tcp any any -> any any (content:"A"; content:"A"; distance:0; '
                      'content:"A"; distance:0; content:"B"; distance:0; sid:1;)', VARIABLES, {})
    # "B" occurs, only not after the As: every content is present, so the
    # search itself has to run out of budget.
    assert not verify.inspect_buffer(rule.buffers["payload"], b"B" + b"A" * 1400, {}, budget)
    assert budget.exhausted


def test_absent_content_fails_before_any_search():
    rule = parse_rule('alert tcp any any -> any any (content:"A"; content:"A"; distance:0; '
                      'content:"b"; nocase; distance:0; sid:1;)', VARIABLES, {})
    budget = verify.Budget(steps=1)
    assert not verify.inspect_buffer(rule.buffers["payload"], b"A" * 1400, {}, budget)
    assert budget.steps == 1
    assert verify.inspect_buffer(rule.buffers["payload"], b"A" * 1400 + b"B", {}, verify.Budget())


def test_repeated_anchors_are_explored_once():
    # Every "<" leads to the same ".length" anchors; without the memo this
    # is quadratic and ran out of budget on a 30 KB script (ET sid 2025185).
    rule = parse_rule('alert tcp any any -> any any (content:"<"; content:".length"; distance:0; '
                      'pcre:"/^\\s*\\)/R"; sid:1;)', VARIABLES, {})
    budget = verify.Budget()
    assert not verify.inspect_buffer(rule.buffers["payload"], b"<a.length;" * 1000, {}, budget)
    assert not budget.exhausted
    assert verify.inspect_buffer(rule.buffers["payload"], b"<a.length;" * 1000 + b".length )",
                                 {}, verify.Budget())


def _without_memo(options: str, data: bytes) -> bool:
    saved = verify._PURE_MATCHERS
    verify._PURE_MATCHERS = ()
    try:
        rule = parse_rule(f"alert tcp any any -> any any ({options} sid:1;)", VARIABLES, {})
        return verify.inspect_buffer(rule.buffers["payload"], data, {}, verify.Budget(steps=10 ** 9))
    finally:
        verify._PURE_MATCHERS = saved


MEMO_CASES = (
    'content:"a"; content:"b"; distance:0; content:"c"; distance:0; within:2;',
    'content:"a"; content:"b"; distance:1; pcre:"/^c/R"; content:"a"; distance:0; within:3;',
    'content:"a"; content:"b"; distance:0; content:!"c"; distance:0; within:2; isdataat:1,relative;',
    'content:"b"; content:"a"; distance:-2; content:"ab"; distance:0; byte_test:1,=,99,0,relative;',
    'content:"a"; offset:1; content:"b"; distance:0; byte_jump:1,0,relative; content:"c"; distance:0;',
)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=60).map(lambda raw: bytes(b"abc"[byte % 3] for byte in raw)),
       st.sampled_from(MEMO_CASES))
def test_memo_gives_the_unbounded_search_result(data, options):
    assert matches(options, data) == _without_memo(options, data)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_random_payloads_never_raise(data):
    options = ('content:"A"; content:"B"; distance:0; within:5; byte_jump:1,0,relative; '
               'isdataat:1,relative; pcre:"/C+/R";')
    matches(options, data)


def test_uricontent_negated_after_relative_chain_sig21():
    options = 'uricontent:"fix"; uricontent:"this"; within:6; uricontent:!"and"; distance:0;'
    assert matches(options, b"/this_is_a_fix_this_now_and_not_now", "http.uri") is False
    assert matches(options, b"/fix_this_now", "http.uri")
    # The case's URI: the first fix/this is followed by "and", the second is not.
    assert matches(options, b"/we_need_to_fix_this_and_yes_fix_this_now", "http.uri")


def test_suricata8_integer_forms():
    # detect/uint.rs: hex, !=, negated ranges, bitmasks, unit multipliers.
    assert verify.UintCheck("0x40")(64) and verify.UintCheck("=0x13")(19)
    assert verify.UintCheck("!=20")(19) and not verify.UintCheck("!=20")(20)
    assert verify.UintCheck("!19-22")(19) and not verify.UintCheck("!19-22")(20)
    assert verify.UintCheck("&0xc0=0x80")(0x8F) and not verify.UintCheck("&0xc0=0x80")(0xC0)
    assert verify.UintCheck("&0xc0!=0")(0x40) and not verify.UintCheck("&0xc0!=0")(0x3F)
    assert verify.UintCheck(">1kb")(1025) and not verify.UintCheck("<=1KiB")(1025)
    for bad in ("", "<>5", "5-5", "&0xc0", "=<5", "abc"):
        with pytest.raises(ValueError):
            verify.UintCheck(bad)


def _math(options: str, data: bytes) -> dict | None:
    """The variables after `options` matched `data`, None when they did not."""
    rule = parse_rule(f"alert tcp any any -> any any ({options} sid:1;)", VARIABLES, {})
    variables: dict = {}
    if not verify.inspect_buffer(rule.buffers["payload"], data, variables, verify.Budget()):
        return None
    return variables


@pytest.mark.parametrize("operator,rvalue,expected", [
    ("+", 5, 0x0102 + 5), ("-", 5, 0x0102 - 5), ("*", 3, 0x0102 * 3), ("/", 16, 0x0102 // 16),
    ("<<", 4, 0x1020), (">>", 8, 0x01),
    # unsigned 64-bit, as Suricata's uint64_t: wraps rather than going negative
    ("-", 0x0103, (1 << 64) - 1),
])
def test_byte_math_operators(operator, rvalue, expected):
    found = _math(f"byte_math:bytes 2, offset 0, oper {operator}, rvalue {rvalue}, result r;", b"\x01\x02")
    assert found == {"r": expected}


def test_byte_math_division_by_zero_does_not_match():
    options = "byte_extract:1,0,d; byte_math:bytes 1, offset 1, oper /, rvalue d, result q;"
    assert _math(options, b"\x00\x08") is None
    assert _math(options, b"\x02\x08") == {"d": 2, "q": 4}


def test_byte_math_reads_like_byte_extract_and_moves_the_anchor():
    # little endian, string, out of range
    assert _math("byte_math:bytes 2, offset 0, oper +, rvalue 0, result r, endian little;",
                 b"\x01\x02") == {"r": 0x0201}
    assert _math("byte_math:bytes 3, offset 1, oper +, rvalue 1, result r, string dec;",
                 b"x41y") == {"r": 42}
    assert _math("byte_math:bytes 2, offset 0, oper +, rvalue 1, result r, string hex;", b"zz") is None
    assert _math("byte_math:bytes 2, offset 1, oper +, rvalue 1, result r;", b"\x01\x02") is None
    # bitmask on the result, shifted by the mask's trailing zeros
    assert _math("byte_math:bytes 2, offset 0, oper +, rvalue 0, result r, bitmask 0x0ff0;",
                 b"\x12\x34") == {"r": 0x23}
    # relative to the previous match, and the next match is relative to it
    options = ('content:"LEN"; byte_math:bytes 1, offset 1, oper +, rvalue 0, result n, relative; '
               'content:"!"; distance:0; within:1;')
    assert _math(options, b"LEN-\x05!") == {"n": 5}
    assert _math(options, b"LEN-\x05?!") is None
    # a binary read of 9 or 10 bytes never matches (Suricata's reader stops at 8)
    assert _math("byte_math:bytes 9, offset 0, oper +, rvalue 0, result r;", b"\x01" * 9) is None
    assert _math("byte_math:bytes 9, offset 0, oper +, rvalue 0, result r, string dec;",
                 b"123456789") == {"r": 123456789}


def test_byte_math_result_feeds_the_keywords_after_it():
    # detect-bytemath-04's chain: byte_extract -> byte_math rvalue -> byte_test value
    chain = ("byte_extract:1,0,x,relative; byte_math:bytes 1, offset 1, oper +, rvalue x, result v; "
             "byte_test:2,{},v,2;")
    header = bytes([0x45, 0x00, 0x00, 0x2C])            # 0x45 + 0 = 69; total length 44
    assert _math(chain.format("<"), header)
    assert _math(chain.format("!="), header)
    assert not _math(chain.format("="), header)
    # bytes from a variable, and a variable result as a within
    assert _math("byte_extract:1,0,size; byte_math:bytes size, offset 1, oper -, rvalue 1, result n; "
                 'content:"ab"; distance:0; within:n;', b"\x02\x00\x03ab") == {"size": 2, "n": 2}
    assert _math("byte_extract:1,0,size; byte_math:bytes size, offset 1, oper +, rvalue 0, result n;",
                 b"\x0b" + b"\x00" * 12) is None          # 11 bytes: no byte_math reads that many


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=24), st.sampled_from(["+", "-", "*", "/", "<<", ">>"]),
       st.booleans())
def test_byte_math_never_raises_whatever_the_bytes_and_shift(data, operator, string):
    # The rvalue is the payload's own first 8 bytes: shifts by 2**63 included.
    options = (f"byte_extract:8,0,big; byte_math:bytes 4, offset 8, oper {operator}, rvalue big, "
               f"result r{', string dec' if string else ''}; byte_test:8,>,r,0;")
    found = _math(options, data)
    assert found is None or 0 <= found["r"] < 1 << 64
