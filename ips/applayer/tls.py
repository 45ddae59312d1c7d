"""TLS handshake parser (sans-IO): SNI, versions, JA3/JA3S, JA4, certificate.

Theory of operation
-------------------
Per direction, bytes go through two bounded buffers:

* `records`: TLS record framing (5-byte header + fragment). At most one
  record (MAX_RECORD_BYTES) is ever waiting for its end.
* `handshake`: the concatenated fragments of handshake records
  (content type 22), bounded by MAX_HANDSHAKE_BYTES. Handshake messages may
  be split over many records (even 1-byte records, a known evasion) and over
  many TCP segments; we parse a message only once all its bytes are here.

Consumed bytes are removed once per `feed`, so work is O(bytes).
After a ChangeCipherSpec or application-data record a direction is encrypted
and its handshake content is no longer parsed. When both directions are
encrypted the transaction is complete and `handshake_done` tells the engine
the flow can be bypassed.

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

MAX_RECORD_BYTES = 5 + 16384 + 2048
"""Largest legal TLS record (TLSCiphertext) with its header."""
MAX_HANDSHAKE_BYTES = 64 * 1024
"""Handshake bytes buffered per direction (certificate chains included)."""
MAX_CHAIN_CERTIFICATES = 16
"""Certificates of a chain exposed as `tls.certs`."""

_CONTENT_CCS, _CONTENT_ALERT, _CONTENT_HANDSHAKE, _CONTENT_APPDATA = 20, 21, 22, 23
_CLIENT_HELLO, _SERVER_HELLO, _CERTIFICATE = 1, 2, 11

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
    __slots__ = ("records", "handshake", "encrypted", "stopped")

    def __init__(self) -> None:
        self.records = bytearray()
        self.handshake = bytearray()
        self.encrypted = False
        self.stopped = False


class TlsParser:
    """One TLS connection; a single transaction (tx_id 0)."""

    __slots__ = ("events", "client", "server", "tx", "record", "handshake_done",
                 "client_hello_seen", "server_hello_seen", "certificate_seen")

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

    @property
    def buffered_bytes(self) -> int:
        return sum(len(d.records) + len(d.handshake) for d in (self.client, self.server))

    def feed(self, data: bytes, to_server: bool, gap: bool = False) -> list[Tx]:
        side = self.client if to_server else self.server
        if gap:
            if not side.encrypted and not side.stopped:
                self.events.append("tls.gap")
            side.stopped = True
            side.records = bytearray()
            side.handshake = bytearray()
        if side.stopped or self.tx.complete:
            return []
        side.records += data
        changed = self._records(side, to_server)
        if self.client.encrypted and self.server.encrypted and not self.tx.complete:
            self.handshake_done = True
            self._complete()
            changed = True
        if changed:
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
        changed = False
        while len(buffer) - position >= 5:
            content_type = buffer[position]
            major = buffer[position + 1]
            length = (buffer[position + 3] << 8) | buffer[position + 4]
            if content_type not in (20, 21, 22, 23, 24) or major != 3 or length > MAX_RECORD_BYTES - 5:
                self.events.append("tls.invalid_record")
                side.stopped = True
                side.records = bytearray()
                side.handshake = bytearray()
                return changed
            if len(buffer) - position < 5 + length:
                break
            start = position + 5
            position = start + length
            if content_type == _CONTENT_HANDSHAKE and not side.encrypted:
                # Only handshake fragments are copied: application data
                # records (up to 16 KB each) are framed and skipped.
                if len(side.handshake) + length > MAX_HANDSHAKE_BYTES:
                    self.events.append("tls.handshake_too_large")
                    side.stopped = True
                    side.handshake = bytearray()
                    break
                side.handshake += buffer[start:position]
                changed |= self._handshake_messages(side, to_server)
            elif content_type in (_CONTENT_CCS, _CONTENT_APPDATA):
                side.encrypted = True
                side.handshake = bytearray()
        del buffer[:position]
        if len(side.records) > MAX_RECORD_BYTES:   # cannot happen: length was checked
            side.records = bytearray()
        return changed

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
                self.events.append("tls.invalid_handshake_message")
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

    def _complete(self) -> None:
        self.tx.complete = True
        order = ("subject", "issuerdn", "serial", "fingerprint", "subjectaltname", "sni", "version", "notbefore",
                 "notafter", "ja3", "ja3s", "ja4")
        self.tx.record = {key: self.record[key] for key in order if key in self.record}
