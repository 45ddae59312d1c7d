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


SHIPPED = Path(__file__).resolve().parents[2] / "signatures"


def _shipped_patches() -> dict[int, rules_catalog.RuleInfo]:
    catalog = rules_catalog.read_catalog(SHIPPED)
    assert catalog.unreadable_lines == 0
    return {rule.sid: rule for rule in catalog.patches if rule.file == "virtual-patches.rules"}


def test_every_shipped_patch_names_the_devices_it_protects():
    """The dashboard finds a patch's devices through ET's target keys only; a
    shipped patch without them would never show as protecting anything until
    it fired (the old `affected_device` key was such a case)."""
    patches = _shipped_patches()
    assert {9100020, 9100021} <= patches.keys()
    for rule in patches.values():
        assert "affected_device" not in rule.metadata, rule.sid
        assert rule.metadata.get("affected_product") and rule.metadata.get("device_type"), rule.sid
        vendor = (rule.metadata.get("vendor") or ("",))[0]
        assert rules_catalog.patch_applies(rule, rule.metadata["device_type"][0], vendor), rule.sid


def test_shipped_patches_light_up_on_the_device_they_were_written_for():
    patches = _shipped_patches()
    huawei = patches[9100020]
    # Device vendors come from the OUI registry's long names.
    assert rules_catalog.patch_applies(huawei, "router", "Huawei Technologies Co.,Ltd")
    assert rules_catalog.patch_applies(huawei, None, "HUAWEI TECHNOLOGIES CO.,LTD")
    assert not rules_catalog.patch_applies(huawei, "IP camera", "Hangzhou Hikvision Digital Technology Co.,Ltd.")
    # A router of another brand is not protected by a Huawei-only patch, but
    # one built on the Realtek SDK (no vendor named) is, whatever its brand.
    assert not rules_catalog.patch_applies(huawei, "router", "ZTE Corporation")
    assert rules_catalog.patch_applies(patches[9100021], "router", "ZTE Corporation")


def test_vendor_decides_when_both_sides_name_one():
    hikvision = rules_catalog.parse_rule_line(
        'drop http any any -> any any (msg:"x"; reference:cve,2021-36260; sid:1; rev:1; '
        'metadata:affected_product Hikvision_IP_Camera, vendor Hikvision, device_type camera;)', "f")
    dlink = rules_catalog.parse_rule_line(
        'drop http any any -> any any (msg:"x"; reference:cve,2024-3273; sid:2; rev:1; '
        'metadata:affected_product D-Link_NAS, vendor D-Link, device_type nas;)', "f")
    assert rules_catalog.patch_applies(hikvision, "IP camera", "Hangzhou Hikvision Digital Technology Co.,Ltd.")
    assert not rules_catalog.patch_applies(hikvision, "IP camera", "Zhejiang Dahua Technology Co., Ltd.")
    assert rules_catalog.patch_applies(hikvision, "camera", None)     # vendor unknown: type decides
    # As words "TP-Link" and "D-Link" are both "link".
    assert not rules_catalog.patch_applies(dlink, "smart plug", "TP-LINK TECHNOLOGIES CO.,LTD.")
    assert rules_catalog.patch_applies(dlink, "nas", "D-Link International")


def test_botnet_cve_patches_light_up_by_vendor():
    patches = _shipped_patches()
    hikvision_camera = ("IP camera", "Hangzhou Hikvision Digital Technology Co.,Ltd.")
    on_camera = {sid for sid, rule in patches.items() if rules_catalog.patch_applies(rule, *hikvision_camera)}
    assert {9100100, 9100101} <= on_camera
    assert not on_camera & {9100102, 9100103, 9100110}        # AVTECH, D-Link
    dlink_nas = patches[9100110]
    assert rules_catalog.patch_applies(dlink_nas, "nas", "D-Link International")
    assert not rules_catalog.patch_applies(dlink_nas, "smart plug", "TP-LINK TECHNOLOGIES CO.,LTD.")
    # TBK DVRs are sold under many brands: the feed's patch (the lab demo's)
    # applies to DVRs by type.
    feed_demo = rules_catalog.read_catalog(SHIPPED / "feed-demo")
    tbk = next(rule for rule in feed_demo.patches if rule.sid == 9100040)
    assert rules_catalog.patch_applies(tbk, "dvr", "Shenzhen Some OEM Co.")


def test_a_vendors_router_patch_is_not_shown_on_its_plug():
    patches = _shipped_patches()
    archer = patches[9100104]                   # TP-Link Archer AX21, device_type router
    tplink = "TP-LINK TECHNOLOGIES CO.,LTD."
    assert not rules_catalog.patch_applies(archer, "smart plug", tplink)
    # The inventory has no router type: a router shows up as a web-managed
    # device, or with no type yet.
    assert rules_catalog.patch_applies(archer, "web-managed device", tplink)
    assert rules_catalog.patch_applies(archer, None, tplink)
    assert not rules_catalog.patch_applies(archer, "web-managed device", "D-Link International")
    # A camera patch fits the vendor's IP camera, not its speaker.
    assert rules_catalog.patch_applies(patches[9100103], "IP camera", "AVTECH Corporation")
    assert not rules_catalog.patch_applies(patches[9100103], "smart speaker", "AVTECH Corporation")


def test_device_page_shows_one_row_per_cve():
    from webui.routers.api.devices import patch_groups
    avtech = [{"sid": rule.sid, "msg": rule.msg, "cves": list(rule.cves), "fired": rule.sid == 9100103}
              for rule in _shipped_patches().values()
              if rules_catalog.patch_applies(rule, "IP camera", "AVTECH Corporation")]
    rows = patch_groups(avtech)
    row = next(r for r in rows if r["cves"] == ["CVE-2024-7029"])
    assert row["sids"] == [9100102, 9100103, 9100114] and row["fired"]
    assert row["msg"] == "REEFGUARD VPATCH AVTECH IP camera Factory.cgi brightness command injection (CVE-2024-7029)"
    assert len(rows) == len({tuple(p["cves"]) for p in avtech})
