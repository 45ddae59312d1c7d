"""Modbus/TCP: MBAP framing, request/response pairing."""
from __future__ import annotations

from hypothesis import given, settings, strategies as st

from tests.applayer.applayer_helpers import PCAPS, Pipeline, feed_all

from ips.applayer.modbus import MAX_ADU_BYTES, ModbusParser
from ips.config import Config

READ = bytes.fromhex("0001 0000 0006 11 03 006b 0003".replace(" ", ""))
REPLY = bytes.fromhex("0001 0000 0009 11 03 06 022b 0000 0064".replace(" ", ""))
EXCEPTION = bytes.fromhex("0002 0000 0003 11 86 02".replace(" ", ""))


def test_request_and_response():
    parser = ModbusParser()
    [request] = parser.feed(READ[:5], True) + parser.feed(READ[5:], True)
    assert request.buffers["modbus.function_code"] == 3
    assert not request.complete and request.record is None
    [tx] = parser.feed(REPLY, False)
    assert tx is request and tx.complete
    assert tx.record["request"] == {"transaction_id": 1, "protocol_id": 0, "unit_id": 17,
                                    "function_code": 3, "function_name": "read_holding_registers",
                                    "address": 107, "quantity_or_value": 3}


def test_exception_response():
    parser = ModbusParser()
    parser.feed(bytes.fromhex("0002000000061106000100ff"), True)
    [tx] = parser.feed(EXCEPTION, False)
    assert tx.record["response"]["exception_code"] == 2
    assert tx.record["response"]["function_code"] == 6


def test_invalid_header_stops_direction():
    parser = ModbusParser()
    assert parser.feed(b"\x00\x01\x12\x34\x00\x06\x11\x03\x00\x00\x00\x01", True) == []
    assert parser.events == ["modbus.invalid_protocol_id"]


def test_real_capture():
    config = Config()
    config.stream_midstream = True
    records = Pipeline(config).run(PCAPS / "benign/ndpi/modbus.pcap").records("modbus")
    paired = [r for r in records if "request" in r and "response" in r]
    assert len(paired) > 40 and paired[0]["request"]["function_name"] == "read_holding_registers"


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.binary(max_size=60)), max_size=12))
def test_random_never_raises(pieces):
    parser = ModbusParser()
    feed_all(parser, pieces)
    parser.finish()
    assert parser.buffered_bytes <= 2 * MAX_ADU_BYTES
