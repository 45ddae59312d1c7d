"""Real HTTP clients against the box (see response_run.py): no response
that busybox wget, GNU wget or curl saves as an ELF executable may pass the
shipped rules, however its bytes are cut into segments.

The client test needs root (a network namespace of its own, removed at the
end, failure included), wget, curl and busybox-static (fetched into a cache
with apt-get download, never installed); it skips, saying what is missing,
otherwise. Budget: about 30 s. The other tests check the classification,
the pipeline's verdicts and the frames without a network.
"""
from __future__ import annotations

import pytest
from scapy.all import Ether

from tests.detect.make_cases import _tcp_session
from tests.differential.response_run import (BYPASS, DEVICE, NOT_SAVED, SEEN, SERVER, Connection, Download,
                                             Outcome, Verdict, classify, compare, connection_segments,
                                             frame_bytes, judge, summary, why_not_here)
from tests.differential.responses import BASELINE, CASES, ELF, PATH, TEXT, head

REQUEST = b"GET /x HTTP/1.1\r\nHost: 203.0.113.9\r\nUser-Agent: Wget\r\nConnection: close\r\n\r\n"


@pytest.mark.slow
def test_real_clients_save_no_executable_the_box_lets_through(tmp_path):
    reason = why_not_here()
    if reason:
        pytest.skip(reason)
    report = compare(workdir=tmp_path)
    assert not report.sanity_failures, summary(report)     # baseline saved and dropped, every packet read
    assert not report.bypasses, summary(report)


def test_one_way_through_is_a_bypass_only_if_a_client_saved_the_elf():
    # The attacker picks the segmentation: one open way is enough.
    dropped, open_ = Verdict(True, frozenset({9100120})), Verdict(False)
    assert classify(True, {"whole": dropped, "bytewise": dropped}) == SEEN
    assert classify(True, {"whole": dropped, "bytewise": open_}) == BYPASS
    assert classify(False, {"whole": open_}) == NOT_SAVED
    assert classify(False, {"whole": dropped}) == NOT_SAVED     # over-blocked: information only


BASELINE_CASE = next(case for case in CASES if case.name == BASELINE)


def _outcome(response: list[bytes], saved: bytes) -> Outcome:
    """A client's download of `response` as the server would record it."""
    return Outcome(BASELINE_CASE, "wget", Download(0, saved), [Connection([(True, [REQUEST]), (False, response)])])


def test_the_pipeline_drops_the_baseline_on_time_and_passes_text(tmp_path):
    elf = _outcome(BASELINE_CASE.respond(PATH), ELF)
    text = _outcome([head(b"HTTP/1.1 200 OK", b"Content-Length: %d" % len(TEXT)), TEXT], TEXT)
    assert judge([elf, text], tmp_path) == []
    assert set(elf.verdicts) == {"whole", "writes", "thirds", "bytewise"}
    assert all(v.dropped and v.late is False and 9100120 in v.sids for v in elf.verdicts.values())
    assert elf.kind == SEEN
    assert not any(v.dropped or v.sids for v in text.verdicts.values())


def test_frames_are_the_ones_scapy_builds():
    parts = [(True, [REQUEST]), (False, [b"HTTP/1.1 200 OK\r\n\r\n", b"", ELF])]
    frames = [frame_bytes(segment, 40000) for segment in connection_segments(parts)]
    reference = _tcp_session([(True, REQUEST), (False, b"HTTP/1.1 200 OK\r\n\r\n"), (False, ELF)],
                             sport=40000, client=DEVICE, server=SERVER)
    assert frames[:len(reference)] == [bytes(frame) for frame in reference]
    for frame in frames[len(reference):]:     # the close: scapy recomputes the same checksums
        packet = Ether(frame)
        del packet["IP"].chksum, packet["TCP"].chksum
        assert bytes(packet) == frame
