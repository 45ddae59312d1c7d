"""Copy-me test for a new parser: real bytes, splits, gaps, bounds, fuzz."""
from __future__ import annotations

from hypothesis import given, settings, strategies as st

from tests.applayer.applayer_helpers import feed_all

from ips.applayer.template import MAX_LINE_BYTES, TemplateParser


def test_one_transaction_per_line_across_splits():
    parser = TemplateParser()
    txs = feed_all(parser, [(True, b"HELLO wor"), (True, b"ld\r\nBYE now\n")])
    assert [(tx.tx_id, tx.record) for tx in txs] == [
        (0, {"key": "HELLO", "value": "world"}), (1, {"key": "BYE", "value": "now"})]
    assert all(tx.complete for tx in txs)


def test_gap_resyncs_at_next_line():
    parser = TemplateParser()
    txs = feed_all(parser, [(True, b"PARTIAL li"), (True, b"ne lost\nNEXT ok\n", True)])
    assert [tx.record["key"] for tx in txs] == ["NEXT"]


def test_long_line_is_an_event_and_skipped():
    parser = TemplateParser()
    txs = feed_all(parser, [(True, b"X" * (MAX_LINE_BYTES + 1)), (True, b"tail\nOK 1\n")])
    assert parser.events == ["template.line_too_long"]
    assert [tx.record["key"] for tx in txs] == ["OK"]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.binary(max_size=600), st.booleans()), max_size=10))
def test_random_never_raises_and_bounded(pieces):
    parser = TemplateParser()
    feed_all(parser, pieces)
    assert parser.buffered_bytes <= 2 * MAX_LINE_BYTES
