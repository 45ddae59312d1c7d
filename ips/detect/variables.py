"""Address and port variables and the matchers built from them.

Suricata rule headers name addresses and ports as literals, CIDR blocks,
ranges, `$VARIABLES`, negations and nested `[...]` groups. This module turns
such a spec into a compact matcher once, at rule load time, so the per-packet
check is a few integer comparisons.

Semantics (Suricata's): a group matches when the value is in at least one
positive element and in no negated element; a group made only of negations
matches everything except them. `any` matches everything.
"""
from __future__ import annotations

import ipaddress
import socket
from bisect import bisect_right

# Suricata's suricata.yaml defaults. HOME_NET and EXTERNAL_NET come from
# ips.config.Config so the appliance can set them.
DEFAULT_ADDRESS_VARS = {
    "HTTP_SERVERS": "$HOME_NET", "SMTP_SERVERS": "$HOME_NET", "SQL_SERVERS": "$HOME_NET",
    "DNS_SERVERS": "$HOME_NET", "TELNET_SERVERS": "$HOME_NET", "AIM_SERVERS": "$EXTERNAL_NET",
    "DC_SERVERS": "$HOME_NET", "DNP3_SERVER": "$HOME_NET", "DNP3_CLIENT": "$HOME_NET",
    "MODBUS_CLIENT": "$HOME_NET", "MODBUS_SERVER": "$HOME_NET", "ENIP_CLIENT": "$HOME_NET",
    "ENIP_SERVER": "$HOME_NET",
}
DEFAULT_PORT_VARS = {
    "HTTP_PORTS": "80", "SHELLCODE_PORTS": "!80", "ORACLE_PORTS": "1521", "SSH_PORTS": "22",
    "DNP3_PORTS": "20000", "MODBUS_PORTS": "502", "FILE_DATA_PORTS": "[$HTTP_PORTS,110,143]",
    "FTP_PORTS": "21", "GENEVE_PORTS": "6081", "VXLAN_PORTS": "4789", "TEREDO_PORTS": "3544",
}

_MAX_DEPTH = 16  # variable and group nesting bound: a self-referencing variable must not loop


class VariableError(ValueError):
    """An address or port spec that cannot be resolved."""


def split_group(text: str, keep_empty: bool = False) -> list[str]:
    """Split the inside of a `[...]` list at top-level commas (empty items
    dropped unless `keep_empty`: a caller may want to report a stray comma)."""
    items, depth, start = [], 0, 0
    for index, char in enumerate(text):
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
            if depth < 0:
                raise VariableError(f"unbalanced ']' in {text!r}")
        elif char == "," and depth == 0:
            items.append(text[start:index].strip())
            start = index + 1
    if depth != 0:
        raise VariableError(f"unbalanced '[' in {text!r}")
    items.append(text[start:].strip())
    return items if keep_empty else [item for item in items if item]


class AddressMatcher:
    """Matches an address (version, integer) against a resolved address group.

    IP-reputation rules (Spamhaus DROP, Tor, compromised hosts) carry
    hundreds of ranges each; a linear scan per packet was the largest single
    cost of header-only rules. Ranges are merged and sorted per IP version
    once, and each match is a binary search.
    """

    __slots__ = ("any", "positive", "negative", "_positive_index", "_negative_index")

    def __init__(self, positive: list, negative: list, any_: bool) -> None:
        # Each range is (version, low, high) as integers.
        self.any = any_ and not negative
        self.positive = positive
        self.negative = negative
        self._positive_index = _range_index(positive)
        self._negative_index = _range_index(negative)

    def match(self, version: int, value: int) -> bool:
        if self.any:
            return True
        if self.negative and _in_ranges(self._negative_index, version, value):
            return False
        if not self.positive:
            return True
        return _in_ranges(self._positive_index, version, value)


def _range_index(ranges: list) -> dict:
    """{version: (lows, highs)} of merged, sorted ranges."""
    by_version: dict[int, list] = {}
    for version, low, high in ranges:
        by_version.setdefault(version, []).append((low, high))
    index = {}
    for version, items in by_version.items():
        items.sort()
        merged: list[list[int]] = []
        for low, high in items:
            if merged and low <= merged[-1][1] + 1:
                if high > merged[-1][1]:
                    merged[-1][1] = high
            else:
                merged.append([low, high])
        index[version] = ([m[0] for m in merged], [m[1] for m in merged])
    return index


def _in_ranges(index: dict, version: int, value: int) -> bool:
    entry = index.get(version)
    if entry is None:
        return False
    lows, highs = entry
    position = bisect_right(lows, value) - 1
    return position >= 0 and value <= highs[position]


class PortMatcher:
    """Matches a port number against a resolved port group."""

    __slots__ = ("any", "positive", "negative")

    def __init__(self, positive: list, negative: list, any_: bool) -> None:
        self.any = any_ and not negative
        self.positive = positive
        self.negative = negative

    def match(self, port: int) -> bool:
        if self.any:
            return True
        for low, high in self.negative:
            if low <= port <= high:
                return False
        if not self.positive:
            return True
        for low, high in self.positive:
            if low <= port <= high:
                return True
        return False

    def single_ports(self) -> list[int] | None:
        """The explicit ports when the group is a short positive list (for bucketing)."""
        if self.any or self.negative or not self.positive:
            return None
        ports = []
        for low, high in self.positive:
            if high - low > 64:
                return None
            ports.extend(range(low, high + 1))
        return ports


class Variables:
    """Resolves `$NAME` references in addresses and ports."""

    __slots__ = ("addresses", "ports", "_address_cache", "_port_cache")

    def __init__(self, home_net: str, external_net: str,
                 addresses: dict[str, str] | None = None, ports: dict[str, str] | None = None) -> None:
        self.addresses = dict(DEFAULT_ADDRESS_VARS)
        self.addresses["HOME_NET"] = home_net
        self.addresses["EXTERNAL_NET"] = external_net
        self.addresses.update(addresses or {})
        self.ports = dict(DEFAULT_PORT_VARS)
        self.ports.update(ports or {})
        self._address_cache: dict[str, AddressMatcher] = {}
        self._port_cache: dict[str, PortMatcher] = {}

    @classmethod
    def from_config(cls, config) -> "Variables":
        extra = getattr(config, "extra", {}) or {}
        addresses = {k.split(".")[-1]: v for k, v in extra.items()
                     if k.startswith("vars.address-groups.")}
        ports = {k.split(".")[-1]: v for k, v in extra.items() if k.startswith("vars.port-groups.")}
        return cls(config.home_net, config.external_net, addresses, ports)

    # -- addresses -------------------------------------------------------
    def address(self, spec: str) -> AddressMatcher:
        spec = spec.strip()
        cached = self._address_cache.get(spec)
        if cached is None:
            positive, negative, any_ = [], [], False
            any_ = self._address_into(spec, False, positive, negative, 0)
            cached = AddressMatcher(positive, negative, any_)
            self._address_cache[spec] = cached
        return cached

    def _address_into(self, spec: str, negated: bool, positive: list, negative: list, depth: int) -> bool:
        """Add the ranges of `spec` to positive/negative; return True if it contained a positive `any`."""
        if depth > _MAX_DEPTH:
            raise VariableError(f"address nesting too deep at {spec!r}")
        spec = spec.strip()
        if not spec:
            raise VariableError("empty address")
        if spec.startswith("!"):
            return self._address_into(spec[1:], not negated, positive, negative, depth + 1)
        if spec.startswith("["):
            if not spec.endswith("]"):
                raise VariableError(f"unbalanced address group {spec!r}")
            inner_pos: list = []
            inner_neg: list = []
            inner_any = False
            for item in split_group(spec[1:-1]):
                inner_any |= self._address_into(item, False, inner_pos, inner_neg, depth + 1)
            if negated:
                # !(A and not B) is approximated as (not A) or B; exact for the
                # plain lists rules use (`![a,b]`).
                if inner_any and not inner_neg:
                    raise VariableError(f"address group negates everything: {spec!r}")
                negative.extend(inner_pos)
                positive.extend(inner_neg)
                return False
            positive.extend(inner_pos)
            negative.extend(inner_neg)
            return inner_any or (not inner_pos and not inner_neg)
        if spec.startswith("$"):
            name = spec[1:]
            value = self.addresses.get(name)
            if value is None:
                raise VariableError(f"undefined address variable ${name}")
            return self._address_into(value, negated, positive, negative, depth + 1)
        if spec.lower() == "any":
            if negated:
                raise VariableError("!any matches nothing")
            return True
        ranges = _parse_address(spec)
        (negative if negated else positive).append(ranges)
        return False

    # -- ports -----------------------------------------------------------
    def port(self, spec: str) -> PortMatcher:
        spec = spec.strip()
        cached = self._port_cache.get(spec)
        if cached is None:
            positive: list = []
            negative: list = []
            any_ = self._port_into(spec, False, positive, negative, 0)
            cached = PortMatcher(positive, negative, any_)
            self._port_cache[spec] = cached
        return cached

    def _port_into(self, spec: str, negated: bool, positive: list, negative: list, depth: int) -> bool:
        if depth > _MAX_DEPTH:
            raise VariableError(f"port nesting too deep at {spec!r}")
        spec = spec.strip()
        if not spec:
            raise VariableError("empty port")
        if spec.startswith("!"):
            return self._port_into(spec[1:], not negated, positive, negative, depth + 1)
        if spec.startswith("["):
            if not spec.endswith("]"):
                raise VariableError(f"unbalanced port group {spec!r}")
            inner_pos: list = []
            inner_neg: list = []
            inner_any = False
            for item in split_group(spec[1:-1]):
                inner_any |= self._port_into(item, False, inner_pos, inner_neg, depth + 1)
            if negated:
                negative.extend(inner_pos)
                positive.extend(inner_neg)
                return False
            positive.extend(inner_pos)
            negative.extend(inner_neg)
            return inner_any
        if spec.startswith("$"):
            value = self.ports.get(spec[1:])
            if value is None:
                raise VariableError(f"undefined port variable {spec}")
            return self._port_into(value, negated, positive, negative, depth + 1)
        if spec.lower() == "any":
            if negated:
                raise VariableError("!any matches no port")
            return True
        if ":" in spec:
            low_text, high_text = spec.split(":", 1)
            low = _port_number(low_text) if low_text else 0
            high = _port_number(high_text) if high_text else 65535
            if low > high:
                raise VariableError(f"port range {spec!r} is reversed")
        else:
            low = high = _port_number(spec)
        (negative if negated else positive).append((low, high))
        return False


def _port_number(text: str) -> int:
    text = text.strip()
    if not text.isdigit() or int(text) > 65535:
        raise VariableError(f"bad port {text!r}")
    return int(text)


def _parse_address(text: str) -> tuple[int, int, int]:
    """One literal address, CIDR block or `a-b` range to (version, low, high)."""
    try:
        if "-" in text and "/" not in text:
            low_text, high_text = text.split("-", 1)
            low, high = ipaddress.ip_address(low_text.strip()), ipaddress.ip_address(high_text.strip())
            if low.version != high.version or int(low) > int(high):
                raise VariableError(f"bad address range {text!r}")
            return (low.version, int(low), int(high))
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise VariableError(f"bad address {text!r}") from None
    return (network.version, int(network.network_address), int(network.broadcast_address))


_ADDRESS_CACHE: dict = {}
_ADDRESS_CACHE_MAX = 65536


def address_key(address: str | None) -> tuple[int, int] | None:
    """(version, integer) for a packet address string; None when it does not parse.

    Packets repeat the same few addresses; parsing with `ipaddress` on every
    packet cost more than the rest of the header checks, so results are
    cached (bounded: the cache is dropped when full, hostile address churn
    costs one re-parse per address).
    """
    if address is None:
        return None
    key = _ADDRESS_CACHE.get(address)
    if key is not None:
        return key
    try:
        if ":" in address:
            key = (6, int.from_bytes(socket.inet_pton(socket.AF_INET6, address), "big"))
        else:
            key = (4, int.from_bytes(socket.inet_aton(address), "big"))
    except (OSError, ValueError):
        return None
    if len(_ADDRESS_CACHE) >= _ADDRESS_CACHE_MAX:
        _ADDRESS_CACHE.clear()
    _ADDRESS_CACHE[address] = key
    return key
