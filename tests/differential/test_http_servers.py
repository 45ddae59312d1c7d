"""HttpParser against real embedded web servers (see run.py): every request
busybox httpd, mini_httpd, lighttpd or nginx runs must be in some
transaction's http.uri, or the stream must carry an event the box drops on.

The server test needs root (a network namespace of its own, removed at the
end, failure included) and the servers' Debian packages; it skips, naming
what to install, otherwise. Budget: about 15 s. The other tests check the
streams and the classification without servers.
"""
from __future__ import annotations

import pytest

from tests.differential.run import (DROP_EVENTS, LETTERS, PARSER_LETTER, Run, Selected, classify, compare,
                                    parser_view, select, splits, summary, why_not_here)
from tests.differential.streams import BASELINE, STREAMS

pytestmark = pytest.mark.slow


def test_real_servers_run_nothing_the_parser_misses(tmp_path):
    reason = why_not_here()
    if reason:
        pytest.skip(reason)
    report = compare(workdir=tmp_path)
    assert not report.sanity_failures, summary(report)     # baseline ran everywhere, all runs attributed
    assert not report.evasions, summary(report)
    assert not report.split_inconsistencies, summary(report)


def test_streams_frame_the_same_for_every_server():
    # Markers differ per server but not in length, so every server (and
    # the parser) gets the same framing; the split ways are the same bytes.
    assert len({name for name, _family, _builder in STREAMS}) == len(STREAMS)
    for stream in select():
        reference = stream.chunks(PARSER_LETTER)
        assert all(reference), stream.name
        for letter in LETTERS.values():
            chunks = stream.chunks(letter)
            assert [len(chunk) for chunk in chunks] == [len(chunk) for chunk in reference], stream.name
            assert b"x%04d%s" % (stream.index, letter.encode()) in b"".join(chunks), stream.name
        for way, pieces in splits(reference).items():
            assert b"".join(pieces) == b"".join(reference), (stream.name, way)


def _stream(name: str) -> Selected:
    return next(stream for stream in select([name]) if stream.name == name)


def _ran(letter: str, script: bytes = b"/cgi-bin/m.cgi") -> Run:
    return Run(letter, b"GET", script, b"")


def test_a_hidden_request_is_an_evasion_unless_the_stream_is_flagged():
    # lighttpd runs the request inside an HTTP/2 preface; the parser sees no
    # http.uri for it but flags the stream (http.http2_cleartext).
    stream = _stream("min_h2_preface_only_headers")
    data = b"".join(stream.chunks(PARSER_LETTER))
    view = parser_view(stream.index, [data])
    assert "H" not in view.seen
    flagged = classify(stream, data, view, "lighttpd", [_ran("H")])
    assert [finding.kind for finding in flagged] == ["flagged"]
    unflagged = classify(stream, data, view, "lighttpd", [_ran("H")],
                         drop_events=DROP_EVENTS - {"http.http2_cleartext"})
    assert [finding.kind for finding in unflagged] == ["evasion"]


def test_a_seen_request_is_fine_unless_another_script_ran():
    stream = _stream(BASELINE)
    data = b"".join(stream.chunks(PARSER_LETTER))
    view = parser_view(stream.index, [data])
    assert sorted(view.seen) == ["A", "C"] and not view.drop_events
    assert classify(stream, data, view, "nginx", [_ran("A"), _ran("C")]) == []
    other = classify(stream, data, view, "nginx", [_ran("A", b"/cgi-bin/other.cgi")])
    assert [finding.kind for finding in other] == ["path"]
