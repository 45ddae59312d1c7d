"""The table of rule-visible event names (ips/event_names.py) and the
stages that raise anomalies must not drift apart: every listed name is
raised somewhere, and every name raised is either listed or logged only."""
import pathlib
import re

from ips import event_names

ROOT = pathlib.Path(__file__).resolve().parent.parent / "ips"
# How the stages spell anomaly names: literals, and "<layer>" + suffix.
_NAME = re.compile(r'"((?:ethernet|sll2?|ltnull|vlan|pppoe|decoder|ipv4|ipv6|tcp|udp|icmpv4|icmpv6|'
                   r'stream|http|dns|tls)\.[a-z0-9_]+)"')
_LAYERED = re.compile(r'layer \+ "(\.[a-z0-9_]+)"')
_LAYERS = {"decode.py": ("icmpv4", "icmpv6"), "defrag.py": ("ipv4", "ipv6")}


def _raised() -> set[str]:
    names: set[str] = set()
    for path in [ROOT / "decode.py", ROOT / "defrag.py", ROOT / "stream.py",
                 ROOT / "applayer" / "http.py", ROOT / "applayer" / "dns.py",
                 ROOT / "applayer" / "tls.py"]:
        text = path.read_text()
        for name in _NAME.findall(text):
            if path.name in ("http.py", "dns.py", "tls.py") and name.count(".") != 1:
                continue
            names.add(name)
        for suffix in _LAYERED.findall(text):
            names.update(layer + suffix for layer in _LAYERS[path.name])
    return names


def test_every_rule_visible_event_is_raised():
    raised = _raised()
    assert event_names.RULE_EVENTS - raised == set()


def test_every_decode_and_stream_event_raised_is_listed_or_log_only():
    raised = {name for name in _raised() if not name.startswith(("http.", "dns.", "tls."))}
    unlisted = raised - event_names.RULE_EVENTS - set(event_names.LOG_ONLY)
    assert unlisted == set()


def test_log_only_names_are_not_rule_visible():
    assert not set(event_names.LOG_ONLY) & event_names.RULE_EVENTS
