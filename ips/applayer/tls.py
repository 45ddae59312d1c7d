"""TLS handshake parser (sans-IO): SNI, versions, JA3/JA3S, JA4, certificate,
and Suricata's TLS app-layer events.

Theory of operation
-------------------
Per direction, bytes go through two bounded buffers:

* `records`: record framing as Suricata's parser frames it (app-layer-ssl.c):
  a TLS record (5-byte header + fragment), or, when the record's first byte
  has one of its two top bits set, an SSLv2 record (2- or 3-byte header),
  whose body is skipped rather than buffered. At most one TLS record
  (MAX_RECORD_BYTES) is ever waiting for its end.
* `handshake`: the concatenated fragments of handshake records
  (content type 22), bounded by MAX_HANDSHAKE_BYTES. Handshake messages may
  be split over many records (even 1-byte records, a known evasion) and over
  many TCP segments; we parse a message only once all its bytes are here.

Consumed bytes are removed once per `feed`, so work is O(bytes).
After a ChangeCipherSpec or application-data record a direction is encrypted
and its handshake content is no longer parsed. When both directions are
encrypted the transaction is complete and `handshake_done` tells the engine
the flow can be bypassed.

Suricata's events (`app-layer-event:tls.*`) are raised on the transaction
under the conditions Suricata 8's parser raises them, which follow its own
view of the connection: the record version it tracks per direction (the
record header's until that side's hello, then the hello's), its per-flow
flags (a ChangeCipherSpec from either side ends its handshake parsing), and
its handshake message framing, which is stricter than ours (a message
header must lie within one record; a handshake record shorter than 4 bytes
is an error). That framing is followed alongside ours, keeping only the
hello or Certificate message being reassembled (a longer one than
MAX_HANDSHAKE_BYTES is framed, not read). Where Suricata stops parsing the
flow (an error it treats as fatal, a gap) no more of its events are raised,
but this parser goes on reading what it can; where it can no longer follow
Suricata (this side stopped on a bound of its own) it raises none either.
Events need the flow inspected: once the handshake is done the flow is
bypassed, as with Suricata's `encryption-handling: bypass`, so heartbeats
under encryption are not seen.

JA3: md5 of "version,ciphers,extensions,curves,point_formats" (decimal,
'-'-joined, GREASE values removed). JA4 follows the FoxIO specification
(JA4_a "t13d1516h2", then 12 hex of sha256 of the sorted ciphers and of the
sorted extensions without SNI/ALPN plus "_" signature algorithms).
"""
from __future__ import annotations

import hashlib
import struct

from ips.applayer import Tx

_x509 = None
"""cryptography's x509 module once `load_x509()` imported it (False: not installed)."""


def load_x509():
    """cryptography's x509 module, or None when it is not installed.

    Imported on first use because it is optional and slow to load (about
    0.1 s); the app-layer stage calls this when a worker starts, so the
    first certificate seen inline does not hold its packet for that long."""
    global _x509
    if _x509 is None:
        try:
            from cryptography import x509
        except ImportError:
            x509 = False
        _x509 = x509
    return _x509 or None

MAX_RECORD_LENGTH = 16384 + 1024
"""Longest record fragment Suricata accepts (RFC 5246 6.2.2's TLSCompressed
bound); a longer one, or an empty one, stops its parser."""
MAX_RECORD_BYTES = 5 + MAX_RECORD_LENGTH
"""Largest TLS record with its header."""
MAX_HANDSHAKE_BYTES = 64 * 1024
"""Handshake bytes buffered per direction (certificate chains included)."""
MAX_CHAIN_CERTIFICATES = 16
"""Certificates of a chain exposed as `tls.certs`."""

_CONTENT_CCS, _CONTENT_ALERT, _CONTENT_HANDSHAKE, _CONTENT_APPDATA = 20, 21, 22, 23
_CONTENT_HEARTBEAT = 24
_CONTENT_TYPES = frozenset((20, 21, 22, 23, 24))
_CLIENT_HELLO, _SERVER_HELLO, _CERTIFICATE = 1, 2, 11

# What Suricata's events depend on (app-layer-ssl.c, app-layer-ssl.h).
_SURICATA_HANDSHAKE_TYPES = frozenset((0, 1, 2, 4, 11, 12, 13, 14, 15, 16, 20, 21, 22))
"""Handshake message types Suricata reads; any other is an invalid message."""
_SSLV2, _TLS10, _TLS11, _TLS12, _TLS13 = 0x0200, 0x0301, 0x0302, 0x0303, 0x0304
_TLS13_PRE_DRAFT16 = 0x7F01
_VALID_VERSIONS = frozenset((0x0300, _TLS10, _TLS11, _TLS12, _TLS13, _TLS13_PRE_DRAFT16,
                             *range(0x7F10, 0x7F1D), 0xFB14, 0xFB15, 0xFB16, 0xFB17, 0xFB1A))
"""Suricata's TLSVersionValid: SSLv3, TLS 1.0-1.3 and the TLS 1.3 drafts it names."""
_SSLV2_ERROR, _SSLV2_CLIENT_HELLO, _SSLV2_SERVER_HELLO = 0, 1, 4
_HEARTBEAT_REQUEST, _HEARTBEAT_RESPONSE = 1, 2
_HEARTBEAT_MIN_PADDING = 16                 # RFC 6520, section 4
_RECORD_OK, _RECORD_SKIP_REST, _RECORD_REFUSED = 0, 1, 2

_EXT_SNI, _EXT_GROUPS, _EXT_POINT_FORMATS, _EXT_SIG_ALGS, _EXT_ALPN = 0, 10, 11, 13, 16
_EXT_SUPPORTED_VERSIONS = 43


def is_grease(value: int) -> bool:
    """GREASE values (RFC 8701): 0x0a0a, 0x1a1a, ... 0xfafa."""
    return (value & 0x0F0F) == 0x0A0A and (value >> 8) == (value & 0xFF)


_GREASE = frozenset(0x0A0A + 0x1010 * i for i in range(16))
"""The 16 GREASE values, for membership tests in the fingerprint loops."""


VERSION_NAMES = {0x0200: "SSLv2", 0x0300: "SSLv3", 0x0301: "TLSv1", 0x0302: "TLS 1.1",
                 0x0303: "TLS 1.2", 0x0304: "TLS 1.3"}
_JA4_VERSIONS = {0x0304: "13", 0x0303: "12", 0x0302: "11", 0x0301: "10", 0x0300: "s3",
                 0x0200: "s2", 0xFEFF: "d1", 0xFEFD: "d2", 0xFEFC: "d3"}


class _Reader:
    """Bounds-checked reads; a short read raises ValueError, caught by the caller."""

    __slots__ = ("data", "position")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.position = 0

    # A ClientHello is a few dozen of these reads, so each is one call.
    def take(self, count: int) -> bytes:
        position = self.position
        end = position + count
        if count < 0 or end > len(self.data):
            raise ValueError("truncated")
        self.position = end
        return self.data[position:end]

    def integer(self, size: int) -> int:
        position = self.position
        end = position + size
        if end > len(self.data):
            raise ValueError("truncated")
        self.position = end
        return int.from_bytes(self.data[position:end], "big")

    def vector(self, length_size: int) -> bytes:
        data = self.data
        position = self.position
        start = position + length_size
        if start > len(data):
            raise ValueError("truncated")
        end = start + int.from_bytes(data[position:start], "big")
        if end > len(data):
            raise ValueError("truncated")
        self.position = end
        return data[start:end]

    @property
    def remaining(self) -> int:
        return len(self.data) - self.position


def _u16_list(data: bytes) -> list[int]:
    """Big-endian 16-bit values; an odd last byte is ignored."""
    return list(struct.unpack_from(">%dH" % (len(data) >> 1), data))


class ClientHello:
    """Fields of a ClientHello needed for SNI, JA3 and JA4."""

    __slots__ = ("version", "ciphers", "extensions", "groups", "point_formats",
                 "signature_algorithms", "alpn", "sni", "supported_versions")

    def __init__(self) -> None:
        self.version = 0
        self.ciphers: list[int] = []
        self.extensions: list[int] = []
        self.groups: list[int] = []
        self.point_formats: list[int] = []
        self.signature_algorithms: list[int] = []
        self.alpn: list[bytes] = []
        self.sni: bytes | None = None
        self.supported_versions: list[int] = []


def _span(data: bytes, position: int, end: int, size: int) -> tuple[int, int]:
    """(start, stop) of the vector whose `size`-byte length is at `position`;
    ValueError when it does not fit before `end`."""
    start = position + size
    if start > end:
        raise ValueError("truncated")
    stop = start + int.from_bytes(data[position:start], "big")
    if stop > end:
        raise ValueError("truncated")
    return start, stop


def parse_client_hello(body: bytes) -> ClientHello:
    """Parse a ClientHello body (after the 4-byte handshake header).
    Raises ValueError when truncated or malformed.

    Offsets into `body` rather than a _Reader per nested vector: every
    vector is still bounded by the one that contains it."""
    hello = ClientHello()
    end = len(body)
    if end < 2:
        raise ValueError("truncated")
    hello.version = (body[0] << 8) | body[1]
    position = 34                                           # version, random
    if position > end:
        raise ValueError("truncated")
    position = _span(body, position, end, 1)[1]             # session id
    start, position = _span(body, position, end, 2)
    hello.ciphers = _u16_list(body[start:position])
    position = _span(body, position, end, 1)[1]             # compression methods
    if position == end:
        return hello                   # no extensions (old clients)
    position, extensions_end = _span(body, position, end, 2)
    while position < extensions_end:
        if position + 2 > extensions_end:
            raise ValueError("truncated")
        ext_type = (body[position] << 8) | body[position + 1]
        ext_start, ext_end = _span(body, position + 2, extensions_end, 2)
        position = ext_end
        hello.extensions.append(ext_type)
        if ext_start == ext_end:
            continue
        if ext_type == _EXT_SNI:
            names, names_end = _span(body, ext_start, ext_end, 2)
            while names < names_end:
                if names + 1 > names_end:
                    raise ValueError("truncated")
                name_type = body[names]
                name_start, names = _span(body, names + 1, names_end, 2)
                if name_type == 0 and hello.sni is None:
                    hello.sni = body[name_start:names]
        elif ext_type == _EXT_GROUPS:
            start, stop = _span(body, ext_start, ext_end, 2)
            hello.groups = _u16_list(body[start:stop])
        elif ext_type == _EXT_POINT_FORMATS:
            start, stop = _span(body, ext_start, ext_end, 1)
            hello.point_formats = list(body[start:stop])
        elif ext_type == _EXT_SIG_ALGS:
            start, stop = _span(body, ext_start, ext_end, 2)
            hello.signature_algorithms = _u16_list(body[start:stop])
        elif ext_type == _EXT_ALPN:
            protocol, protocols_end = _span(body, ext_start, ext_end, 2)
            while protocol < protocols_end:
                start, protocol = _span(body, protocol, protocols_end, 1)
                hello.alpn.append(body[start:protocol])
        elif ext_type == _EXT_SUPPORTED_VERSIONS:
            start, stop = _span(body, ext_start, ext_end, 1)
            hello.supported_versions = _u16_list(body[start:stop])
    return hello


def ja3_string(hello: ClientHello) -> str:
    def join(values):
        return "-".join([str(v) for v in values if v not in _GREASE])
    return ",".join((str(hello.version), join(hello.ciphers), join(hello.extensions),
                     join(hello.groups), "-".join([str(v) for v in hello.point_formats])))


def ja4(hello: ClientHello, transport: str = "t") -> str:
    versions = [v for v in hello.supported_versions if v not in _GREASE]
    version = max(versions) if versions else hello.version
    ciphers = [c for c in hello.ciphers if c not in _GREASE]
    extensions = [e for e in hello.extensions if e not in _GREASE]
    if hello.alpn and hello.alpn[0]:
        first = hello.alpn[0]
        if chr(first[0]).isalnum() and chr(first[-1]).isalnum() and first[0] < 128 and first[-1] < 128:
            alpn = chr(first[0]) + chr(first[-1])
        else:
            hexed = first.hex()
            alpn = hexed[0] + hexed[-1]
    else:
        alpn = "00"
    part_a = (f"{transport}{_JA4_VERSIONS.get(version, '00')}"
              f"{'d' if hello.sni is not None else 'i'}"
              f"{min(len(ciphers), 99):02d}{min(len(extensions), 99):02d}{alpn}")

    def digest(text: str) -> str:
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    part_b = digest(",".join(["%04x" % c for c in sorted(ciphers)])) if ciphers else "000000000000"
    hashed_extensions = sorted([e for e in extensions if e != _EXT_SNI and e != _EXT_ALPN])
    if hashed_extensions:
        text = ",".join(["%04x" % e for e in hashed_extensions])
        if hello.signature_algorithms:
            text += "_" + ",".join(["%04x" % s for s in hello.signature_algorithms])
        part_c = digest(text)
    else:
        part_c = "000000000000"
    return f"{part_a}_{part_b}_{part_c}"


def _dns_alt_names(x509, certificate) -> tuple[str, ...]:
    """The certificate's subjectAltName DNS names (`tls.subjectaltname`)."""
    try:
        extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return ()
    return tuple(extension.value.get_values_for_type(x509.DNSName))


def _distinguished_name(name) -> str:
    """Suricata's format: attributes in certificate order, ", "-joined."""
    return ", ".join(f"{attribute.rfc4514_attribute_name}={attribute.value}"
                     for rdn in name.rdns for attribute in rdn)


# Decoded server certificates by their DER bytes. Devices meet the same few
# servers over and over, and decoding a certificate with cryptography is the
# costliest step of a TLS flow; the fields are a function of the bytes.
# Bounded: at most _CERTIFICATE_CACHE_LIMIT entries (cleared when full) of at
# most _CERTIFICATE_CACHE_BYTES each (real leaf certificates are 1-2 KB), so
# under 2 MB whatever servers send. Only a decode that ran to its end is kept.
_CERTIFICATE_CACHE_LIMIT = 256
_CERTIFICATE_CACHE_BYTES = 8192
_certificates: dict[bytes, tuple] = {}
_INVALID_CERTIFICATE = ("invalid",)


def _remember_certificate(der: bytes, fields: tuple) -> None:
    if len(der) > _CERTIFICATE_CACHE_BYTES:
        return
    if len(_certificates) >= _CERTIFICATE_CACHE_LIMIT:
        _certificates.clear()
    _certificates[der] = fields


class _Direction:
    """One direction's buffers, and its state as Suricata's parser keeps it
    (SSLStateConnp): what that side's events depend on."""

    __slots__ = ("records", "handshake", "encrypted", "stopped", "version", "header_checked",
                 "sslv2_skip", "sslv2_record", "message_left", "message_type", "message_body",
                 "change_cipher_spec", "sni", "certificates", "ja3_done")

    def __init__(self) -> None:
        self.records = bytearray()
        self.handshake = bytearray()
        self.encrypted = False
        self.stopped = False
        self.version = 0
        """Suricata's record version for this side: the last record header's
        until this side's hello is read, then the hello's."""
        self.header_checked = False
        """The header of the record at the start of `records` passed its checks."""
        self.sslv2_skip = 0
        """Bytes of the current SSLv2 record's body still to come."""
        self.sslv2_record: tuple | None = None
        """(message type, record length, hello version) of the SSLv2 record
        being skipped: Suricata reads it once all of it is there."""
        self.message_left = 0
        """Bytes still to come of a handshake message that Suricata frames
        over several records."""
        self.message_type = 0
        self.message_body: bytearray | None = None
        """That message's body so far, when its content matters (a hello, the
        first Certificate); at most MAX_HANDSHAKE_BYTES."""
        self.change_cipher_spec = False
        self.sni = False
        """A hello of this side carried a valid SNI (a second one is an event)."""
        self.certificates = False
        """Suricata read this side's Certificate message (it reads one)."""
        self.ja3_done = False
        """A hello of this side was read to its end: Suricata fixed its JA3
        (with ET's ja3 rules loaded it computes JA3), and no longer walks a
        later hello's curve list pair by pair."""


class _SslFlags:
    """Suricata's per-flow flags (SSLState.flags) that its events depend on."""

    __slots__ = ("client_hello", "server_hello", "change_cipher_spec", "client_versions_extension",
                 "log_without_cert", "heartbeat_in_flight", "heartbeat_from_client", "stopped")

    def __init__(self) -> None:
        self.client_hello = False          # a ClientHello was read (either side)
        self.server_hello = False
        self.change_cipher_spec = False    # either side: handshake records are no longer read
        self.client_versions_extension = False
        self.log_without_cert = False      # a TLS 1.3 ServerHello: no session id nor compression
        self.heartbeat_in_flight = False
        self.heartbeat_from_client = False
        self.stopped = False
        """Suricata's parser stopped on this flow (an error it treats as
        fatal, a gap), or this parser can no longer follow it: no more of
        Suricata's events are raised."""


class TlsParser:
    """One TLS connection; a single transaction (tx_id 0)."""

    __slots__ = ("events", "client", "server", "tx", "record", "handshake_done",
                 "client_hello_seen", "server_hello_seen", "certificate_seen", "ssl", "raised")

    def __init__(self, config=None) -> None:
        self.events: list[str] = []
        self.client = _Direction()
        self.server = _Direction()
        self.tx = Tx(app_proto="tls", tx_id=0, to_server=True)
        self.record: dict = {}
        self.handshake_done = False
        self.client_hello_seen = False
        self.server_hello_seen = False
        self.certificate_seen = False
        self.ssl = _SslFlags()
        self.raised = False
        """An event was put on the transaction by the current `feed`."""

    @property
    def buffered_bytes(self) -> int:
        return sum(len(d.records) + len(d.handshake) + len(d.message_body or b"")
                   for d in (self.client, self.server))

    def feed(self, data: bytes, to_server: bool, gap: bool = False) -> list[Tx]:
        side = self.client if to_server else self.server
        if gap:
            if not side.encrypted and not side.stopped:
                self.events.append("tls.gap")
            side.stopped = True
            side.records = bytearray()
            side.handshake = bytearray()
            # Suricata's TLS parser takes no gaps: it stops on the flow.
            self.ssl.stopped = True
        if side.stopped or self.tx.complete:
            return []
        self.raised = False
        side.records += data
        changed = self._records(side, to_server)
        if self.client.encrypted and self.server.encrypted and not self.tx.complete:
            self.handshake_done = True
            self._complete()
            changed = True
        if changed or self.raised:
            self.tx.to_server = to_server
            return [self.tx]
        return []

    def finish(self) -> list[Tx]:
        if self.tx.complete or not (self.client_hello_seen or self.server_hello_seen):
            return []
        self._complete()
        return [self.tx]

    # -- records --------------------------------------------------------------------

    def _records(self, side: _Direction, to_server: bool) -> bool:
        buffer = side.records
        position = 0
        end = len(buffer)
        changed = False
        while position < end:
            if side.sslv2_record is not None:
                take = min(side.sslv2_skip, end - position)
                position += take
                side.sslv2_skip -= take
                if side.sslv2_skip:
                    break
                record, side.sslv2_record = side.sslv2_record, None
                if not self._sslv2_record(side, *record):
                    return self._stop(side, changed)
                continue
            content_type = buffer[position]
            if content_type & 0xC0:
                # Suricata reads a record starting with one of these bits as SSLv2.
                length_bytes = 2 if content_type & 0x80 else 3
                header = length_bytes + 1              # the lengths, then the message type
                if end - position < header:
                    break
                length = ((content_type & (0x7F if length_bytes == 2 else 0x3F)) << 8) \
                    | buffer[position + 1]
                message_type = buffer[position + header - 1]
                body = length - 1 if length else 0
                hello = message_type == _SSLV2_CLIENT_HELLO and length >= 7
                # It reads the record when all of it is there and a byte
                # follows its header; a ClientHello's version opens the body.
                if end - position < header + (1 if not body else 2 if hello else 0):
                    break
                version = ((buffer[position + header] << 8) | buffer[position + header + 1]
                           if hello else 0)
                side.version = _SSLV2
                position += header
                side.sslv2_skip = body
                side.sslv2_record = (message_type, length, version)
                continue
            if end - position < 5:
                break
            length = (buffer[position + 3] << 8) | buffer[position + 4]
            if not side.header_checked:
                verdict = self._record_header(side, content_type,
                                              (buffer[position + 1] << 8) | buffer[position + 2],
                                              length, to_server)
                if verdict == _RECORD_SKIP_REST:
                    # Suricata drops what it was given with the record and
                    # starts afresh with the next data (TLS 1.0/1.1 peers).
                    side.records = bytearray()
                    return changed
                if verdict == _RECORD_REFUSED:
                    return self._stop(side, changed)
                side.header_checked = True
            if end - position < 5 + length:
                break
            side.header_checked = False
            start = position + 5
            position = start + length
            if content_type == _CONTENT_HANDSHAKE:
                if not self.ssl.stopped and self._suricata_reads_handshake():
                    self._handshake_record(side, buffer, start, position, to_server)
                if side.encrypted:
                    continue
                # Only handshake fragments are copied: application data
                # records (up to 16 KB each) are framed and skipped.
                if len(side.handshake) + length > MAX_HANDSHAKE_BYTES:
                    self.events.append("tls.handshake_too_large")
                    self.ssl.stopped = True       # this side's events can no longer be followed
                    side.stopped = True
                    side.handshake = bytearray()
                    break
                side.handshake += buffer[start:position]
                changed |= self._handshake_messages(side, to_server)
            elif content_type == _CONTENT_APPDATA:
                side.encrypted = True
                side.handshake = bytearray()
            elif content_type == _CONTENT_CCS:
                side.encrypted = True
                side.handshake = bytearray()
                side.change_cipher_spec = True
                self.ssl.change_cipher_spec = True
            elif content_type == _CONTENT_HEARTBEAT:
                if not self.ssl.stopped:
                    self._heartbeat(buffer, start, length, to_server)
            elif content_type == _CONTENT_ALERT and length < 2:     # its level and description
                self._suricata_stops("tls.invalid_alert_message")
        del buffer[:position]
        return changed

    def _stop(self, side: _Direction, changed: bool) -> bool:
        """The direction's records can no longer be framed: its parsing ends."""
        side.stopped = True
        side.records = bytearray()
        side.handshake = bytearray()
        side.message_body = None
        return changed

    def _record_header(self, side: _Direction, content_type: int, version: int, length: int,
                       to_server: bool) -> int:
        """Suricata's checks of a TLS record header, in its order."""
        ssl = self.ssl
        if side.version == _SSLV2:
            side.version = 0
        previous = side.version
        # Once this side's hello is read, its version stands for the records'.
        if not ((ssl.client_hello if to_server else ssl.server_hello) and side.version):
            side.version = version
        if content_type not in _CONTENT_TYPES:
            if previous in (_TLS10, _TLS11):
                # As Wireshark does: TLS 1.0 and 1.1 peers may send others.
                self._event("tls.invalid_record_type")
                side.version = previous
                return _RECORD_SKIP_REST
            return self._refused("tls.invalid_record_type")
        if not length:
            return self._refused("tls.invalid_record_length")
        if side.version not in _VALID_VERSIONS:
            return self._refused("tls.invalid_record_version")
        if length > MAX_RECORD_LENGTH:
            return self._refused("tls.invalid_record_length")
        return _RECORD_OK

    def _refused(self, *names: str) -> int:
        """A record Suricata stops on: its events; once it has stopped (it
        raises no more), this parser's own log-only one."""
        if self.ssl.stopped:
            self.events.append("tls.invalid_record")
        else:
            self._suricata_stops(*names)
        return _RECORD_REFUSED

    def _sslv2_record(self, side: _Direction, message_type: int, length: int, version: int) -> bool:
        """An SSLv2 record, once Suricata would read it; False: it stops there."""
        ssl = self.ssl
        if not length:
            self._refused("tls.invalid_sslv2_header", "tls.invalid_ssl_record")
            return False
        if message_type == _SSLV2_ERROR:
            self._event("tls.error_message_encountered")
        elif message_type == _SSLV2_CLIENT_HELLO:
            if length < 7:              # its version, cipher and session id lengths
                self._refused("tls.invalid_ssl_record")
                return False
            ssl.client_hello = True
            side.version = version
        elif message_type == _SSLV2_SERVER_HELLO:
            ssl.server_hello = True
        return True

    def _handshake_messages(self, side: _Direction, to_server: bool) -> bool:
        buffer = side.handshake
        position = 0
        changed = False
        while len(buffer) - position >= 4:
            message_type = buffer[position]
            length = (buffer[position + 1] << 16) | (buffer[position + 2] << 8) | buffer[position + 3]
            if length > MAX_HANDSHAKE_BYTES:
                self.events.append("tls.handshake_too_large")
                side.stopped = True
                break
            if len(buffer) - position < 4 + length:
                break
            start = position + 4
            position = start + length
            # Only the first ClientHello, ServerHello and Certificate are
            # read (see _message); the others are not even copied.
            if to_server:
                wanted = message_type == _CLIENT_HELLO and not self.client_hello_seen
            else:
                wanted = ((message_type == _SERVER_HELLO and not self.server_hello_seen)
                          or (message_type == _CERTIFICATE and not self.certificate_seen))
            if not wanted:
                continue
            try:
                changed |= self._message(message_type, bytes(buffer[start:position]), to_server)
            except ValueError:
                # This parser could not read the message (its JA3, SNI or
                # certificate fields stay unset). Not Suricata's events, which
                # read messages its own way (_handshake_record).
                self.events.append("tls.handshake_unreadable")
        del buffer[:position]
        return changed

    def _message(self, message_type: int, body: bytes, to_server: bool) -> bool:
        buffers = self.tx.buffers
        if message_type == _CLIENT_HELLO and to_server and not self.client_hello_seen:
            hello = parse_client_hello(body)
            self.client_hello_seen = True
            ja3 = ja3_string(hello)
            ja3_hash = hashlib.md5(ja3.encode()).hexdigest()
            fingerprint = ja4(hello)
            buffers["ja3.string"] = ja3.encode()
            buffers["ja3.hash"] = ja3_hash.encode()
            buffers["ja4.hash"] = fingerprint.encode()
            self._random(body[2:34])
            self.record["ja3"] = {"hash": ja3_hash, "string": ja3}
            self.record["ja4"] = fingerprint
            if hello.sni is not None:
                buffers["tls.sni"] = hello.sni
                self.record["sni"] = hello.sni.decode("utf-8", "replace")
            if hello.alpn:
                buffers["tls.alpn"] = list(hello.alpn)
            # As Suricata: the first version of supported_versions it knows
            # (GREASE and noise skipped) is the client's, not the highest.
            client_version = next((v for v in hello.supported_versions
                                   if v in VERSION_NAMES or v >> 8 == 0x7F), hello.version)
            buffers["tls.version"] = VERSION_NAMES.get(client_version, hex(client_version)).encode()
            return True
        if message_type == _SERVER_HELLO and not to_server and not self.server_hello_seen:
            self._server_hello(body)
            self.server_hello_seen = True
            return True
        if message_type == _CERTIFICATE and not to_server and not self.certificate_seen:
            self.certificate_seen = True
            self._certificate(body)
            return True
        return False

    def _random(self, random: bytes) -> None:
        """`tls.random` (32 bytes) and its two parts, `tls.random_time` (4)
        and `tls.random_bytes` (28), of the hello being read: the client's,
        then the server's (rules pick one with flow:to_server/to_client)."""
        if len(random) != 32:
            return
        buffers = self.tx.buffers
        buffers["tls.random"] = bytes(random)
        buffers["tls.random_time"] = bytes(random[:4])
        buffers["tls.random_bytes"] = bytes(random[4:])

    def _server_hello(self, body: bytes) -> None:
        reader = _Reader(body)
        version = reader.integer(2)
        self._random(reader.take(32))
        reader.vector(1)
        cipher = reader.integer(2)
        reader.integer(1)
        extensions: list[int] = []
        if reader.remaining:
            ext_reader = _Reader(reader.vector(2))
            while ext_reader.remaining:
                ext_type = ext_reader.integer(2)
                ext = ext_reader.vector(2)
                extensions.append(ext_type)
                if ext_type == _EXT_SUPPORTED_VERSIONS and len(ext) == 2:
                    version = int.from_bytes(ext, "big")
        name = VERSION_NAMES.get(version, hex(version))
        self.tx.buffers["tls.version"] = name.encode()
        self.record["version"] = name
        ja3s = f"{int.from_bytes(body[:2], 'big')},{cipher}," \
               + "-".join(str(e) for e in extensions)
        ja3s_hash = hashlib.md5(ja3s.encode()).hexdigest()
        self.tx.buffers["ja3s.hash"] = ja3s_hash.encode()
        self.tx.buffers["ja3s.string"] = ja3s.encode()
        self.record["ja3s"] = {"hash": ja3s_hash, "string": ja3s}

    def _certificate(self, body: bytes) -> None:
        reader = _Reader(body)
        chain = _Reader(reader.vector(3))
        if not chain.remaining:
            return
        # `tls.certs`: every certificate of the chain as sent (DER), a
        # multi-buffer as Suricata's; the fields below are the first one's.
        certificates = [chain.vector(3)]
        count = 1
        try:
            while chain.remaining:
                certificate = chain.vector(3)
                count += 1
                if len(certificates) < MAX_CHAIN_CERTIFICATES:
                    certificates.append(certificate)
        except ValueError:
            pass        # what follows is no certificate: the ones before it stand
        self.tx.buffers["tls.certs"] = certificates
        # `tls.cert_chain_len`: an integer keyword, kept as one byte.
        self.tx.buffers["tls.cert_chain_len"] = bytes([min(count, 255)])
        der = certificates[0]
        cached = _certificates.get(der)
        if cached is not None:
            if cached is _INVALID_CERTIFICATE:
                self.events.append("tls.certificate_invalid")
            else:
                self._certificate_fields(*cached)
            return
        x509 = load_x509()
        if x509 is None:
            return      # certificate fields are optional; the handshake fields are not
        try:
            certificate = x509.load_der_x509_certificate(der)
            subject = _distinguished_name(certificate.subject)
            issuer = _distinguished_name(certificate.issuer)
            sans = _dns_alt_names(x509, certificate)
        except Exception:  # noqa: BLE001 - any malformed certificate is just an event
            _remember_certificate(der, _INVALID_CERTIFICATE)
            self.events.append("tls.certificate_invalid")
            return
        self.tx.buffers["tls.cert_subject"] = subject.encode()
        self.tx.buffers["tls.cert_issuer"] = issuer.encode()
        # As Suricata writes both (buffer and EVE): the serial's DER bytes
        # (a leading 00 kept when the high bit is set) and the SHA-1, as
        # colon-separated hex; ET's rules match these forms.
        number = certificate.serial_number
        raw_serial = number.to_bytes((number.bit_length() + 8) // 8, "big", signed=number < 0)
        serial = raw_serial.hex(":").upper()
        fingerprint = hashlib.sha1(der).digest().hex(":")
        not_before = not_after = None
        try:
            not_before = certificate.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%S")
            not_after = certificate.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%S")
        except (AttributeError, ValueError):
            pass
        fields = (subject, issuer, serial, fingerprint, not_before, not_after, sans)
        _remember_certificate(der, fields)
        self._certificate_fields(*fields)

    def _certificate_fields(self, subject: str, issuer: str, serial: str, fingerprint: str,
                            not_before: str | None, not_after: str | None,
                            sans: tuple[str, ...]) -> None:
        buffers = self.tx.buffers
        buffers["tls.cert_subject"] = subject.encode()
        buffers["tls.cert_issuer"] = issuer.encode()
        buffers["tls.cert_serial"] = serial.encode()
        buffers["tls.cert_fingerprint"] = fingerprint.encode()
        if sans:
            buffers["tls.subjectaltname"] = [name.encode() for name in sans]
        record = self.record
        record["subject"] = subject
        record["issuerdn"] = issuer
        record["serial"] = serial
        record["fingerprint"] = fingerprint
        if sans:
            record["subjectaltname"] = list(sans)
        if not_before is not None:
            record["notbefore"] = not_before
        if not_after is not None:
            record["notafter"] = not_after

    # -- Suricata's events ----------------------------------------------------------
    # Each condition is the one Suricata 8's app-layer-ssl.c raises the event
    # on, met in the same direction; the comments name its functions.

    def _event(self, name: str) -> None:
        """One of Suricata's events: on the transaction, for app-layer-event,
        and logged as an anomaly like the others."""
        if self.ssl.stopped:
            return
        if name not in self.tx.events:
            self.tx.events += (name,)
        self.events.append(name)
        self.raised = True

    def _suricata_stops(self, *names: str) -> None:
        """Events after which Suricata's parser gives up on the flow
        (APP_LAYER_ERROR: the app-layer is disabled in both directions)."""
        for name in names:
            self._event(name)
        self.ssl.stopped = True

    def _suricata_reads_handshake(self) -> bool:
        """After a ChangeCipherSpec from either side Suricata skips handshake
        records, but for a TLS 1.3 client's before the ServerHello."""
        ssl = self.ssl
        return not ssl.change_cipher_spec or (
            ssl.client_hello and self.client.version > _TLS12 and not ssl.server_hello)

    def _handshake_record(self, side: _Direction, buffer: bytearray, start: int, stop: int,
                          to_server: bool) -> None:
        """A handshake record as Suricata frames its messages
        (SSLv3ParseHandshakeProtocol): a message header must lie within one
        record, a body may span records; an unknown type is skipped to the
        end of its record at most."""
        if stop - start < 4:
            self._suricata_stops("tls.invalid_ssl_record")
            return
        position = start
        while position < stop:
            if side.message_left:
                take = min(side.message_left, stop - position)
                if side.message_body is not None:
                    side.message_body += buffer[position:position + take]
                position += take
                side.message_left -= take
                if not side.message_left and side.message_body is not None:
                    body, side.message_body = bytes(side.message_body), None
                    self._message_events(side, side.message_type, body, to_server)
                continue
            if stop - position < 4:
                self._suricata_stops("tls.invalid_ssl_record", "tls.invalid_handshake_message")
                return
            message_type = buffer[position]
            length = ((buffer[position + 1] << 16) | (buffer[position + 2] << 8)
                      | buffer[position + 3])
            position += 4
            available = stop - position
            if message_type not in _SURICATA_HANDSHAKE_TYPES:
                position += min(length, available)
                if not side.change_cipher_spec:     # else an encrypted Finished, say
                    self._event("tls.invalid_handshake_message")
                continue
            wanted = message_type in (_CLIENT_HELLO, _SERVER_HELLO) or (
                message_type == _CERTIFICATE and not side.certificates)
            if length > available:
                side.message_left = length - available
                side.message_type = message_type
                side.message_body = None
                if wanted:
                    if length <= MAX_HANDSHAKE_BYTES:
                        side.message_body = bytearray(buffer[position:stop])
                    else:
                        # Framed as Suricata frames it, but not kept: its
                        # content's events are the ones not followed.
                        self.events.append("tls.handshake_too_large")
                return
            if wanted:
                self._message_events(side, message_type, bytes(buffer[position:position + length]),
                                     to_server)
                if self.ssl.stopped:
                    return
            position += length

    def _message_events(self, side: _Direction, message_type: int, body: bytes,
                        to_server: bool) -> None:
        if message_type == _CERTIFICATE:
            self._certificate_events(side, body)
            return
        client = message_type == _CLIENT_HELLO
        self._hello_events(side, body, client)
        if client:
            self.ssl.client_hello = True
        else:
            self.ssl.server_hello = True

    def _hello_events(self, side: _Direction, body: bytes, client: bool) -> None:
        """A ClientHello or ServerHello as TLSDecodeHandshakeHello reads it:
        a field that does not fit is tls.handshake_invalid_length, and the
        rest of the hello is not read."""
        ssl = self.ssl
        end = len(body)
        if end < 2:
            return self._event("tls.handshake_invalid_length")
        version = (body[0] << 8) | body[1]
        if not client and (version == _TLS13 or version >> 8 == 0x7F):
            ssl.log_without_cert = True
        if version == _TLS13 or 0x7F01 <= version < 0x7F10:
            version = _TLS13_PRE_DRAFT16          # drafts it cannot tell apart
        side.version = version
        position = 34                             # version, random
        if position > end:
            return self._event("tls.handshake_invalid_length")
        # TLS 1.3 drafts dropped the ServerHello's session id and compression.
        legacy_fields = client or not ssl.log_without_cert
        if legacy_fields:
            if position + 1 > end or position + 1 + body[position] > end:
                return self._event("tls.handshake_invalid_length")
            position += 1 + body[position]
        if position + 2 > end:
            return self._event("tls.handshake_invalid_length")
        if client:
            ciphers = (body[position] << 8) | body[position + 1]
            position += 2
            if position + ciphers > end or ciphers % 2:
                return self._event("tls.handshake_invalid_length")
            position += ciphers
        else:
            position += 2                         # the chosen cipher suite
        if legacy_fields:
            if position + 1 > end:
                return self._event("tls.handshake_invalid_length")
            position += 1 + body[position] if client else 1
            if position > end:
                return self._event("tls.handshake_invalid_length")
        if position + 2 > end:                    # no extensions
            side.ja3_done = True
            return None
        extensions_end = position + 2 + ((body[position] << 8) | body[position + 1])
        position += 2
        if extensions_end > end:
            return self._event("tls.handshake_invalid_length")
        ja3 = not side.ja3_done
        while position < extensions_end:
            if position + 4 > end:
                return self._event("tls.handshake_invalid_length")
            extension = (body[position] << 8) | body[position + 1]
            length = (body[position + 2] << 8) | body[position + 3]
            position += 4
            if position + length > end or position + length > extensions_end:
                return self._event("tls.handshake_invalid_length")
            if length:
                outcome = self._extension_events(side, extension, body, position, position + length,
                                                 client, ja3)
                if outcome is not None:
                    # Suricata stops reading the extensions; after some
                    # failures it still takes the hello as read (its JA3).
                    side.ja3_done = side.ja3_done or outcome
                    return None
            position += length
        side.ja3_done = True
        return None

    def _extension_events(self, side: _Direction, extension: int, body: bytes, start: int,
                          stop: int, client: bool, ja3: bool) -> bool | None:
        """One non-empty hello extension as Suricata reads it. None: go on;
        else Suricata stops at it, True when it still takes the hello as
        read (TLSDecodeHSHelloExtensions' `end`), False when not (`error`)."""
        length = stop - start
        if extension == _EXT_SNI:
            if length < 3:
                self._event("tls.handshake_invalid_length")
                return True
            if body[start + 2] != 0:              # only host_name (RFC 6066, 3)
                self._event("tls.invalid_sni_type")
                return True
            if length < 5:
                self._event("tls.handshake_invalid_length")
                return True
            # Only the list's first name is read.
            name_length = (body[start + 3] << 8) | body[start + 4]
            if name_length > length - 5 or name_length > 255 or not name_length:
                self._event("tls.invalid_sni_length")
                return True
            if side.sni:
                self._event("tls.multiple_sni_extensions")
            side.sni = True
        elif extension == _EXT_GROUPS:
            count = (body[start] << 8) | body[start + 1] if length >= 2 else 0
            # For JA3 the first ClientHello's list is read pair by pair: an
            # odd length must then leave a byte in the extension.
            if length < 2 or count > length - 2 or (
                    client and ja3 and count % 2 and count + 3 > length):
                self._event("tls.handshake_invalid_length")
                return False
        elif extension == _EXT_POINT_FORMATS:
            if body[start] > length - 1:
                self._event("tls.handshake_invalid_length")
                return False
        elif extension == _EXT_SIG_ALGS:
            count = (body[start] << 8) | body[start + 1] if length >= 2 else 1
            if count % 2 or count > length - 2:
                self._event("tls.handshake_invalid_length")
                return True
        elif extension == _EXT_ALPN:
            count = (body[start] << 8) | body[start + 1] if length >= 2 else length
            if count > length - 2:
                self._event("tls.handshake_invalid_length")
                return True
            # A protocol name longer than the extension is an error; one
            # only past the list's own length ends the list.
            position = start + 2
            list_end = position + count
            while position < list_end:
                name_end = position + 1 + body[position]
                if name_end > stop:
                    self._event("tls.handshake_invalid_length")
                    return True
                if name_end > list_end:
                    break
                position = name_end
        elif extension == _EXT_SUPPORTED_VERSIONS:
            if client:
                count = body[start]
                if count < 2 or count > length - 1:
                    self._event("tls.handshake_invalid_length")
                    return True
                # The first version it knows is the client's (GREASE skipped).
                for version in _u16_list(body[start + 1:start + 1 + count]):
                    if version in _VALID_VERSIONS:
                        side.version = version
                        break
                self.ssl.client_versions_extension = True
            else:
                if length < 2:
                    self._event("tls.handshake_invalid_length")
                    return True
                version = (body[start] << 8) | body[start + 1]
                if self.ssl.client_versions_extension and version > _TLS12:
                    self.ssl.log_without_cert = True
                side.version = version
        return None

    def _certificate_events(self, side: _Direction, body: bytes) -> None:
        """A side's first Certificate message (TlsDecodeHSCertificates): a
        certificate whose length runs past the chain is tls.invalid_certificate.
        A chain longer than the message is dropped without an event, and
        does not count as the side's Certificate."""
        end = len(body)
        if end < 3:
            return
        chain_end = 3 + ((body[0] << 16) | (body[1] << 8) | body[2])
        if chain_end > end:
            return
        side.certificates = True
        position = 3
        while position < chain_end:
            if position + 3 > chain_end:
                self._event("tls.invalid_certificate")
                return
            size = (body[position] << 16) | (body[position + 1] << 8) | body[position + 2]
            position += 3 + size
            if position > chain_end:
                self._event("tls.invalid_certificate")
                return

    def _heartbeat(self, buffer: bytearray, start: int, length: int, to_server: bool) -> None:
        """A heartbeat record (SSLv3ParseHeartbeatProtocol). In clear text,
        a request whose payload length runs past the record is Heartbleed
        (CVE-2014-0160): tls.overflow_heartbeat_message. Heartbeats under
        encryption are only counted (one in flight per side)."""
        ssl = self.ssl
        if length < 3:                            # type and payload length
            return
        if not ssl.change_cipher_spec and buffer[start] not in (_HEARTBEAT_REQUEST,
                                                                _HEARTBEAT_RESPONSE):
            self._suricata_stops("tls.invalid_heartbeat_message")
            return
        if not ssl.heartbeat_in_flight:
            ssl.heartbeat_in_flight = True
            ssl.heartbeat_from_client = to_server
            if ssl.change_cipher_spec:
                return
            payload = (buffer[start + 1] << 8) | buffer[start + 2]
            if payload + 3 > length:
                self._suricata_stops("tls.overflow_heartbeat_message")
            elif length - payload - 3 < _HEARTBEAT_MIN_PADDING:
                self._suricata_stops("tls.invalid_heartbeat_message")
        elif ssl.heartbeat_from_client == to_server:
            # A second one from the side whose heartbeat is unanswered.
            self._suricata_stops("tls.invalid_heartbeat_message")
        else:
            ssl.heartbeat_in_flight = False       # the answer

    def _complete(self) -> None:
        self.tx.complete = True
        order = ("subject", "issuerdn", "serial", "fingerprint", "subjectaltname", "sni", "version", "notbefore",
                 "notafter", "ja3", "ja3s", "ja4")
        self.tx.record = {key: self.record[key] for key in order if key in self.record}
