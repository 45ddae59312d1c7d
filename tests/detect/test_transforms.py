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


def test_xor_and_pcrexform_on_a_transaction():
    # suricata-verify's xor and detect-pcrexform-01 cases.
    from tests.detect.factories import FakeFlow, FakeTx, loaded, packet, sids
    uri = b"/z4d4kWk.jpg"
    key = bytes.fromhex("0d0ac8ff")
    xored = bytes(b ^ key[i % 4] for i, b in enumerate(uri))
    eng = loaded(
        'alert http any any -> any any (msg:"p"; http.request_line; '
        r'pcrexform:"[a-zA-Z]+\s+(.*)\s+HTTP"; content:"/z4d4kWk.jpg"; startswith; endswith; sid:1;)',
        f'alert http any any -> any any (msg:"x"; http.uri; xor:"0d0ac8ff"; '
        f'content:"|{xored.hex(" ")}|"; startswith; endswith; sid:2;)',
        # a pattern with "|" in it, and a chain: pcrexform then to_uppercase
        'alert http any any -> any any (msg:"a"; http.uri; pcrexform:"^/(a|z4d4)"; to_uppercase; '
        'content:"Z4D4"; bsize:4; sid:3;)',
        # no match: the buffer is unchanged, so this content is not found
        'alert http any any -> any any (msg:"n"; http.uri; pcrexform:"^(nomatch)"; '
        'content:"nomatch"; sid:4;)')
    tx = FakeTx("http", 0, True, {"http.request_line": b"GET " + uri + b" HTTP/1.1",
                                  "http.uri": uri})
    assert sids(eng.inspect(packet(b"GET"), FakeFlow(app_proto="http"), None, [tx])) == [1, 2, 3]


def test_transform_arguments_are_checked():
    from tests.detect.factories import engine
    _eng, report = engine("\n".join([
        'alert http any any -> any any (msg:"a"; http.uri; xor:"0d0"; content:"x"; sid:1;)',
        'alert http any any -> any any (msg:"b"; http.uri; pcrexform:"abc"; content:"x"; sid:2;)']))
    assert len(report.errors) == 2
