"""NFQUEUE source and verdicts: the inline edge of the capture plane.

Theory of operation
-------------------
iptables hands each packet that is not already judged in the kernel to a
queue (``-j NFQUEUE --queue-balance A:B``). One worker process binds one queue
number, builds an `ips.packet.Packet` from the queued L3 bytes, runs the same
`Worker.process()` as the offline replay, and answers with a verdict.

Flow-level decisions go back to the kernel as *packet marks* plus
``NF_REPEAT``: the packet re-enters the iptables chain carrying our mark, the
first rule of `REEFGUARD-FORWARD` saves it into the conntrack mark and applies
it (accept / drop / TCP reset). Every later packet of that flow has the mark
restored from conntrack and never reaches userspace again. Marks are confined
to `MARK_MASK` so other software's marks survive.

The kernel's fail-open flag (`NFQA_CFG_F_FAIL_OPEN`: a full queue accepts
instead of dropping) is not exposed by the `netfilterqueue` binding. It is a
per-queue config attribute that the kernel only accepts from the socket that
bound the queue, so we send the one `NFQNL_MSG_CONFIG` message ourselves on
that socket (`set_queue_flags`), which needs nothing from the binding but its
file descriptor.
"""
from __future__ import annotations

import logging
import os
import select
import socket
import struct
import time
from dataclasses import dataclass
from typing import Callable

from ips.packet import ACCEPT, BYPASS, DROP, LINKTYPE_RAW, REJECT, Packet

log = logging.getLogger("reefguard.nfq")

# Mark bits owned by ReefGuard (packet mark and conntrack mark).
MARK_BYPASS = 0x02000000   # flow judged harmless: the kernel accepts the rest
MARK_DROP = 0x04000000     # flow blocked: the kernel drops the rest
MARK_REJECT = 0x08000000   # flow blocked with TCP resets to each sender
MARK_MASK = MARK_BYPASS | MARK_DROP | MARK_REJECT

# netlink / nfnetlink_queue constants (linux/netfilter/nfnetlink_queue.h)
_NETLINK_NETFILTER = 12
_NFNL_SUBSYS_QUEUE = 3
_NFQNL_MSG_CONFIG = 2
_NFQA_CFG_MASK = 4
_NFQA_CFG_FLAGS = 5
NFQA_CFG_F_FAIL_OPEN = 0x01
_NLM_F_REQUEST = 0x01
_NLM_F_ACK = 0x04
_NLMSG_ERROR = 0x02

DEFAULT_QUEUE_MAXLEN = 4096
QUEUE_STATS_PATH = "/proc/net/netfilter/nfnetlink_queue"


def _config_message(queue_num: int, mask: int, flags: int, sequence: int) -> bytes:
    attributes = b""
    for attr_type, value in ((_NFQA_CFG_MASK, mask), (_NFQA_CFG_FLAGS, flags)):
        # nlattr header (host order) + big-endian u32 payload, 4-byte aligned
        attributes += struct.pack("=HH", 8, attr_type) + struct.pack("!I", value)
    # nfgenmsg: family, version, res_id (the queue number, network order)
    body = struct.pack("=BBH", socket.AF_UNSPEC, 0, socket.htons(queue_num)) + attributes
    header = struct.pack("=IHHII", 16 + len(body),
                         (_NFNL_SUBSYS_QUEUE << 8) | _NFQNL_MSG_CONFIG,
                         _NLM_F_REQUEST | _NLM_F_ACK, sequence, 0)
    return header + body


def set_queue_flags(fd: int, queue_num: int, flags: int, mask: int = NFQA_CFG_F_FAIL_OPEN,
                    timeout: float = 1.0) -> bool | None:
    """Set NFQA_CFG_FLAGS on a queue bound through socket `fd`.

    Returns True when the kernel acknowledged, False when it refused, None
    when the answer could not be read (a queued packet arrived first; the
    packet is left in the socket for the normal receive loop)."""
    sequence = int(time.monotonic() * 1000) & 0x7FFFFFFF
    sock = socket.socket(fileno=os.dup(fd))
    try:
        sock.send(_config_message(queue_num, mask, flags, sequence))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([sock], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                return None
            # Peek so that a packet message stays for the receive loop.
            data = sock.recv(65536, socket.MSG_PEEK)
            if len(data) < 16:
                return None
            _length, msg_type, _flags, msg_seq, _pid = struct.unpack_from("=IHHII", data)
            if msg_type != _NLMSG_ERROR or msg_seq != sequence:
                return None
            sock.recv(65536)  # consume our acknowledgement
            error = struct.unpack_from("=i", data, 16)[0]
            return error == 0
        return None
    finally:
        sock.close()  # closes only our dup; the binding keeps its own descriptor


@dataclass(frozen=True, slots=True)
class QueueStats:
    """One line of /proc/net/netfilter/nfnetlink_queue."""
    queue_num: int
    """Queue number."""
    peer_portid: int
    """Netlink port of the bound process (0: nobody)."""
    queue_total: int
    """Packets waiting for a verdict now."""
    queue_dropped: int
    """Dropped because the queue was full (fail-closed overflow)."""
    user_dropped: int
    """Dropped because the netlink socket buffer of the reader was full."""
    id_sequence: int
    """Packet ids handed out so far: how many packets were queued."""


def read_queue_stats(path: str = QUEUE_STATS_PATH) -> dict[int, QueueStats]:
    """Parse the kernel's per-queue counters of the current network namespace."""
    result: dict[int, QueueStats] = {}
    try:
        with open(path) as handle:
            lines = handle.read().splitlines()
    except OSError:
        return result
    for line in lines:
        fields = line.split()
        if len(fields) < 8:
            continue
        try:
            numbers = [int(x) for x in fields[:8]]
        except ValueError:
            continue
        result[numbers[0]] = QueueStats(numbers[0], numbers[1], numbers[2],
                                        numbers[5], numbers[6], numbers[7])
    return result


def packet_from_queue(nfq_packet, ts: float | None = None) -> Packet:
    """Build the worker's Packet from a queued packet (L3 bytes, source MAC)."""
    pkt = Packet(data=nfq_packet.get_payload(), ts=time.time() if ts is None else ts,
                 pcap_cnt=0, linktype=LINKTYPE_RAW)
    try:
        hardware = nfq_packet.get_hw()
    except Exception:  # noqa: BLE001 - no hw header on this hook
        hardware = None
    if hardware and len(hardware) >= 6:
        mac = _MAC_TEXT.get(hardware)
        if mac is None:
            if len(_MAC_TEXT) >= MAC_TEXT_CACHE_MAX:
                _MAC_TEXT.clear()
            mac = _MAC_TEXT[hardware] = hardware[:6].hex(":")
        pkt.src_mac = mac
    return pkt


# A LAN has few MACs: their text form is made once, not per packet (bounded,
# since a flood of forged source MACs must not grow it).
MAC_TEXT_CACHE_MAX = 4096
_MAC_TEXT: dict[bytes, str] = {}


def apply_verdict(nfq_packet, verdict: int, flow_action: str | None,
                  rewritten: bytes | None = None) -> str:
    """Answer the kernel for one packet; return the name of what was done.

    Flow actions go back as marks with NF_REPEAT so the kernel rule that
    saves the mark into conntrack sees the packet (see module docstring)."""
    if rewritten is not None and verdict in (ACCEPT, BYPASS):
        nfq_packet.set_payload(rewritten)
    if verdict == REJECT:
        nfq_packet.set_mark((nfq_packet.get_mark() & ~MARK_MASK) | MARK_REJECT)
        nfq_packet.repeat()
        return "reject"
    if verdict == DROP:
        if flow_action == "drop":
            nfq_packet.set_mark((nfq_packet.get_mark() & ~MARK_MASK) | MARK_DROP)
            nfq_packet.repeat()
            return "drop_flow"
        nfq_packet.drop()
        return "drop"
    if verdict == BYPASS or flow_action == "bypass":
        nfq_packet.set_mark((nfq_packet.get_mark() & ~MARK_MASK) | MARK_BYPASS)
        nfq_packet.repeat()
        return "bypass"
    nfq_packet.accept()
    return "accept"


class StopServing(BaseException):
    """Raised by a packet handler, after it gave its packet a verdict, to make
    `NfqSource.serve()` return while packets keep coming. A BaseException so
    that the handler guard (which catches Exception) lets it through."""


class NfqSource:
    """One bound queue: receives packets and calls `handler(nfq_packet)`.

    `handler` must give every packet a verdict and must not raise (a packet
    without a verdict stays in the kernel queue until the socket closes);
    `serve()` guards it anyway and applies `fallback_verdict` on error."""

    __slots__ = ("queue_num", "handler", "fallback_verdict", "queue", "fail_open_set",
                 "errors")

    IDLE_TIMEOUT = 0.25
    """`serve()` returns after this long without a packet (SO_RCVTIMEO)."""

    def __init__(self, queue_num: int, handler: Callable[[object], None], *,
                 max_len: int = DEFAULT_QUEUE_MAXLEN, fail_open: bool = True,
                 fallback_verdict: int = ACCEPT) -> None:
        from netfilterqueue import NetfilterQueue  # imported here: needs the C library

        self.queue_num = queue_num
        self.handler = handler
        self.fallback_verdict = fallback_verdict
        self.errors = 0
        self.queue = NetfilterQueue()
        self.queue.bind(queue_num, self._guarded, max_len=max_len, range=0xFFFF,
                        sock_len=4 * 1024 * 1024)
        self.fail_open_set = set_queue_flags(
            self.queue.get_fd(), queue_num, NFQA_CFG_F_FAIL_OPEN if fail_open else 0)
        if self.fail_open_set is False:
            log.warning("queue %d: kernel refused the fail-open flag", queue_num)
        # The binding's blocking recv loop ends on EAGAIN, which is what a
        # receive timeout gives: serve() returns when the queue is idle.
        sock = socket.socket(fileno=os.dup(self.queue.get_fd()))
        try:
            seconds = int(self.IDLE_TIMEOUT)
            micros = int((self.IDLE_TIMEOUT - seconds) * 1_000_000)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO,
                            struct.pack("@ll", seconds, micros))
        finally:
            sock.close()

    def _guarded(self, nfq_packet) -> None:
        try:
            self.handler(nfq_packet)
        except Exception:  # noqa: BLE001 - every packet must still get a verdict
            self.errors += 1
            if self.errors <= 5:
                log.exception("queue %d: handler failed", self.queue_num)
            try:
                if self.fallback_verdict == DROP:
                    nfq_packet.drop()
                else:
                    nfq_packet.accept()
            except Exception:  # noqa: BLE001 - verdict already given
                pass

    def fileno(self) -> int:
        return self.queue.get_fd()

    def serve(self) -> None:
        """Answer packets until the queue has been idle for `IDLE_TIMEOUT`
        seconds, or until a handler raises `StopServing`.

        One blocking recv per packet: waiting in select() first and then
        draining with non-blocking reads costs three more system calls per
        packet at low rates, ~20 µs of added latency each way on this
        kind of VM (measured with a trivial accept-all consumer)."""
        try:
            self.queue.run(block=True)
        except StopServing:
            pass

    def close(self) -> None:
        try:
            self.queue.unbind()
        except Exception:  # noqa: BLE001 - closing on the way out
            pass
