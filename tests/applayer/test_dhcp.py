"""DHCP: device observations from real captures (MUD URL, fingerprint)."""
from __future__ import annotations

from hypothesis import given, settings, strategies as st

from tests.applayer.applayer_helpers import PCAPS, Pipeline, payloads

from ips.applayer.dhcp import DhcpParser


def test_mud_capture():
    records = Pipeline().run(PCAPS / "benign/tcpdump/dhcp-mud.pcap").records("dhcp")
    request = records[0]
    assert request["dhcp_type"] == "request"
    assert request["client_mac"] == "b8:27:eb:b8:53:c8"
    assert request["hostname"] == "raspberrypi"
    assert request["mud_url"] == "https://mudctl.example.com/.well-known/mud/v1/rasbp101"
    assert request["vendor_class_identifier"].startswith("dhcpcd-6.11.5")
    assert request["parameter_request_list"] == "1,121,33,3,6,12,15,28,42,51,54,58,59,100,101,119"
    assert records[1]["dhcp_type"] == "ack" and records[1]["assigned_ip"] == "62.12.173.123"


def test_discover_with_requested_ip():
    records = Pipeline().run(PCAPS / "benign/tcpdump/dhcp-rfc3004.pcap").records("dhcp")
    assert [r["dhcp_type"] for r in records[:4]] == ["discover", "offer", "request", "ack"]
    assert records[0]["requested_ip"] == "192.168.1.4"


def test_not_dhcp_is_an_event():
    parser = DhcpParser()
    assert parser.feed(b"\x01" * 100, True) == []
    assert parser.events == ["dhcp.malformed"]


MUD_REQUEST = next(payloads(PCAPS / "benign/tcpdump/dhcp-mud.pcap", udp=True))[2]


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_mutated_never_raises(data):
    message = bytearray(MUD_REQUEST)
    for _ in range(data.draw(st.integers(1, 10))):
        message[data.draw(st.integers(236, len(message) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(message)))
    DhcpParser().feed(bytes(message[:cut]), True)
