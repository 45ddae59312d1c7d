"""NFQUEUE helpers that need no kernel: config message, /proc parsing, verdicts."""
import struct

from ips import nfq
from ips.packet import ACCEPT, BYPASS, DROP, REJECT


def test_fail_open_config_message_layout():
    message = nfq._config_message(5, nfq.NFQA_CFG_F_FAIL_OPEN, nfq.NFQA_CFG_F_FAIL_OPEN, 42)
    length, msg_type, flags, sequence, _pid = struct.unpack_from("=IHHII", message)
    assert length == len(message) == 16 + 4 + 16
    assert msg_type == (3 << 8) | 2            # NFNL_SUBSYS_QUEUE, NFQNL_MSG_CONFIG
    assert flags & 0x01 and sequence == 42
    assert struct.unpack_from("!H", message, 18)[0] == 5     # res_id = queue number
    # mask then flags, each a big-endian u32 attribute
    assert struct.unpack_from("=HH", message, 20) == (8, 4)
    assert struct.unpack_from("!I", message, 24)[0] == 1
    assert struct.unpack_from("=HH", message, 28) == (8, 5)


def test_queue_stats_parse_and_garbage(tmp_path):
    path = tmp_path / "q"
    path.write_text("    0   9780     3 2  4016     7     2      120  1\n"
                    "garbage line\n    1   0 x 2 4016 0 0 0 1\n")
    stats = nfq.read_queue_stats(str(path))
    assert list(stats) == [0]
    assert stats[0].queue_total == 3 and stats[0].queue_dropped == 7
    assert stats[0].user_dropped == 2 and stats[0].id_sequence == 120
    assert nfq.read_queue_stats(str(tmp_path / "missing")) == {}


class FakeQueued:
    def __init__(self, mark=0x1):
        self.mark = mark
        self.calls = []
        self.payload = None

    def get_mark(self):
        return self.mark

    def set_mark(self, mark):
        self.mark = mark

    def set_payload(self, data):
        self.payload = data

    def get_payload(self):
        return b"\x45" + b"\x00" * 19

    def get_hw(self):
        return bytes.fromhex("020000000010") + b"\x00\x00"

    def accept(self):
        self.calls.append("accept")

    def drop(self):
        self.calls.append("drop")

    def repeat(self):
        self.calls.append("repeat")


def test_flow_verdicts_become_marks_and_keep_foreign_bits():
    cases = [(ACCEPT, "bypass", nfq.MARK_BYPASS, "repeat"),
             (BYPASS, None, nfq.MARK_BYPASS, "repeat"),
             (DROP, "drop", nfq.MARK_DROP, "repeat"),
             (REJECT, None, nfq.MARK_REJECT, "repeat")]
    for verdict, action, mark, call in cases:
        packet = FakeQueued(mark=0x1)
        nfq.apply_verdict(packet, verdict, action)
        assert packet.mark == 0x1 | mark and packet.calls == [call]


def test_plain_verdicts_and_rewrite():
    packet = FakeQueued()
    assert nfq.apply_verdict(packet, DROP, "pass") == "drop" and packet.calls == ["drop"]
    packet = FakeQueued()
    assert nfq.apply_verdict(packet, ACCEPT, "pass", b"new") == "accept"
    assert packet.payload == b"new" and packet.mark == 0x1


def test_packet_from_queue_carries_source_mac():
    pkt = nfq.packet_from_queue(FakeQueued(), ts=5.0)
    assert pkt.src_mac == "02:00:00:00:00:10" and pkt.ts == 5.0 and pkt.linktype == 101
