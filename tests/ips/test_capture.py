"""ips.capture: pcap/pcapng reading, numbering, timestamps, damaged files."""
from __future__ import annotations

import struct
from pathlib import Path

import dpkt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ips import capture
from ips.capture import CaptureError, PcapReader, count_packets_estimate, read_packets

FRAMES = [bytes([i]) * (60 + i) for i in range(5)]


def pcap_bytes(frames=FRAMES, order="<", nano=False, linktype=1, start=1_700_000_000) -> bytes:
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = [struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, 65535, linktype)]
    for index, frame in enumerate(frames):
        fraction = (index * 250_000_000) if nano else (index * 250_000)
        out.append(struct.pack(order + "IIII", start + index, fraction, len(frame), len(frame)) + frame)
    return b"".join(out)


def pcapng_block(block_type: int, body: bytes, order="<") -> bytes:
    body += b"\0" * (-len(body) % 4)
    length = len(body) + 12
    return struct.pack(order + "II", block_type, length) + body + struct.pack(order + "I", length)


def pcapng_option(code: int, value: bytes, order="<") -> bytes:
    return struct.pack(order + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def pcapng_section(order="<") -> bytes:
    return pcapng_block(0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1), order)


def pcapng_interface(linktype=1, tsresol: int | None = None, order="<", tsoffset: int | None = None) -> bytes:
    options = b""
    if tsresol is not None:
        options += pcapng_option(9, bytes([tsresol]), order)
    if tsoffset is not None:
        options += pcapng_option(14, struct.pack(order + "q", tsoffset), order)
    if options:
        options += pcapng_option(0, b"", order)
    return pcapng_block(1, struct.pack(order + "HHI", linktype, 0, 0) + options, order)


def pcapng_packet(frame: bytes, interface=0, ticks=0, order="<") -> bytes:
    return pcapng_block(6, struct.pack(order + "IIIII", interface, ticks >> 32, ticks & 0xFFFFFFFF,
                                       len(frame), len(frame)) + frame, order)


def write(tmp_path: Path, data: bytes, name="capture.pcap") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# -- classic pcap -------------------------------------------------------------------

@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("nano", [False, True])
def test_pcap_in_both_byte_orders_and_resolutions(tmp_path, order, nano):
    path = write(tmp_path, pcap_bytes(order=order, nano=nano, linktype=101))
    packets = list(read_packets(path))
    assert [p.data for p in packets] == FRAMES
    assert [p.pcap_cnt for p in packets] == [1, 2, 3, 4, 5]
    assert all(p.linktype == 101 for p in packets)
    assert packets[2].ts == pytest.approx(1_700_000_002.5, abs=1e-6)


def test_numbering_starts_at_start_cnt(tmp_path):
    path = write(tmp_path, pcap_bytes())
    assert [p.pcap_cnt for p in read_packets(path, start_cnt=101)] == [101, 102, 103, 104, 105]


def test_packets_spanning_chunk_boundaries(tmp_path, monkeypatch):
    monkeypatch.setattr(capture, "CHUNK_SIZE", 97)
    frames = [bytes([i % 256]) * (1 + (i * 37) % 300) for i in range(200)]
    path = write(tmp_path, pcap_bytes(frames))
    reader = PcapReader(path)
    assert [p.data for p in reader] == frames
    assert not reader.truncated and reader.bytes_read == reader.size == path.stat().st_size


def test_truncated_tail_ends_cleanly_and_is_reported(tmp_path):
    whole = pcap_bytes()
    for cut in (1, 10, 17, len(FRAMES[-1]) + 15):
        reader = PcapReader(write(tmp_path, whole[:-cut]))
        assert [p.data for p in reader] == FRAMES[:-1]
        assert reader.truncated and "truncated" in reader.error


def test_clean_file_is_not_truncated(tmp_path):
    reader = PcapReader(write(tmp_path, pcap_bytes()))
    assert len(list(reader)) == 5 and not reader.truncated and reader.error is None and reader.packets == 5


def test_corrupt_record_length_stops_reading(tmp_path):
    data = bytearray(pcap_bytes())
    second_record = 24 + 16 + len(FRAMES[0])
    data[second_record + 8:second_record + 12] = struct.pack("<I", 0x7FFFFFFF)
    reader = PcapReader(write(tmp_path, bytes(data)))
    assert [p.data for p in reader] == FRAMES[:1]
    assert reader.truncated and "corrupt record length" in reader.error


@pytest.mark.parametrize("content", [b"", b"\xd4\xc3", b"GET / HTTP/1.1\r\n\r\n", b"\xd4\xc3\xb2\xa1" + b"\0" * 10])
def test_not_a_capture_raises_capture_error(tmp_path, content):
    with pytest.raises(CaptureError):
        PcapReader(write(tmp_path, content))
    with pytest.raises(CaptureError):
        list(read_packets(tmp_path / "capture.pcap"))


def test_header_only_file_has_no_packets(tmp_path):
    reader = PcapReader(write(tmp_path, pcap_bytes([])))
    assert list(reader) == [] and not reader.truncated and reader.linktype == 1


def test_count_estimate_is_exact_for_small_files(tmp_path):
    assert count_packets_estimate(write(tmp_path, pcap_bytes())) == 5


# -- pcapng ------------------------------------------------------------------------

def test_pcapng_interfaces_linktypes_and_resolutions(tmp_path):
    data = (pcapng_section() + pcapng_interface(1) + pcapng_interface(101, tsresol=9) +
            pcapng_block(4, b"\x00\x00\x00\x00") +                   # name resolution: skipped
            pcapng_packet(FRAMES[0], 0, 1_700_000_000_500_000) +
            pcapng_packet(FRAMES[1], 1, 1_700_000_001_250_000_000) +
            pcapng_block(3, struct.pack("<I", len(FRAMES[2])) + FRAMES[2]) +   # simple packet block
            pcapng_block(5, b"\0" * 12) +                             # interface statistics: skipped
            pcapng_interface(113, tsresol=0x80 | 10, tsoffset=100) +
            pcapng_packet(FRAMES[3], 2, 3 << 10))
    reader = PcapReader(write(tmp_path, data, "capture.pcapng"))
    packets = list(reader)
    assert reader.format == "pcapng" and reader.linktype == 1 and not reader.truncated
    assert [p.data for p in packets] == FRAMES[:4]
    assert [p.linktype for p in packets] == [1, 101, 1, 113]
    assert packets[0].ts == pytest.approx(1_700_000_000.5)
    assert packets[1].ts == pytest.approx(1_700_000_001.25)
    assert packets[3].ts == pytest.approx(103.0)
    assert [p.pcap_cnt for p in packets] == [1, 2, 3, 4]


def test_pcapng_big_endian_and_second_section(tmp_path):
    data = (pcapng_section(">") + pcapng_interface(101, order=">") + pcapng_packet(FRAMES[0], 0, 7_000_000, ">") +
            pcapng_section("<") + pcapng_interface(1) + pcapng_packet(FRAMES[1], 0, 8_000_000))
    packets = list(read_packets(write(tmp_path, data, "capture.pcapng")))
    assert [(p.data, p.linktype, p.ts) for p in packets] == [(FRAMES[0], 101, 7.0), (FRAMES[1], 1, 8.0)]


def test_pcapng_truncated_block(tmp_path):
    data = pcapng_section() + pcapng_interface(1) + pcapng_packet(FRAMES[0]) + pcapng_packet(FRAMES[1])
    reader = PcapReader(write(tmp_path, data[:-6], "capture.pcapng"))
    assert [p.data for p in reader] == FRAMES[:1] and reader.truncated


def test_pcapng_packet_for_unknown_interface_stops(tmp_path):
    data = pcapng_section() + pcapng_interface(1) + pcapng_packet(FRAMES[0], interface=3)
    reader = PcapReader(write(tmp_path, data, "capture.pcapng"))
    assert list(reader) == [] and reader.truncated


# -- real captures -------------------------------------------------------------------

def dpkt_records(path: Path):
    with open(path, "rb") as handle:
        is_pcapng = handle.read(4) == b"\x0a\x0d\x0d\x0a"     # some .pcap files are pcapng inside
        handle.seek(0)
        reader = dpkt.pcapng.Reader(handle) if is_pcapng else dpkt.pcap.Reader(handle)
        return [(ts, bytes(frame)) for ts, frame in reader]


@pytest.mark.parametrize("name", ["pcaps/attack/id2t/mirai_botnet.pcap", "pcaps/benign/ndpi/sonos.pcapng",
                                  "pcaps/attack/id2t/hydra-1_tasks.pcapng", "pcaps/benign/ndpi/dns.pcap"])
def test_real_captures_match_dpkt(shared_data, name):
    path = shared_data / name
    ours = [(p.ts, p.data) for p in read_packets(path)]
    theirs = dpkt_records(path)
    assert len(ours) == len(theirs) > 0
    assert [data for _, data in ours] == [data for _, data in theirs]
    assert all(abs(a - float(b)) < 1e-5 for (a, _), (b, _) in zip(ours, theirs))


# -- never raises on garbage -------------------------------------------------------------

@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300), st.booleans())
def test_garbage_after_a_valid_header_ends_cleanly(tmp_path, tail, pcapng):
    head = pcapng_section() + pcapng_interface(1) if pcapng else pcap_bytes([])
    path = write(tmp_path, head + tail, "fuzz.pcapng" if pcapng else "fuzz.pcap")
    reader = PcapReader(path)
    for packet in reader:
        assert isinstance(packet.data, bytes)
