"""Console helpers of `reefguard lab` (no namespaces needed)."""
import pytest

from appliance.lab import as_login_reads, describe_alert


def test_alert_line_names_rule_and_cve():
    alert = {"alert": {"action": "blocked", "signature_id": 9100020,
                       "signature": "Huawei HG532 RCE",
                       "metadata": {"cve": ["CVE-2017-17215"], "attack": ["rce"]}}}
    assert describe_alert(alert) == "blocked by sid 9100020: Huawei HG532 RCE [CVE-2017-17215]"


def test_alert_line_without_metadata():
    assert describe_alert({"alert": {"action": "allowed", "signature_id": 1,
                                     "signature": "x"}}) == "allowed by sid 1: x"


@pytest.mark.parametrize("typed", [b"xc3511\r\n", b"xc\xff\xf13511\r\n", b"xc3\xff\xfd\x01511\r\n",
                                   b"xc35X\x7f11\r\n", b"\xff\xfa\x18\x00xterm\xff\xf0xc3511\r\n"])
def test_lab_telnetd_reads_a_password_as_a_device_does(typed):
    # so the inline test of the parsed Mirai patches sends what would log in
    assert as_login_reads(typed).strip() == b"xc3511"
