import pytest

from ips.config import Config


def test_set_known_keys_parse_values():
    c = Config().apply(["stream.midstream=true", "stream.reassembly.depth=1mb",
                        "stream.inline=yes"])
    assert c.stream_midstream is True
    assert c.stream_inline is True
    assert c.stream_depth == 1 << 20


def test_unknown_keys_are_kept_not_fatal():
    c = Config().apply(["mpm-algo=ac"])
    assert c.extra["mpm-algo"] == "ac"


@pytest.mark.parametrize("bad", ["stream.midstream=maybe", "novalue"])
def test_bad_values_are_clear_errors(bad):
    with pytest.raises(ValueError, match="--set|KEY=VALUE"):
        Config().apply([bad])
