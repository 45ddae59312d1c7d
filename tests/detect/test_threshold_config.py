"""threshold.config (`--set threshold-file=PATH`): the parser, and what its
entries do to alerts and actions (Suricata's global-thresholds semantics)."""
from __future__ import annotations

from hypothesis import given, settings, strategies as st

from ips.config import Config
from ips.detect.threshold_config import load, parse
from ips.detect.variables import Variables
from ips.packet import ACCEPT, DROP
from ips.verdict import decide

from .factories import FakeFlow, alerting, engine, packet, sids

VARIABLES = Variables("[192.168.0.0/16]", "!$HOME_NET", {"SUPPRESS": "[203.0.113.0/24]"})


def tuned(rules: str, threshold_text: str, tmp_path):
    path = tmp_path / "threshold.config"
    path.write_text(threshold_text)
    config = Config()
    config.set("threshold-file", str(path))
    return engine(rules, config)


def run(eng, packets, flow=None):
    """(alerting sids, verdict) per packet."""
    out = []
    for pkt in packets:
        matches = eng.inspect(pkt, flow if flow is not None else FakeFlow(), None, [])
        out.append((alerting(matches), decide(pkt, None, matches, Config())))
    return out


# -- parser -------------------------------------------------------------------

def test_every_entry_kind_parses():
    text = """
# comment, then a blank line

threshold gen_id 1, sig_id 10, type limit, track by_src, count 2, seconds 60
event_filter gen_id 1, sig_id 11, type both, track by_flow, count 3, seconds 5
rate_filter gen_id 1, sig_id 12, track by_rule, count 100, seconds 60, \\
    new_action drop, timeout 30
suppress gen_id 1, sig_id 13
suppress gen_id 0, sig_id 0, track by_either, ip 203.0.113.0/24
suppress gen_id 1, sig_id 14, track by_src, ip [192.0.2.1,198.51.100.0/24]
suppress gen_id 1, sig_id 15, track by_dst, ip $SUPPRESS
"""
    tuning, errors = parse(text, VARIABLES)
    assert errors == []
    kinds = [(entry.kind, entry.gid, entry.sid, entry.line) for entry in tuning.entries]
    assert kinds == [("threshold", 1, 10, 4), ("threshold", 1, 11, 5), ("rate_filter", 1, 12, 6),
                     ("suppress", 1, 13, 8), ("suppress", 0, 0, 9), ("suppress", 1, 14, 10),
                     ("suppress", 1, 15, 11)]
    assert tuning.entries[0].spec == {"type": "limit", "track": "by_src", "count": 2, "seconds": 60}
    assert tuning.entries[2].spec == {"type": "rate", "track": "by_rule", "count": 100,
                                      "seconds": 60, "new_action": "drop", "timeout": 30}
    assert tuning.entries[3].addresses is None
    listed = tuning.entries[5].addresses
    assert listed.match(4, 0xC0000201) and listed.match(4, 0xC6336405) and not listed.match(4, 0xC0000202)
    assert tuning.entries[6].addresses.match(4, 0xCB007107)      # 203.0.113.7 via $SUPPRESS


def test_a_bad_line_is_reported_with_file_and_line_and_the_rest_loads():
    text = "\n".join([
        "threshold gen_id 1, sig_id 1, type limit, track by_src, count 1, seconds 60",
        "thresold gen_id 1, sig_id 2, type limit, track by_src, count 1, seconds 60",
        "threshold gen_id 1, sig_id 3, type sometimes, track by_src, count 1, seconds 60",
        "threshold gen_id 1, sig_id 4, type limit, track by_src, count 1",
        "suppress gen_id 1, sig_id 5, track by_rule, ip 192.0.2.1",
        "suppress gen_id 1, sig_id 6, track by_src",
        "suppress gen_id 1, sig_id 7, track by_src, ip $NOT_DEFINED",
        "suppress gen_id 1, sig_id 8, track by_src, ip 192.0.2.300",
        "suppress gen_id 0, sig_id 9",
        "rate_filter gen_id 1, sig_id 10, track by_src, count 1, seconds 60, new_action block, timeout 5",
        "threshold gen_id 1, sig_id 11, type backoff, track by_flow, count 1, seconds 60",
        "threshold gen_id 1, sig_id -1, type limit, track by_src, count 1, seconds 60",
        "threshold gen_id 1, sig_id 13, type limit, type both, track by_src, count 1, seconds 60",
        "suppress gen_id 1, sig_id 14",
    ])
    tuning, errors = parse(text, VARIABLES, "/etc/reefguard/threshold.config")
    assert [(entry.sid, entry.line) for entry in tuning.entries] == [(1, 1), (14, 14)]
    assert [(file, line) for file, line, _ in errors] == [
        ("/etc/reefguard/threshold.config", line) for line in range(2, 14)]
    messages = [message for _, _, message in errors]
    assert "unknown entry 'thresold'" in messages[0]
    assert "type 'sometimes'" in messages[1]
    assert "needs seconds" in messages[2]
    assert "track 'by_rule'" in messages[3]
    assert "track and ip together" in messages[4]
    assert "$NOT_DEFINED" in messages[5]
    assert "192.0.2.300" in messages[6]
    assert "gen_id 0" in messages[7]
    assert "new_action 'block'" in messages[8]
    assert "backoff" in messages[9]
    assert "sig_id must be a number" in messages[10]
    assert "type given twice" in messages[11]


def test_an_unreadable_file_is_one_error():
    tuning, errors = load("/nonexistent/threshold.config", VARIABLES)
    assert len(tuning) == 0 and errors[0][:2] == ("/nonexistent/threshold.config", 0)


_TOKENS = ["threshold", "event_filter", "suppress", "rate_filter", " gen_id ", " sig_id ", ",",
           "0", "1", "42", "-", " type ", "limit", "both", " track ", "by_src", "by_either", " ip ",
           "[", "]", "$HOME_NET", "$", "192.0.2.1", "/24", "::1", " count ", " seconds ",
           " new_action ", "drop", " timeout ", "\\\n", "\n", "#", " "]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(_TOKENS), st.text(max_size=4)), max_size=60).map("".join))
def test_random_text_only_ever_gives_entries_and_errors(text):
    tuning, errors = parse(text, VARIABLES)
    assert all(isinstance(line, int) for _, line, _ in errors)
    assert len(tuning.entries) + len(errors) <= text.count("\n") + 1


# -- threshold / event_filter -------------------------------------------------

def test_a_threshold_line_sets_the_threshold_of_a_rule_without_one(tmp_path):
    eng, report = tuned('alert tcp any any -> any 80 (content:"x"; sid:1;)\n',
                        "event_filter gen_id 1, sig_id 1, type limit, track by_src, count 2, seconds 60\n",
                        tmp_path)
    assert report.threshold_entries == 1 and report.threshold_errors == []
    assert [alerts for alerts, _ in run(eng, [packet(b"x", ts=float(i)) for i in range(4)])] == [
        [1], [1], [], []]


def test_a_line_for_the_sid_overrides_the_rules_own_threshold(tmp_path):
    rules = ('alert tcp any any -> any 80 (content:"x"; threshold:type limit, track by_src, '
             'count 1, seconds 60; sid:1;)\n'
             'alert tcp any any -> any 80 (content:"x"; detection_filter:track by_src, count 5, '
             'seconds 60; sid:2;)\n')
    eng, _ = tuned(rules,
                   "threshold gen_id 1, sig_id 1, type limit, track by_src, count 5, seconds 60\n"
                   "threshold gen_id 1, sig_id 1, type both, track by_src, count 3, seconds 60\n"
                   "threshold gen_id 1, sig_id 2, type limit, track by_src, count 2, seconds 60\n",
                   tmp_path)
    # sid 1: the last line wins (both, 3); sid 2: its detection_filter is replaced.
    assert [alerts for alerts, _ in run(eng, [packet(b"x", ts=float(i)) for i in range(4)])] == [
        [2], [2], [1], []]


def test_an_all_rules_line_leaves_a_rule_with_its_own_threshold_alone(tmp_path):
    rules = ('alert tcp any any -> any 80 (content:"x"; threshold:type threshold, track by_src, '
             'count 2, seconds 60; sid:1;)\n'
             'alert tcp any any -> any 80 (content:"x"; sid:2;)\n'
             'alert tcp any any -> any 80 (content:"x"; gid:3; sid:3;)\n')
    eng, _ = tuned(rules,
                   "threshold gen_id 1, sig_id 0, type limit, track by_rule, count 1, seconds 60\n"
                   "threshold gen_id 0, sig_id 0, type limit, track by_rule, count 3, seconds 60\n",
                   tmp_path)
    # sid 1 keeps "every 2nd"; sid 2 (gid 1) takes the gid-1 line; gid 3 the
    # gen_id 0 line (the gid-1 line does not cover it).
    assert [alerts for alerts, _ in run(eng, [packet(b"x", ts=float(i)) for i in range(4)])] == [
        [2, 3], [1, 3], [3], [1]]


def test_a_limited_drop_rule_from_the_file_still_drops(tmp_path):
    eng, _ = tuned('drop tcp any any -> any 80 (content:"x"; sid:7;)\n',
                   "threshold gen_id 1, sig_id 7, type limit, track by_dst, count 1, seconds 60\n",
                   tmp_path)
    assert run(eng, [packet(b"x", ts=float(i)) for i in range(3)]) == [
        ([7], DROP), ([], DROP), ([], DROP)]


# -- suppress -----------------------------------------------------------------

def test_suppress_without_an_address_silences_the_rule_but_not_its_drop(tmp_path):
    rules = ('drop tcp any any -> any 80 (content:"x"; flowbits:set,seen; sid:1;)\n'
             'alert tcp any any -> any 80 (content:"x"; sid:2;)\n')
    eng, _ = tuned(rules, "suppress gen_id 1, sig_id 1\n", tmp_path)
    flow = FakeFlow()
    assert run(eng, [packet(b"x")], flow) == [([2], DROP)]
    assert "seen" in flow.flowbits            # the rule's state changes still happen


def test_suppress_by_src_with_an_address(tmp_path):
    eng, _ = tuned('drop tcp any any -> any 80 (content:"x"; sid:1;)\n',
                   "suppress gen_id 1, sig_id 1, track by_src, ip 192.0.2.10\n", tmp_path)
    quiet = packet(b"x", src="192.0.2.10", dst="198.51.100.20")
    other = packet(b"x", src="192.0.2.11", dst="198.51.100.20")
    reply = packet(b"x", src="198.51.100.20", dst="192.0.2.10")
    # Not logged for the suppressed source, but dropped all the same.
    assert run(eng, [quiet, other, reply]) == [([], DROP), ([1], DROP), ([1], DROP)]


def test_suppress_by_dst_by_either_lists_and_variables(tmp_path):
    rules = "".join(f'alert tcp any any -> any 80 (content:"x"; sid:{sid};)\n' for sid in (1, 2, 3, 4))
    text = ("suppress gen_id 1, sig_id 1, track by_dst, ip 198.51.100.0/24\n"
            "suppress gen_id 1, sig_id 2, track by_either, ip 192.0.2.10\n"
            "suppress gen_id 1, sig_id 3, track by_src, ip [192.0.2.0/28, 203.0.113.5]\n"
            "suppress gen_id 1, sig_id 4, track by_src, ip $HOME_NET\n")
    eng, _ = tuned(rules, text, tmp_path)
    assert run(eng, [packet(b"x", src="192.0.2.10", dst="198.51.100.20"),
                     packet(b"x", src="203.0.113.5", dst="203.0.113.9"),
                     packet(b"x", src="10.1.1.1", dst="192.0.2.10")]) == [
        ([], ACCEPT), ([1, 2, 4], ACCEPT), ([1, 3], ACCEPT)]


def test_a_suppressed_match_is_not_counted_by_the_threshold(tmp_path):
    eng, _ = tuned('alert tcp any any -> any 80 (content:"x"; threshold:type threshold, '
                   'track by_rule, count 2, seconds 60; sid:1;)\n',
                   "suppress gen_id 0, sig_id 0, track by_src, ip 192.0.2.66\n", tmp_path)
    order = ["192.0.2.1", "192.0.2.66", "192.0.2.66", "192.0.2.1", "192.0.2.1", "192.0.2.1"]
    fired = [alerts for alerts, _ in run(eng, [packet(b"x", src=src, ts=float(i))
                                               for i, src in enumerate(order)])]
    assert fired == [[], [], [], [1], [], [1]]


# -- rate_filter --------------------------------------------------------------

def test_rate_filter_drops_after_count_matches_for_timeout_seconds(tmp_path):
    eng, _ = tuned('alert tcp any any -> any 22 (flags:S; sid:888;)\n',
                   "rate_filter gen_id 1, sig_id 888, track by_src, count 2, seconds 60, "
                   "new_action drop, timeout 10\n", tmp_path)
    times = [0, 1, 2, 3, 12, 13.5, 14, 15]
    syns = [packet(b"", dport=22, flags=0x02, ts=float(t)) for t in times]
    other = packet(b"", src="192.0.2.99", dport=22, flags=0x02, ts=3.5)
    verdicts = [verdict for _, verdict in run(eng, syns[:4] + [other] + syns[4:])]
    # Over 2 matches in 60 s: drop from the 3rd, for 10 s (t=2 to 12); the
    # next match counts afresh, so the 3rd after it drops again; another
    # source has its own count.
    assert verdicts == [ACCEPT, ACCEPT, DROP, DROP, ACCEPT, DROP, ACCEPT, ACCEPT, DROP]


def test_rate_filter_changes_the_alerts_action_not_whether_it_alerts(tmp_path):
    eng, _ = tuned('drop tcp any any -> any 80 (content:"x"; sid:1;)\n'
                   'alert tcp any any -> any any (content:"y"; sid:2;)\n'
                   'alert tcp any any -> any 80 (content:"z"; sid:3;)\n',
                   "rate_filter gen_id 1, sig_id 1, track by_rule, count 1, seconds 60, "
                   "new_action alert, timeout 60\n"
                   "rate_filter gen_id 1, sig_id 2, track by_both, count 1, seconds 60, "
                   "new_action pass, timeout 60\n"
                   "rate_filter gen_id 1, sig_id 3, track by_rule, count 0, seconds 60, "
                   "new_action sdrop, timeout 60\n", tmp_path)
    first, second = (eng.inspect(packet(b"x", ts=float(i)), FakeFlow(), None, []) for i in (0, 1))
    assert [m.action for m in first] == ["drop"] and [m.action for m in second] == ["alert"]
    assert alerting(second) == [1]
    # pass: the second match (the reply: by_both is one count per address
    # pair) passes the flow, as a pass rule does.
    flow = FakeFlow()
    assert [m.action for m in eng.inspect(packet(b"y", ts=0.0), flow, None, [])] == ["alert"]
    passed = eng.inspect(packet(b"y", src="198.51.100.9", dst="192.168.1.2", sport=80, dport=40000,
                                to_server=False, ts=1.0), flow, None, [])
    assert [m.action for m in passed] == ["pass"] and flow.detect.get("pass")
    # sdrop and log are read but change nothing, as in Suricata.
    assert [m.action for m in eng.inspect(packet(b"z", ts=0.0), FakeFlow(), None, [])] == ["alert"]


def test_rate_filter_is_not_applied_to_a_rule_with_its_own_threshold(tmp_path):
    eng, _ = tuned('alert tcp any any -> any 80 (content:"x"; threshold:type limit, track by_rule, '
                   'count 10, seconds 60; sid:1;)\n',
                   "rate_filter gen_id 1, sig_id 1, track by_rule, count 1, seconds 60, "
                   "new_action drop, timeout 60\n", tmp_path)
    assert [verdict for _, verdict in run(eng, [packet(b"x", ts=float(i)) for i in range(4)])] == [
        ACCEPT] * 4


def test_rate_filter_by_flow_counts_per_flow(tmp_path):
    eng, _ = tuned('alert tcp any any -> any 80 (content:"x"; sid:1;)\n',
                   "rate_filter gen_id 1, sig_id 1, track by_flow, count 1, seconds 60, "
                   "new_action reject, timeout 60\n", tmp_path)
    one, two = FakeFlow(), FakeFlow()
    actions = [[m.action for m in eng.inspect(packet(b"x", ts=float(i)), flow, None, [])]
               for i, flow in enumerate((one, one, two, one))]
    assert actions == [["alert"], ["reject"], ["alert"], ["reject"]]


def test_a_reload_keeps_the_rate_filter_state(tmp_path):
    rules = 'alert tcp any any -> any 80 (content:"x"; sid:1;)\n'
    text = ("rate_filter gen_id 1, sig_id 1, track by_rule, count 1, seconds 60, "
            "new_action drop, timeout 60\n")
    running, _ = tuned(rules, text, tmp_path)
    assert run(running, [packet(b"x", ts=0.0), packet(b"x", ts=1.0)])[1][1] == DROP
    reloaded, _ = tuned(rules, text, tmp_path)
    reloaded.take_state(running)
    assert run(reloaded, [packet(b"x", ts=2.0)]) == [([1], DROP)]


def test_no_threshold_file_and_a_missing_one(tmp_path):
    eng, report = engine('alert tcp any any -> any 80 (content:"x"; sid:1;)\n')
    assert eng.tuning is None and report.threshold_errors == []
    config = Config()
    config.set("threshold-file", str(tmp_path / "absent.config"))
    eng, report = engine('alert tcp any any -> any 80 (content:"x"; sid:1;)\n', config)
    assert report.loaded == 1 and report.threshold_errors[0][1] == 0
    assert sids(eng.inspect(packet(b"x"), FakeFlow(), None, [])) == [1]


def test_the_cached_ruleset_reads_the_threshold_file_afresh(tmp_path):
    from ips.detect import DetectEngine
    rules = tmp_path / "test.rules"
    rules.write_text('alert tcp any any -> any 80 (content:"x"; sid:1;)\n')
    cache = str(tmp_path / "cache")
    path = tmp_path / "threshold.config"
    config = Config()
    config.set("threshold-file", str(path))
    path.write_text("suppress gen_id 1, sig_id 1\n")
    first, _ = DetectEngine.load([str(rules)], config, cache_dir=cache)
    assert alerting(first.inspect(packet(b"x"), FakeFlow(), None, [])) == []
    path.write_text("# nothing suppressed now\n")
    eng, report = DetectEngine.load([str(rules)], config, cache_dir=cache)
    assert eng.rules[0] is None            # from the cache: rules not parsed yet
    assert report.threshold_entries == 0
    assert alerting(eng.inspect(packet(b"x"), FakeFlow(), None, [])) == [1]
