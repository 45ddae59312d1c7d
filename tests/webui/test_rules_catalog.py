from pathlib import Path

from hypothesis import given, settings, strategies as st

from webui import rules_catalog

ET_LINE = ('alert tcp $EXTERNAL_NET $HTTP_PORTS -> $HOME_NET any (msg:"ET ACTIVEX Novell iPrint ActiveX '
           'GetDriverSettings Remote Code Execution Attempt"; flow:established,to_client; '
           'content:"GetDriverSettings2"; nocase; reference:cve,2010-4321; classtype:attempted-user; '
           'sid:2012206; rev:2; metadata:affected_product Windows_XP_Vista_7_8_10_Server_32_64_Bit, '
           'attack_target Client_Endpoint, cve CVE_2010_4321, signature_severity Major;)')


def test_parses_an_et_open_rule():
    rule = rules_catalog.parse_rule_line(ET_LINE, "emerging-activex.rules")
    assert (rule.sid, rule.rev, rule.classtype, rule.enabled_in_file) == (
        2012206, 2, "attempted-user", True)
    assert rule.cves == ("CVE-2010-4321",)
    assert rule.msg.startswith("ET ACTIVEX Novell iPrint")
    assert not rules_catalog.patch_applies(rule, "camera", "Hikvision")


def test_commented_rule_and_plain_comment():
    assert rules_catalog.parse_rule_line("# " + ET_LINE, "f").enabled_in_file is False
    assert rules_catalog.parse_rule_line("# just a comment (sid:1;)", "f") is None


def test_catalog_of_fixture_dir():
    catalog = rules_catalog.read_catalog(Path(__file__).parent / "rules")
    assert len(catalog.rules) == 4 and catalog.sids_for_cve("cve_2021_36260") == [9100001]
    assert catalog.categories() == {"attempted-admin": 2, "bad-unknown": 1, "policy-violation": 1}


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_random_lines_never_raise(line):
    rules_catalog.parse_rule_line(line, "random.rules")
    rules_catalog.parse_rule_line("alert tcp any any -> any any (" + line, "random.rules")
