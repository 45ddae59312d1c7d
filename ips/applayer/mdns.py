"""Multicast DNS parser (RFC 6762/6763): device names, services, TXT records.

Each datagram is one message and one transaction; mDNS has no request/response
pairing worth tracking (answers are multicast and unsolicited). The record is
a device observation for the inventory:
{"type": "query"|"response", "queries": [...], "names": [...],
 "service_types": [...], "instances": [...], "txt": [...], "addresses": [...]}.
Wire decoding is shared with `ips.applayer.dns` (same compression rules and
loop protection).
"""
from __future__ import annotations

from ips.applayer import Tx
from ips.applayer.dns import MAX_RECORDS, parse_message

MAX_LIST_ITEMS = 64
"""Entries kept per list in a record."""


def _text(value: bytes) -> str:
    return value.decode("utf-8", "replace")


def _add(items: list, value) -> None:
    if value not in items and len(items) < MAX_LIST_ITEMS:
        items.append(value)


class MdnsParser:
    """mDNS over UDP 5353: one transaction per message."""

    __slots__ = ("events", "next_tx_id")

    def __init__(self, config=None) -> None:
        self.events: list[str] = []
        self.next_tx_id = 0

    def feed(self, data: bytes, to_server: bool, gap: bool = False) -> list[Tx]:
        message = parse_message(data)
        for problem in dict.fromkeys(message.problems):
            self.events.append("mdns." + problem.partition(".")[2])
        if len(data) < 12:
            return []
        queries: list[str] = []
        names: list[str] = []
        service_types: list[str] = []
        instances: list[str] = []
        txt: list[str] = []
        addresses: list[str] = []
        for question in message.questions[:MAX_RECORDS]:
            _add(queries, _text(question.name))
        for record in message.answers + message.authorities + message.additionals:
            name = _text(record.name)
            if record.rrtype == 12 and isinstance(record.value, str):    # PTR
                if name == "_services._dns-sd._udp.local":
                    _add(service_types, record.value)
                elif name.startswith("_"):
                    _add(service_types, name)
                    _add(instances, record.value)
            elif record.rrtype == 33 and isinstance(record.value, dict):  # SRV
                _add(instances, name)
                _add(names, record.value["name"])
            elif record.rrtype in (1, 28) and isinstance(record.value, str):
                _add(names, name)
                _add(addresses, record.value)
            elif record.rrtype == 16 and isinstance(record.value, list):
                for entry in record.value:
                    if entry:
                        _add(txt, _text(entry))
        fields: dict = {"type": "response" if message.is_response else "query"}
        for key, values in (("queries", queries), ("names", names),
                            ("service_types", service_types), ("instances", instances),
                            ("txt", txt), ("addresses", addresses)):
            if values:
                fields[key] = values
        # Suricata 8's mDNS sticky buffers: each section's record names.
        buffers = {"dns.query": [q.name for q in message.questions[:MAX_RECORDS]]}
        buffers["mdns.queries.rrname"] = buffers["dns.query"]
        for key, section in (("mdns.answers.rrname", message.answers),
                             ("mdns.authorities.rrname", message.authorities),
                             ("mdns.additionals.rrname", message.additionals)):
            buffers[key] = [record.name for record in section[:MAX_RECORDS]]
        tx = Tx(app_proto="mdns", tx_id=self.next_tx_id, to_server=to_server,
                buffers=buffers, record=fields, complete=True)
        self.next_tx_id += 1
        return [tx]

    def finish(self) -> list[Tx]:
        return []
