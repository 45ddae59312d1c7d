"""Suricata rule language: text → `Rule`.

`parse_rule(text, variables, classifications)` returns a `Rule` or raises
`RuleError`. A `RuleError` is either a *syntax* error (the line is not a rule
at all) or a *refusal* (valid Suricata, but a keyword or form this engine
does not implement). Refused rules are skipped, never loaded in a weakened
form: dropping a keyword could turn a precise rule into a noisy one, or a
blocking rule into one that blocks the wrong traffic.

Layout of a parsed rule:
* header: action, protocol, address/port matchers, direction;
* `buffers`: ordered {buffer name: [matchers]} — "payload" is the packet or
  reassembled stream, the packet header buffers (`tcp.hdr`, ...) are sliced
  from the packet, other names are Suricata sticky buffers filled by the
  app-layer (`http.uri`, `dns.query`, ...);
* `packet_checks`: header keywords (dsize, flags, ttl, itype, ...);
* flow, flowbits, threshold, and informational fields.
"""
from __future__ import annotations

import re
import warnings

from ips import event_names
from ips.applayer import DETECTED_PROTOCOLS, WITHOUT_BUFFERS

from . import packet_buffers, transforms, verify
from .variables import VariableError, Variables

ACTIONS = {"alert": "alert", "drop": "drop", "reject": "reject", "rejectsrc": "reject",
           "rejectdst": "reject", "rejectboth": "reject", "pass": "pass"}

# Transport protocols a rule header may name, and the IP protocol numbers.
TRANSPORTS = {"ip": None, "pkthdr": None, "tcp": {6}, "udp": {17}, "icmp": {1, 58}, "icmpv4": {1},
              "icmpv6": {58}, "tcp-pkt": {6}, "tcp-stream": {6}, "sctp": {132}}
# App-layer protocols Suricata knows, with the transports they run on. A rule
# on one of these only fires once the flow's app_proto is detected as it.
APP_PROTOCOLS = {
    "http": {6}, "http1": {6}, "http2": {6}, "tls": {6}, "ssl": {6}, "dns": {6, 17},
    "ssh": {6}, "smtp": {6}, "ftp": {6}, "ftp-data": {6}, "smb": {6}, "dcerpc": {6, 17},
    "dhcp": {17}, "ntp": {17}, "snmp": {17}, "tftp": {17}, "sip": {6, 17}, "krb5": {6, 17},
    "nfs": {6, 17}, "ikev2": {17}, "ike": {17}, "mqtt": {6}, "modbus": {6}, "dnp3": {6},
    "enip": {6, 17}, "rdp": {6}, "rfb": {6}, "telnet": {6}, "imap": {6}, "pop3": {6},
    "quic": {17}, "bittorrent-dht": {17}, "pgsql": {6}, "websocket": {6}, "ldap": {6, 17},
    "mdns": {17}, "ssdp": {17},
}
APP_PROTO_ALIASES = {"http1": "http", "ssl": "tls", "ike": "ikev2"}
# Header protocols that name an IP version: any transport over it.
IP_VERSIONS = {"ipv4": 4, "ip4": 4, "ipv6": 6, "ip6": 6}

# Sticky buffers: canonical name → (app protocol, direction) with direction
# "ts" (to server), "tc" (to client) or None (either).
BUFFERS = {
    "http.uri": ("http", "ts"), "http.uri.raw": ("http", "ts"), "http.method": ("http", "ts"),
    "http.header": ("http", None), "http.header.raw": ("http", None),
    "http.header_names": ("http", None), "http.host": ("http", "ts"),
    "http.host.raw": ("http", "ts"), "http.user_agent": ("http", "ts"),
    "http.cookie": ("http", None), "http.request_body": ("http", "ts"),
    "http.stat_code": ("http", "tc"), "http.stat_msg": ("http", "tc"),
    "http.server": ("http", "tc"), "http.location": ("http", "tc"),
    "http.response_body": ("http", "tc"), "http.request_line": ("http", "ts"),
    "http.response_line": ("http", "tc"), "http.protocol": ("http", None),
    "http.request_header": ("http", "ts"), "http.response_header": ("http", "tc"),
    "http.content_type": ("http", None), "http.content_len": ("http", None),
    "http.start": ("http", None), "http.accept": ("http", "ts"),
    "http.accept_enc": ("http", "ts"), "http.accept_lang": ("http", "ts"),
    "http.referer": ("http", "ts"), "http.connection": ("http", None),
    "file.data": (None, None),
    "dns.query": ("dns", "ts"),
    "dns.query.name": ("dns", None), "dns.answer.name": ("dns", None),
    "dns.authorities.rrname": ("dns", None), "dns.additionals.rrname": ("dns", None),
    "dns.response.rrname": ("dns", "tc"), "dns.rrtype": ("dns", None),
    "dns.opcode": ("dns", None), "dns.rcode": ("dns", None),   # integer keywords
    "tls.version": ("tls", None),
    "base64_data": (None, None),     # what base64_decode decoded (moved into it)
    "tls.sni": ("tls", "ts"), "tls.cert_subject": ("tls", "tc"), "tls.cert_issuer": ("tls", "tc"),
    "tls.cert_serial": ("tls", "tc"), "tls.cert_fingerprint": ("tls", "tc"),
    "tls.certs": ("tls", "tc"), "ja3.hash": ("tls", "ts"), "ja3.string": ("tls", "ts"),
    "ja3s.hash": ("tls", "tc"), "ja3s.string": ("tls", "tc"), "ja4.hash": ("tls", "ts"),
    "tls.subjectaltname": ("tls", "tc"), "tls.cert_chain_len": ("tls", "tc"),
    "tls.alpn": ("tls", "ts"),      # the ClientHello's ALPN protocols (a multi-buffer)
    "mqtt.connect.clientid": ("mqtt", "ts"), "mqtt.connect.username": ("mqtt", "ts"),
    "mqtt.connect.password": ("mqtt", "ts"), "mqtt.connect.willtopic": ("mqtt", "ts"),
    "mqtt.connect.willmessage": ("mqtt", "ts"), "mqtt.publish.topic": ("mqtt", None),
    "mqtt.publish.message": ("mqtt", None), "mqtt.subscribe.topic": ("mqtt", "ts"),
    "mqtt.unsubscribe.topic": ("mqtt", "ts"),
    "mqtt.protocol_version": ("mqtt", "ts"), "mqtt.type": ("mqtt", None),   # integer / enum
    "mdns.queries.rrname": ("mdns", None), "mdns.answers.rrname": ("mdns", None),
    "mdns.authorities.rrname": ("mdns", None), "mdns.additionals.rrname": ("mdns", None),
    "tls.random": ("tls", None), "tls.random_time": ("tls", None),
    "tls.random_bytes": ("tls", None),
    "ssh.proto": ("ssh", None), "ssh.software": ("ssh", None),
    # ReefGuard's own (Suricata 7 has no telnet parser): a login attempt's
    # user name and password and the lines typed after a login, as the
    # server reads them (telnet commands removed, line editing applied).
    "telnet.login": ("telnet", "ts"), "telnet.password": ("telnet", "ts"),
    "telnet.command": ("telnet", "ts"),
}
# Older sticky-buffer spellings.
STICKY_ALIASES = {
    "dns_query": "dns.query", "dns.queries.rrname": "dns.query.name",
    "dns.answers.rrname": "dns.answer.name", "tls_sni": "tls.sni", "tls_cert_subject": "tls.cert_subject",
    "tls_cert_issuer": "tls.cert_issuer", "tls_cert_serial": "tls.cert_serial",
    "tls_cert_fingerprint": "tls.cert_fingerprint", "ja3_hash": "ja3.hash",
    "ja3_string": "ja3.string", "ja3s_hash": "ja3s.hash", "ja3s_string": "ja3s.string",
    "file_data": "file.data", "ssh_proto": "ssh.proto", "ssh_software": "ssh.software",
    "http_request_line": "http.request_line", "http_response_line": "http.response_line",
    "http_header_names": "http.header_names", "http_accept": "http.accept",
    "http_accept_enc": "http.accept_enc", "http_accept_lang": "http.accept_lang",
    "http_referer": "http.referer", "http_connection": "http.connection",
    "http_content_type": "http.content_type", "http_content_len": "http.content_len",
    "http_start": "http.start", "http_protocol": "http.protocol",
}
# Content modifiers that move the previous content into a buffer.
CONTENT_MODIFIERS = {
    "http_uri": "http.uri", "http_raw_uri": "http.uri.raw", "http_method": "http.method",
    "http_header": "http.header", "http_raw_header": "http.header.raw",
    "http_cookie": "http.cookie", "http_user_agent": "http.user_agent",
    "http_host": "http.host", "http_raw_host": "http.host.raw",
    "http_client_body": "http.request_body", "http_stat_code": "http.stat_code",
    "http_stat_msg": "http.stat_msg", "http_server_body": "http.response_body",
}
# pcre modifier letters that select a buffer.
PCRE_BUFFERS = {
    "U": "http.uri", "I": "http.uri.raw", "P": "http.request_body", "Q": "file.data",
    "H": "http.header", "D": "http.header.raw", "M": "http.method", "C": "http.cookie",
    "S": "http.stat_code", "Y": "http.stat_msg", "V": "http.user_agent", "W": "http.host",
    "Z": "http.host.raw",
}
PAYLOAD = "payload"

# Keywords that only carry information.
INFORMATIONAL = {"reference", "created_at", "updated_at"}
# Keywords accepted and deliberately ignored, with why.
IGNORED = {
    "tag": "tagging extra packets for logging is not implemented; the alert itself is unaffected",
    "rawbytes": "no normalised payload exists, so raw and normal bytes are the same",
    "prefilter": "Suricata's hint to prefilter a rule without content on another "
                 "keyword; every header-only rule here is already checked by its header",
}
# Known Suricata keywords this engine refuses (reported by name).
TRANSFORMS = {"header_lowercase", "strip_pseudo_headers", "from_base64"}


class RuleError(ValueError):
    """A rule that is not loaded: `syntax` True when the line does not parse at all."""

    def __init__(self, reason: str, keyword: str | None = None, syntax: bool = False,
                 detail: str = "") -> None:
        super().__init__(f"{reason}{': ' + keyword if keyword else ''}{' (' + detail + ')' if detail else ''}")
        self.reason = reason
        self.keyword = keyword
        self.syntax = syntax
        self.detail = detail


class Rule:
    """One loaded signature."""

    __slots__ = (
        "text", "file", "line", "action", "protocol", "transports", "app_proto", "packet_only",
        "stream_only", "source", "source_ports", "direction", "destination", "destination_ports",
        "sid", "gid", "rev", "msg", "classtype", "category", "priority", "metadata", "references",
        "target", "buffers", "packet_checks", "flow_established", "flow_to_server",
        "flow_stateless", "flowbit_checks", "flowbit_actions", "xbit_checks", "xbit_actions",
        "flowint_actions", "noalert", "bypass",
        "threshold", "detection_filter", "app_layer_protocol", "fast_pattern", "direction_hint",
        "order", "tx_buffers", "index", "packet_events", "tx_events", "ip_version",
        "packet_buffers",
    )

    def __init__(self) -> None:
        self.text = ""
        self.file = ""
        self.line = 0
        self.action = "alert"
        self.protocol = "ip"
        self.transports = None         # set of IP protocol numbers, None = any
        self.ip_version = 0            # 4 or 6 for an ipv4/ipv6 rule, 0 = either
        self.app_proto = None          # required flow app_proto, if any
        self.packet_only = False       # tcp-pkt / flow:no_stream / dsize
        self.stream_only = False       # tcp-stream / flow:only_stream
        self.source = self.destination = None
        self.source_ports = self.destination_ports = None
        self.direction = "->"
        self.sid = 0
        self.gid = 1
        self.rev = 0
        self.msg = ""
        self.classtype = None
        self.category = ""
        self.priority = 3
        self.metadata: dict[str, list[str]] = {}
        self.references: list[str] = []
        self.target = None
        self.buffers: dict[str, list] = {}
        self.packet_checks: list = []
        self.flow_established = None   # True/False/None
        self.flow_to_server = None     # True/False/None
        self.flow_stateless = False
        self.flowbit_checks: list = []   # (kind, names, combinator)
        self.flowbit_actions: list = []  # (kind, name)
        self.xbit_checks: list = []      # (kind, name, track)
        self.xbit_actions: list = []     # (kind, name, track, expire seconds)
        self.flowint_actions: list = []  # (name, "=" / "+" / "-", number or variable name)
        self.noalert = False
        self.bypass = False
        self.threshold = None
        self.detection_filter = None
        self.app_layer_protocol = None   # (negated, name)
        self.fast_pattern = None          # (buffer, Content)
        self.direction_hint = None        # "ts", "tc" or None
        self.order = 0
        self.tx_buffers = ()               # names of app-layer buffers the rule inspects
        self.packet_buffers = ()           # names of packet header buffers it inspects (tcp.hdr)
        self.index = 0
        self.packet_events: tuple = ()     # decode-event / stream-event names the packet must carry
        self.tx_events: tuple = ()         # app-layer-event names the transaction must carry

    @property
    def severity(self) -> int:
        return self.priority

    def __repr__(self) -> str:
        return f"Rule(sid={self.sid}, msg={self.msg!r})"


# -- small text helpers -------------------------------------------------------

# The unrolled form of ((?:\\.|[^;\\])*); — the same language, but runs of
# plain characters are taken in one step instead of one alternation each
# (five times faster on ET Open; this split was a third of parsing a rule).
_OPTION = re.compile(r"([^;\\]*(?:\\.[^;\\]*)*);", re.DOTALL)


def split_options(body: str) -> list[tuple[str, str | None]]:
    """Split `name:value; name; ...` at unescaped ';'.

    Quotes do not protect ';' in Suricata either (a ';' in a value must be
    written `\\;`), and pcre bodies may hold a lone '"'."""
    if "\\" not in body:
        # Without escapes every ';' ends an option: str.split gives what
        # the regex below would.
        options = body.split(";")
        tail = options.pop().strip()
    else:
        options = []
        end = 0
        for match in _OPTION.finditer(body):
            options.append(match.group(1))
            end = match.end()
        tail = body[end:].strip()
    if tail:
        raise RuleError("syntax", syntax=True, detail=f"option not terminated by ';': {tail[:40]!r}")
    result = []
    for option in options:
        option = option.strip()
        if not option:
            continue
        if ":" in option:
            name, value = option.split(":", 1)
            result.append((name.strip().lower(), value.strip()))
        else:
            result.append((option.lower(), None))
    return result


def unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        value = value[1:-1]
    return re.sub(r'\\(["\\;:])', r"\1", value)


# As Suricata: a quote inside a content must be escaped; an unescaped one is
# most often a missing ';' that glued two options into one pattern.
_UNESCAPED_QUOTE = 'unescaped \'"\' inside the content (missing ";"?)'


def parse_content_bytes(text: str) -> bytes:
    """Content string with |hex| blocks and \\-escapes to bytes."""
    if "|" not in text and "\\" not in text:
        if '"' in text:
            raise RuleError("syntax", "content", syntax=True, detail=_UNESCAPED_QUOTE)
        return text.encode("utf-8")
    out = bytearray()
    index = 0
    in_hex = False
    hex_digits = ""
    while index < len(text):
        char = text[index]
        if in_hex:
            if char == "|":
                if hex_digits:
                    raise RuleError("syntax", "content", syntax=True, detail="odd hex digits")
                in_hex = False
            elif char in " \t":
                if hex_digits:
                    raise RuleError("syntax", "content", syntax=True, detail="split hex byte")
            elif char in "0123456789abcdefABCDEF":
                hex_digits += char
                if len(hex_digits) == 2:
                    out.append(int(hex_digits, 16))
                    hex_digits = ""
            else:
                raise RuleError("syntax", "content", syntax=True, detail=f"bad hex {char!r}")
        elif char == "|":
            in_hex = True
        elif char == "\\":
            if index + 1 >= len(text):
                raise RuleError("syntax", "content", syntax=True, detail="dangling escape")
            out.extend(text[index + 1].encode("latin-1"))
            index += 1
        elif char == '"':
            raise RuleError("syntax", "content", syntax=True, detail=_UNESCAPED_QUOTE)
        else:
            out.extend(char.encode("utf-8"))
        index += 1
    if in_hex:
        raise RuleError("syntax", "content", syntax=True, detail="unterminated hex")
    return bytes(out)


def _int(text: str, keyword: str) -> int:
    try:
        return int(text.strip(), 0)
    except ValueError:
        raise RuleError("syntax", keyword, syntax=True, detail=f"not a number {text!r}") from None


def _int_or_var(text: str, keyword: str, builder: "_Builder"):
    text = text.strip()
    if re.fullmatch(r"-?(?:0[xX][0-9a-fA-F]+|\d+)", text):
        return int(text, 0)
    if text in builder.variables_defined:
        return text
    raise RuleError("syntax", keyword, syntax=True, detail=f"unknown variable {text!r}")


# -- pcre translation ---------------------------------------------------------

_POSIX_CLASSES = {
    "alpha": "a-zA-Z", "digit": "0-9", "alnum": "a-zA-Z0-9", "upper": "A-Z", "lower": "a-z",
    "space": r"\s", "xdigit": "0-9A-Fa-f", "punct": r"!-/:-@\[-`{-~", "print": r"\x20-\x7e",
    "graph": r"\x21-\x7e", "cntrl": r"\x00-\x1f\x7f", "word": r"\w", "blank": r" \t",
}
_PCRE_FLAGS = {"i": re.IGNORECASE, "s": re.DOTALL, "m": re.MULTILINE, "x": re.VERBOSE}


# PCRE escapes with a Python spelling; \h and \v are classes in PCRE (in
# Python \v is one character).
_PCRE_CLASS_ESCAPES = {"h": r"\t \xa0", "v": r"\n\x0b\x0c\r\x85"}
_PCRE_ESCAPES = {"h": r"[\t \xa0]", "H": r"[^\t \xa0]", "v": r"[\n\x0b\x0c\r\x85]",
                 "V": r"[^\n\x0b\x0c\r\x85]", "R": r"(?:\r\n|[\n\x0b\x0c\r\x85])",
                 "N": r"[^\n]", "e": r"\x1b", "z": r"\Z", "Z": r"(?=\n?\Z)"}
# PCRE-only, refused: \K, \G, \X, \C, Unicode properties, recursion,
# callouts, verbs, branch reset, conditionals. Python cannot say them.
_PCRE_REFUSED_ESCAPES = frozenset("KGXCpP")
_PCRE_REFUSED_GROUPS = frozenset("|CR0123456789+&")
_QUANTIFIER = re.compile(r"\{\d+(?:,\d*)?\}")
_DIGITS = re.compile(r"\d{1,3}")
_HEX_ESCAPE = re.compile(r"x(?:\{([0-9a-fA-F]+)\}|([0-9a-fA-F]{1,2}))?")
_NAMED_GROUP = re.compile(r"\(\?(?:P?<([A-Za-z_]\w*)>|'([A-Za-z_]\w*)')")
_REFERENCE = re.compile(r"[gk](?:\{(-?\d+|[A-Za-z_]\w*)\}|<([A-Za-z_]\w*)>|'([A-Za-z_]\w*)'|(-?\d+))")


def translate_pcre(pattern: str, ungreedy: bool = False) -> str:
    """Rewrite PCRE syntax into Python `re` syntax, or raise RuleError.

    One pass that knows whether it is inside a character class, so an
    escape or a `[` means there what PCRE means by it. `ungreedy`: the G
    flag, every quantifier's greediness swapped (whether the pattern matches
    is the same; where the match ends, which relative matches start from,
    is not)."""
    out: list[str] = []
    groups = 0                      # capturing groups opened so far, for \g{-1}
    position, size = 0, len(pattern)
    in_class = False
    while position < size:
        char = pattern[position]
        if char == "\\":
            text, position = _pcre_escape(pattern, position, in_class, groups)
            out.append(text)
        elif in_class:
            if char == "]":
                in_class = False
                out.append(char)
                position += 1
            elif pattern.startswith("[:", position):
                closing = pattern.find(":]", position)
                if closing < 0:
                    raise RuleError("pcre-unsupported", "pcre", detail="unterminated POSIX class")
                out.append(_posix(pattern[position + 2:closing]))
                position = closing + 2
            else:
                out.append(r"\[" if char == "[" else char)   # [ is literal in a PCRE class
                position += 1
        elif char == "[":
            in_class = True
            position += 1
            negated = pattern.startswith("^", position)
            position += negated
            leading = pattern.startswith("]", position)      # a leading ] is literal
            position += leading
            out.append("[" + "^" * negated + r"\]" * leading)
        elif char == "(":
            text, position, opened = _pcre_group(pattern, position)
            groups += opened
            out.append(text)
        else:
            quantifier = char if char in "*+?" else None
            if char == "{":
                match = _QUANTIFIER.match(pattern, position)
                quantifier = match.group() if match else None
            if quantifier is None:
                out.append(r"\{" if char == "{" else char)   # Python would read {,3} as a quantifier
                position += 1
                continue
            position += len(quantifier)
            mode = pattern[position] if position < size and pattern[position] in "?+" else ""
            position += len(mode)
            if ungreedy and mode != "+":
                mode = "" if mode == "?" else "?"
            out.append(quantifier + mode)
    if in_class:
        raise RuleError("pcre-unsupported", "pcre", detail="unterminated character class")
    return "".join(out)


def _pcre_group(pattern: str, position: int) -> tuple[str, int, int]:
    """A group opening at `position` -> (Python text, next position, how
    many capturing groups it opens)."""
    if pattern.startswith("(*", position):
        raise RuleError("pcre-unsupported", "pcre", detail="PCRE verb")
    if not pattern.startswith("(?", position):
        return "(", position + 1, 1
    kind = pattern[position + 2:position + 3]
    if kind == "#":
        closing = pattern.find(")", position)
        if closing < 0:
            raise RuleError("pcre-unsupported", "pcre", detail="unterminated comment")
        return "", closing + 1, 0
    named = _NAMED_GROUP.match(pattern, position)
    if named:
        return f"(?P<{named.group(1) or named.group(2)}>", named.end(), 1
    if (kind and kind in _PCRE_REFUSED_GROUPS) or (
            kind == "-" and pattern[position + 3:position + 4].isdigit()):   # (?-1) recursion
        raise RuleError("pcre-unsupported", "pcre", detail="PCRE-only construct")
    return "(?", position + 2, 0


def _pcre_escape(pattern: str, position: int, in_class: bool, groups: int) -> tuple[str, int]:
    """The escape whose backslash is at `position` -> (Python text, next position)."""
    if position + 1 >= len(pattern):
        raise RuleError("pcre-unsupported", "pcre", detail="pattern ends with a backslash")
    letter = pattern[position + 1]
    after = position + 2
    if letter == "x":           # \xH, \xHH, \x{H...}: PCRE reads one digit as a whole byte
        match = _HEX_ESCAPE.match(pattern, position + 1)
        digits = match.group(1) or match.group(2) or "0"
        if match.group(2) and len(digits) == 2:
            return pattern[position:match.end()], match.end()
        if int(digits, 16) > 0xFF:
            raise RuleError("pcre-unsupported", "pcre", detail=f"character \\x{{{digits}}} beyond a byte")
        return f"\\x{int(digits, 16):02x}", match.end()
    if letter == "c" and after < len(pattern):
        return f"\\x{ord(pattern[after].upper()) ^ 0x40:02x}", after + 1
    if letter == "Q":
        closing = pattern.find("\\E", after)
        literal = pattern[after:] if closing < 0 else pattern[after:closing]
        if any(ord(c) > 0xFF for c in literal):
            raise RuleError("pcre-unsupported", "pcre", detail="non-byte character in \\Q")
        return "".join(f"\\x{ord(c):02x}" for c in literal), len(pattern) if closing < 0 else closing + 2
    if letter == "E":
        return "", after        # an \E without \Q is ignored
    if letter in _PCRE_REFUSED_ESCAPES or letter == "o":
        raise RuleError("pcre-unsupported", "pcre", detail=f"PCRE-only escape \\{letter}")
    if letter.isdigit():        # a back reference or an octal escape: the whole number
        digits = _DIGITS.match(pattern, position + 1).group()
        return "\\" + digits, position + 1 + len(digits)
    if in_class:
        if letter in _PCRE_CLASS_ESCAPES:
            return _PCRE_CLASS_ESCAPES[letter], after
        if letter in "HVRN":
            raise RuleError("pcre-unsupported", "pcre", detail=f"\\{letter} in a class")
        return pattern[position:after], after
    if letter in _PCRE_ESCAPES:
        return _PCRE_ESCAPES[letter], after
    if letter in "gk":
        match = _REFERENCE.match(pattern, position + 1)
        if not match:
            raise RuleError("pcre-unsupported", "pcre", detail=f"\\{letter} reference")
        name = next(part for part in match.groups() if part is not None)
        if not name.lstrip("-").isdigit():
            return f"(?P={name})", match.end()
        number = int(name) if int(name) > 0 else groups + 1 + int(name)
        if number <= 0:
            raise RuleError("pcre-unsupported", "pcre", detail="reference to no group")
        return f"(?:\\{number})", match.end()
    return pattern[position:after], after


def _posix(body: str) -> str:
    """`[:name:]` inside a class, its body "name" ("^name" is refused)."""
    if body not in _POSIX_CLASSES:
        raise RuleError("pcre-unsupported", "pcre", detail=f"POSIX class {body}")
    return _POSIX_CLASSES[body]


_PCRE_CAPTURE = re.compile(r"(?:pkt|flow|alert):[A-Za-z_][\w.\-]*")


def compile_pcre(value: str, deferred: bool = False):
    """`"/re/flags"` (optionally prefixed by !) → (Pcre, buffer or None).

    `deferred`: leave the compile to the first use (a rule from the cache,
    checked when the cache was built; compiling was half of parsing it)."""
    text = value.strip()
    negated = False
    if text.startswith("!"):
        negated = True
        text = text[1:].strip()
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        text = text[1:-1]
    # Suricata also accepts an unquoted /re/flags.
    if not text.startswith("/") or text.rfind("/") == 0:
        raise RuleError("syntax", "pcre", syntax=True, detail="pcre must be /re/flags")
    end = text.rfind("/")
    body, flag_text = text[1:end], text[end + 1:]
    flag_text, comma, captures = flag_text.partition(",")
    flag_text = flag_text.strip()
    if comma:
        # "/(re)/flags, flow:name, pkt:name": where Suricata stores the
        # groups for flowvar/pktvar or the alert. Their values are not kept
        # here (no keyword reads them); the match itself is unchanged.
        for capture in captures.split(","):
            if not _PCRE_CAPTURE.fullmatch(capture.strip()):
                raise RuleError("syntax", "pcre", syntax=True, detail=f"bad capture {capture.strip()!r}")
    flags = 0
    relative = False
    buffer = None
    anchored = False
    ungreedy = False
    for letter in flag_text:
        if letter in _PCRE_FLAGS:
            flags |= _PCRE_FLAGS[letter]
        elif letter == "R":
            relative = True
        elif letter == "A":
            anchored = True
        elif letter in ("E", "O", "B"):
            # E: "$" only at the very end (Python's "$" also matches before a
            # final newline, so we match at least as much — never less); O:
            # match-limit override; B: raw bytes (no normalisation here).
            continue
        elif letter in PCRE_BUFFERS:
            if buffer is not None and buffer != PCRE_BUFFERS[letter]:
                raise RuleError("syntax", "pcre", syntax=True, detail="two buffer modifiers")
            buffer = PCRE_BUFFERS[letter]
        elif letter == "G":
            ungreedy = True
        else:
            raise RuleError("syntax", "pcre", syntax=True, detail=f"unknown pcre flag {letter!r}")
    python_pattern = translate_pcre(body, ungreedy)
    if anchored:
        python_pattern = r"\A(?:" + python_pattern + ")"
    if deferred:
        try:
            pending = (python_pattern.encode("latin-1"), flags)
        except UnicodeEncodeError as exc:
            raise RuleError("pcre-unsupported", "pcre", detail=str(exc)[:80]) from None
        return verify.Pcre(None, negated, relative, value, pending), buffer
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            regex = re.compile(python_pattern.encode("latin-1"), flags)
    except (re.error, FutureWarning, DeprecationWarning, UnicodeEncodeError, OverflowError,
            RecursionError) as exc:
        raise RuleError("pcre-unsupported", "pcre", detail=str(exc)[:80]) from None
    return verify.Pcre(regex, negated, relative, value), buffer


# -- the builder --------------------------------------------------------------

class _Builder:
    """Parse state while walking one rule's options in order."""

    __slots__ = ("rule", "current_buffer", "last_content", "last_content_buffer",
                 "variables_defined", "classifications", "saw_dsize", "saw_flow", "last_positional",
                 "last_positional_buffer", "checked")

    def __init__(self, rule: Rule, classifications: dict, checked: bool = False) -> None:
        self.rule = rule
        self.checked = checked
        self.current_buffer = PAYLOAD
        self.last_content = None
        self.last_content_buffer = None
        self.last_positional = None
        self.last_positional_buffer = None
        self.variables_defined: set[str] = set()
        self.classifications = classifications
        self.saw_dsize = False
        self.saw_flow = False

    def add(self, matcher, buffer: str | None = None) -> None:
        name = buffer or self.current_buffer
        self.rule.buffers.setdefault(name, []).append(matcher)
        self.last_positional = matcher
        self.last_positional_buffer = name

    def byte_keyword_buffer(self, relative: bool) -> str:
        """Where `isdataat` or a `byte_*` keyword goes (Suricata's setup of
        each): the sticky buffer if one is active; else, when relative, the
        buffer of the last payload keyword of any buffer, so after
        `uricontent:"a"` or `content:"a"; http_uri;` it reads the URI from
        the end of "a"; else the packet payload."""
        if self.current_buffer != PAYLOAD:
            return self.current_buffer
        if relative and self.last_positional_buffer is not None:
            return self.last_positional_buffer
        return PAYLOAD

    def content(self, keyword: str) -> verify.Content:
        if self.last_content is None:
            raise RuleError("syntax", keyword, syntax=True, detail="modifier without a content")
        return self.last_content

    def move_last_content(self, buffer: str, keyword: str) -> None:
        content = self.content(keyword)
        current = self.rule.buffers.get(self.last_content_buffer, [])
        if content in current:
            current.remove(content)
            if not current:
                del self.rule.buffers[self.last_content_buffer]
        self.rule.buffers.setdefault(buffer, []).append(content)
        self.last_content_buffer = buffer
        if self.last_positional is content:
            self.last_positional_buffer = buffer


def _opt_content(builder: _Builder, value: str | None, keyword: str = "content") -> None:
    if value is None:
        raise RuleError("syntax", keyword, syntax=True, detail="content needs a value")
    text = value.strip()
    negated = False
    if text.startswith("!"):
        negated = True
        text = text[1:].strip()
    if len(text) < 2 or text[0] != '"' or text[-1] != '"':
        raise RuleError("syntax", keyword, syntax=True, detail="content must be quoted")
    pattern = parse_content_bytes(text[1:-1])
    if not pattern:
        raise RuleError("syntax", keyword, syntax=True, detail="empty content")
    content = verify.Content(pattern, negated)
    buffer = "http.uri" if keyword == "uricontent" else None
    builder.add(content, buffer)
    builder.last_content = content
    builder.last_content_buffer = buffer or builder.current_buffer


def _opt_position(builder: _Builder, value: str | None, keyword: str) -> None:
    content = builder.content(keyword)
    if value is None:
        raise RuleError("syntax", keyword, syntax=True, detail="needs a value")
    number = _int_or_var(value, keyword, builder)
    if keyword in ("depth", "within") and isinstance(number, int) and number <= 0:
        raise RuleError("syntax", keyword, syntax=True, detail="must be positive")
    if keyword in ("depth", "offset") and isinstance(number, int) and number < 0:
        raise RuleError("syntax", keyword, syntax=True, detail="must not be negative")
    if keyword == "within" and isinstance(number, int) and number < len(content.pattern):
        # Suricata refuses it: the content could never fit.
        raise RuleError("syntax", keyword, syntax=True, detail="within shorter than the content")
    relative = keyword in ("distance", "within")
    if (content.depth is not None or content.offset is not None) if relative else (
            content.distance is not None or content.within is not None):
        # Suricata refuses mixing them on one content (which one anchors?).
        raise RuleError("syntax", keyword, syntax=True,
                        detail="distance/within with depth/offset on one content")
    if getattr(content, keyword) is not None:
        raise RuleError("syntax", keyword, syntax=True, detail="set twice")
    if keyword in ("distance", "within") and content.startswith:
        raise RuleError("syntax", keyword, syntax=True, detail="conflicts with startswith")
    setattr(content, keyword, number)


def _opt_flag(builder: _Builder, keyword: str) -> None:
    content = builder.content(keyword)
    if keyword == "nocase":
        content.nocase = True
    elif keyword == "startswith":
        if content.relative or content.depth is not None or content.offset is not None:
            raise RuleError("syntax", keyword, syntax=True, detail="startswith with position")
        content.startswith = True
    elif keyword == "endswith":
        content.endswith = True


def _opt_fast_pattern(builder: _Builder, value: str | None) -> None:
    content = builder.content("fast_pattern")
    content.fast_pattern = True
    if value is None:
        return
    value = value.strip()
    if value == "only":
        content.fast_pattern_only = True
        return
    parts = value.split(",")
    if len(parts) != 2:
        raise RuleError("syntax", "fast_pattern", syntax=True, detail=value)
    start, length = _int(parts[0], "fast_pattern"), _int(parts[1], "fast_pattern")
    if start < 0 or length <= 0 or start + length > len(content.pattern):
        raise RuleError("syntax", "fast_pattern", syntax=True, detail="chop outside content")
    content.fast_pattern_chop = (start, length)


def _opt_isdataat(builder: _Builder, value: str | None) -> None:
    if value is None:
        raise RuleError("syntax", "isdataat", syntax=True)
    parts = [p.strip() for p in value.split(",")]
    text = parts[0]
    negated = text.startswith("!")
    if negated:
        text = text[1:].strip()
    relative = "relative" in parts[1:]
    for extra in parts[1:]:
        if extra not in ("relative", "rawbytes"):
            raise RuleError("syntax", "isdataat", syntax=True, detail=extra)
    position = _int_or_var(text, "isdataat", builder)
    builder.add(verify.IsDataAt(position, relative, negated), builder.byte_keyword_buffer(relative))


_ENDIAN = {"big": False, "little": True}
_BASES = {"hex": 16, "dec": 10, "oct": 8}


def _byte_common(obj, parts: list[str], keyword: str, builder: _Builder, allowed: set) -> None:
    obj.little = False
    obj.base = None
    obj.relative = False
    seen: set[str] = set()
    index = 0
    while index < len(parts):
        part = parts[index]
        words = part.split()
        head = words[0] if words else ""
        if keyword == "byte_extract":
            # Suricata's byte_extract parser refuses what the others let pass.
            kind = "endian" if head in _ENDIAN else head
            if kind in seen:
                raise RuleError("syntax", keyword, syntax=True, detail=f"{head} given twice")
            seen.add(kind)
            if head == "multiplier" and (len(words) < 2 or not words[1].isdigit()
                                         or not 1 <= int(words[1]) <= 65535):
                raise RuleError("syntax", keyword, syntax=True, detail="multiplier must be 1..65535")
            if head == "align" and words[1:] not in (["2"], ["4"]):
                raise RuleError("syntax", keyword, syntax=True, detail="align must be 2 or 4")
        if head in _ENDIAN:
            obj.little = _ENDIAN[head]
        elif head == "relative":
            obj.relative = True
        elif head == "string":
            obj.base = 10
            if len(words) > 1 and words[1] in _BASES:
                obj.base = _BASES[words[1]]
        elif head in _BASES and obj.base is not None:
            obj.base = _BASES[head]
        elif head == "dce":
            raise RuleError("unsupported-keyword", keyword, detail="dce byte order")
        elif head in allowed:
            if head in ("multiplier", "post_offset", "bitmask", "align") and len(words) > 1:
                setattr(obj, head, _int(words[1], keyword))
            elif head == "align":
                obj.align = True if keyword == "byte_jump" else 4
            else:
                setattr(obj, head, True)
        else:
            raise RuleError("syntax", keyword, syntax=True, detail=f"unknown option {part!r}")
        index += 1
    if keyword == "byte_extract" and obj.base is not None and "endian" in seen:
        raise RuleError("syntax", keyword, syntax=True, detail="string with an endianness")
    if getattr(obj, "from_beginning", False) and getattr(obj, "from_end", False):
        raise RuleError("syntax", keyword, syntax=True, detail="from_beginning with from_end")
    if isinstance(obj.count, str):
        return          # a byte_extract variable: its value is checked when read
    # A binary byte_jump may read 0 bytes: it moves by post_offset alone
    # (Suricata 7+, suricata-verify bug-4623).
    lowest = 0 if keyword == "byte_jump" else 1
    if obj.base is None and not (lowest <= obj.count <= 8):
        raise RuleError("syntax", keyword, syntax=True, detail=f"binary count must be {lowest}..8")
    if obj.base is not None and obj.count == 0 and keyword == "byte_jump":
        # byte_test and byte_extract read a number of any length there
        # (strtoull on the unbounded buffer); byte_jump reads none.
        raise RuleError("unsupported-keyword", keyword, detail="string with 0 bytes")
    if obj.base is not None and not (0 <= obj.count <= 23):
        # 23: the longest string (octal, zero-prefixed) a 64-bit value has.
        raise RuleError("syntax", keyword, syntax=True, detail="string count must be 1..23")


def _check_offset(offset, keyword: str, bound: int) -> None:
    """Suricata's range for a byte_* offset (a variable is checked when read)."""
    if isinstance(offset, int) and not -bound <= offset <= bound:
        raise RuleError("syntax", keyword, syntax=True, detail=f"offset outside -{bound}..{bound}")


def _opt_byte_test(builder: _Builder, value: str | None) -> None:
    parts = [p.strip() for p in (value or "").split(",")]
    if len(parts) < 4:
        raise RuleError("syntax", "byte_test", syntax=True, detail="needs 4 arguments")
    test = verify.ByteTest()
    test.count = _int_or_var(parts[0], "byte_test", builder)
    op = parts[1].replace(" ", "")
    test.negated = op.startswith("!")
    op = op.lstrip("!") or "="
    if op not in ("<", ">", "=", "<=", ">=", "&", "^"):
        raise RuleError("syntax", "byte_test", syntax=True, detail=f"operator {op!r}")
    test.op = op
    test.value = _int_or_var(parts[2], "byte_test", builder)
    test.offset = _int_or_var(parts[3], "byte_test", builder)
    _check_offset(test.offset, "byte_test", 65535)
    _byte_common(test, parts[4:], "byte_test", builder, {"bitmask"})
    builder.add(test, builder.byte_keyword_buffer(test.relative))


def _opt_byte_jump(builder: _Builder, value: str | None) -> None:
    parts = [p.strip() for p in (value or "").split(",")]
    if len(parts) < 2:
        raise RuleError("syntax", "byte_jump", syntax=True, detail="needs 2 arguments")
    jump = verify.ByteJump()
    jump.count = _int_or_var(parts[0], "byte_jump", builder)
    jump.offset = _int_or_var(parts[1], "byte_jump", builder)
    _check_offset(jump.offset, "byte_jump", 65535)
    _byte_common(jump, parts[2:], "byte_jump", builder,
                 {"multiplier", "align", "from_beginning", "from_end", "post_offset", "bitmask"})
    builder.add(jump, builder.byte_keyword_buffer(jump.relative))


def _opt_byte_extract(builder: _Builder, value: str | None) -> None:
    parts = [p.strip() for p in (value or "").split(",")]
    if len(parts) < 3:
        raise RuleError("syntax", "byte_extract", syntax=True, detail="needs 3 arguments")
    extract = verify.ByteExtract()
    extract.count = _int(parts[0], "byte_extract")
    extract.offset = _int(parts[1], "byte_extract")
    _check_offset(extract.offset, "byte_extract", 32767)
    extract.name = parts[2]
    if not re.fullmatch(r"[A-Za-z_]\w*", extract.name):
        raise RuleError("syntax", "byte_extract", syntax=True, detail="bad variable name")
    _byte_common(extract, parts[3:], "byte_extract", builder, {"multiplier", "align"})
    builder.variables_defined.add(extract.name)
    builder.add(extract, builder.byte_keyword_buffer(extract.relative))


_BYTE_MATH_OPERATORS = ("+", "-", "*", "/", "<<", ">>")
_BYTE_MATH_REQUIRED = ("bytes", "offset", "oper", "rvalue", "result")
_VARIABLE_NAME = re.compile(r"[A-Za-z_]\w*")


def _byte_math_variable(text: str, option: str, builder: _Builder) -> str:
    if text not in builder.variables_defined:
        raise RuleError("syntax", "byte_math", syntax=True,
                        detail=f"{option}: unknown variable {text!r}")
    return text


def _opt_byte_math(builder: _Builder, value: str | None) -> None:
    """`byte_math:bytes N, offset O, oper OP, rvalue V, result NAME
    [, relative] [, endian big|little] [, string hex|dec|oct] [, bitmask M]`,
    options in any order, each once (Suricata's detect/byte_math.rs).
    `bytes` is 1..10 or a variable, `rvalue` a decimal 32-bit number or a
    variable (byte_extract or an earlier byte_math's result), `bitmask` hex.
    `dce` (byte order from the DCERPC header) is refused: there is no
    DCERPC parser here to say it."""
    parts = [p.strip() for p in (value or "").split(",")]
    if not 5 <= len(parts) <= 10:
        raise RuleError("syntax", "byte_math", syntax=True, detail="needs 5 to 10 options")
    math = verify.ByteMath()
    seen: set[str] = set()
    for part in parts:
        words = part.split(None, 1)
        option = words[0] if words else ""
        argument = words[1].strip() if len(words) > 1 else ""
        if option == "dce" or (option == "endian" and argument == "dce"):
            raise RuleError("unsupported-keyword", "byte_math",
                            detail="dce byte order: no DCERPC parser to read it from")
        if option in seen:
            raise RuleError("syntax", "byte_math", syntax=True, detail=f"{option} given twice")
        seen.add(option)
        if option == "relative":
            if argument:
                raise RuleError("syntax", "byte_math", syntax=True, detail=f"bad option {part!r}")
            math.relative = True
        elif option == "bytes":
            if argument.isdigit():
                math.count = int(argument)
                if not 1 <= math.count <= 10:
                    raise RuleError("syntax", "byte_math", syntax=True, detail="bytes must be 1..10")
            else:
                math.count = _byte_math_variable(argument, option, builder)
        elif option == "offset":
            if not re.fullmatch(r"-?\d+", argument) or not -65535 <= int(argument) <= 65535:
                raise RuleError("syntax", "byte_math", syntax=True,
                                detail="offset must be -65535..65535")
            math.offset = int(argument)
        elif option == "oper":
            if argument not in _BYTE_MATH_OPERATORS:
                raise RuleError("syntax", "byte_math", syntax=True, detail=f"oper {argument!r}")
            math.operator = argument
        elif option == "rvalue":
            if argument.isdigit():
                math.rvalue = int(argument)
                if math.rvalue > 0xFFFFFFFF:
                    raise RuleError("syntax", "byte_math", syntax=True, detail="rvalue over 32 bits")
            else:
                math.rvalue = _byte_math_variable(argument, option, builder)
        elif option == "result":
            if not _VARIABLE_NAME.fullmatch(argument):
                raise RuleError("syntax", "byte_math", syntax=True, detail="bad result name")
            math.result = argument
        elif option == "endian":
            if argument not in _ENDIAN:
                raise RuleError("syntax", "byte_math", syntax=True, detail=f"endian {argument!r}")
            math.little = _ENDIAN[argument]
        elif option == "string":
            if argument not in _BASES:
                raise RuleError("syntax", "byte_math", syntax=True, detail=f"string {argument!r}")
            math.base = _BASES[argument]
        elif option == "bitmask":
            digits = argument[2:] if argument[:2].lower() == "0x" else argument
            if not re.fullmatch(r"[0-9a-fA-F]{1,8}", digits):
                raise RuleError("syntax", "byte_math", syntax=True, detail="bitmask must be 32-bit hex")
            math.bitmask = int(digits, 16)
        else:
            raise RuleError("syntax", "byte_math", syntax=True, detail=f"unknown option {part!r}")
    missing = [option for option in _BYTE_MATH_REQUIRED if option not in seen]
    if missing:
        raise RuleError("syntax", "byte_math", syntax=True, detail=f"missing {', '.join(missing)}")
    if math.operator in ("<<", ">>") and isinstance(math.count, int) and math.count > 4:
        raise RuleError("syntax", "byte_math", syntax=True, detail="bytes must be 1..4 with << or >>")
    builder.variables_defined.add(math.result)
    builder.add(math, builder.byte_keyword_buffer(math.relative))


_PROTOCOL_NAMES = {1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6", 132: "sctp"}


def _opt_packet_buffer(builder: _Builder, name: str) -> None:
    """`ipv4.hdr`, `ipv6.hdr`, `tcp.hdr`, `udp.hdr`, `icmpv4.hdr`,
    `icmpv6.hdr`: a packet header as a sticky buffer (`packet_buffers`).

    As Suricata's: a rule whose protocol cannot carry the header is refused
    (`alert udp ... tcp.hdr`); the rule then only applies to packets of
    the protocols and IP version that carry it (which its header checks
    rule out cheaply); and like dsize it needs the packet, so its payload
    keywords inspect the packet payload, never the reassembled stream."""
    rule = builder.rule
    protocols, version = packet_buffers.SCOPES[name]
    if protocols is not None:
        if rule.transports is not None and not rule.transports & protocols:
            names = "/".join(_PROTOCOL_NAMES.get(number, str(number)) for number in sorted(rule.transports))
            raise RuleError("syntax", name, syntax=True, detail=f"{name} on a {names} rule")
        rule.transports = set(protocols if rule.transports is None else rule.transports & protocols)
    if version:
        if rule.ip_version not in (0, version):
            raise RuleError("syntax", name, syntax=True, detail=f"{name} on an IPv{rule.ip_version} rule")
        rule.ip_version = version
    rule.packet_only = True
    builder.current_buffer = name
    builder.last_content = None


# What a relative pcre can anchor on (Suricata 9 added the byte_* ones).
_POINTER_MOVERS = (verify.Content, verify.Pcre, verify.ByteJump, verify.ByteExtract,
                   verify.ByteMath)


def _opt_pcre(builder: _Builder, value: str | None) -> None:
    if value is None:
        raise RuleError("syntax", "pcre", syntax=True)
    pcre, buffer = compile_pcre(value, deferred=builder.checked)
    if pcre.relative and buffer is None and builder.current_buffer == PAYLOAD and not any(
            isinstance(m, _POINTER_MOVERS) for m in builder.rule.buffers.get(PAYLOAD, ())):
        # Suricata refuses it: after `uricontent:"a"` a bare /R pcre would
        # read the payload from offset 0, not the URI after "a".
        raise RuleError("syntax", "pcre", syntax=True,
                        detail="pcre with /R needs a preceding match in the same buffer")
    builder.add(pcre, buffer)



_FLOW_GROUPS = {"to_server": "direction", "from_client": "direction", "to_client": "direction",
                "from_server": "direction", "established": "state", "not_established": "state",
                "stateless": "state", "only_stream": "stream", "no_stream": "stream"}


def _opt_flow(builder: _Builder, value: str | None) -> None:
    rule = builder.rule
    if builder.saw_flow:
        # Suricata takes one flow keyword per rule.
        raise RuleError("syntax", "flow", syntax=True, detail="flow given twice")
    builder.saw_flow = True
    given: set[str] = set()
    for part in (value or "").split(","):
        word = part.strip().lower()
        group = _FLOW_GROUPS.get(word)
        if group is not None:
            if group in given:
                # to_server,to_client, established,stateless, ...: refused as
                # Suricata refuses them (one option per kind).
                raise RuleError("syntax", "flow", syntax=True, detail=f"conflicting flow {group}")
            given.add(group)
        if word == "established":
            rule.flow_established = True
        elif word == "not_established":
            rule.flow_established = False
        elif word in ("to_server", "from_client"):
            rule.flow_to_server = True
        elif word in ("to_client", "from_server"):
            rule.flow_to_server = False
        elif word == "stateless":
            rule.flow_stateless = True
        elif word == "only_stream":
            rule.stream_only = True
        elif word == "no_stream":
            rule.packet_only = True
        elif word in ("only_frag", "no_frag"):
            raise RuleError("unsupported-keyword", "flow", detail=word)
        else:
            raise RuleError("syntax", "flow", syntax=True, detail=f"unknown flow option {word!r}")


_FLOWBIT_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")


XBITS_EXPIRE_DEFAULT = 30   # seconds, as Suricata's
_XBITS_TRACK = ("ip_src", "ip_dst", "ip_pair")


def _opt_xbits(builder: _Builder, value: str | None) -> None:
    """`xbits:<set|unset|toggle|isset|isnotset>,<name>,track <ip_src|ip_dst|ip_pair>
    [,expire <seconds>]`: bits kept per host or host pair, across flows."""
    parts = [p.strip() for p in (value or "").split(",")]
    if parts == ["noalert"]:
        builder.rule.noalert = True          # as flowbits:noalert
        return
    if len(parts) < 3:
        raise RuleError("syntax", "xbits", syntax=True, detail="needs command, name and track")
    command, name = parts[0].lower(), parts[1]
    if not _FLOWBIT_NAME.match(name):
        raise RuleError("syntax", "xbits", syntax=True, detail=f"bad name {name!r}")
    track_words = parts[2].split()
    if len(track_words) != 2 or track_words[0] != "track" or track_words[1] not in _XBITS_TRACK:
        raise RuleError("syntax", "xbits", syntax=True, detail=f"bad track {parts[2]!r}")
    track = track_words[1]
    expire = XBITS_EXPIRE_DEFAULT
    for extra in parts[3:]:
        words = extra.split()
        if len(words) != 2 or words[0] != "expire" or not words[1].isdigit() or int(words[1]) == 0:
            raise RuleError("syntax", "xbits", syntax=True, detail=f"bad option {extra!r}")
        expire = int(words[1])
    if command in ("isset", "isnotset"):
        builder.rule.xbit_checks.append((command, name, track))
    elif command in ("set", "unset", "toggle"):
        builder.rule.xbit_actions.append((command, name, track, expire))
    else:
        raise RuleError("syntax", "xbits", syntax=True, detail=f"unknown command {command!r}")


_HOSTBITS_DIRECTIONS = {"src": ("ip_src",), "dst": ("ip_dst",), "both": ("ip_src", "ip_dst")}


def _opt_hostbits(builder: _Builder, value: str | None) -> None:
    """`hostbits:<set|unset|toggle|isset|isnotset>,<name>[,src|dst|both]`:
    xbits on one host (the packet's source by default), with xbits'
    default expiry. `both` sets, unsets or toggles the bit on each host."""
    parts = [p.strip() for p in (value or "").split(",")]
    if parts == ["noalert"]:
        builder.rule.noalert = True
        return
    if len(parts) not in (2, 3):
        raise RuleError("syntax", "hostbits", syntax=True, detail="needs command and name")
    command, name = parts[0].lower(), parts[1]
    if not _FLOWBIT_NAME.match(name):
        raise RuleError("syntax", "hostbits", syntax=True, detail=f"bad name {name!r}")
    direction = parts[2].lower() if len(parts) == 3 else "src"
    tracks = _HOSTBITS_DIRECTIONS.get(direction)
    if tracks is None:
        raise RuleError("syntax", "hostbits", syntax=True, detail=f"bad direction {parts[2]!r}")
    if command in ("isset", "isnotset"):
        if len(tracks) > 1:
            # Whether "both" means either host or each: not guessed.
            raise RuleError("unsupported-keyword", "hostbits", detail=f"{command} on both hosts")
        builder.rule.xbit_checks.append((command, name, tracks[0]))
    elif command in ("set", "unset", "toggle"):
        for track in tracks:
            builder.rule.xbit_actions.append((command, name, track, XBITS_EXPIRE_DEFAULT))
    else:
        raise RuleError("syntax", "hostbits", syntax=True, detail=f"unknown command {command!r}")


_FLOWINT_CHECKS = ("==", "!=", "<", "<=", ">", ">=")
# Suricata's flowint variable names start with a letter or '_' ("657x" is refused).
_FLOWINT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


def _opt_flowint(builder: _Builder, value: str | None) -> None:
    """`flowint:<name>,<op>[,<value>]`: an integer per flow. `=`, `+`, `-`
    change it when the rule matches (like flowbits set); `==` `!=` `<` `<=`
    `>` `>=` compare it (unset: no match), `isset`/`notset` test it. The
    value is a number or another flowint's name."""
    from . import packet_checks
    parts = [p.strip() for p in (value or "").split(",")]
    if len(parts) < 2 or not _FLOWINT_NAME.match(parts[0]):
        raise RuleError("syntax", "flowint", syntax=True, detail="needs name and operator")
    name, op = parts[0], parts[1]
    if op in ("isset", "notset", "isnotset"):
        if len(parts) != 2:
            raise RuleError("syntax", "flowint", syntax=True, detail=f"{op} takes no value")
        builder.rule.packet_checks.append(packet_checks.Flowint(name, op, None))
        return
    if len(parts) != 3 or not parts[2]:
        raise RuleError("syntax", "flowint", syntax=True, detail=f"{op} needs a value")
    operand: int | str = int(parts[2]) if parts[2].isdigit() else parts[2]
    if isinstance(operand, str) and not _FLOWINT_NAME.match(operand):
        raise RuleError("syntax", "flowint", syntax=True, detail=f"bad value {parts[2]!r}")
    if isinstance(operand, int) and operand > 0xFFFFFFFF:
        raise RuleError("syntax", "flowint", syntax=True, detail="value over 32 bits")
    if op in ("=", "+", "-"):
        builder.rule.flowint_actions.append((name, op, operand))
    elif op in _FLOWINT_CHECKS:
        builder.rule.packet_checks.append(packet_checks.Flowint(name, op, operand))
    else:
        raise RuleError("syntax", "flowint", syntax=True, detail=f"unknown operator {op!r}")


def _opt_flowbits(builder: _Builder, value: str | None) -> None:
    rule = builder.rule
    if value is None:
        raise RuleError("syntax", "flowbits", syntax=True)
    parts = [p.strip() for p in value.split(",", 1)]
    command = parts[0].lower()
    if command == "noalert":
        if len(parts) > 1:
            raise RuleError("syntax", "flowbits", syntax=True, detail="noalert takes no name")
        rule.noalert = True
        return
    if len(parts) != 2 or not parts[1]:
        raise RuleError("syntax", "flowbits", syntax=True, detail=f"{command} needs a name")
    names_text = parts[1]
    if "|" in names_text and "&" in names_text:
        raise RuleError("syntax", "flowbits", syntax=True, detail="mixed | and &")
    combinator = "or" if "|" in names_text else "and"
    names = [n.strip() for n in re.split(r"[|&]", names_text)]
    for name in names:
        if not _FLOWBIT_NAME.match(name):
            raise RuleError("syntax", "flowbits", syntax=True, detail=f"bad name {name!r}")
    if command in ("isset", "isnotset"):
        other = "isnotset" if command == "isset" else "isset"
        if len(names) == 1 and any(c == other and n == tuple(names) for c, n, _ in rule.flowbit_checks):
            # Suricata refuses a rule that can never match.
            raise RuleError("syntax", "flowbits", syntax=True,
                            detail=f"isset and isnotset on {names[0]}")
        rule.flowbit_checks.append((command, tuple(names), combinator))
    elif command in ("set", "unset", "toggle"):
        if combinator == "or" and len(names) > 1:
            raise RuleError("syntax", "flowbits", syntax=True, detail=f"{command} with |")
        for name in names:
            rule.flowbit_actions.append((command, name))
    else:
        raise RuleError("syntax", "flowbits", syntax=True, detail=f"unknown command {command!r}")


def _parse_threshold(value: str | None, keyword: str) -> dict:
    result = {}
    for part in (value or "").split(","):
        words = part.split()
        if len(words) != 2:
            raise RuleError("syntax", keyword, syntax=True, detail=part.strip())
        result[words[0].lower()] = words[1]
    if result.get("type") == "backoff" and keyword == "threshold":
        return _parse_backoff(result, keyword)
    try:
        spec = {
            "type": result.pop("type", "threshold" if keyword == "detection_filter" else None),
            "track": result.pop("track"),
            "count": int(result.pop("count")),
            "seconds": int(result.pop("seconds")),
        }
    except (KeyError, ValueError):
        raise RuleError("syntax", keyword, syntax=True, detail="needs type, track, count, seconds") from None
    if result:
        raise RuleError("syntax", keyword, syntax=True, detail=f"unknown {sorted(result)}")
    if spec["type"] not in ("limit", "threshold", "both"):
        raise RuleError("syntax", keyword, syntax=True, detail=f"type {spec['type']}")
    if spec["track"] not in ("by_src", "by_dst", "by_rule", "by_both", "by_flow"):
        raise RuleError("syntax", keyword, syntax=True, detail=f"track {spec['track']}")
    if spec["count"] < 0 or spec["seconds"] < 0:
        raise RuleError("syntax", keyword, syntax=True, detail="negative")
    return spec


def _parse_backoff(result: dict, keyword: str) -> dict:
    """Suricata 8's `threshold: type backoff, track by_flow, count C,
    multiplier M`: alerts on the C-th match of the flow, then the C*M-th,
    C*M*M-th, ... (count 1, multiplier 10: 1, 10, 100, ...)."""
    try:
        spec = {"type": result.pop("type"), "track": result.pop("track"),
                "count": int(result.pop("count")), "multiplier": int(result.pop("multiplier")),
                "seconds": float("inf")}
    except (KeyError, ValueError):
        raise RuleError("syntax", keyword, syntax=True,
                        detail="backoff needs track, count, multiplier") from None
    if result:
        raise RuleError("syntax", keyword, syntax=True, detail=f"unknown {sorted(result)}")
    if spec["track"] != "by_flow":
        raise RuleError("syntax", keyword, syntax=True, detail="backoff tracks by_flow only")
    if spec["count"] < 1 or spec["multiplier"] < 2:
        raise RuleError("syntax", keyword, syntax=True, detail="backoff count >= 1, multiplier >= 2")
    return spec


def _opt_metadata(builder: _Builder, value: str | None) -> None:
    for part in (value or "").split(","):
        words = part.strip().split(None, 1)
        if not words:
            continue
        key = words[0]
        builder.rule.metadata.setdefault(key, []).append(words[1].strip() if len(words) > 1 else "")


def _uint_keyword(keyword: str, value: str | None) -> verify.UintCheck:
    try:
        return verify.UintCheck(value or "")
    except ValueError as exc:
        raise RuleError("syntax", keyword, syntax=True, detail=str(exc)) from None


def _opt_packet_check(builder: _Builder, keyword: str, value: str | None) -> None:
    from . import packet_checks
    try:
        check = packet_checks.build(keyword, value)
    except ValueError as exc:
        raise RuleError("syntax", keyword, syntax=True, detail=str(exc)) from None
    builder.rule.packet_checks.append(check)
    if keyword == "dsize":
        builder.rule.packet_only = True


# Integer fields a parser keeps as a one-byte buffer.
_TX_BYTE_KEYWORDS = ("dns.opcode", "dns.rcode", "tls.cert_chain_len", "dns.rrtype",
                     "mqtt.protocol_version")
# dns.rcode may name its value (dns.rcode:NXDOMAIN), as Suricata 8 allows.
_RCODE_NAMES = {"noerror": 0, "formerr": 1, "servfail": 2, "nxdomain": 3, "notimp": 4,
                "refused": 5, "yxdomain": 6, "yxrrset": 7, "nxrrset": 8, "notauth": 9,
                "notzone": 10}


def _opt_tx_byte(builder: _Builder, name: str, value: str | None) -> None:
    """`dns.opcode:[!]N[-M]`, `dns.rcode:...`: a transaction's integer
    field against Suricata's integer comparisons."""
    if value is None:
        raise RuleError("syntax", name, syntax=True, detail="needs a value")
    text = value.strip()
    negated = text.startswith("!")
    word = (text[1:].strip() if negated else text).lower()
    if name == "dns.rcode" and word in _RCODE_NAMES:
        text = f"{'!' if negated else ''}{_RCODE_NAMES[word]}"
    builder.rule.buffers.setdefault(name, []).append(verify.IntegerBuffer(_uint_keyword(name, text)))


def _opt_urilen(builder: _Builder, value: str | None) -> None:
    parts = [p.strip() for p in (value or "").split(",")]
    buffer = "http.uri"
    if len(parts) > 1:
        if parts[1] == "raw":
            buffer = "http.uri.raw"
        elif parts[1] != "norm":
            raise RuleError("syntax", "urilen", syntax=True, detail=parts[1])
    check = _uint_keyword("urilen", parts[0])
    # urilen is a length test on the URI buffer; it does not move the anchor.
    builder.rule.buffers.setdefault(buffer, []).insert(0, verify.BufferSize(check))


BASE64_DATA = "base64_data"

# tls.version values -> what the TLS parser puts in its "tls.version" buffer
_TLS_VERSIONS = {"1.0": b"TLSv1", "1.1": b"TLS 1.1", "1.2": b"TLS 1.2", "1.3": b"TLS 1.3"}


def _opt_tls_version(builder: _Builder, value: str) -> None:
    """`tls.version:1.2` (or a raw `0x0303`): the version the side being
    inspected announced (client: highest supported, server: selected)."""
    text = value.strip().strip('"')
    negated = text.startswith("!")
    text = text[1:].strip() if negated else text
    if text in _TLS_VERSIONS:
        # Suricata matches every TLS 1.3 draft (0x7fXX) as 1.3
        accepted = {_TLS_VERSIONS[text]}
        if text == "1.3":
            accepted |= {b"0x7f%02x" % draft for draft in range(256)}
    elif re.fullmatch(r"0x[0-9a-fA-F]{4}", text):
        from ips.applayer.tls import VERSION_NAMES
        code = int(text, 16)
        accepted = {VERSION_NAMES.get(code, hex(code)).encode()}
    else:
        raise RuleError("syntax", "tls.version", syntax=True, detail=f"bad version {text!r}")
    builder.rule.buffers.setdefault("tls.version", []).insert(
        0, verify.BufferIn(frozenset(accepted), negated))


# Suricata's legacy TLS keywords, each a match on a certificate buffer.
_TLS_LEGACY = {"tls.subject": "tls.cert_subject", "tls.issuerdn": "tls.cert_issuer",
               "tls.fingerprint": "tls.cert_fingerprint"}


def _opt_tls_legacy(builder: _Builder, name: str, value: str | None) -> None:
    """`tls.subject:"CN=..."`, `tls.issuerdn:"..."` (the string anywhere in
    the field, `!` for not), `tls.fingerprint:"90:86:..."` (the whole
    fingerprint, any case): a content on the certificate buffer, which
    does not become the rule's sticky buffer."""
    text = (value or "").strip()
    negated = text.startswith("!")
    quoted = text[1:].strip() if negated else text
    if len(quoted) < 2 or quoted[0] != '"' or quoted[-1] != '"':
        raise RuleError("syntax", name, syntax=True, detail="needs a quoted string")
    # A literal "|" in a field is content's hex delimiter: written as hex.
    literal = quoted[1:-1].replace("|", "|7C|")
    if name == "tls.fingerprint":
        if negated:
            raise RuleError("unsupported-keyword", name, detail="negated tls.fingerprint")
        literal = literal.lower()
    sticky, last = builder.current_buffer, builder.last_content
    builder.current_buffer = _TLS_LEGACY[name]
    builder.last_content = None
    _opt_content(builder, f'{"!" if negated else ""}"{literal}"')
    if name == "tls.fingerprint":
        _opt_flag(builder, "startswith")
        _opt_flag(builder, "endswith")
    builder.current_buffer, builder.last_content = sticky, last


def _transform_argument(name: str, value: str | None) -> str:
    """`xor:"0d0ac8ff"` (a hex key, 1..255 bytes) and `pcrexform:"re"` (at
    least one capture group): the chain element naming the transform."""
    text = (value or "").strip()
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        text = text[1:-1]
    if name == "xor":
        if not re.fullmatch(r"(?:[0-9a-fA-F]{2}){1,255}", text):
            raise RuleError("syntax", name, syntax=True, detail="key must be 1..255 hex bytes")
        return transforms.with_argument(name, bytes.fromhex(text))
    if not text:
        raise RuleError("syntax", name, syntax=True, detail="needs a regular expression")
    try:
        regex = re.compile(translate_pcre(text).encode("latin-1"))
    except (re.error, UnicodeEncodeError, RecursionError) as exc:
        raise RuleError("pcre-unsupported", name, detail=str(exc)[:80]) from None
    if regex.groups < 1:
        raise RuleError("syntax", name, syntax=True, detail="needs a capture group")
    return transforms.with_argument(name, text.encode("latin-1"))


def _opt_mqtt_type(builder: _Builder, value: str | None) -> None:
    """`mqtt.type:PUBLISH` (or its number, `!` for not): the control packet's
    type. Only the types the MQTT parser makes transactions of can match;
    a rule on another is refused rather than left never to fire."""
    from ips.applayer.mqtt import LOGGED_TYPES, TYPE_NAMES
    text = (value or "").strip()
    negated = text.startswith("!")
    text = text[1:].strip() if negated else text
    numbers = {name.upper(): number for number, name in TYPE_NAMES.items()}
    number = int(text) if text.isdigit() else numbers.get(text.upper())
    if number not in TYPE_NAMES:
        raise RuleError("syntax", "mqtt.type", syntax=True, detail=f"unknown type {text!r}")
    if number not in LOGGED_TYPES and not negated:
        raise RuleError("unsupported-keyword", "mqtt.type",
                        detail=f"{TYPE_NAMES[number].upper()} packets are not parsed")
    builder.rule.buffers.setdefault("mqtt.type", []).insert(
        0, verify.BufferIn(frozenset({TYPE_NAMES[number].upper().encode()}), negated))


def _opt_base64_decode(builder: _Builder, value: str | None) -> None:
    """`base64_decode[:bytes N][, offset M][, relative]`."""
    count = offset = 0
    relative = False
    for part in (p.strip() for p in (value or "").split(",")):
        words = part.split()
        if not words:
            continue
        if words == ["relative"]:
            relative = True
        elif len(words) == 2 and words[0] in ("bytes", "offset") and words[1].isdigit():
            if words[0] == "bytes":
                count = int(words[1])
            else:
                offset = int(words[1])
        else:
            raise RuleError("syntax", "base64_decode", syntax=True, detail=f"bad option {part!r}")
    if builder.current_buffer == BASE64_DATA:
        raise RuleError("syntax", "base64_decode", syntax=True, detail="after base64_data")
    builder.add(verify.Base64Decode(count, offset, relative))


def _opt_app_layer_protocol(builder: _Builder, value: str | None) -> None:
    text = (value or "").strip()
    negated = text.startswith("!")
    name = text.lstrip("!").strip().lower()
    if name not in APP_PROTOCOLS and name not in ("failed", "unknown"):
        raise RuleError("syntax", "app-layer-protocol", syntax=True, detail=name)
    name = APP_PROTO_ALIASES.get(name, name)
    if name in APP_PROTOCOLS and name not in DETECTED_PROTOCOLS:
        raise RuleError("unsupported-protocol", name, detail="no flow is detected as it here")
    builder.rule.app_layer_protocol = (negated, name)


def _opt_event(builder: _Builder, keyword: str, value: str | None) -> None:
    """`decode-event:ipv4.trunc_pkt`, `stream-event:reassembly_seq_gap`,
    `app-layer-event:http.invalid_transfer_encoding_value_in_request`: the
    packet (decode, stream) or the inspected transaction (app-layer) carries
    the event. Only events this engine raises are accepted
    (`ips.event_names`); any other would make a rule that can never fire."""
    text = unquote(value or "").strip().lower()
    if not text or not re.fullmatch(r"[a-z0-9_.\-]+", text):
        raise RuleError("syntax", keyword, syntax=True, detail=f"bad event name {text!r}")
    rule = builder.rule
    if keyword == "app-layer-event":
        proto, dot, event = text.partition(".")
        if not dot:
            # Suricata's generic events (applayer_mismatch_protocol_both_directions,
            # ...): nothing here raises their counterparts.
            raise RuleError("unsupported-keyword", keyword, detail=f"event {text} is not raised")
        proto = APP_PROTO_ALIASES.get(proto, proto)
        name = f"{proto}.{event}"
        if name not in event_names.APPLAYER_EVENTS and name not in event_names.EXTENSION_EVENTS:
            why = event_names.REFUSED_APPLAYER_EVENTS.get(name) or event_names.LOG_ONLY.get(name)
            raise RuleError("unsupported-keyword", keyword,
                            detail=f"event {text} is not raised" + (f": {why}" if why else ""))
        if rule.app_proto is None and rule.protocol in ("tcp", "udp", "ip"):
            rule.app_proto = proto
        elif rule.app_proto not in (None, proto):
            raise RuleError("syntax", keyword, syntax=True,
                            detail=f"{name} on a {rule.app_proto} rule")
        if name not in rule.tx_events:
            rule.tx_events += (name,)
        return
    if keyword == "stream-event":
        name, known = f"stream.{text}", event_names.STREAM_EVENTS
    else:
        name, known = text, event_names.DECODE_EVENTS
    if name not in known:
        raise RuleError("unsupported-keyword", keyword, detail=f"event {text} is not raised")
    if name not in rule.packet_events:
        rule.packet_events += (name,)


def _apply_option(builder: _Builder, name: str, value: str | None) -> None:
    rule = builder.rule
    if name in ("content", "uricontent"):
        _opt_content(builder, value, name)
    elif name in ("depth", "offset", "distance", "within"):
        _opt_position(builder, value, name)
    elif name in ("nocase", "startswith", "endswith"):
        _opt_flag(builder, name)
    elif name == "fast_pattern":
        _opt_fast_pattern(builder, value)
    elif name in CONTENT_MODIFIERS:
        builder.move_last_content(CONTENT_MODIFIERS[name], name)
    elif name == "base64_decode":
        _opt_base64_decode(builder, value)
    elif name == "tls.version" and value is not None:
        _opt_tls_version(builder, value)
    elif name in _TLS_LEGACY:
        _opt_tls_legacy(builder, name, value)
    elif name == "mqtt.type":
        _opt_mqtt_type(builder, value)
    elif name in _TX_BYTE_KEYWORDS:
        _opt_tx_byte(builder, name, value)
    elif name in BUFFERS or name in STICKY_ALIASES:
        builder.current_buffer = STICKY_ALIASES.get(name, name)
        builder.last_content = None
    elif name in packet_buffers.SCOPES:
        _opt_packet_buffer(builder, name)
    elif name == "pkt_data":
        builder.current_buffer = PAYLOAD
        builder.last_content = None
    elif name == "pcre":
        _opt_pcre(builder, value)
    elif name == "isdataat":
        _opt_isdataat(builder, value)
    elif name == "bsize":
        if builder.current_buffer == PAYLOAD:
            # Suricata: bsize measures a sticky buffer, never the payload (dsize does).
            raise RuleError("syntax", "bsize", syntax=True, detail="bsize needs a sticky buffer")
        builder.add(verify.BufferSize(_uint_keyword("bsize", value)))
    elif name == "byte_test":
        _opt_byte_test(builder, value)
    elif name == "byte_jump":
        _opt_byte_jump(builder, value)
    elif name == "byte_extract":
        _opt_byte_extract(builder, value)
    elif name == "byte_math":
        _opt_byte_math(builder, value)
    elif name == "urilen":
        _opt_urilen(builder, value)
    elif name in ("dsize", "itype", "icode", "ttl", "ip_proto", "flags", "ack", "seq", "window",
                  "icmp_id", "icmp_seq", "fragbits", "sameip", "tcp.flags", "stream_size",
                  "tcp.window", "tcp.mss", "ipopts"):
        aliases = {"tcp.flags": "flags", "tcp.window": "window"}
        _opt_packet_check(builder, aliases.get(name, name), value)
    elif name == "flow":
        _opt_flow(builder, value)
    elif name == "flowbits":
        _opt_flowbits(builder, value)
    elif name == "xbits":
        _opt_xbits(builder, value)
    elif name == "hostbits":
        _opt_hostbits(builder, value)
    elif name == "flowint":
        _opt_flowint(builder, value)
    elif name == "noalert":
        rule.noalert = True
    elif name == "bypass":
        rule.bypass = True
    elif name == "threshold":
        if rule.threshold is not None:
            raise RuleError("syntax", name, syntax=True, detail="twice")
        rule.threshold = _parse_threshold(value, name)
    elif name == "detection_filter":
        rule.detection_filter = _parse_threshold(value, name)
    elif name == "msg":
        rule.msg = unquote(value or "")
    elif name == "sid":
        rule.sid = _int(value or "", "sid")
    elif name == "rev":
        rule.rev = _int(value or "", "rev")
    elif name == "gid":
        rule.gid = _int(value or "", "gid")
    elif name == "priority":
        priority = _int(value or "", "priority")
        if not 1 <= priority <= 255:
            raise RuleError("syntax", name, syntax=True, detail="priority out of range")
        rule.priority = priority
        rule.order = -1  # remember that priority was explicit (see _finish)
    elif name == "classtype":
        key = (value or "").strip()
        if key not in builder.classifications:
            raise RuleError("syntax", name, syntax=True, detail=f"unknown classtype {key!r}")
        rule.classtype = key
    elif name == "reference":
        rule.references.append((value or "").strip())
    elif name == "metadata":
        _opt_metadata(builder, value)
    elif name == "target":
        target = (value or "").strip()
        if target not in ("src_ip", "dest_ip"):
            raise RuleError("syntax", name, syntax=True, detail=target)
        rule.target = target
    elif name == "app-layer-protocol":
        _opt_app_layer_protocol(builder, value)
    elif name in INFORMATIONAL:
        return
    elif name in IGNORED:
        return
    elif name in transforms.TRANSFORMS or name in transforms.PARAMETRIZED:
        if builder.current_buffer == PAYLOAD:
            raise RuleError("transform-unsupported", name, detail="transform on packet payload")
        if builder.rule.buffers.get(builder.current_buffer):
            raise RuleError("syntax", name, syntax=True, detail="transform after a match")
        element = name if name in transforms.TRANSFORMS else _transform_argument(name, value)
        builder.current_buffer = f"{builder.current_buffer}|{element}"
    elif name in TRANSFORMS:
        raise RuleError("transform-unsupported", name)
    elif name in ("decode-event", "stream-event", "app-layer-event"):
        _opt_event(builder, name, value)
    else:
        raise RuleError("unsupported-keyword", name)


def tokenize_header(header: str) -> list[str]:
    """Whitespace split that keeps `[...]` groups (which may contain spaces) together."""
    if "[" not in header:
        return header.split()
    tokens, depth, current = [], 0, []
    for char in header:
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        if char.isspace() and depth == 0:
            if current:
                tokens.append("".join(current))
                current = []
        else:
            current.append(char)
    if current:
        tokens.append("".join(current))
    return [t.replace(" ", "") for t in tokens]


class RuleHeader:
    """A rule's header line alone (action, protocol, addresses, ports,
    direction), read without its options (`parse_header`). `flow_to_server`
    is an option: unknown here, so `DetectEngine._static_header_match` on a
    header is a necessary condition for the rule, not a sufficient one."""

    __slots__ = ("action", "protocol", "transports", "app_proto", "packet_only", "stream_only",
                 "source", "source_ports", "direction", "destination", "destination_ports",
                 "ip_version")
    flow_to_server = None

    def __init__(self) -> None:
        self.ip_version = 0
        self.app_proto = None
        self.packet_only = self.stream_only = False


def parse_header(text: str, variables: Variables) -> RuleHeader:
    """The header of a rule line (see `RuleHeader`). Raises RuleError."""
    header = RuleHeader()
    _read_header(text.strip(), variables, header)
    return header


def parse_rule(text: str, variables: Variables, classifications: dict,
               checked: bool = False) -> Rule:
    """Parse one rule line. Raises RuleError. `checked`: the line parsed
    before with the same variables (the compiled cache), so work that only
    validates (compiling pcre) waits for first use."""
    text = text.strip()
    rule = Rule()
    rule.text = text
    open_paren = _read_header(text, variables, rule)
    builder = _Builder(rule, classifications, checked)
    for name, value in split_options(text[open_paren + 1:-1]):
        _apply_option(builder, name, value)
    _finish(rule, classifications)
    return rule


def _read_header(text: str, variables: Variables, rule: Rule | RuleHeader) -> int:
    """Set the header fields of `rule` from a stripped rule line; returns
    the position of the option block's opening parenthesis."""
    open_paren = text.find("(")
    if open_paren < 0 or not text.endswith(")"):
        raise RuleError("syntax", syntax=True, detail="no option block")
    header = tokenize_header(text[:open_paren])
    if len(header) != 7:
        raise RuleError("syntax", syntax=True, detail=f"header has {len(header)} fields, expected 7")
    action, protocol, source, source_ports, direction, destination, destination_ports = header
    action = action.lower()
    if action not in ACTIONS:
        raise RuleError("syntax", syntax=True, detail=f"unknown action {action!r}")
    rule.action = ACTIONS[action]
    protocol = protocol.lower()
    rule.protocol = protocol
    if protocol in TRANSPORTS:
        rule.transports = TRANSPORTS[protocol]
        rule.packet_only = protocol == "tcp-pkt"
        rule.stream_only = protocol == "tcp-stream"
    elif protocol in APP_PROTOCOLS:
        rule.transports = APP_PROTOCOLS[protocol]
        rule.app_proto = APP_PROTO_ALIASES.get(protocol, protocol)
    elif protocol in IP_VERSIONS:
        rule.ip_version = IP_VERSIONS[protocol]
    else:
        raise RuleError("syntax", syntax=True, detail=f"unknown protocol {protocol!r}")
    if direction not in ("->", "<>", "=>"):
        raise RuleError("syntax", syntax=True, detail=f"bad direction {direction!r}")
    rule.direction = direction
    try:
        rule.source = variables.address(source)
        rule.destination = variables.address(destination)
        rule.source_ports = variables.port(source_ports)
        rule.destination_ports = variables.port(destination_ports)
    except VariableError as exc:
        raise RuleError("syntax", syntax=True, detail=str(exc)) from None
    return open_paren


def _check_app_proto(rule: Rule) -> None:
    """Refuse, don't weaken: a rule on a protocol no flow is ever detected as
    (Suricata parses SIP, SNMP, NFS, ...; this engine does not) would load
    and never fire, and so would a sticky buffer of a protocol that is only
    detected (`alert smtp ... file.data`: no MIME parser here)."""
    if rule.app_proto is not None and rule.app_proto not in DETECTED_PROTOCOLS:
        raise RuleError("unsupported-protocol", rule.app_proto,
                        detail="no flow is detected as it here")
    if rule.app_proto in WITHOUT_BUFFERS:
        parsed = [name for name in rule.buffers
                  if name != PAYLOAD and not packet_buffers.is_packet_buffer(name)]
        if parsed:
            raise RuleError("unsupported-keyword", parsed[0].split("|", 1)[0],
                            detail=f"no {rule.app_proto} transaction has it here")


def _finish(rule: Rule, classifications: dict) -> None:
    if rule.sid <= 0:
        raise RuleError("syntax", "sid", syntax=True, detail="missing sid")
    explicit_priority = rule.order == -1
    rule.order = 0
    if rule.classtype is not None:
        description, priority = classifications[rule.classtype]
        rule.category = description
        if not explicit_priority:
            rule.priority = priority
    for name, matchers in rule.buffers.items():
        first_relative = matchers and getattr(matchers[0], "relative", False)
        if first_relative and isinstance(matchers[0], verify.Content):
            # A relative first content anchors at the buffer start (Suricata does the same).
            pass
        for matcher in matchers:
            if isinstance(matcher, verify.Content):
                if name == "http.host" and (matcher.nocase or matcher.pattern != matcher.pattern.lower()):
                    # Suricata refuses both: the buffer is lowercased, so an
                    # uppercase pattern never matches and nocase is redundant.
                    raise RuleError("syntax", "http.host", syntax=True,
                                    detail="http.host is lowercased: use a lowercase pattern "
                                           "without nocase")
                if matcher.nocase:
                    matcher.pattern = matcher.pattern.lower()
                if matcher.endswith and matcher.depth is not None and not matcher.relative:
                    pass
        verify.link_relative(matchers)
        if name != PAYLOAD and not packet_buffers.is_packet_buffer(name):
            app_proto, direction = BUFFERS[name.split("|", 1)[0]]
            if direction is not None and rule.direction_hint is None:
                rule.direction_hint = direction
            if app_proto is not None:
                if rule.app_proto is None and rule.protocol in ("tcp", "udp", "ip"):
                    rule.app_proto = app_proto
                elif rule.app_proto not in (None, app_proto) and rule.app_proto != "http2":
                    raise RuleError("syntax", name, syntax=True,
                                    detail=f"{name} on a {rule.app_proto} rule")
    if BASE64_DATA in rule.buffers:
        # base64_data is not a buffer of the packet or transaction: its
        # matchers run on what the last base64_decode decoded, from there.
        decoders = [m for matchers in rule.buffers.values() for m in matchers
                    if isinstance(m, verify.Base64Decode)]
        if not decoders:
            raise RuleError("syntax", "base64_data", syntax=True, detail="no base64_decode before it")
        decoders[-1].data_matchers = rule.buffers.pop(BASE64_DATA)
    _check_app_proto(rule)
    if rule.flow_to_server is not None:
        rule.direction_hint = "ts" if rule.flow_to_server else "tc"
    rule.packet_buffers = tuple(name for name in rule.buffers if packet_buffers.is_packet_buffer(name))
    rule.tx_buffers = tuple(name for name in rule.buffers
                            if name != PAYLOAD and name not in rule.packet_buffers)
    if rule.packet_buffers and rule.tx_buffers:
        # Suricata refuses packet matches (dsize, tcp.hdr) with app-layer
        # buffers: one is judged per packet, the other per transaction.
        raise RuleError("syntax", rule.packet_buffers[0].split("|", 1)[0], syntax=True,
                        detail=f"packet header buffer with app-layer buffer {rule.tx_buffers[0]}")
    if rule.packet_buffers and rule.tx_events:
        raise RuleError("unsupported-keyword", "app-layer-event",
                        detail="with a packet header buffer (transactions are not inspected per packet)")
    if rule.stream_only and rule.packet_only:
        raise RuleError("syntax", "flow", syntax=True,
                        detail="only_stream with no_stream, dsize or a packet header buffer")
    _choose_fast_pattern(rule)


def _pattern_strength(pattern: bytes) -> int:
    """Suricata's PatternStrength: rare, varied bytes make a better fast pattern."""
    seen = set()
    score = 0
    for byte in pattern:
        if byte in seen:
            score += 1
        elif chr(byte).isalpha():
            seen.add(byte)
            score += 3
        else:
            seen.add(byte)
            score += 4
    return score


def _buffer_priority(name: str) -> int:
    """Higher wins: app-layer buffers, then payload, then http.method
    (Suricata's order). A packet header ranks just below the payload: its
    bytes are structure most packets share ("|02 04|", the MSS option),
    where a payload pattern names what an attack sends."""
    if name == "http.method":
        return 0
    if packet_buffers.is_packet_buffer(name):
        return 1
    if name == PAYLOAD:
        return 2
    return 3


def _choose_fast_pattern(rule: Rule) -> None:
    explicit = None
    best = None
    best_key = None
    for name, matchers in rule.buffers.items():
        for position, matcher in enumerate(matchers):
            if not isinstance(matcher, verify.Content):
                continue
            if matcher.fast_pattern:
                explicit = (name, matcher)
            if matcher.negated:
                continue
            key = (_buffer_priority(name), len(matcher.pattern), _pattern_strength(matcher.pattern),
                   position)
            if best_key is None or key >= best_key:
                best, best_key = (name, matcher), key
    chosen = explicit or best
    if chosen is not None and chosen[1].negated:
        chosen = best   # a negated content cannot select candidates; fall back
    rule.fast_pattern = chosen
