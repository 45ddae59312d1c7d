"""MQTT 3.1/3.1.1/5 parser (sans-IO): CONNECT identity and topics.

Per direction the stream is cut into control packets (fixed header: type and
flags, then a 1..4 byte variable-length "remaining length"). A packet is
buffered only up to MAX_PACKET_BYTES: a larger one (a big PUBLISH payload) is
parsed from its first MAX_PACKET_BYTES and the rest is skipped without
buffering, so a peer announcing a 256 MiB packet costs nothing.

Each CONNECT, CONNACK, PUBLISH, SUBSCRIBE, UNSUBSCRIBE and DISCONNECT is a
transaction whose record follows Suricata's EVE mqtt layout, e.g.
{"connect": {"qos", "retain", "dup", "protocol_string", "protocol_version",
"flags": {...}, "client_id", "username", "password"}} or
{"publish": {"topic", "message_id", "message"}}.
"""
from __future__ import annotations

from ips.applayer import Tx

MAX_PACKET_BYTES = 64 * 1024
"""Bytes of one control packet buffered for parsing."""
MAX_MESSAGE_LOGGED = 1024
"""PUBLISH payload bytes put into the record."""

TYPE_NAMES = {1: "connect", 2: "connack", 3: "publish", 4: "puback", 5: "pubrec",
              6: "pubrel", 7: "pubcomp", 8: "subscribe", 9: "suback", 10: "unsubscribe",
              11: "unsuback", 12: "pingreq", 13: "pingresp", 14: "disconnect", 15: "auth"}
LOGGED_TYPES = (1, 2, 3, 8, 10, 14)
"""Control packet types that become transactions (and EVE records)."""


class _Reader:
    __slots__ = ("data", "position")

    def __init__(self, data: bytes, position: int = 0) -> None:
        self.data = data
        self.position = position

    def take(self, count: int) -> bytes:
        if self.position + count > len(self.data):
            raise ValueError("truncated")
        chunk = self.data[self.position:self.position + count]
        self.position += count
        return chunk

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int.from_bytes(self.take(2), "big")

    def string(self) -> bytes:
        return self.take(self.u16())

    def varint(self) -> int:
        value, shift = 0, 0
        for _ in range(4):
            byte = self.u8()
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7
        raise ValueError("varint too long")

    def skip_properties(self) -> None:
        self.take(self.varint())

    @property
    def remaining(self) -> int:
        return len(self.data) - self.position


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


class _Direction:
    __slots__ = ("buffer", "skip", "stopped")

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.skip = 0
        self.stopped = False


class MqttParser:
    """One MQTT connection."""

    __slots__ = ("events", "client", "server", "next_tx_id", "protocol_version")

    def __init__(self, config=None) -> None:
        self.events: list[str] = []
        self.client = _Direction()
        self.server = _Direction()
        self.next_tx_id = 0
        self.protocol_version = 4

    @property
    def buffered_bytes(self) -> int:
        return len(self.client.buffer) + len(self.server.buffer)

    def feed(self, data: bytes, to_server: bool, gap: bool = False) -> list[Tx]:
        side = self.client if to_server else self.server
        if gap:
            self.events.append("mqtt.gap")
            side.stopped = True
            side.buffer = bytearray()
        if side.stopped:
            return []
        if side.skip:
            skipped = min(side.skip, len(data))
            side.skip -= skipped
            data = data[skipped:]
        side.buffer += data
        out: list[Tx] = []
        position = 0
        buffer = side.buffer
        while len(buffer) - position >= 2:
            header = _Reader(bytes(buffer[position:position + 5]))
            try:
                first = header.u8()
                length = header.varint()
            except ValueError:
                if len(buffer) - position >= 5:
                    self.events.append("mqtt.invalid_length")
                    side.stopped = True
                    side.buffer = bytearray()
                    return out
                break
            header_length = header.position
            total = header_length + length
            wanted = min(total, header_length + MAX_PACKET_BYTES)
            if len(buffer) - position < wanted:
                break
            packet = bytes(buffer[position + header_length:position + wanted])
            if total > wanted:
                self.events.append("mqtt.packet_too_large")
                available = len(buffer) - position
                side.skip = total - min(available, total)
                position = len(buffer)
            else:
                position += total
            tx = self._packet(first >> 4, first & 0x0F, packet, to_server, truncated=total > wanted)
            if tx is not None:
                out.append(tx)
        del buffer[:position]
        return out

    def finish(self) -> list[Tx]:
        return []

    def _packet(self, packet_type: int, flags: int, body: bytes, to_server: bool,
                truncated: bool) -> Tx | None:
        if packet_type not in LOGGED_TYPES:
            return None
        reader = _Reader(body)
        buffers: dict = {"mqtt.type": TYPE_NAMES[packet_type].upper().encode()}
        fields: dict = {"qos": (flags >> 1) & 3, "retain": bool(flags & 1), "dup": bool(flags & 8)}
        try:
            if packet_type == 1:
                self._connect(reader, fields, buffers)
            elif packet_type == 2:
                acknowledge_flags = reader.u8()
                fields["session_present"] = bool(acknowledge_flags & 1)
                fields["return_code"] = reader.u8()
            elif packet_type == 3:
                topic = reader.string()
                fields["topic"] = _text(topic)
                buffers["mqtt.publish.topic"] = topic
                if fields["qos"]:
                    fields["message_id"] = reader.u16()
                if self.protocol_version >= 5:
                    reader.skip_properties()
                message = body[reader.position:]
                buffers["mqtt.publish.message"] = message
                fields["message"] = _text(message[:MAX_MESSAGE_LOGGED])
                if truncated:
                    fields["truncated"] = True
            elif packet_type in (8, 10):
                fields["message_id"] = reader.u16()
                if self.protocol_version >= 5:
                    reader.skip_properties()
                topics = []
                raw_topics = []
                while reader.remaining:
                    topic = reader.string()
                    raw_topics.append(topic)
                    entry = {"topic": _text(topic)}
                    if packet_type == 8:
                        entry["qos"] = reader.u8() & 3
                    topics.append(entry)
                    if len(topics) >= 256:
                        break
                fields["topics"] = topics
                buffers["mqtt.subscribe.topic" if packet_type == 8 else "mqtt.unsubscribe.topic"] = raw_topics
        except ValueError:
            self.events.append("mqtt.malformed_packet")
        tx = Tx(app_proto="mqtt", tx_id=self.next_tx_id, to_server=to_server, buffers=buffers,
                record={TYPE_NAMES[packet_type]: fields}, complete=True)
        self.next_tx_id += 1
        return tx

    def _connect(self, reader: _Reader, fields: dict, buffers: dict) -> None:
        protocol = reader.string()
        version = reader.u8()
        connect_flags = reader.u8()
        reader.u16()   # keep alive
        self.protocol_version = version
        fields["protocol_string"] = _text(protocol)
        fields["protocol_version"] = version
        fields["flags"] = {"username": bool(connect_flags & 0x80), "password": bool(connect_flags & 0x40),
                           "will_retain": bool(connect_flags & 0x20), "will": bool(connect_flags & 0x04),
                           "clean_session": bool(connect_flags & 0x02)}
        buffers["mqtt.protocol_version"] = bytes((version,))     # an integer keyword
        if version >= 5:
            reader.skip_properties()
        client_id = reader.string()
        fields["client_id"] = _text(client_id)
        buffers["mqtt.connect.clientid"] = client_id
        if connect_flags & 0x04:
            if version >= 5:
                reader.skip_properties()
            will_topic = reader.string()
            will_message = reader.string()
            fields["will"] = {"topic": _text(will_topic), "message": _text(will_message[:MAX_MESSAGE_LOGGED])}
            buffers["mqtt.connect.willtopic"] = will_topic
            buffers["mqtt.connect.willmessage"] = will_message
        if connect_flags & 0x80:
            username = reader.string()
            fields["username"] = _text(username)
            buffers["mqtt.connect.username"] = username
        if connect_flags & 0x40:
            password = reader.string()
            fields["password"] = _text(password)
            buffers["mqtt.connect.password"] = password
