"""Inline evasion: the offline evasion payloads, crafted segment by segment
from the lab's attacker namespace toward the camera behind the box. The box
must drop the exploit (the server never receives a complete request, so it
never answers) and log the alert as blocked.

Everything runs in namespaces this module creates (documentation addresses
only) and is removed at the end, also on failure. Budget: < 90 s."""
from __future__ import annotations

import json
import time

import pytest

from tests.inline_support import running_lab, why_not_inline

pytestmark = pytest.mark.inline


def _why_not() -> str | None:
    return why_not_inline("scapy", "ips.worker")


if _why_not():
    pytest.skip(_why_not(), allow_module_level=True)

from appliance.lab import ATTACKER, PYTHON, read_alerts  # noqa: E402
from ips.output import eve_ip  # noqa: E402
from tests.evasion.make_cases import (  # noqa: E402
    HTTP_FRAMING, NETGEAR_RULES, PORT_RULES, SHELL_8080, SMUGGLE_RULES, SNI, TLS_RULES,
    client_hello, one_byte_records)

CAMERA = "192.0.2.10"
TLS_RECORDS = one_byte_records(client_hello(SNI))
# What the test's own receiver on the camera listens on (the lab camera has
# no 8080 or TLS service): port -> bytes that make the complete attack.
RECEIVER_PORTS = {8080: len(SHELL_8080), 443: len(TLS_RECORDS)}
# An HTTP framing case each on a port of its own (8090, ...): the receiver
# answers once it holds the whole stream, hidden request included.
FRAMING_PORTS = {name: 8090 + i for i, name in enumerate(HTTP_FRAMING)}
RECEIVER_PORTS.update({FRAMING_PORTS[name]: len(request)
                       for name, (request, *_rest) in HTTP_FRAMING.items()})
# (case, port the camera listens on, sids that may fire)
INLINE_CASES = [
    ("uri-split-24", 80, {1000001, 1000002}),
    ("out-of-order", 80, {1000001, 1000002}),
    ("overlap-attack-first", 80, {1000001, 1000002}),
    ("ip-fragments", 80, {1000001, 1000002}),
    ("port-8080", 8080, {3003}),
    ("port-37215", 37215, {3001}),
    ("port-52869", 52869, {3002}),
    ("tls-1byte-records", 443, {4001}),
    ("ack-only-12", 80, {1000001, 1000002}),   # data in ACK-only segments of pure-ACK size
] + [(name, FRAMING_PORTS[name], {sid for sid, count in sids.items() if count})
      for name, (_request, sids, *_rest) in HTTP_FRAMING.items()]
# An ICMP error that quotes a connection the kernel already bypasses, carrying
# what a rule looks for: it must still be inspected on its own.
RELATED_RULES = (
    'alert udp any any -> any 9999 (msg:"EVASION judged at once"; content:"BYPASSME"; '
    'bypass; sid:5001; rev:1;)\n'
    'drop icmp any any -> any any (msg:"EVASION exploit in an ICMP error"; itype:3; '
    'content:"EVILMARK"; sid:5002; rev:1;)\n')


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    rules = tmp_path_factory.mktemp("rules") / "evasion.rules"
    # the offline rules, as drop rules: inline the box must block them
    rules.write_text((NETGEAR_RULES + PORT_RULES + TLS_RULES + SMUGGLE_RULES).replace("alert ", "drop ")
                     + RELATED_RULES)
    with running_lab(tmp_path_factory.mktemp("box"), [str(rules)], workers=1,
                     policy="fail-open") as topology:
        topology.start("cam", [PYTHON, "-m", "tests.evasion.inline_receiver", CAMERA,
                               *(f"{port}:{size}" for port, size in RECEIVER_PORTS.items())])
        yield topology


def _alerts(data_dir, sids, timeout=4.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = [a for a in read_alerts(data_dir) if a["alert"]["signature_id"] in sids]
        if found:
            return found
        time.sleep(0.2)
    return []


@pytest.mark.parametrize("case,port,sids", INLINE_CASES, ids=[c[0] for c in INLINE_CASES])
def test_crafted_evasion_is_blocked_inline(lab, case, port, sids):
    # a source port of its own per case: a blocked flow stays blocked
    source_port = 47000 + [c[0] for c in INLINE_CASES].index(case)
    done = lab.run("inet", [PYTHON, "-m", "tests.evasion.inline_sender", case, ATTACKER,
                            str(source_port), CAMERA, str(port)], timeout=30)
    result = json.loads(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else {}
    assert result.get("handshake"), done.stderr[-800:]
    assert result["answered"] is False           # the complete exploit never reached the server
    alerts = _alerts(lab.data_dir, sids)
    assert alerts and all(a["alert"]["action"] == "blocked" for a in alerts)


def test_benign_first_overlap_reaches_server_normalised(lab):
    # Control for the crafted path: the same sender, a request the box lets
    # through. The attack bytes overlap benign ones already inspected; inline
    # the box rewrites them to the benign copy, so the server answers a
    # benign request and no exploit alert exists.
    done = lab.run("inet", [PYTHON, "-m", "tests.evasion.inline_sender", "overlap-benign-first",
                            ATTACKER, "47100", CAMERA, "80"], timeout=30)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"handshake": True, "answered": True}
    assert not [a for a in read_alerts(lab.data_dir)
                if a["alert"]["signature_id"] in (1000001, 1000002) and a["src_port"] == 47100]


def test_overlapping_fragments_never_reach_the_device(lab):
    # The kernel reassembles before the queue (conntrack defrag) and, since
    # Linux 4.19, discards an IPv4 datagram whose fragments overlap: neither
    # copy of the conflicting bytes reaches the device, so no first/last-wins
    # ambiguity exists inline. The offline case checks our own reassembler.
    done = lab.run("inet", [PYTHON, "-m", "tests.evasion.inline_sender",
                            "ip-fragments-overlap-attack-first", ATTACKER, "47200", CAMERA, "80"],
                   timeout=30)
    result = json.loads(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else {}
    assert result.get("handshake"), done.stderr[-800:]
    assert result["answered"] is False


def test_icmp_error_is_inspected_though_its_connection_is_bypassed(lab):
    # The camera's UDP flow is judged (rule keyword `bypass`) and leaves the
    # queue; an ICMP error quoting it is RELATED in conntrack and would share
    # its bypass mark. It must reach the engine and be dropped on its own.
    sent = lab.run("cam", [PYTHON, "-c", (
        "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
        f"s.bind(({CAMERA!r}, 41000)); s.sendto(b'BYPASSME', ({ATTACKER!r}, 9999))")])
    assert sent.returncode == 0, sent.stderr
    assert _alerts(lab.data_dir, {5001})
    crafted = lab.run("inet", [PYTHON, "-c", (
        "from scapy.all import IP, ICMP, UDP, send; "
        f"send(IP(src={ATTACKER!r}, dst={CAMERA!r}) / ICMP(type=3, code=3) / "
        f"IP(src={CAMERA!r}, dst={ATTACKER!r}) / UDP(sport=41000, dport=9999) / "
        "b'BYPASSME EVILMARK', verbose=0)")], timeout=30)
    assert crafted.returncode == 0, crafted.stderr
    alerts = _alerts(lab.data_dir, {5002})
    assert alerts and alerts[0]["alert"]["action"] == "blocked"


CAMERA6, ATTACKER6 = "2001:db8:1::10", "2001:db8:1::99"


def test_exploit_over_ipv6_is_blocked(lab):
    # The same LAN segment in IPv6 (documentation prefix, on-link): the box
    # inspects what ip6tables queues exactly as it does IPv4. A benign request
    # is the control: it must be answered.
    for role, address in (("cam", CAMERA6), ("inet", ATTACKER6)):
        device = "eth0"
        lab.run(role, ["ip", "-6", "addr", "add", f"{address}/64", "dev", device, "nodad"])
    receiver = lab.start("cam", [PYTHON, "-m", "tests.evasion.inline_receiver", CAMERA6,
                                 f"8081:{len(SHELL_8080)}"])
    try:
        time.sleep(0.5)
        benign = SHELL_8080.replace(b"/shell?cd+/tmp;rm+-rf+*;wget", b"/status?page=home&x=aaaaaaaa")
        assert len(benign) == len(SHELL_8080)
        results = []
        for payload in (benign, SHELL_8080):
            done = lab.run("inet", [PYTHON, "-c", (
                "import socket, sys\n"
                f"s = socket.create_connection(({CAMERA6!r}, 8081), timeout=3)\n"
                f"s.sendall({payload!r})\n"
                "try:\n    print(s.recv(16) == b'ok')\n"
                "except OSError:\n    print(False)\n")], timeout=20)
            results.append(done.stdout.strip())
        assert results == ["True", "False"], results
        # EVE writes IPv6 in full, as Suricata does (2001:0db8:0001:...).
        alerts = [a for a in _alerts(lab.data_dir, {3003}) if a["src_ip"] == eve_ip(ATTACKER6)]
        assert alerts and alerts[0]["alert"]["action"] == "blocked"
    finally:
        receiver.kill()
