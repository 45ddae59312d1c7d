"""IP fragment reassembly for offline replay (inline, the kernel defragments).

Theory of operation
-------------------
Fragments of one datagram share a tracker keyed by (IP version, source,
destination, identification, protocol, VLAN ids). Each tracker keeps the
fragment data as non-overlapping byte ranges of the datagram's payload and
the number of payload bytes it holds. The datagram is complete when the last
fragment (MF clear) has fixed the total length and the held bytes cover
0..total; then a new packet is built from the first fragment's IP header and
the joined payload, decoded, and returned.

Overlap policy: "first data wins". Bytes already held are never replaced by
a later fragment; only the parts of a new fragment that fill holes are kept.
Any overlap records "ipv4.frag_overlap" / "ipv6.frag_overlap" on the
fragment that overlapped and on the reassembled packet, so rules and logs see
the evasion attempt. (Targets disagree on overlaps; an IPS cannot know which
policy the victim uses, so it normalises to one answer and flags it.)

Bounds: all trackers together hold at most `max_bytes` of fragment data (a
tracker costs its data plus a fixed overhead); adding beyond that evicts the
oldest trackers first. A tracker lives at most `timeout` seconds of packet
time after its first fragment. A datagram larger than 65535 bytes is refused
with "ipv4.frag_pkt_too_large" / "ipv6.frag_pkt_too_large".

The reassembled packet:
* has the last fragment's `ts` and `pcap_cnt` (it completes there);
* carries the first fragment's link fields (`src_mac`, `dst_mac`, `vlan`),
  and `linktype` 228/229 (raw IPv4/IPv6) because its `data` starts at the IP
  header;
* for IPv6, is rebuilt with a plain 40-byte header whose next header is the
  fragmented protocol: extension headers before the fragment header
  (hop-by-hop, routing) are not carried over.
"""
from __future__ import annotations

from bisect import bisect_left
from collections import OrderedDict
from operator import itemgetter

from ips.decode import decode
from ips.packet import LINKTYPE_IPV4, LINKTYPE_IPV6, Packet

__all__ = ["Defragmenter"]

MAX_DATAGRAM = 65535
_range_start = itemgetter(0)
_TRACKER_OVERHEAD = 256    # bytes charged per tracker besides its data
_EXPIRE_INTERVAL = 1.0


class _Tracker:
    __slots__ = ("first_seen", "ranges", "held", "total", "header", "first", "overlap", "cost")

    def __init__(self, ts: float) -> None:
        self.first_seen = ts
        self.ranges: list[tuple[int, int, bytes]] = []  # sorted, non-overlapping (start, end, data)
        self.held = 0              # payload bytes held
        self.total = -1            # payload length, known once the last fragment arrived
        self.header = b""          # IP header of the offset-0 fragment
        self.first: Packet | None = None   # the offset-0 fragment, for link fields
        self.overlap = False
        self.cost = _TRACKER_OVERHEAD


class Defragmenter:
    """Reassemble IPv4 and IPv6 fragments. Call `add` with every packet that
    `decode` marked `is_fragment`."""

    __slots__ = ("max_bytes", "timeout", "checksums", "stats", "_trackers", "_bytes", "_next_check")

    def __init__(self, max_bytes: int = 16 << 20, timeout: float = 60.0, checksums: bool = True) -> None:
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.checksums = checksums
        self.stats = {"fragments": 0, "reassembled": 0, "timeouts": 0, "evicted": 0,
                      "overlaps": 0, "too_large": 0, "trackers": 0}
        self._trackers: OrderedDict[tuple, _Tracker] = OrderedDict()
        self._bytes = 0
        self._next_check = float("-inf")

    @property
    def bytes_held(self) -> int:
        return self._bytes

    def add(self, pkt: Packet) -> Packet | None:
        """Take one fragment. Returns the reassembled, decoded datagram when
        this fragment completes it, else None. Never raises."""
        if not pkt.is_fragment:
            return None
        self.stats["fragments"] += 1
        ts = pkt.ts
        if ts >= self._next_check:
            self._expire(ts)
            self._next_check = ts + _EXPIRE_INTERVAL
        layer = "ipv4" if pkt.ip_version == 4 else "ipv6"
        data = pkt.payload
        start = pkt.frag_offset
        end = start + len(data)
        header_length = pkt.l4_offset - pkt.ip_offset if pkt.ip_version == 4 else 40
        if end + header_length > MAX_DATAGRAM:
            pkt.anomaly(layer + ".frag_pkt_too_large")
            self.stats["too_large"] += 1
            return None
        if layer == "ipv6" and pkt.more_fragments and len(data) % 8:
            pkt.anomaly("ipv6.frag_invalid_length")
            return None

        key = (pkt.ip_version, pkt.src, pkt.dst, pkt.ip_id, pkt.proto, pkt.vlan)
        tracker = self._trackers.get(key)
        if tracker is None:
            tracker = _Tracker(ts)
            self._trackers[key] = tracker
            self._bytes += tracker.cost
            self.stats["trackers"] += 1

        if start == 0 and tracker.first is None:
            tracker.first = pkt
            tracker.header = pkt.data[pkt.ip_offset:pkt.l4_offset] if pkt.ip_version == 4 \
                else pkt.data[pkt.ip_offset:pkt.ip_offset + 40]
        if not pkt.more_fragments:
            if tracker.total < 0:
                tracker.total = end
            elif tracker.total != end:
                pkt.anomaly(layer + ".frag_ignored")
        if tracker.total >= 0 and end > tracker.total:
            # Data past the end the last fragment fixed: not part of the datagram.
            pkt.anomaly(layer + ".frag_ignored")
            end = tracker.total
            data = data[:max(0, end - start)]

        added = self._insert(tracker, start, end, data)
        if added < end - start:
            pkt.anomaly(layer + ".frag_overlap")
            tracker.overlap = True
            self.stats["overlaps"] += 1
        tracker.cost += added
        self._bytes += added
        if self._bytes > self.max_bytes:
            self._evict(keep=key)

        if tracker.total >= 0 and tracker.held >= tracker.total and tracker.first is not None \
                and key in self._trackers and _covers(tracker.ranges, tracker.total):
            self._drop(key)
            return self._reassemble(tracker, pkt, layer)
        return None

    @staticmethod
    def _insert(tracker: _Tracker, start: int, end: int, data: bytes) -> int:
        """Keep the parts of [start, end) no held range covers (first data
        wins). Returns the number of new bytes.

        The held ranges are sorted and disjoint, so only the ones from the
        last range starting before `start` on can meet the new fragment:
        found by bisection, and the new pieces are spliced in among them.
        A datagram cut into thousands of tiny fragments therefore costs a
        C-level list move per fragment, not a Python loop over all of them."""
        if end <= start:
            return 0
        ranges = tracker.ranges
        first = bisect_left(ranges, start, key=_range_start)
        if first and ranges[first - 1][1] > start:
            first -= 1
        pieces = []
        cursor = start
        last = first
        count = len(ranges)
        while last < count:
            held_start, held_end, _ = ranges[last]
            if held_start >= end:
                break
            last += 1
            if held_end <= cursor:
                continue
            if held_start > cursor:
                pieces.append((cursor, held_start, data[cursor - start:held_start - start]))
            cursor = max(cursor, held_end)
            if cursor >= end:
                break
        if cursor < end:
            pieces.append((cursor, end, data[cursor - start:]))
        if not pieces:
            return 0
        added = sum(piece_end - piece_start for piece_start, piece_end, _ in pieces)
        around = ranges[first:last]
        around.extend(pieces)
        around.sort(key=_range_start)
        ranges[first:last] = around
        tracker.held += added
        return added

    def _reassemble(self, tracker: _Tracker, last: Packet, layer: str) -> Packet:
        first = tracker.first
        # Ranges past the total can exist if they arrived before the last
        # fragment fixed the end; they are not part of the datagram.
        total_payload = tracker.total
        payload = b"".join(piece[:total_payload - start] for start, _, piece in tracker.ranges
                           if start < total_payload)
        header = bytearray(tracker.header)
        if layer == "ipv4":
            total = len(header) + len(payload)
            header[2:4] = total.to_bytes(2, "big")
            header[6:8] = b"\x00\x00"            # no MF, offset 0
            header[10:12] = b"\x00\x00"
            checksum = _ones_complement(bytes(header))
            header[10:12] = checksum.to_bytes(2, "big")
            linktype = LINKTYPE_IPV4
        else:
            header[4:6] = len(payload).to_bytes(2, "big")
            header[6] = first.proto
            linktype = LINKTYPE_IPV6
        datagram = Packet(bytes(header) + payload, last.ts, last.pcap_cnt, linktype)
        decode(datagram, self.checksums)
        datagram.src_mac = first.src_mac
        datagram.dst_mac = first.dst_mac
        datagram.vlan = first.vlan
        if tracker.overlap:
            datagram.anomaly(layer + ".frag_overlap")
        self.stats["reassembled"] += 1
        return datagram

    def _drop(self, key: tuple) -> None:
        tracker = self._trackers.pop(key)
        self._bytes -= tracker.cost

    def _evict(self, keep: tuple) -> None:
        """Drop the oldest trackers until under the byte bound; the tracker
        being filled goes last (it may be the only one and too big)."""
        for key in list(self._trackers):
            if self._bytes <= self.max_bytes:
                return
            if key == keep:
                continue
            self._drop(key)
            self.stats["evicted"] += 1
        if self._bytes > self.max_bytes and keep in self._trackers:
            self._drop(keep)
            self.stats["evicted"] += 1

    def _expire(self, now: float) -> None:
        # Trackers are in creation order, which is first-fragment time order
        # as long as packet time does not run backwards.
        trackers = self._trackers
        while trackers:
            key, tracker = next(iter(trackers.items()))
            if tracker.first_seen + self.timeout > now:
                return
            self._drop(key)
            self.stats["timeouts"] += 1

    def __len__(self) -> int:
        return len(self._trackers)


def _covers(ranges: list[tuple[int, int, bytes]], total: int) -> bool:
    """Do the sorted, non-overlapping ranges cover [0, total) without a hole?"""
    cursor = 0
    for start, end, _ in ranges:
        if start > cursor:
            return False
        cursor = end
        if cursor >= total:
            return True
    return cursor >= total


def _ones_complement(header: bytes) -> int:
    total = sum(int.from_bytes(header[i:i + 2], "big") for i in range(0, len(header) - 1, 2))
    if len(header) & 1:
        total += header[-1] << 8
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF
