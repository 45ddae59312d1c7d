"""Capture source for offline replay: classic pcap and pcapng files.

Theory of operation
-------------------
The file is read in large chunks (`CHUNK_SIZE`) into one buffer, and records
are cut out of that buffer with precompiled `struct.Struct` objects. A
per-packet `file.read()` would cost a system call and a Python call per
packet; slicing a buffer we already hold costs one allocation (the packet's
own `bytes`). When a record straddles the end of the buffer, the unread tail
is joined with the next chunk, so every byte is copied at most twice.

Error policy (decided here, relied on by the CLI):

* A file that is not a capture at all (unknown magic, shorter than a file
  header, a pcapng file whose first block is not a section header) raises
  `CaptureError` when the reader is opened; nothing has been yielded yet, so
  the caller can report "not a pcap" cleanly.
* A capture that ends in the middle of a record (the classic case of a
  capture cut off by a crash or `head -c`), or whose record header is
  nonsense (a length larger than `MAX_RECORD`, a pcapng block length that is
  not a multiple of 4), ends iteration cleanly after the last good packet.
  The reader then has `truncated = True` and a human-readable `error`.
  An IPS replaying evidence must not die on the last damaged record, but it
  must say the input was damaged.

pcapng details: every Interface Description Block carries its own link type
and timestamp resolution (`if_tsresol`, option 9) and offset (`if_tsoffset`,
option 14); Enhanced, Simple and the obsolete Packet blocks are read; all
other blocks (name resolution, statistics, custom, ...) are skipped. A new
Section Header Block resets the interface list and may switch byte order.
"""
from __future__ import annotations

import os
import struct
from typing import Iterator

from ips.packet import Packet

__all__ = ["CaptureError", "PcapReader", "read_packets", "count_packets_estimate"]

CHUNK_SIZE = 4 << 20
# Largest record we believe. Real snap lengths are <= 262144; anything above
# a few hundred KiB in a record header means the file is corrupt, and trusting
# it would make us buffer gigabytes.
MAX_RECORD = 1 << 20

_PCAP_MAGIC_MICRO = 0xA1B2C3D4
_PCAP_MAGIC_NANO = 0xA1B23C4D
_PCAPNG_SHB = 0x0A0D0D0A
_PCAPNG_BYTE_ORDER_MAGIC = 0x1A2B3C4D

_BLOCK_IDB = 1
_BLOCK_PB = 2            # obsolete Packet Block
_BLOCK_SPB = 3
_BLOCK_EPB = 6

_OPT_END = 0
_OPT_IF_TSRESOL = 9
_OPT_IF_TSOFFSET = 14


class CaptureError(Exception):
    """The file is not a pcap or pcapng capture at all."""


class _Interface:
    """One pcapng interface: what its packets' link type and clock mean."""

    __slots__ = ("linktype", "snaplen", "ts_scale", "ts_offset")

    def __init__(self, linktype: int, snaplen: int, ts_scale: float, ts_offset: int) -> None:
        self.linktype = linktype
        self.snaplen = snaplen
        self.ts_scale = ts_scale     # seconds per timestamp unit
        self.ts_offset = ts_offset   # seconds added to every timestamp


class PcapReader:
    """Iterate the packets of a pcap or pcapng file.

    Attributes the CLI uses for progress and reporting:
      `size` (file size in bytes), `bytes_read` (bytes consumed from the file
      so far, at chunk granularity), `format` ("pcap" or "pcapng"),
      `linktype` (of the pcap file, or of the first pcapng interface),
      `truncated` and `error` (see the module docstring), `packets`
      (records yielded so far).
    """

    __slots__ = ("path", "size", "bytes_read", "format", "linktype", "truncated",
                 "error", "packets", "start_cnt", "_file", "_header", "_buffer_base")

    def __init__(self, path: str | os.PathLike, start_cnt: int = 1) -> None:
        self.path = os.fspath(path)
        self.start_cnt = start_cnt
        self.truncated = False
        self.error: str | None = None
        self.packets = 0
        self._file = open(self.path, "rb")
        try:
            self.size = os.fstat(self._file.fileno()).st_size
            self._header = self._file.read(CHUNK_SIZE)
            self.bytes_read = len(self._header)
            self._buffer_base = 0
            self._sniff()
        except BaseException:
            self._file.close()
            raise

    # -- setup ---------------------------------------------------------------

    def _sniff(self) -> None:
        head = self._header
        if len(head) < 4:
            raise CaptureError(f"{self.path}: too short to be a capture ({len(head)} bytes)")
        magic_le = struct.unpack_from("<I", head)[0]
        if magic_le == _PCAPNG_SHB:
            self.format = "pcapng"
            if len(head) < 12:
                raise CaptureError(f"{self.path}: pcapng section header cut short")
            order = struct.unpack_from("<I", head, 8)[0]
            if order not in (_PCAPNG_BYTE_ORDER_MAGIC, 0x4D3C2B1A):
                raise CaptureError(f"{self.path}: pcapng section header has no byte-order magic")
            self.linktype = self._first_pcapng_linktype()
            return
        if magic_le in (_PCAP_MAGIC_MICRO, _PCAP_MAGIC_NANO) or \
                struct.unpack_from(">I", head)[0] in (_PCAP_MAGIC_MICRO, _PCAP_MAGIC_NANO):
            self.format = "pcap"
            if len(head) < 24:
                raise CaptureError(f"{self.path}: pcap file header cut short")
            order = "<" if magic_le in (_PCAP_MAGIC_MICRO, _PCAP_MAGIC_NANO) else ">"
            network = struct.unpack_from(order + "I", head, 20)[0]
            # The upper bits of the link-type field carry FCS information.
            self.linktype = network & 0xFFFF
            return
        raise CaptureError(f"{self.path}: not a pcap or pcapng file (magic {head[:4].hex()})")

    def _first_pcapng_linktype(self) -> int:
        """Link type of the first interface, for callers that want one value."""
        head = self._header
        order = "<" if struct.unpack_from("<I", head, 8)[0] == _PCAPNG_BYTE_ORDER_MAGIC else ">"
        shb_len = struct.unpack_from(order + "I", head, 4)[0]
        if len(head) >= shb_len + 12:
            block_type = struct.unpack_from(order + "I", head, shb_len)[0]
            if block_type == _BLOCK_IDB:
                return struct.unpack_from(order + "H", head, shb_len + 8)[0]
        return 1

    # -- iteration -----------------------------------------------------------

    def __iter__(self) -> Iterator[Packet]:
        if self.format == "pcap":
            return self._iter_pcap()
        return self._iter_pcapng()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "PcapReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _more(self, buffer: bytes, position: int, needed: int) -> bytes:
        """Keep the unread tail of `buffer` and append chunks until `needed`
        unread bytes are available or the file ends. Returns the new buffer
        (unread bytes start at 0)."""
        self._buffer_base += position
        parts = [buffer[position:]]
        available = len(parts[0])
        while available < needed:
            chunk = self._file.read(max(CHUNK_SIZE, needed - available))
            if not chunk:
                break
            self.bytes_read += len(chunk)
            parts.append(chunk)
            available += len(chunk)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _cut_short(self, what: str, offset: int) -> None:
        self.truncated = True
        self.error = f"{self.path}: {what} at file offset {offset}"

    def _iter_pcap(self) -> Iterator[Packet]:
        buffer = self._header
        self._header = b""
        magic_le = struct.unpack_from("<I", buffer)[0]
        order = "<" if magic_le in (_PCAP_MAGIC_MICRO, _PCAP_MAGIC_NANO) else ">"
        magic = struct.unpack_from(order + "I", buffer)[0]
        scale = 1e-9 if magic == _PCAP_MAGIC_NANO else 1e-6
        record = struct.Struct(order + "IIII")
        unpack_record = record.unpack_from
        linktype = self.linktype
        count = self.start_cnt
        position = 24
        end = len(buffer)
        try:
            while True:
                if position + 16 > end:
                    buffer = self._more(buffer, position, 16)
                    position, end = 0, len(buffer)
                    if end == 0:
                        break
                    if end < 16:
                        self._cut_short("truncated record header", self._buffer_base)
                        break
                seconds, fraction, captured, _original = unpack_record(buffer, position)
                if captured > MAX_RECORD:
                    self._cut_short(f"corrupt record length {captured}", self._buffer_base + position)
                    break
                data_end = position + 16 + captured
                if data_end > end:
                    buffer = self._more(buffer, position, 16 + captured)
                    position, end = 0, len(buffer)
                    data_end = 16 + captured
                    if data_end > end:
                        self._cut_short("truncated packet data", self._buffer_base)
                        break
                yield Packet(buffer[position + 16:data_end], seconds + fraction * scale, count, linktype)
                count += 1
                position = data_end
        finally:
            self.packets = count - self.start_cnt

    def _iter_pcapng(self) -> Iterator[Packet]:
        buffer = self._header
        self._header = b""
        position, end = 0, len(buffer)
        count = self.start_cnt
        interfaces: list[_Interface] = []
        order = "<"
        block_head = struct.Struct("<II")
        epb_fields = struct.Struct("<IIIII")
        try:
            while True:
                if position + 12 > end:
                    buffer = self._more(buffer, position, 12)
                    position, end = 0, len(buffer)
                    if end == 0:
                        break
                    if end < 12:
                        self._cut_short("truncated block header", self._buffer_base)
                        break
                block_type, block_len = block_head.unpack_from(buffer, position)
                if block_type == _PCAPNG_SHB:
                    # Byte order can change per section; the magic is order-free.
                    byte_order = struct.unpack_from("<I", buffer, position + 8)[0]
                    if byte_order == _PCAPNG_BYTE_ORDER_MAGIC:
                        order = "<"
                    elif byte_order == 0x4D3C2B1A:
                        order = ">"
                    else:
                        self._cut_short("section header without byte-order magic",
                                        self._buffer_base + position)
                        break
                    block_head = struct.Struct(order + "II")
                    epb_fields = struct.Struct(order + "IIIII")
                    block_type, block_len = block_head.unpack_from(buffer, position)
                    interfaces = []
                if block_len < 12 or block_len % 4 or block_len > MAX_RECORD:
                    self._cut_short(f"corrupt block length {block_len}", self._buffer_base + position)
                    break
                block_end = position + block_len
                if block_end > end:
                    buffer = self._more(buffer, position, block_len)
                    position, end = 0, len(buffer)
                    block_end = block_len
                    if block_end > end:
                        self._cut_short("truncated block", self._buffer_base)
                        break
                body = position + 8
                body_end = block_end - 4
                if block_type == _BLOCK_EPB:
                    if body_end - body < 20:
                        self._cut_short("enhanced packet block too short", self._buffer_base + position)
                        break
                    interface_id, ts_high, ts_low, captured, _original = epb_fields.unpack_from(buffer, body)
                    data = body + 20
                    if interface_id >= len(interfaces) or data + captured > body_end:
                        self._cut_short("enhanced packet block inconsistent", self._buffer_base + position)
                        break
                    interface = interfaces[interface_id]
                    yield Packet(buffer[data:data + captured],
                                 ((ts_high << 32) | ts_low) * interface.ts_scale + interface.ts_offset,
                                 count, interface.linktype)
                    count += 1
                elif block_type == _BLOCK_SPB:
                    if not interfaces or body_end - body < 4:
                        self._cut_short("simple packet block without interface", self._buffer_base + position)
                        break
                    original = struct.unpack_from(order + "I", buffer, body)[0]
                    interface = interfaces[0]
                    captured = min(original, body_end - body - 4)
                    if interface.snaplen:
                        captured = min(captured, interface.snaplen)
                    # Simple packet blocks carry no timestamp.
                    yield Packet(buffer[body + 4:body + 4 + captured], 0.0, count, interface.linktype)
                    count += 1
                elif block_type == _BLOCK_IDB:
                    if body_end - body < 8:
                        self._cut_short("interface block too short", self._buffer_base + position)
                        break
                    interfaces.append(self._parse_interface(buffer, body, body_end, order))
                elif block_type == _BLOCK_PB:
                    if body_end - body < 20:
                        self._cut_short("packet block too short", self._buffer_base + position)
                        break
                    interface_id, _drops, ts_high, ts_low, captured, _original = struct.unpack_from(
                        order + "HHIIII", buffer, body)
                    data = body + 20
                    if interface_id >= len(interfaces) or data + captured > body_end:
                        self._cut_short("packet block inconsistent", self._buffer_base + position)
                        break
                    interface = interfaces[interface_id]
                    yield Packet(buffer[data:data + captured],
                                 ((ts_high << 32) | ts_low) * interface.ts_scale + interface.ts_offset,
                                 count, interface.linktype)
                    count += 1
                position = block_end
        finally:
            self.packets = count - self.start_cnt

    @staticmethod
    def _parse_interface(buffer: bytes, body: int, body_end: int, order: str) -> _Interface:
        linktype, _reserved, snaplen = struct.unpack_from(order + "HHI", buffer, body)
        ts_scale = 1e-6
        ts_offset = 0
        option = body + 8
        # Options are TLVs padded to 4 bytes; a malformed option list only
        # loses the options, never the interface.
        while option + 4 <= body_end:
            code, length = struct.unpack_from(order + "HH", buffer, option)
            value = option + 4
            if code == _OPT_END or value + length > body_end:
                break
            if code == _OPT_IF_TSRESOL and length >= 1:
                resolution = buffer[value]
                if resolution & 0x80:
                    ts_scale = 2.0 ** -(resolution & 0x7F)
                else:
                    ts_scale = 10.0 ** -resolution
            elif code == _OPT_IF_TSOFFSET and length >= 8:
                ts_offset = struct.unpack_from(order + "q", buffer, value)[0]
            option = value + ((length + 3) & ~3)
        return _Interface(linktype, snaplen, ts_scale, ts_offset)


def read_packets(path: str | os.PathLike, start_cnt: int = 1) -> Iterator[Packet]:
    """Yield every packet of a pcap/pcapng file, numbered from `start_cnt`.

    Raises `CaptureError` (on the first `next()`) when the file is not a
    capture. A damaged tail ends iteration quietly; use `PcapReader`
    directly to learn whether that happened (`reader.truncated`).
    """
    with PcapReader(path, start_cnt) as reader:
        yield from reader


def count_packets_estimate(path: str | os.PathLike) -> int:
    """A cheap guess of the packet count, for a progress bar before reading.

    Reads the first chunk and extrapolates its average record size to the
    whole file; exact for files that fit in one chunk.
    """
    count = 0
    with PcapReader(path) as reader:
        size = reader.size
        for _ in reader:
            if reader.bytes_read > CHUNK_SIZE:
                # The second chunk was read: `count` packets fit in the first.
                return int(count * size / CHUNK_SIZE)
            count += 1
    return count
