"""DHCPv4 parser: device observations from BOOTP/DHCP messages.

One datagram is one message and one transaction. The record carries what the
inventory uses to name and classify a device: client MAC, hostname (option
12), vendor class (60), parameter request list (55, as "1,3,6,15" -- the
Fingerbank fingerprint format), MUD URL (161), requested IP (50), client id
(61), plus the message type and addresses, following Suricata's EVE dhcp
field names where Suricata has one.
"""
from __future__ import annotations

import ipaddress

from ips.applayer import Tx

MAGIC_COOKIE = b"\x63\x82\x53\x63"
MAX_OPTIONS = 255
"""Options decoded per message (each at most 255 bytes, so bounded anyway)."""

MESSAGE_TYPES = {1: "discover", 2: "offer", 3: "request", 4: "decline", 5: "ack",
                 6: "nak", 7: "release", 8: "inform"}


def _ip(raw: bytes) -> str:
    return str(ipaddress.IPv4Address(raw))


def _text(raw: bytes) -> str:
    return raw.rstrip(b"\x00").decode("utf-8", "replace")


def parse_options(data: bytes) -> tuple[list[tuple[int, bytes]], str | None]:
    """(code, value) pairs; stops at END; returns a problem name if truncated."""
    options: list[tuple[int, bytes]] = []
    position = 0
    while position < len(data) and len(options) < MAX_OPTIONS:
        code = data[position]
        if code == 0:            # pad
            position += 1
            continue
        if code == 255:          # end
            return options, None
        if position + 1 >= len(data):
            return options, "dhcp.truncated_options"
        length = data[position + 1]
        value = data[position + 2:position + 2 + length]
        if len(value) < length:
            return options, "dhcp.truncated_options"
        options.append((code, value))
        position += 2 + length
    return options, None


class DhcpParser:
    """DHCPv4 over UDP 67/68."""

    __slots__ = ("events", "next_tx_id")

    def __init__(self, config=None) -> None:
        self.events: list[str] = []
        self.next_tx_id = 0

    def feed(self, data: bytes, to_server: bool, gap: bool = False) -> list[Tx]:
        if len(data) < 240 or data[236:240] != MAGIC_COOKIE:
            self.events.append("dhcp.malformed")
            return []
        op = data[0]
        hardware_length = min(data[2], 16)
        record: dict = {"type": "request" if op == 1 else "reply",
                        "id": int.from_bytes(data[4:8], "big")}
        if data[1] == 1 and hardware_length == 6:
            record["client_mac"] = ":".join(f"{b:02x}" for b in data[28:34])
        client_ip, your_ip = data[12:16], data[16:20]
        if client_ip != b"\x00\x00\x00\x00":
            record["client_ip"] = _ip(client_ip)
        if your_ip != b"\x00\x00\x00\x00":
            record["assigned_ip"] = _ip(your_ip)
        options, problem = parse_options(data[240:])
        if problem:
            self.events.append(problem)
        buffers: dict = {}
        for code, value in options:
            if code == 53 and len(value) == 1:
                record["dhcp_type"] = MESSAGE_TYPES.get(value[0], str(value[0]))
            elif code == 12:
                record["hostname"] = _text(value)
                buffers["dhcp.hostname"] = value
            elif code == 60:
                record["vendor_class_identifier"] = _text(value)
                buffers["dhcp.vendor_class"] = value
            elif code == 55:
                record["parameter_request_list"] = ",".join(str(b) for b in value)
            elif code == 161:
                record["mud_url"] = _text(value)
            elif code == 50 and len(value) == 4:
                record["requested_ip"] = _ip(value)
            elif code == 61 and value:
                record["client_id"] = ":".join(f"{b:02x}" for b in value)
            elif code == 54 and len(value) == 4:
                record["dhcp_server_id"] = _ip(value)
            elif code == 51 and len(value) == 4:
                record["lease_time"] = int.from_bytes(value, "big")
            elif code == 81 and len(value) > 3:
                record["client_fqdn"] = _text(value[3:])
        tx = Tx(app_proto="dhcp", tx_id=self.next_tx_id, to_server=to_server,
                buffers=buffers, record=record, complete=True)
        self.next_tx_id += 1
        return [tx]

    def finish(self) -> list[Tx]:
        return []
