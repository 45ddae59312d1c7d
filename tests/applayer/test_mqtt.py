"""MQTT: CONNECT identity, PUBLISH/SUBSCRIBE topics, packet size bound."""
from __future__ import annotations

from hypothesis import given, settings, strategies as st

from tests.applayer.applayer_helpers import PCAPS, Pipeline, feed_all

from ips.applayer import mqtt as mqtt_module
from ips.applayer.mqtt import MqttParser
from ips.config import Config


def string(text: bytes) -> bytes:
    return len(text).to_bytes(2, "big") + text


def packet(first: int, body: bytes) -> bytes:
    length, encoded = len(body), bytearray()
    while True:
        byte, length = length & 0x7F, length >> 7
        encoded.append(byte | (0x80 if length else 0))
        if not length:
            return bytes([first]) + bytes(encoded) + body


CONNECT = packet(0x10, string(b"MQTT") + b"\x04\xc2\x00\x3c" + string(b"thermostat-7")
                 + string(b"alice") + string(b"s3cret"))


def test_connect_publish_subscribe():
    parser = MqttParser()
    stream = CONNECT + packet(0x32, string(b"home/temp") + b"\x00\x05" + b"21.5") \
        + packet(0x82, b"\x00\x06" + string(b"home/#") + b"\x01")
    txs = []
    for index in range(len(stream)):      # byte by byte: framing survives any split
        txs += parser.feed(stream[index:index + 1], True)
    connect, publish, subscribe = (tx.record for tx in txs)
    assert connect["connect"]["client_id"] == "thermostat-7"
    assert connect["connect"]["username"] == "alice"
    assert connect["connect"]["protocol_version"] == 4
    assert publish == {"publish": {"qos": 1, "retain": False, "dup": False, "topic": "home/temp",
                                   "message_id": 5, "message": "21.5"}}
    assert subscribe["subscribe"]["topics"] == [{"topic": "home/#", "qos": 1}]
    assert txs[0].buffers["mqtt.connect.clientid"] == b"thermostat-7"
    assert txs[1].buffers["mqtt.publish.topic"] == b"home/temp"


def test_mqtt5_properties_are_skipped():
    connect = packet(0x10, string(b"MQTT") + b"\x05\x02\x00\x3c" + b"\x03\x21\x00\x0a" + string(b"dev5"))
    publish = packet(0x30, string(b"t/1") + b"\x02\x01\x01" + b"on")
    [first, second] = MqttParser().feed(connect + publish, True)
    assert first.record["connect"]["client_id"] == "dev5"
    assert second.record["publish"]["message"] == "on"


def test_huge_packet_is_skipped_not_buffered():
    huge = 10 * mqtt_module.MAX_PACKET_BYTES
    header = bytes([0x30]) + packet(0x30, b"\x00" * huge)[1:5]
    parser = MqttParser()
    parser.feed(header + string(b"big"), True)
    sent = 0
    while sent < huge:
        parser.feed(b"y" * 65536, True)
        sent += 65536
        assert parser.buffered_bytes <= mqtt_module.MAX_PACKET_BYTES + 5
    assert "mqtt.packet_too_large" in parser.events


def test_real_capture():
    config = Config()
    config.stream_midstream = True    # the capture starts after the handshake
    records = Pipeline(config).run(PCAPS / "benign/ndpi/mqtt.pcap").records("mqtt")
    connect = next(r["connect"] for r in records if "connect" in r)
    assert connect["protocol_string"] == "MQIsdp" and connect["username"] == "02D5050223D3"
    assert any(r.get("publish", {}).get("topic") == "astr/admin/otaupd8" for r in records)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.binary(max_size=100)), max_size=10))
def test_random_never_raises(pieces):
    parser = MqttParser()
    feed_all(parser, pieces)
    assert parser.buffered_bytes <= 2 * (mqtt_module.MAX_PACKET_BYTES + 5)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_mutated_connect_never_raises(data):
    message = bytearray(CONNECT)
    for _ in range(data.draw(st.integers(1, 5))):
        message[data.draw(st.integers(0, len(message) - 1))] = data.draw(st.integers(0, 255))
    MqttParser().feed(bytes(message), True)


def test_mqtt_rule_keywords_read_what_the_parser_fills():
    # Suricata's MQTT keywords: sticky buffers for the CONNECT identity and
    # PUBLISH/SUBSCRIBE topics, mqtt.protocol_version and mqtt.type.
    from tests.detect.factories import FakeFlow, engine, loaded, packet as detect_packet, sids
    eng = loaded(
        'alert mqtt any any -> any any (msg:"a"; mqtt.connect.clientid; content:"thermostat"; sid:1;)',
        'alert mqtt any any -> any any (msg:"b"; mqtt.connect.password; content:"s3cret"; '
        'bsize:6; sid:2;)',
        'alert mqtt any any -> any any (msg:"c"; mqtt.protocol_version:4; mqtt.type:CONNECT; sid:3;)',
        'alert mqtt any any -> any any (msg:"d"; mqtt.protocol_version:5; sid:4;)',
        'alert mqtt any any -> any any (msg:"e"; mqtt.publish.topic; content:"home/temp"; '
        'mqtt.publish.message; content:"21.5"; sid:5;)',
        'alert mqtt any any -> any any (msg:"f"; mqtt.subscribe.topic; content:"#"; endswith; sid:6;)',
        'alert mqtt any any -> any any (msg:"g"; mqtt.type:!PUBLISH; mqtt.type:3; sid:7;)')
    parser = MqttParser()
    txs = parser.feed(CONNECT + packet(0x32, string(b"home/temp") + b"\x00\x05" + b"21.5")
                      + packet(0x82, b"\x00\x06" + string(b"home/#") + b"\x01"), True)
    fired = []
    for tx in txs:
        fired += sids(eng.inspect(detect_packet(b"x", dport=1883), FakeFlow(app_proto="mqtt"), None, [tx]))
    assert sorted(fired) == [1, 2, 3, 5, 6]
    _eng, refused = engine('alert mqtt any any -> any any (msg:"h"; mqtt.type:PINGREQ; sid:8;)')
    assert refused.skipped
