"""FTP: where the data goes, and what the data connection carries.

The control connection (`FtpParser`) is read for the lines that announce a
data connection: the server's 227 (PASV) and 229 (EPSV) replies, the
client's PORT and EPRT commands. Each becomes an expectation (data client,
data server, data server port) that the app-layer stage keeps for a while
(`ips.applayer.AppLayer`); a new TCP flow that matches one and that no
content probe names otherwise is `ftp-data` (`FtpDataParser`), whose first
bytes are its `file.data`: what busybox `ftpget` saves, so a loader's
executable fetched over FTP meets the same virtual patch as over HTTP.

The control channel yields no transactions (no FTP rule buffer exists
here); its raw bytes are still inspected by `alert ftp` rules.

Bounds: MAX_LINE_BYTES per control line (the rest of a longer line is
skipped), MAX_EXPECTED announcements held per control connection until the
stage collects them, FILE_DATA_LIMIT bytes of a data connection kept.
"""
from __future__ import annotations

import ipaddress
import re

from ips.applayer import Tx

MAX_LINE_BYTES = 1024
MAX_EXPECTED = 16
FILE_DATA_LIMIT = 100 * 1024
"""Bytes of a data connection shown as file.data (as an HTTP body's)."""
PUBLISH_HEAD = 1024
PUBLISH_STEP = 4096
"""file.data is republished on every new byte of the first PUBLISH_HEAD
(a rule on the file's start must fire on the packet that completes it),
then every PUBLISH_STEP bytes and at the end."""

_SIX_NUMBERS = re.compile(rb"(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3})")
_EPSV_PORT = re.compile(rb"\((.)\1\1(\d{1,5})\1\)")
_EPRT = re.compile(rb"^EPRT\s+(.)([12])\1([0-9A-Fa-f:.]+)\1(\d{1,5})\1", re.I)


class FtpParser:
    """The control connection. `expected`: announced data connections as
    (host or None, port, active); None is the control connection's peer
    that accepts the data connection (the server for PASV/EPSV); active
    (PORT/EPRT): the client accepts, the server connects."""

    __slots__ = ("events", "expected", "lines", "skipping")

    def __init__(self, config=None) -> None:
        self.events: list[str] = []
        self.expected: list[tuple[str | None, int, bool]] = []
        self.lines = {True: bytearray(), False: bytearray()}
        self.skipping = {True: False, False: False}

    def feed(self, data: bytes, to_server: bool, gap: bool = False) -> list[Tx]:
        if gap:
            self.lines[to_server].clear()
            self.skipping[to_server] = True     # resync at the next line end
        held = self.lines[to_server]
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                break
            if not self.skipping[to_server]:
                held += data[start:end]
                self._line(bytes(held[:MAX_LINE_BYTES]).rstrip(b"\r"), to_server)
            held.clear()
            self.skipping[to_server] = False
            start = end + 1
        if not self.skipping[to_server]:
            held += data[start:start + max(0, MAX_LINE_BYTES - len(held))]
            if len(held) >= MAX_LINE_BYTES:
                self.skipping[to_server] = True     # the line is cut; its end is skipped
                self._line(bytes(held), to_server)
                held.clear()
        return []

    def finish(self) -> list[Tx]:
        return []

    def _line(self, line: bytes, to_server: bool) -> None:
        if len(self.expected) >= MAX_EXPECTED:
            return
        if to_server:
            upper = line[:5].upper()
            if upper.startswith(b"PORT "):
                self._six_numbers(line, active=True)
            elif upper.startswith(b"EPRT "):
                match = _EPRT.match(line)
                if match:
                    self._expect(_address(match.group(3).decode()), int(match.group(4)), True)
        elif line.startswith(b"227"):
            self._six_numbers(line, active=False)
        elif line.startswith(b"229"):
            match = _EPSV_PORT.search(line)
            if match:
                self._expect(None, int(match.group(2)), False)

    def _six_numbers(self, line: bytes, active: bool) -> None:
        match = _SIX_NUMBERS.search(line)
        if not match:
            return
        numbers = [int(n) for n in match.groups()]
        if any(n > 255 for n in numbers):
            return
        self._expect(".".join(map(str, numbers[:4])), numbers[4] * 256 + numbers[5], active)

    def _expect(self, host: str | None, port: int, active: bool) -> None:
        if 0 < port < 65536 and (host is not None or not active):
            self.expected.append((host, port, active))


def _address(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


class FtpDataParser:
    """A data connection: one transaction whose file.data is the first
    FILE_DATA_LIMIT bytes, in whichever direction they flow."""

    __slots__ = ("events", "tx", "published", "body")

    def __init__(self, config=None) -> None:
        self.events: list[str] = []
        self.tx: Tx | None = None
        self.body = bytearray()
        self.published = 0

    def feed(self, data: bytes, to_server: bool, gap: bool = False) -> list[Tx]:
        if gap or not data:
            return []
        if self.tx is None:
            self.tx = Tx(app_proto="ftp-data", tx_id=0, to_server=to_server, buffers={})
        elif self.tx.to_server != to_server:
            return []       # the file flows one way; bytes the other way are no part of it
        room = FILE_DATA_LIMIT - len(self.body)
        if room <= 0:
            return []
        self.body += data[:room]
        size = len(self.body)
        if self.published < PUBLISH_HEAD or size - self.published >= PUBLISH_STEP or size >= FILE_DATA_LIMIT:
            self._publish()
        return [self.tx]

    def finish(self) -> list[Tx]:
        if self.tx is None:
            return []
        self._publish()
        self.tx.complete = True
        return [self.tx]

    def _publish(self) -> None:
        if len(self.body) != self.published:
            self.published = len(self.body)
            self.tx.buffers["file.data"] = bytes(self.body)
