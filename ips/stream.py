"""Per-direction TCP stream reassembly.

Theory of operation
-------------------
Each TCP flow gets one `FlowStream` (stored in `flow.stream`) holding two
`DirectionStream`s, one per direction. A direction works in *stream offsets*:
64-bit byte positions counted from the first byte after the SYN (or from the
first byte seen, on midstream pickup). Sequence numbers are converted to
offsets relative to the next byte we expect, using signed 32-bit distance, so
wrap-around of the sequence space needs no special case.

Per data segment:

* bytes before `next_offset` were already delivered: they are compared with
  the bytes we kept (`retained`, the last `RETAIN_BYTES` delivered). A
  difference is the classic overlap evasion; we log
  `stream.reassembly_overlap_different_data` and keep the first data
  ("first data wins", the BSD/Suricata default). Inline, the packet's payload
  is rewritten to the bytes already inspected so the receiver cannot see
  anything the detection engine did not.
* bytes at `next_offset` are delivered at once, followed by any held
  out-of-order segments that are now contiguous.
* bytes after `next_offset` are held in `pending` (bounded by
  `config.stream_max_pending` per direction). Overlaps between held segments
  also keep the first data.

A hole that will never be filled (capture loss) is detected two ways: the
receiver acknowledges bytes we never saw, or the held data would exceed its
bound. Either way we skip to the next held byte and deliver with `gap=True`
so parsers resynchronise or stop.

App-layer delivery follows Suricata. Inline (`config.stream_inline`), the
bytes a packet makes available go to the parsers at once, since the verdict
on that very packet depends on them. In IDS mode the parsers get a
direction's bytes only once the *other* side has acknowledged them (what the
receiver accepted is what counts, and it is when Suricata's app-layer runs):
delivered bytes wait in `app_held` and an ACK from the peer releases them; a
RST releases the sender's own held bytes; `flush()` releases the rest at flow
end. `Chunk.app` lists these releases as (to_server, data, gap), in order.
Raw-stream inspection (`Chunk.window`) is not delayed.

After `config.stream_depth` bytes per direction nothing more is delivered;
`TcpReassembler.depth_reached(flow)` tells the verdict stage the flow can be
handed to the kernel.

Bounds per direction: `pending` <= stream_max_pending bytes, `retained` <=
RETAIN_BYTES, `app_held` <= UNACKED_APP_BYTES (beyond it bytes go to the
parsers without waiting for the ACK), plus the O(1) counters. Work per segment is O(segment size +
number of held segments it touches).
"""
from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from dataclasses import dataclass

from ips.packet import TH_ACK, TH_FIN, TH_RST, TH_SYN

WINDOW_BYTES = 2048
"""Already-delivered bytes handed to raw-stream detection in front of new data,
so a pattern split across segments is still seen as a whole."""

RETAIN_BYTES = 16 * 1024
"""Delivered bytes kept to compare retransmissions against. A retransmission
of older data than this cannot be verified (counted, never trusted)."""

MAX_PENDING_SEGMENTS = 1024
"""Held out-of-order segments per direction; bounds per-segment bookkeeping
so that a flood of one-byte segments cannot make insertion quadratic."""

UNACKED_APP_BYTES = 256 * 1024
"""Delivered but not yet acknowledged bytes held back from the parsers (IDS
mode). More than this and they are released anyway: only timing changes."""

_NO_APP = ()

_SEQ_MOD = 1 << 32
_MASK = _SEQ_MOD - 1
_HALF = 1 << 31


def _seq_distance(seq: int, reference: int) -> int:
    """Signed distance from `reference` to `seq` in 32-bit sequence space."""
    return ((seq - reference + _HALF) % _SEQ_MOD) - _HALF


@dataclass(slots=True)
class Chunk:
    """New in-order bytes one packet made available in its direction."""
    data: bytes
    """Bytes delivered now (may be b"" when only a gap is reported)."""
    window: bytes
    """Up to WINDOW_BYTES of earlier delivered data followed by `data`."""
    new_offset: int
    """`window[new_offset:] == data`."""
    gap: bool
    """Bytes were lost before `data`: parsers must resync or stop."""
    app: tuple = _NO_APP
    """(to_server, data, gap) for the app-layer, in order: what this packet
    releases to the parsers (see "App-layer delivery" above)."""
    at_start: bool = False
    """`window` begins at the first byte of the stream (protocol detection
    may look at it before the parsers get the bytes)."""
    in_stream: bool = True
    """The packet's payload is part of the stream: raw-stream detection
    inspects `window` (possibly with nothing new) instead of the bare
    payload. False for chunks that only carry app-layer releases."""


class DirectionStream:
    """Reassembly state of one direction of one TCP connection."""

    __slots__ = (
        "initialised", "base_seq", "next_offset", "pending", "held_starts", "pending_bytes",
        "retained", "gap_pending", "depth_reached", "fin_seen", "highest_end",
        "app_held", "app_gap",
    )

    def __init__(self) -> None:
        self.initialised = False
        self.base_seq = 0          # sequence number of stream offset 0
        self.next_offset = 0       # next stream offset we expect to deliver
        self.pending: dict[int, bytes] = {}   # start offset -> held bytes
        # The keys of `pending`, sorted. Held segments never overlap (first
        # data wins), so those a new segment touches are one run of this
        # list, found by bisection: walking every held segment per packet
        # cost an attacker's out-of-order stream O(n^2) (1,023 one-byte
        # segments: 0.34 s of CPU per flow).
        self.held_starts: list[int] = []
        self.pending_bytes = 0
        self.retained = bytearray()           # tail of the delivered bytes
        self.gap_pending = False              # a gap is to be reported with the next delivery
        self.depth_reached = False
        self.fin_seen = False
        self.highest_end = 0                  # highest stream offset seen (end of data)
        self.app_held = bytearray()           # delivered, not yet acknowledged (IDS mode)
        self.app_gap = False                  # a gap precedes app_held

    def start(self, first_data_seq: int) -> None:
        self.initialised = True
        self.base_seq = first_data_seq & 0xFFFFFFFF
        self.next_offset = 0
        self.highest_end = 0

    def offset_of(self, seq: int) -> int:
        """Stream offset of sequence number `seq` (near next_offset)."""
        next_seq = (self.base_seq + self.next_offset) & 0xFFFFFFFF
        return self.next_offset + _seq_distance(seq, next_seq)


class FlowStream:
    """Both directions of a flow; lives in `flow.stream`."""

    __slots__ = ("to_server", "to_client")

    def __init__(self) -> None:
        self.to_server = DirectionStream()
        self.to_client = DirectionStream()

    def direction(self, to_server: bool) -> DirectionStream:
        return self.to_server if to_server else self.to_client


class TcpReassembler:
    """Turns TCP segments into in-order byte chunks per direction (sans-IO)."""

    __slots__ = ("depth", "inline", "max_pending", "midstream", "last_normalised")

    def __init__(self, config) -> None:
        self.depth = max(0, int(config.stream_depth))
        self.inline = bool(config.stream_inline)
        self.max_pending = max(0, int(config.stream_max_pending))
        self.midstream = bool(config.stream_midstream)
        # The last packet whose payload was rewritten, so the verdict stage
        # can ask `normalised(pkt)` without a slot on Packet.
        self.last_normalised = None

    # -- queries -------------------------------------------------------------

    def depth_reached(self, flow, to_server: bool | None = None) -> bool:
        """True once the inspection depth is reached: in one direction when
        `to_server` is given, else in both (then the flow can be bypassed)."""
        stream = getattr(flow, "stream", None)
        if not isinstance(stream, FlowStream):
            return False
        if to_server is not None:
            return stream.direction(to_server).depth_reached
        return stream.to_server.depth_reached and stream.to_client.depth_reached

    def normalised(self, pkt) -> bool:
        """Whether `pkt.payload` was rewritten to already-inspected bytes
        (inline mode); the verdict stage must then send the rewritten packet."""
        return self.last_normalised is pkt

    # -- the per-packet entry point -----------------------------------------

    def on_packet(self, flow, pkt) -> Chunk | None:
        """Feed one decoded TCP packet; return what it made newly available."""
        # One function with the guard around it: this runs for every TCP
        # packet, and a second call frame per packet was measurable.
        try:
            stream = flow.stream
            if stream is None:
                stream = FlowStream()
                flow.stream = stream
            to_server = pkt.to_server
            if to_server:
                own, other = stream.to_server, stream.to_client
            else:
                own, other = stream.to_client, stream.to_server
            flags = pkt.tcp_flags

            if flags & TH_SYN:
                # The SYN (or SYN/ACK) fixes where this direction's data starts.
                # A repeated SYN with another ISN before any data restarts it.
                if not own.initialised or (own.next_offset == 0 and not own.pending):
                    own.start(pkt.seq + 1)
                return None

            released = None
            if flags & TH_ACK and other.initialised:
                # One signed 32-bit distance serves both the app-layer release
                # and the lost-data check (the per-ACK cost of this stage).
                next_seq = (other.base_seq + other.next_offset) & _MASK
                distance = ((pkt.ack - next_seq + _HALF) & _MASK) - _HALF
                held = len(other.app_held)
                if held and distance > -held:
                    released = (self._release(other, not to_server, min(distance + held, held)),)
                if distance > 0:
                    self._check_ack(other, pkt, other.next_offset + distance)
            if flags & TH_RST:
                # An accepted RST ends the sender's stream: what it sent is final.
                if own.app_held:
                    release = self._release(own, to_server, len(own.app_held))
                    released = (*released, release) if released else (release,)
                return self._app_only(released)

            payload = pkt.payload
            if not own.initialised:
                if not payload:
                    return self._app_only(released)
                # No SYN seen for this direction: Suricata only reassembles such
                # a stream when midstream pickup is enabled.
                if not self.midstream:
                    return self._app_only(released)
                own.start(pkt.seq)

            if flags & TH_FIN:
                own.fin_seen = True
            if not payload:
                if own.gap_pending:
                    return self._with_app(self._drain(own), own, to_server, released)
                # A bare ACK: the most common TCP packet.
                return None if released is None else self._app_only(released)
            if own.depth_reached:
                return self._app_only(released)

            next_offset = own.next_offset
            start = next_offset + ((pkt.seq - ((own.base_seq + next_offset) & _MASK) + _HALF) & _MASK) - _HALF
            if start == own.next_offset and not own.pending and \
                    (not self.depth or start + len(payload) <= self.depth):
                # The common case: the next in-order segment, nothing held.
                end = start + len(payload)
                if end > own.highest_end:
                    own.highest_end = end
                return self._with_app(self._deliver(own, payload), own, to_server, released)
            if len(payload) == 1 and start == own.next_offset - 1 and not flags & TH_FIN:
                # TCP keep-alive probe: one garbage byte at next-1 (RFC 1122
                # 4.2.3.6). Not data, and not an overlap worth an event.
                return self._app_only(released)
            if start < 0:
                # Data from before the stream start (e.g. before midstream pickup
                # or a bogus sequence number): only the part from offset 0 counts.
                if start + len(payload) <= 0:
                    pkt.anomaly("stream.pkt_before_stream_start")
                    return self._app_only(released)
                payload = payload[-start:]
                start = 0
            end = start + len(payload)
            own.highest_end = max(own.highest_end, end)

            normalised = bytearray(pkt.payload) if self.inline else None
            payload_origin = end - len(pkt.payload)   # offset of pkt.payload[0]

            # 1. Bytes already delivered: compare, first data wins.
            if start < own.next_offset:
                overlap_end = min(end, own.next_offset)
                self._compare_delivered(own, pkt, start, overlap_end, payload, start, normalised, payload_origin)
                if end <= own.next_offset:
                    self._finish_normalise(pkt, normalised)
                    return self._nothing_new(own, released)
                payload = payload[own.next_offset - start:]
                start = own.next_offset

            # 2. Bytes overlapping held segments: the held (first) copy wins.
            if own.pending:
                self._compare_pending(own, pkt, start, payload, normalised, payload_origin)

            self._finish_normalise(pkt, normalised)

            # Clamp to the inspection depth: nothing beyond it is kept.
            if self.depth and end > self.depth:
                payload = payload[: max(0, self.depth - start)]
                end = start + len(payload)
                if not payload:
                    return self._app_only(released)

            if start > own.next_offset:
                self._hold(own, pkt, start, payload)
                if own.gap_pending:
                    return self._with_app(self._drain(own), own, to_server, released)
                return self._nothing_new(own, released)
            return self._with_app(self._deliver(own, payload), own, to_server, released)
        except Exception:  # noqa: BLE001 - a stage must never raise on input
            pkt.anomaly("stream.internal_error")
            return None

    # -- app-layer delivery ------------------------------------------------------

    def tail(self, flow, to_server: bool) -> bytes:
        """Up to WINDOW_BYTES of the last bytes delivered in one direction
        (the raw stream a flow-end pseudo packet is inspected against)."""
        stream = getattr(flow, "stream", None)
        if not isinstance(stream, FlowStream):
            return b""
        return bytes(stream.direction(to_server).retained[-WINDOW_BYTES:])

    def flush(self, flow) -> list[tuple[bool, bytes, bool]]:
        """End of flow: the bytes still held back from the parsers (IDS mode,
        never acknowledged), client side first, as (to_server, data, gap)."""
        stream = getattr(flow, "stream", None)
        if not isinstance(stream, FlowStream):
            return []
        out = []
        for to_server, side in ((True, stream.to_server), (False, stream.to_client)):
            if side.app_held or side.app_gap:
                out.append(self._release(side, to_server, len(side.app_held)))
        return out

    def _with_app(self, chunk: Chunk | None, own: DirectionStream, to_server: bool,
                  released: tuple | None) -> Chunk | None:
        """Attach the app-layer releases to the chunk this packet produced."""
        if chunk is not None:
            if self.inline:
                # Inline: the parsers see bytes as they are accepted.
                if chunk.data or chunk.gap:
                    own_release = (to_server, chunk.data, chunk.gap)
                    chunk.app = (*released, own_release) if released else (own_release,)
                    return chunk
            else:
                if chunk.gap:
                    # Bytes before a hole are final: hand them over first.
                    if own.app_held or own.app_gap:
                        early = self._release(own, to_server, len(own.app_held))
                        released = (*released, early) if released else (early,)
                    own.app_gap = True
                own.app_held += chunk.data
                if len(own.app_held) > UNACKED_APP_BYTES:
                    early = self._release(own, to_server, len(own.app_held))
                    released = (*released, early) if released else (early,)
        if released:
            if chunk is None:
                return Chunk(b"", b"", 0, False, released, False, False)
            chunk.app = released
        return chunk

    @staticmethod
    def _nothing_new(own: DirectionStream, released: tuple | None) -> Chunk:
        """The payload went into the stream (held out of order, or already
        delivered) but nothing new is in order: a chunk whose window has no
        new bytes, so raw-stream rules neither fire on the bare payload now
        nor twice later (Suricata does not inspect such packets alone)."""
        tail = bytes(own.retained[-WINDOW_BYTES:])
        return Chunk(b"", tail, len(tail), False, released or _NO_APP, False, True)

    def _app_only(self, released: tuple | None) -> Chunk | None:
        if not released:
            return None
        return Chunk(b"", b"", 0, False, released, False, False)

    @staticmethod
    def _release(side: DirectionStream, to_server: bool, count: int) -> tuple[bool, bytes, bool]:
        held = side.app_held
        if count >= len(held):
            data = bytes(held)
            held.clear()
        else:
            data = bytes(held[:count])
            del held[:count]
        gap = side.app_gap
        side.app_gap = False
        return (to_server, data, gap)

    # -- helpers ---------------------------------------------------------------

    def _check_ack(self, receiver_side: DirectionStream, pkt, acked: int) -> None:
        """An ACK for bytes of `receiver_side`'s sender that we never saw means
        they were lost to us: report a gap instead of waiting forever.
        `acked` (stream offset) is beyond what was delivered."""
        if acked > receiver_side.highest_end + 1:
            # Acknowledges bytes we never saw at all (capture loss or a
            # forged ACK); nothing is held, so there is nothing to resume.
            pkt.anomaly("stream.ack_unseen_data")
            return
        if receiver_side.pending:
            first_held = receiver_side.held_starts[0]
            if first_held > receiver_side.next_offset and acked >= first_held:
                self._skip_to(receiver_side, first_held)
                pkt.anomaly("stream.reassembly_seq_gap")

    def _skip_to(self, own: DirectionStream, offset: int) -> None:
        own.next_offset = offset
        own.gap_pending = True
        own.retained.clear()   # bytes before the hole are no longer adjacent

    def _compare_delivered(self, own, pkt, start, stop, payload, payload_start,
                           normalised, payload_origin) -> None:
        retained_start = own.next_offset - len(own.retained)
        lo = max(start, retained_start)
        if lo >= stop:
            if start < retained_start:
                pkt.anomaly("stream.reassembly_overlap_unverified")
            return
        seen = own.retained[lo - retained_start: stop - retained_start]
        sent = payload[lo - payload_start: stop - payload_start]
        if seen != sent:
            pkt.anomaly("stream.reassembly_overlap_different_data")
            if normalised is not None:
                normalised[lo - payload_origin: stop - payload_origin] = seen

    @staticmethod
    def _held_overlapping(own: DirectionStream, start: int, end: int) -> list[int]:
        """Starts of the held segments that overlap [start, end), in order."""
        starts = own.held_starts
        first = bisect_right(starts, start) - 1
        if first < 0 or first >= len(starts) or \
                starts[first] + len(own.pending[starts[first]]) <= start:
            first += 1
        return starts[first:bisect_left(starts, end)]

    def _compare_pending(self, own, pkt, start, payload, normalised, payload_origin) -> None:
        end = start + len(payload)
        differs = False
        pending = own.pending
        for held_start in self._held_overlapping(own, start, end):
            held = pending[held_start]
            held_end = held_start + len(held)
            lo, hi = max(start, held_start), min(end, held_end)
            seen = held[lo - held_start: hi - held_start]
            if seen != payload[lo - start: hi - start]:
                differs = True
                if normalised is not None:
                    normalised[lo - payload_origin: hi - payload_origin] = seen
        if differs:
            pkt.anomaly("stream.reassembly_overlap_different_data")

    def _finish_normalise(self, pkt, normalised) -> None:
        if normalised is not None and bytes(normalised) != pkt.payload:
            pkt.payload = bytes(normalised)
            self.last_normalised = pkt

    def _hold(self, own: DirectionStream, pkt, start: int, payload: bytes) -> None:
        # Keep only the bytes not already held (first data wins).
        pieces = [(start, payload)]
        for held_start in self._held_overlapping(own, start, start + len(payload)):
            held = own.pending[held_start]
            held_end = held_start + len(held)
            next_pieces = []
            for piece_start, piece in pieces:
                piece_end = piece_start + len(piece)
                if piece_end <= held_start or piece_start >= held_end:
                    next_pieces.append((piece_start, piece))
                    continue
                if piece_start < held_start:
                    next_pieces.append((piece_start, piece[: held_start - piece_start]))
                if piece_end > held_end:
                    next_pieces.append((held_end, piece[held_end - piece_start:]))
            pieces = next_pieces
            if not pieces:
                return
        for piece_start, piece in pieces:
            too_many = len(own.pending) >= MAX_PENDING_SEGMENTS
            if too_many or own.pending_bytes + len(piece) > self.max_pending:
                # The hole is not coming back in time: declare it lost and
                # deliver what we hold, so memory stays bounded.
                # The new piece is not held (the memcap exception: the worker
                # applies the configured exception policy to this anomaly).
                pkt.anomaly("stream.reassembly_memcap")
                if own.pending:
                    self._skip_to(own, own.held_starts[0])
                    return
                if self.max_pending <= 0 or len(piece) > self.max_pending:
                    self._skip_to(own, piece_start)
                    own.pending[piece_start] = piece
                    insort(own.held_starts, piece_start)
                    own.pending_bytes += len(piece)
                    return
            own.pending[piece_start] = piece
            insort(own.held_starts, piece_start)
            own.pending_bytes += len(piece)

    def _deliver(self, own: DirectionStream, payload: bytes) -> Chunk:
        retained = own.retained
        size = len(payload)
        if not own.pending and not own.gap_pending and size <= RETAIN_BYTES - WINDOW_BYTES:
            # In order with nothing held: one copy builds the window straight
            # from the retained tail (no join, no second concatenation).
            before = len(retained)
            if before > WINDOW_BYTES:
                before = WINDOW_BYTES
            retained += payload
            excess = len(retained) - RETAIN_BYTES
            if excess > 0:
                del retained[:excess]
            own.next_offset += size
            window = bytes(retained[-(size + before):])
            if self.depth and own.next_offset >= self.depth:
                own.depth_reached = True
            return Chunk(payload, window, before, False, _NO_APP, own.next_offset == len(window))
        window_before = bytes(own.retained[-WINDOW_BYTES:])
        pieces = [payload]
        own.next_offset += len(payload)
        self._append_retained(own, payload)
        self._collect_pending(own, pieces)
        return self._make_chunk(own, window_before, pieces)

    def _drain(self, own: DirectionStream) -> Chunk | None:
        window_before = bytes(own.retained[-WINDOW_BYTES:])
        pieces: list[bytes] = []
        self._collect_pending(own, pieces)
        if not pieces and not own.gap_pending:
            return None
        return self._make_chunk(own, window_before, pieces)

    def _collect_pending(self, own: DirectionStream, pieces: list[bytes]) -> None:
        starts = own.held_starts
        while own.pending:
            piece = own.pending.pop(own.next_offset, None)
            if piece is None:
                # Drop held bytes wholly behind next_offset; trim a straddler.
                behind = bisect_left(starts, own.next_offset)
                if not behind:
                    break
                for held_start in starts[:behind]:
                    held = own.pending.pop(held_start)
                    own.pending_bytes -= len(held)
                    held_end = held_start + len(held)
                    if held_end > own.next_offset:
                        own.pending[own.next_offset] = held[own.next_offset - held_start:]
                        own.pending_bytes += held_end - own.next_offset
                del starts[:behind]
                if own.next_offset in own.pending:
                    insort(starts, own.next_offset)
                continue
            del starts[bisect_left(starts, own.next_offset)]
            own.pending_bytes -= len(piece)
            pieces.append(piece)
            own.next_offset += len(piece)
            self._append_retained(own, piece)

    def _append_retained(self, own: DirectionStream, data: bytes) -> None:
        own.retained += data
        if len(own.retained) > RETAIN_BYTES:
            del own.retained[: len(own.retained) - RETAIN_BYTES]

    def _make_chunk(self, own: DirectionStream, window_before: bytes, pieces: list[bytes]) -> Chunk:
        data = b"".join(pieces)
        if self.depth and own.next_offset >= self.depth:
            own.depth_reached = True
            if own.pending:
                own.pending.clear()
                own.held_starts.clear()
                own.pending_bytes = 0
        gap = own.gap_pending
        own.gap_pending = False
        if gap:
            window_before = b""
        window = window_before + data
        return Chunk(data, window, len(window_before), gap, _NO_APP,
                     own.next_offset == len(window))
