"""SSDP (UPnP discovery over UDP 1900): M-SEARCH, NOTIFY and their responses.

One datagram is one message and one transaction. SSDP is HTTP-shaped
(HTTPU), so the start line and headers are split the same way; only the
fields that identify a device are kept: ST/NT/USN/SERVER/LOCATION/USER-AGENT
(and NTS, MAN). The device description that LOCATION points to is fetched by
the device itself over HTTP; `ips.applayer.http` extracts friendlyName,
manufacturer and modelName from it when it passes the box.
"""
from __future__ import annotations

from ips.applayer import Tx

MAX_MESSAGE_BYTES = 8192
"""Bytes of one datagram parsed; SSDP messages are a few hundred bytes."""

_FIELDS = {b"st": "st", b"nt": "nt", b"nts": "nts", b"usn": "usn", b"server": "server",
           b"location": "location", b"user-agent": "user_agent", b"man": "man",
           b"cache-control": "cache_control"}


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


class SsdpParser:
    """SSDP over UDP."""

    __slots__ = ("events", "next_tx_id")

    def __init__(self, config=None) -> None:
        self.events: list[str] = []
        self.next_tx_id = 0

    def feed(self, data: bytes, to_server: bool, gap: bool = False) -> list[Tx]:
        if len(data) > MAX_MESSAGE_BYTES:
            self.events.append("ssdp.message_too_large")
            data = data[:MAX_MESSAGE_BYTES]
        lines = data.split(b"\n")
        start = lines[0].rstrip(b"\r")
        parts = start.split(b" ")
        if start.startswith(b"HTTP/"):
            record: dict = {"method": "response",
                            "status": int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None}
        elif len(parts) >= 3 and parts[-1].startswith(b"HTTP/"):
            record = {"method": _text(parts[0])}
        else:
            self.events.append("ssdp.malformed")
            return []
        buffers: dict = {"ssdp.method": parts[0]}
        for line in lines[1:]:
            line = line.rstrip(b"\r")
            if not line:
                break
            name, colon, value = line.partition(b":")
            key = _FIELDS.get(name.strip().lower())
            if colon and key and key not in record:
                record[key] = _text(value.strip())
                buffers["ssdp." + key] = value.strip()
        tx = Tx(app_proto="ssdp", tx_id=self.next_tx_id, to_server=to_server,
                buffers=buffers, record=record, complete=True)
        self.next_tx_id += 1
        return [tx]

    def finish(self) -> list[Tx]:
        return []
