"""Console helpers of `reefguard lab` (no namespaces needed)."""
from appliance.lab import describe_alert


def test_alert_line_names_rule_and_cve():
    alert = {"alert": {"action": "blocked", "signature_id": 9100020,
                       "signature": "Huawei HG532 RCE",
                       "metadata": {"cve": ["CVE-2017-17215"], "attack": ["rce"]}}}
    assert describe_alert(alert) == "blocked by sid 9100020: Huawei HG532 RCE [CVE-2017-17215]"


def test_alert_line_without_metadata():
    assert describe_alert({"alert": {"action": "allowed", "signature_id": 1,
                                     "signature": "x"}}) == "allowed by sid 1: x"
