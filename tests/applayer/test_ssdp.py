"""SSDP discovery messages."""
from __future__ import annotations

from hypothesis import given, settings, strategies as st

from tests.applayer.applayer_helpers import PCAPS, Pipeline

from ips.applayer.ssdp import SsdpParser

NOTIFY = (b"NOTIFY * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nCACHE-CONTROL: max-age=1800\r\n"
          b"LOCATION: http://192.0.2.20:49152/description.xml\r\nNT: upnp:rootdevice\r\n"
          b"NTS: ssdp:alive\r\nSERVER: Linux/3.14 UPnP/1.0 IpBridge/1.26.0\r\n"
          b"USN: uuid:2f402f80-da50-11e1-9b23-001788255acb::upnp:rootdevice\r\n\r\n")


def test_notify():
    [tx] = SsdpParser().feed(NOTIFY, True)
    assert tx.record == {"method": "NOTIFY", "cache_control": "max-age=1800",
                         "location": "http://192.0.2.20:49152/description.xml",
                         "nt": "upnp:rootdevice", "nts": "ssdp:alive",
                         "server": "Linux/3.14 UPnP/1.0 IpBridge/1.26.0",
                         "usn": "uuid:2f402f80-da50-11e1-9b23-001788255acb::upnp:rootdevice"}


def test_search_response():
    [tx] = SsdpParser().feed(b"HTTP/1.1 200 OK\r\nST: upnp:rootdevice\r\nUSN: uuid:1\r\n\r\n", False)
    assert tx.record == {"method": "response", "status": 200, "st": "upnp:rootdevice", "usn": "uuid:1"}


def test_real_capture():
    records = Pipeline().run(PCAPS / "benign/ndpi/ssdp-m-search-ua.pcap").records("ssdp")
    assert records and records[0]["method"] == "M-SEARCH"
    assert records[0]["user_agent"] == "Google Chrome/99.0.4844.74 Mac OS X"


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=400))
def test_random_never_raises(data):
    SsdpParser().feed(data, True)
