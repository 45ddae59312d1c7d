from ips.verify import lookup, record_matches, requirements_met, _MISSING


REC = {"event_type": "alert", "alert": {"signature_id": 5, "metadata": {"cve": ["x"]}},
       "dns": {"queries": [{"rrname": "a.example"}]}, "flow": {"alerted": True}}


def test_dotted_and_indexed_lookup():
    assert lookup(REC, "alert.signature_id") == 5
    assert lookup(REC, "dns.queries[0].rrname") == "a.example"
    assert lookup(REC, "dns.queries[3].rrname") is _MISSING
    assert lookup(REC, "nope.x") is _MISSING


def test_match_semantics():
    assert record_matches(REC, {"event_type": "alert", "alert.signature_id": 5})
    assert not record_matches(REC, {"alert.signature_id": 6})
    assert record_matches(REC, {"alert": {"signature_id": 5}})   # nested subset
    assert record_matches(REC, {"has-key": "alert.metadata"})
    assert not record_matches(REC, {"has-key": "alert.engine"})
    assert record_matches(REC, {"not-has-key": "alert.engine"})
    assert record_matches(REC, {"flow.alerted": True})
    assert not record_matches(REC, {"flow.alerted": 1 == 0})


def test_requires_versions():
    assert requirements_met({"min-version": "7.0.0"})[0]
    assert not requirements_met({"min-version": "9"})[0]
    assert not requirements_met({"lt-version": "8.0.0"})[0]


def test_suricata_args_map_onto_the_config():
    from ips.config import Config
    from ips.verify import _parse_args
    config = Config()
    _parse_args(["-k none --set stream.midstream=true", "--simulate-ips", "--runmode=single"], config)
    assert config.checksum_mode == "none" and config.stream_midstream and config.stream_inline
    assert config.extra["ignored_args"] == ["--runmode=single"]
    plain = Config()
    _parse_args(["-k none"], plain)
    assert not plain.stream_inline


# -- the runner as suricata-verify's run.py runs a case ------------------------

import textwrap
from pathlib import Path

import pytest


def test_string_tests_on_a_path():
    record = {"http": {"url": "/cgi-bin/x.cgi?a=1"}, "tags": ["a", "b"]}
    assert record_matches(record, {"http.url.__startswith": "/cgi-bin/"})
    assert record_matches(record, {"http.url.__endswith": "a=1"})
    assert record_matches(record, {"http.url.__find": "x.cgi"})
    assert not record_matches(record, {"http.url.__find": "y.cgi"})
    assert record_matches(record, {"tags.__contains": "b"})
    assert not record_matches(record, {"nope.__startswith": ""})
    assert record_matches(record, {"tags.__len": 2})


def test_requires_kinds():
    assert requirements_met({"version": "8"})[0]
    assert requirements_met({"version": "8.0"})[0]
    assert not requirements_met({"version": "7"})[0]
    assert not requirements_met({"version": "8.1"})[0]
    assert requirements_met({"features": ["HAVE_JA3"]})[0]
    assert requirements_met({"features": ["HAVE_LUA"]}) == (False, "feature HAVE_LUA")
    assert not requirements_met({"files": ["src/detect-ja4-hash.c"]})[0]
    assert not requirements_met({"lambda": "True"})[0]        # never evaluated
    assert not requirements_met({"something-new": 1})[0]
    assert requirements_met({"pcap": False, "min-version": "7"})[0]


@pytest.fixture
def case_root(tmp_path):
    """A folder of cases over one UDP packet carrying "hello ips"."""
    from scapy.all import IP, UDP, Ether, Raw, wrpcap
    frame = (Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
             / IP(src="192.0.2.1", dst="198.51.100.1") / UDP(sport=1234, dport=53)
             / Raw(b"hello ips"))
    root = tmp_path / "cases"
    root.mkdir()

    def make(name: str, rules: dict[str, str], test_yaml: str, suricata_yaml: str = ""):
        case = root / name
        case.mkdir()
        wrpcap(str(case / "input.pcap"), [frame])
        for filename, text in rules.items():
            (case / filename).write_text(text)
        (case / "test.yaml").write_text(textwrap.dedent(test_yaml))
        if suricata_yaml:
            (case / "suricata.yaml").write_text(textwrap.dedent(suricata_yaml))
        return case
    make.root = root
    return make


HELLO = 'alert udp any any -> any any (msg:"hello"; content:"hello"; sid:1;)\n'
ALERTS = """
    checks:
      - filter:
          count: {n}
          match:
            event_type: alert
"""


def _run(root: Path, name: str):
    from ips.verify import run_case
    return run_case(root / name, root, root.parent / "out" / name)


def test_a_refused_rule_is_the_exit_code_suricata_would_give(case_root):
    bad = 'alert udp any any -> any any (msg:"bad"; nosuchkeyword; sid:2;)\n'
    case_root("fatal", {"test.rules": HELLO + bad}, ALERTS.format(n=1))
    result = _run(case_root.root, "fatal")
    assert not result.passed
    assert "expected exit code 0, got 1" in result.checks[0].detail
    # A case that expects the refusal passes on it, with nothing replayed.
    case_root("refuses", {"test.rules": bad}, "exit-code: 1\n")
    result = _run(case_root.root, "refuses")
    assert result.passed and len(result.checks) == 1


def test_min_version_rule_files(case_root):
    later = 'alert udp any any -> any any (msg:"later"; content:"ips"; sid:3;)\n'
    case_root("gated", {"min9.rules": later, "test.rules": HELLO}, ALERTS.format(n=1))
    assert _run(case_root.root, "gated").passed
    case_root("current", {"min8.0.rules": later, "test.rules": HELLO}, ALERTS.format(n=2))
    assert _run(case_root.root, "current").passed


def test_a_threshold_file_from_args_or_the_case_yaml(case_root):
    # suricata-verify's threshold-config cases name the file as
    # ${TEST_DIR}/threshold.config in their args; run.py expands it.
    args_case = case_root("from-args", {"test.rules": HELLO}, """
    args:
      - --set threshold-file=${TEST_DIR}/threshold.config
""" + ALERTS.format(n=0))
    (args_case / "threshold.config").write_text("suppress gen_id 1, sig_id 1\n")
    assert _run(case_root.root, "from-args").passed
    yaml_case = case_root("from-yaml", {"test.rules": HELLO}, ALERTS.format(n=0),
                          "threshold-file: tuning/threshold.config\n")
    (yaml_case / "tuning").mkdir()
    (yaml_case / "tuning" / "threshold.config").write_text("suppress gen_id 1, sig_id 1\n")
    assert _run(case_root.root, "from-yaml").passed
    # A line the engine cannot read is shown, not failed (Suricata skips
    # it outside a config test); the rest still loads.
    (yaml_case / "tuning" / "threshold.config").write_text(
        "suppress gen_id 1, sig_id 1, track by_src\nsuppress gen_id 1, sig_id 1\n")
    result = _run(case_root.root, "from-yaml")
    assert result.passed
    assert [c.detail for c in result.checks if c.description == "threshold file"] == [
        f"{yaml_case / 'tuning' / 'threshold.config'}:1: suppress takes track and ip together, "
        "or neither"]


def test_case_arguments_expand_run_pys_variables(tmp_path):
    from ips.verify import case_config
    config = case_config(tmp_path / "case", {"args": [
        "--set threshold-file=${TEST_DIR}/t.config", "--set x=${OUTPUT_DIR}/${SRCDIR}"]},
        tmp_path / "out")
    assert config.threshold_file == f"{tmp_path}/case/t.config"
    assert config.extra["x"] == f"{tmp_path}/out/${{SRCDIR}}"


def test_ips_in_the_folder_name_simulates_ips(tmp_path):
    from ips.verify import case_config
    assert case_config(tmp_path / "bug-2576-02-ips", {}).stream_inline
    assert not case_config(tmp_path / "bug-2576-03", {}).stream_inline
    assert case_config(tmp_path / "x", {"args": ["--simulate-ips"]}).stream_inline


def test_the_case_suricata_yaml_sets_home_net(case_root):
    home = 'alert udp $HOME_NET any -> any any (msg:"home"; content:"hello"; sid:4;)\n'
    case_root("home", {"test.rules": home}, ALERTS.format(n=1),
              'vars:\n  address-groups:\n    HOME_NET: "[192.0.2.0/24]"\n')
    case_root("away", {"test.rules": home}, ALERTS.format(n=0),
              'vars:\n  address-groups:\n    HOME_NET: "[203.0.113.0/24]"\n')
    assert _run(case_root.root, "home").passed
    assert _run(case_root.root, "away").passed


def test_stats_checks_and_skips(case_root, capsys):
    from ips.verify import main
    case_root("stats", {"test.rules": HELLO}, """
        checks:
          - stats:
              detect.alert: 1
              decoder.pkts: 1
    """)
    case_root("stats-wrong", {"test.rules": HELLO}, """
        checks:
          - stats:
              detect.alert: 2
    """)
    case_root("lua", {"test.rules": HELLO}, "requires:\n  features: [HAVE_LUA]\n")
    case_root("custom", {"test.rules": HELLO}, "command: suricata --list-keywords\n")
    rc = main([str(case_root.root)])
    out = capsys.readouterr().out
    assert "PASS stats" in out and "FAIL stats-wrong" in out
    assert "SKIP lua: requires feature HAVE_LUA" in out
    assert "SKIP custom: a custom Suricata command line" in out
    assert "2 skipped" in out and out.rstrip().endswith("1 passed, 1 failed")
    assert rc == 1


def test_vpatch_cases_state_the_appliance_home_net():
    """The virtual-patch cases are written for the appliance's network; the
    runner's default is Suricata's, so each case says so in its yaml."""
    import yaml
    from ips.config import Config
    cases = sorted((Path(__file__).parents[1] / "detect" / "cases").glob("vpatch-*"))
    assert len(cases) >= 10
    for case in cases:
        doc = yaml.safe_load((case / "suricata.yaml").read_text())
        assert doc["vars"]["address-groups"]["HOME_NET"] == Config().home_net, case.name
