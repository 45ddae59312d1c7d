"""Sticky-buffer transforms, byte for byte as Suricata's."""
from ips.detect.transforms import TRANSFORMS


def test_compress_whitespace_keeps_the_first_byte_of_each_run():
    # Suricata (detect-transform-compress-whitespace.c) copies the first
    # whitespace byte of a run and skips the rest: a tab stays a tab.
    compress = TRANSFORMS["compress_whitespace"]
    assert compress(b"a\t\tb") == b"a\tb"
    assert compress(b"a \r\n b  c") == b"a b c"
    assert compress(b"\n\nx\v\f") == b"\nx\v"
    assert compress(b"none") == b"none"


def test_strip_whitespace_and_url_decode():
    assert TRANSFORMS["strip_whitespace"](b" a\tb\r\nc ") == b"abc"
    assert TRANSFORMS["url_decode"](b"a+b%41%zz") == b"a bA%zz"
    assert TRANSFORMS["dotprefix"](b"example.com") == b".example.com"
