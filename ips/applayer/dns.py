"""DNS parser (sans-IO) for UDP datagrams and TCP streams (2-byte length).

`parse_message(data)` decodes one message into a `DnsMessage`; it never
raises and reports what it could not decode in `message.problems`. Names use
compression pointers as Suricata follows them, to any offset of the message
(forwards too), with loop protection: at most MAX_NAME_STEPS labels and
pointers per name, so a hostile message costs O(MAX_NAME_STEPS) per name.

Transactions: a query opens a transaction (keyed by DNS id); the response with
the same id updates and completes it. The EVE record is Suricata's dns
version 3 style ({"version": 3, "type": "request"|"response", "id", "flags",
"qr", "rd", ..., "queries": [{"rrname", "rrtype"}], "answers": [...]}).
`ips.applayer.mdns` reuses `parse_message` for multicast DNS.
"""
from __future__ import annotations

import struct
from socket import AF_INET, inet_ntop
from dataclasses import dataclass, field

from ips.applayer import Tx

MAX_MESSAGE_BYTES = 65535 + 2
"""A TCP DNS message cannot be longer (the length prefix is 16 bits)."""
MAX_NAME_STEPS = 255
"""Labels and compression pointers followed per name (Suricata's loop bound)."""
MAX_MESSAGE_NAME_STEPS = 4096
"""Labels and pointers followed for all the names of one message together."""
MAX_NAME_BYTES = 1025
"""Name text kept (Suricata's MAX_NAME_LEN); longer names are cut there, an event."""
MAX_RECORDS = 256
"""Records decoded per section; more are counted but not decoded."""
MAX_OPEN_QUERIES = 64
"""Queries awaiting their response per flow."""

RRTYPES = {1: "A", 2: "NS", 3: "MD", 4: "MF", 5: "CNAME", 6: "SOA", 7: "MB", 8: "MG",
           9: "MR", 10: "NULL", 11: "WKS", 12: "PTR", 13: "HINFO", 14: "MINFO", 15: "MX",
           16: "TXT", 17: "RP", 18: "AFSDB", 19: "X25", 20: "ISDN", 21: "RT", 22: "NSAP",
           23: "NSAPPTR", 24: "SIG", 25: "KEY", 26: "PX", 27: "GPOS", 28: "AAAA", 29: "LOC",
           30: "NXT", 33: "SRV", 34: "ATMA", 35: "NAPTR", 36: "KX", 37: "CERT", 38: "A6",
           39: "DNAME", 41: "OPT", 42: "APL", 43: "DS", 44: "SSHFP", 45: "IPSECKEY",
           46: "RRSIG", 47: "NSEC", 48: "DNSKEY", 49: "DHCID", 50: "NSEC3", 51: "NSEC3PARAM",
           52: "TLSA", 55: "HIP", 59: "CDS", 60: "CDNSKEY", 64: "SVCB", 65: "HTTPS",
           99: "SPF", 249: "TKEY", 250: "TSIG", 251: "IXFR", 252: "AXFR", 253: "MAILB",
           254: "MAILA", 255: "ANY", 256: "URI", 257: "CAA"}
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP",
          5: "REFUSED", 6: "YXDOMAIN", 7: "YXRRSET", 8: "NXRRSET", 9: "NOTAUTH", 10: "NOTZONE"}

_HEADER = struct.Struct(">6H")         # id, flags, then the four section counts
_QUESTION = struct.Struct(">HH")       # type, class
_RESOURCE = struct.Struct(">HHIH")     # type, class, TTL, rdata length


@dataclass(slots=True)
class DnsRecord:
    name: bytes
    rrtype: int
    rrclass: int
    ttl: int = 0
    rdata: bytes = b""
    """Raw rdata."""
    value: object = None
    """Decoded rdata: str for names/addresses, list[bytes] for TXT, dict for SRV."""


@dataclass(slots=True)
class DnsMessage:
    id: int = 0
    flags: int = 0
    questions: list[DnsRecord] = field(default_factory=list)
    answers: list[DnsRecord] = field(default_factory=list)
    authorities: list[DnsRecord] = field(default_factory=list)
    additionals: list[DnsRecord] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def is_response(self) -> bool:
        return bool(self.flags & 0x8000)

    @property
    def rcode(self) -> int:
        return self.flags & 0x000F

    @property
    def opcode(self) -> int:
        return (self.flags >> 11) & 0x0F


def read_name(data: bytes, offset: int, budget: list[int] | None = None) -> tuple[bytes, int, str | None]:
    """Decode a (possibly compressed) name at `offset`, as Suricata reads it.

    Returns (dotted name, offset after the name in the original position,
    problem or None). A compression pointer may point anywhere in the
    message, forwards too (a name a resolver reads must not hide from
    dns.query); loops end after MAX_NAME_STEPS labels and pointers. Names
    are kept up to MAX_NAME_BYTES, longer ones are cut there, raising
    dns.name_too_long, and the walk goes on to the name's real end.
    `budget` ([steps left]) bounds the steps of all the names of one
    message together: 256 records of 255-step pointer chains would cost a
    quarter of a million Python steps for one datagram."""
    labels: list[bytes] = []
    total = 0
    steps = 0
    position = offset
    end_after: int | None = None
    problem = None
    size = len(data)
    while True:
        steps += 1
        if steps > MAX_NAME_STEPS:
            # Suricata's LABEL_LIMIT: more than 255 labels and pointers.
            return b".".join(labels), (end_after or position), "dns.too_many_labels"
        if budget is not None:
            budget[0] -= 1
            if budget[0] < 0:
                return b".".join(labels), (end_after or position), "dns.malformed_data"
        if position >= size:
            return b".".join(labels), (end_after or position), "dns.name_truncated"
        length = data[position]
        if length >= 0xC0:
            if position + 1 >= size:
                return b".".join(labels), (end_after or position + 1), "dns.name_truncated"
            target = ((length & 0x3F) << 8) | data[position + 1]
            if target == position:
                # A pointer to itself: Suricata's INFINITE_LOOP once a
                # pointer led there; before any, the name has no end at all.
                if end_after is None:
                    return b".".join(labels), position + 2, "dns.malformed_data"
                return b".".join(labels), end_after, "dns.infinite_loop"
            if end_after is None:
                end_after = position + 2
            position = target
            continue
        if length & 0xC0:
            return b".".join(labels), (end_after or position + 1), "dns.name_bad_label"
        if length == 0:
            return b".".join(labels), (end_after or position + 1), problem
        start = position + 1
        position = start + length
        if position > size:
            return b".".join(labels), (end_after or size), "dns.name_truncated"
        if problem is None:
            # `total`: the text so far, labels and the dots between them.
            dot = 1 if labels else 0
            room = MAX_NAME_BYTES - total - dot
            if length > room:
                if room > 0:
                    labels.append(data[start:start + room])
                problem = "dns.name_too_long"      # cut at exactly MAX_NAME_BYTES
            else:
                labels.append(data[start:position])
                total += dot + length


def _decode_rdata(data: bytes, rrtype: int, start: int, length: int, problems: list[str],
                  budget: list[int]):
    rdata = data[start:start + length]
    try:
        if rrtype == 1 and length == 4:
            # The dotted quad, without building an address object.
            return inet_ntop(AF_INET, rdata)
        if rrtype == 28 and length == 16:
            # As Suricata's EVE: eight groups of four hex digits.
            return ":".join(rdata[i:i + 2].hex() for i in range(0, 16, 2))
        if rrtype in (2, 5, 12):
            name, _, problem = read_name(data[:start + length], start, budget)
            if problem:
                problems.append(problem)
            return name.decode("utf-8", "replace")
        if rrtype == 15 and length >= 3:
            name, _, problem = read_name(data[:start + length], start + 2, budget)
            return name.decode("utf-8", "replace")
        if rrtype == 33 and length >= 7:
            name, _, problem = read_name(data[:start + length], start + 6, budget)
            return {"priority": int.from_bytes(rdata[0:2], "big"),
                    "weight": int.from_bytes(rdata[2:4], "big"),
                    "port": int.from_bytes(rdata[4:6], "big"),
                    "name": name.decode("utf-8", "replace")}
        if rrtype == 16:
            strings, position = [], 0
            while position < len(rdata):
                size = rdata[position]
                strings.append(rdata[position + 1: position + 1 + size])
                position += 1 + size
            return strings
    except ValueError:
        problems.append("dns.rdata_invalid")
    return None


def parse_message(data: bytes) -> DnsMessage:
    message = DnsMessage()
    problems = message.problems
    size = len(data)
    if size < 12:
        problems.append("dns.malformed_data")
        return message
    message.id, message.flags, *counts = _HEADER.unpack_from(data)
    position = 12
    budget = [MAX_MESSAGE_NAME_STEPS]
    sections = (message.questions, message.answers, message.authorities, message.additionals)
    for section_index, (section, count) in enumerate(zip(sections, counts)):
        # A question's fixed part is type and class; a resource record's
        # adds the TTL and the rdata length.
        fixed_size = _QUESTION.size if section_index == 0 else _RESOURCE.size
        for record_index in range(count):
            if record_index >= MAX_RECORDS:
                problems.append("dns.too_many_records")
                return message
            if position >= size:
                problems.append("dns.malformed_data")
                return message
            name, position, problem = read_name(data, position, budget)
            if problem:
                problems.append(problem)
                if budget[0] < 0:
                    return message              # the message's name work is spent
            if position + fixed_size > size:
                problems.append("dns.malformed_data")
                return message
            if section_index == 0:
                rrtype, rrclass = _QUESTION.unpack_from(data, position)
                section.append(DnsRecord(name, rrtype, rrclass))
                position += fixed_size
                continue
            rrtype, rrclass, ttl, length = _RESOURCE.unpack_from(data, position)
            position += fixed_size
            if position + length > size:
                problems.append("dns.malformed_data")
                return message
            value = _decode_rdata(data, rrtype, position, length, problems, budget)
            section.append(DnsRecord(name, rrtype, rrclass, ttl, data[position:position + length], value))
            position += length
    return message


def _rrtype_name(rrtype: int) -> str:
    return RRTYPES.get(rrtype, str(rrtype))


def _text(value: bytes) -> str:
    return value.decode("utf-8", "replace")


def _answers_json(records: list[DnsRecord]) -> list[dict]:
    """EVE entries of a section; a TXT record gives one entry per string,
    as Suricata logs them."""
    out = []
    for record in records:
        entry = {"rrname": _text(record.name), "rrtype": _rrtype_name(record.rrtype),
                 "ttl": record.ttl}
        value = record.value
        if isinstance(value, str):
            entry["rdata"] = value
        elif isinstance(value, dict):
            entry["srv"] = value
        elif isinstance(value, list):
            out.extend(dict(entry, rdata=_text(text)) for text in value)
            continue
        out.append(entry)
    return out


def message_record(message: DnsMessage) -> dict:
    """Suricata EVE dns (version 3) object for one message."""
    flags = message.flags
    record: dict = {"version": 3, "type": "response" if message.is_response else "request",
                    "id": message.id, "flags": f"{flags:x}"}
    if message.is_response:
        record["qr"] = True
    if flags & 0x0400:
        record["aa"] = True
    if flags & 0x0200:
        record["tc"] = True
    if flags & 0x0100:
        record["rd"] = True
    if flags & 0x0080:
        record["ra"] = True
    if flags & 0x0040:
        record["z"] = True
    record["opcode"] = message.opcode
    record["rcode"] = RCODES.get(message.rcode, str(message.rcode))
    record["queries"] = [{"rrname": _text(q.name), "rrtype": _rrtype_name(q.rrtype)}
                         for q in message.questions]
    if message.answers:
        record["answers"] = _answers_json(message.answers)
    if message.authorities:
        record["authorities"] = _answers_json(message.authorities)
    return record


# Record types whose data is a domain name: NS, CNAME, PTR, MX, SRV.
_NAME_RDATA = frozenset({2, 5, 12, 15, 33})


def _fill(tx: Tx, message: DnsMessage, queries: list[bytes]) -> None:
    """The buffers and events a request and a response both have: query and
    answer names (Suricata 8's dns.query.name / dns.answer.name, either
    direction), opcode and rcode (one byte each, for dns.opcode / dns.rcode),
    and the app-layer events Suricata's DNS parser puts on a transaction."""
    buffers = tx.buffers
    buffers["dns.query.name"] = queries
    buffers["dns.answer.name"] = [a.name for a in message.answers]
    buffers["dns.authorities.rrname"] = [a.name for a in message.authorities]
    buffers["dns.additionals.rrname"] = [a.name for a in message.additionals]
    buffers["dns.opcode"] = bytes((message.opcode,))
    buffers["dns.rcode"] = bytes((message.rcode,))
    # dns.rrtype (an integer keyword): the query types, two bytes each.
    buffers["dns.rrtype"] = [q.rrtype.to_bytes(2, "big") for q in message.questions]
    if message.is_response:
        # dns.response.rrname: every name a response carries, the records'
        # own and those their data holds (CNAME, NS, PTR, MX, SRV targets).
        names = list(queries)
        for section in (message.answers, message.authorities, message.additionals):
            for record in section:
                names.append(record.name)
                value = record.value
                if isinstance(value, dict):
                    value = value.get("name")
                if isinstance(value, str) and record.rrtype in _NAME_RDATA:
                    names.append(value.encode("utf-8", "surrogateescape"))
        buffers["dns.response.rrname"] = names
    events = ()
    if message.flags & 0x0040:
        events += ("dns.z_flag_set",)       # the reserved Z bit must be zero
    if "dns.malformed_data" in message.problems:
        events += ("dns.malformed_data",)
    if "dns.name_too_long" in message.problems:
        events += ("dns.name_too_long",)       # a name cut at MAX_NAME_BYTES
    if "dns.infinite_loop" in message.problems:
        events += ("dns.infinite_loop",)
    if "dns.too_many_labels" in message.problems:
        events += ("dns.too_many_labels",)
    if message.opcode >= 7:
        events += ("dns.invalid_opcode",)     # as Suricata: 7..15 are unassigned
    tx.events = events


class DnsParser:
    """DNS over UDP (one message per feed) or TCP (length-prefixed stream)."""

    __slots__ = ("events", "tcp", "buffers", "open", "next_tx_id", "stopped")

    def __init__(self, config=None, tcp: bool = False) -> None:
        self.events: list[str] = []
        self.tcp = bool(tcp)         # TCP: messages carry a 2-byte length prefix
        self.buffers = {True: bytearray(), False: bytearray()}
        self.open: dict[int, tuple[Tx, dict]] = {}   # DNS id -> (tx, request record)
        self.next_tx_id = 0
        self.stopped = {True: False, False: False}

    def feed(self, data: bytes, to_server: bool, gap: bool = False) -> list[Tx]:
        if not self.tcp:
            return self._on_message(data, to_server)
        if gap:
            # After loss we do not know where a message starts.
            self.events.append("dns.gap")
            self.stopped[to_server] = True
            self.buffers[to_server] = bytearray()
        if self.stopped[to_server]:
            return []
        buffer = self.buffers[to_server]
        buffer += data
        out: list[Tx] = []
        position = 0
        # Consumed bytes are removed once at the end: deleting per message
        # would make many small messages in one chunk quadratic.
        while len(buffer) - position >= 2:
            length = int.from_bytes(buffer[position:position + 2], "big")
            if len(buffer) - position < 2 + length:
                break
            message = bytes(buffer[position + 2:position + 2 + length])
            position += 2 + length
            out.extend(self._on_message(message, to_server))
        del buffer[:position]
        return out

    def finish(self) -> list[Tx]:
        # Unanswered queries were logged when they arrived; nothing new.
        for tx, _record in self.open.values():
            tx.complete = True
        self.open.clear()
        return []

    @property
    def buffered_bytes(self) -> int:
        return len(self.buffers[True]) + len(self.buffers[False])

    def _on_message(self, data: bytes, to_server: bool) -> list[Tx]:
        message = parse_message(data)
        if message.problems:
            self.events.extend(dict.fromkeys(message.problems))
        if len(data) < 12:
            return []
        record = message_record(message)
        queries = [q.name for q in message.questions]
        if not message.is_response:
            tx = Tx(app_proto="dns", tx_id=self.next_tx_id, to_server=to_server)
            self.next_tx_id += 1
            # dns.query is the request's buffer only, as in Suricata.
            tx.buffers["dns.query"] = queries
            _fill(tx, message, queries)
            if not to_server:
                # A server sending a message without the response flag.
                tx.events += ("dns.not_response",)
            if len(self.open) >= MAX_OPEN_QUERIES:
                oldest = next(iter(self.open))
                self.open.pop(oldest)[0].complete = True
            if message.id in self.open:
                self.open.pop(message.id)[0].complete = True
            # Suricata logs each message: the request record now, the
            # response's when it comes (same tx_id).
            tx.record = record
            self.open[message.id] = (tx, record)
            return [tx]
        request, _request_record = self.open.pop(message.id, (None, None))
        if request is None:
            tx_id = self.next_tx_id
            self.next_tx_id += 1
        else:
            tx_id = request.tx_id
            request.complete = True
        # The response is its own Tx object (same id): it carries its own
        # record, and detection's once-per-tx_id rule keeps alerts single.
        tx = Tx(app_proto="dns", tx_id=tx_id, to_server=to_server)
        _fill(tx, message, queries)
        if to_server:
            # A client sending a message with the response flag.
            tx.events += ("dns.not_request",)
        tx.record = record
        tx.complete = True
        return [tx]
