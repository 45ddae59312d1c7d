from hypothesis import given, strategies as st

from ips import oui


def test_vendor_from_the_ieee_registry():
    # MA-L (24-bit) assignments from /usr/share/ieee-data/oui.csv
    assert oui.vendor("C4:29:96:12:34:56") == "Signify B.V."
    assert oui.vendor("18-b4-30-00-00-12") == "Nest Labs Inc."
    assert oui.vendor("4447.cc00.0010").startswith("Hangzhou Hikvision")


def test_longer_prefix_wins():
    # 70:B3:D5 is an IEEE block carved into 36-bit MA-S assignments
    assert oui.vendor("70:b3:d5:f2:f0:01") == "TELEPLATFORMS"


def test_special_addresses_are_reported_as_such():
    assert oui.vendor("02:00:00:00:00:01") == oui.LOCALLY_ADMINISTERED
    assert oui.vendor("da:a1:19:00:00:01") == oui.LOCALLY_ADMINISTERED  # randomised phone MAC
    assert oui.vendor("01:00:5e:00:00:fb") == oui.MULTICAST
    assert oui.vendor("ff:ff:ff:ff:ff:ff") == oui.BROADCAST


def test_unknown_and_malformed():
    assert oui.vendor(None) is None
    assert oui.vendor("not a mac") is None
    assert oui.vendor("00:11:22:33:44") is None
    assert oui.normalise_mac("AA:BB:CC:DD:EE:FF") == "aa:bb:cc:dd:ee:ff"


def test_missing_registry_directory_narrows_lookup(tmp_path):
    registry = oui.OuiRegistry(tmp_path)
    assert registry.lookup("c4:29:96:00:00:01") is None
    assert len(registry) == 0


@given(st.text(max_size=40))
def test_random_text_never_raises(text):
    result = oui.vendor(text)
    assert result is None or isinstance(result, str)
