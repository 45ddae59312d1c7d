"""Header keywords checked on the decoded packet: dsize, flags, ttl, itype, ...

Each check is a small object with `match(pkt) -> bool`. They run before any
payload work because they cost a comparison or two.
"""
from __future__ import annotations

import re

from ips.packet import LINKTYPE_PSEUDO

from .verify import UintCheck


class _FieldCheck:
    __slots__ = ("name", "compare")

    def __init__(self, name: str, compare) -> None:
        self.name = name
        self.compare = compare

    def match(self, pkt) -> bool:
        value = READERS[self.name](pkt)
        if value is None:
            return False
        if self.name == "dsize" and not value and getattr(self.compare, "mode", "") == "!":
            # Suricata does not match `dsize:!N` on packets without payload
            # (suricata-verify test-dsize-values expects exactly this).
            return False
        return self.compare(value)


def _icmp_field(start: int):
    def read(pkt):
        if pkt.proto not in (1, 58) or pkt.icmp_type not in (0, 8, 13, 14, 15, 16, 17, 18, 128, 129):
            return None
        offset = pkt.l4_offset + start
        data = pkt.data
        if offset + 2 > len(data):
            return None
        return int.from_bytes(data[offset:offset + 2], "big")
    return read


_FLAG_BITS = {"F": 1, "S": 2, "R": 4, "P": 8, "A": 16, "U": 32, "E": 64, "C": 128,
              "1": 128, "2": 64}


class Flags:
    """`flags:[+*!]FSRPAUCE0[,mask]`."""

    __slots__ = ("modifier", "bits", "ignore")

    def __init__(self, value: str) -> None:
        parts = value.split(",")
        spec = parts[0].strip()
        self.modifier = ""
        while spec and spec[0] in "+*!":
            self.modifier = spec[0]
            spec = spec[1:]
        if spec and spec[-1] in "+*!":
            self.modifier = spec[-1]
            spec = spec[:-1]
        self.bits = 0
        for letter in spec.upper():
            if letter == "0":
                continue
            if letter not in _FLAG_BITS:
                raise ValueError(f"unknown tcp flag {letter!r}")
            self.bits |= _FLAG_BITS[letter]
        self.ignore = 0
        if len(parts) > 1:
            for letter in parts[1].strip().upper():
                if letter not in _FLAG_BITS:
                    raise ValueError(f"unknown tcp flag {letter!r} in mask")
                self.ignore |= _FLAG_BITS[letter]

    def match(self, pkt) -> bool:
        if pkt.proto != 6:
            return False
        flags = pkt.tcp_flags & ~self.ignore & 0xFF
        if self.modifier == "+":
            return flags & self.bits == self.bits
        if self.modifier == "*":
            return bool(flags & self.bits)
        if self.modifier == "!":
            # Suricata's FlagsMatch: not *all* of them set (!AP matches a bare ACK).
            return (flags & self.bits) != self.bits if self.bits else flags != 0
        return flags == self.bits


class SameIp:
    __slots__ = ()

    def match(self, pkt) -> bool:
        return pkt.src is not None and pkt.src == pkt.dst


class Fragbits:
    """`fragbits:[+*!]MDR`: more fragments, don't fragment, reserved (IPv4)."""

    __slots__ = ("modifier", "bits")

    def __init__(self, value: str) -> None:
        spec = value.strip()
        self.modifier = ""
        if spec and spec[0] in "+*!":
            self.modifier, spec = spec[0], spec[1:]
        self.bits = 0
        for letter in spec.upper():
            bit = {"M": 0x2000, "D": 0x4000, "R": 0x8000}.get(letter)
            if bit is None:
                raise ValueError(f"unknown fragbit {letter!r}")
            self.bits |= bit

    def match(self, pkt) -> bool:
        if pkt.ip_version != 4:
            return False
        offset = pkt.ip_offset + 6
        if offset + 2 > len(pkt.data):
            return False
        flags = int.from_bytes(pkt.data[offset:offset + 2], "big") & 0xE000
        # Suricata 7's FragBitsMatch: "+" wants another bit set besides
        # them, "!" that not all of them are set.
        if self.modifier == "+":
            return flags & self.bits == self.bits and flags != self.bits
        if self.modifier == "*":
            return bool(flags & self.bits)
        if self.modifier == "!":
            return flags & self.bits != self.bits
        return flags == self.bits


_IP_PROTO = re.compile(r"^\s*([<>!]?)\s*(\w+)\s*$")
_PROTO_NAMES = {"icmp": 1, "igmp": 2, "tcp": 6, "udp": 17, "ipv6": 41, "gre": 47, "esp": 50,
                "ah": 51, "ipv6-icmp": 58, "icmpv6": 58, "sctp": 132, "pim": 103}


def _read_dsize(pkt):
    if pkt.linktype == LINKTYPE_PSEUDO:
        # The flow-end pseudo packet (its payload is the stream's tail):
        # Suricata's dsize never matches one.
        return None
    return len(pkt.payload)


def _read_ttl(pkt):
    return pkt.ttl if pkt.ip_version else None


def _read_itype(pkt):
    return pkt.icmp_type if pkt.icmp_type >= 0 else None


def _read_icode(pkt):
    return pkt.icmp_code if pkt.icmp_code >= 0 else None


def _read_ack(pkt):
    return pkt.ack if pkt.proto == 6 else None


def _read_seq(pkt):
    return pkt.seq if pkt.proto == 6 else None


def _read_window(pkt):
    return pkt.window if pkt.proto == 6 else None


def _read_ip_proto(pkt):
    return pkt.proto if pkt.ip_version else None


def _read_mss(pkt):
    """The TCP MSS option's value, None without one (Suricata's tcp.mss)."""
    if pkt.proto != 6:
        return None
    options = pkt.tcp_options
    position, end = 0, len(options)
    while position < end:
        kind = options[position]
        if kind == 0:
            return None
        if kind == 1:
            position += 1
            continue
        if position + 1 >= end or options[position + 1] < 2:
            return None
        length = options[position + 1]
        if kind == 2:
            return int.from_bytes(options[position + 2:position + 4], "big") \
                if length == 4 and position + 4 <= end else None
        position += length
    return None


# ipopts names (Suricata's detect-ipopts.c) and their IPv4 option types.
IP_OPTIONS = {"eol": 0, "nop": 1, "rr": 7, "ts": 68, "sec": 130, "lsrr": 131, "esec": 133,
              "satid": 136, "ssrr": 137}


def _ipv4_option_types(pkt) -> set[int]:
    """The option types in an IPv4 header, up to the end-of-list option."""
    found = set()
    data = pkt.data
    position, end = pkt.ip_offset + 20, min(pkt.l4_offset, len(data))
    while position < end:
        kind = data[position]
        found.add(kind)
        if kind == 0:
            break
        if kind == 1:
            position += 1
            continue
        if position + 1 >= end or data[position + 1] < 2:
            break
        position += data[position + 1]
    return found


class _IpOpts:
    """`ipopts:NAME` (or `any`): the IPv4 header carries that option."""

    __slots__ = ("kind",)

    def __init__(self, value: str) -> None:
        name = value.strip().lower()
        if name != "any" and name not in IP_OPTIONS:
            raise ValueError(f"unknown ipopts {value!r}")
        self.kind = None if name == "any" else IP_OPTIONS[name]

    def match(self, pkt) -> bool:
        if pkt.ip_version != 4 or pkt.l4_offset <= pkt.ip_offset + 20:
            return False
        found = _ipv4_option_types(pkt)
        return bool(found) if self.kind is None else self.kind in found


_read_icmp_id = _icmp_field(4)
_read_icmp_seq = _icmp_field(6)

# Readers by keyword; checks store the keyword, not the function, so a loaded
# ruleset pickles into the on-disk cache.
READERS = {"dsize": _read_dsize, "ttl": _read_ttl, "itype": _read_itype, "icode": _read_icode,
           "ack": _read_ack, "seq": _read_seq, "window": _read_window,
           "icmp_id": _read_icmp_id, "icmp_seq": _read_icmp_seq, "ip_proto": _read_ip_proto,
           "tcp.mss": _read_mss}


class _Compare:
    """ip_proto and window comparisons: =, !, <, >."""

    __slots__ = ("op", "number")

    def __init__(self, op: str, number: int) -> None:
        self.op = op
        self.number = number

    def __call__(self, value: int) -> bool:
        if self.op == "!":
            return value != self.number
        if self.op == "<":
            return value < self.number
        if self.op == ">":
            return value > self.number
        return value == self.number


_STREAM_SIZE = re.compile(r"^\s*(server|client|both|either)\s*,\s*(<=|>=|!=|<|>|=)\s*,\s*([0-9]+)\s*$")
_COMPARE = {"<": int.__lt__, "<=": int.__le__, "=": int.__eq__, "!=": int.__ne__,
            ">=": int.__ge__, ">": int.__gt__}


def _sequence_used(direction, syn_seen: bool) -> int:
    """Sequence space one side of a TCP connection has used so far, as
    Suricata counts it for stream_size (next_seq - isn): 1 for the SYN plus
    the bytes delivered in order."""
    if direction.initialised:
        return 1 + direction.next_offset
    return 1 if syn_seen else 0


class StreamSize:
    """`stream_size:<server|client|both|either>,<op>,<n>` on TCP packets of
    a flow: the client's (or server's) sequence space used so far."""

    __slots__ = ("side", "op", "number")
    name = "stream_size"

    def __init__(self, value: str) -> None:
        match = _STREAM_SIZE.match(value)
        if match is None:
            raise ValueError(f"bad stream_size {value!r} (side,operator,bytes)")
        self.side, op, number = match.groups()
        self.op = _COMPARE[op]
        self.number = int(number)

    def match(self, pkt) -> bool:
        flow = pkt.flow
        if pkt.proto != 6 or flow is None or flow.stream is None:
            return False
        stream = flow.stream
        client = _sequence_used(stream.to_server, bool(flow.tcp_flags_ts & 0x02))
        server = _sequence_used(stream.to_client, bool(flow.tcp_flags_tc & 0x02))
        op, number = self.op, self.number
        if self.side == "client":
            return op(client, number)
        if self.side == "server":
            return op(server, number)
        if self.side == "both":
            return op(client, number) and op(server, number)
        return op(client, number) or op(server, number)


def flowints(flow) -> dict | None:
    """The flow's integer variables (`flowint`), or None without a flow."""
    detect = getattr(flow, "detect", None)
    if detect is None:
        return None
    values = detect.get("flowint")
    if values is None:
        values = detect["flowint"] = {}
    return values


class Flowint:
    """A `flowint` test: compare, isset, notset."""

    __slots__ = ("variable", "op", "operand")
    name = "flowint"

    def __init__(self, variable: str, op: str, operand) -> None:
        self.variable = variable
        self.op = op
        self.operand = operand

    def match(self, pkt) -> bool:
        values = flowints(pkt.flow)
        if values is None:
            return False
        current = values.get(self.variable)
        if self.op == "isset":
            return current is not None
        if self.op in ("notset", "isnotset"):
            return current is None
        # An unset target variable reads as 0 (Suricata's DetectFlowintMatch).
        operand = self.operand if isinstance(self.operand, int) else values.get(self.operand, 0)
        if current is None:
            return False
        return _COMPARE["=" if self.op == "==" else self.op](current, operand)


def apply_flowints(rule, flow) -> None:
    """The rule's `flowint` changes (=, +, -) after it matched, as Suricata
    makes them: unsigned 32-bit arithmetic that wraps, an unset source
    variable reads as 0, `+` on an unset variable sets it, `-` on one
    leaves it unset."""
    values = flowints(flow)
    if values is None:
        return
    for variable, op, operand in rule.flowint_actions:
        amount = operand if isinstance(operand, int) else values.get(operand, 0)
        current = values.get(variable)
        if op == "=":
            values[variable] = amount & 0xFFFFFFFF
        elif op == "+":
            values[variable] = (amount if current is None else current + amount) & 0xFFFFFFFF
        elif current is not None:
            values[variable] = (current - amount) & 0xFFFFFFFF


# The width of each field (Suricata refuses a value the field cannot hold).
_FIELD_MAX = {"dsize": 0xFFFF, "ttl": 0xFF, "itype": 0xFF, "icode": 0xFF, "ack": 0xFFFFFFFF,
              "seq": 0xFFFFFFFF, "icmp_id": 0xFFFF, "icmp_seq": 0xFFFF, "window": 0xFFFF,
              "ip_proto": 0xFF, "tcp.mss": 0xFFFF}


def _in_range(keyword: str, *numbers: int) -> None:
    for number in numbers:
        if not 0 <= number <= _FIELD_MAX[keyword]:
            raise ValueError(f"{keyword} value {number} out of range 0..{_FIELD_MAX[keyword]}")


def build(keyword: str, value: str | None):
    value = (value or "").strip()
    if keyword in ("icmp_id", "icmp_seq") and len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1].strip()                 # Suricata takes icmp_id:"300" too
    if keyword in ("dsize", "ttl", "itype", "icode", "ack", "seq", "icmp_id", "icmp_seq",
                   "window", "tcp.mss"):
        # Suricata 8's integer keywords (window and tcp.mss among them).
        check = UintCheck(value)
        _in_range(keyword, check.low, check.high,
                  *(() if check.mask is None else (check.mask,)))
        return _FieldCheck(keyword, check)
    if keyword == "ipopts":
        return _IpOpts(value)
    if keyword == "ip_proto":
        match = _IP_PROTO.match(value)
        if match is None:
            raise ValueError(f"bad ip_proto {value!r}")
        op, name = match.groups()
        number = int(name) if name.isdigit() else _PROTO_NAMES.get(name.lower())
        if number is None:
            raise ValueError(f"unknown protocol {name!r}")
        _in_range(keyword, number)
        return _FieldCheck(keyword, _Compare(op, number))
    if keyword == "flags":
        if not value:
            raise ValueError("flags needs a value")
        return Flags(value)
    if keyword == "fragbits":
        return Fragbits(value)
    if keyword == "sameip":
        return SameIp()
    if keyword == "stream_size":
        return StreamSize(value)
    raise ValueError(f"{keyword} is not implemented")
