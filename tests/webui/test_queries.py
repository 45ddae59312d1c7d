from hypothesis import given, settings, strategies as st

from webui import queries

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=30)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.sampled_from(["destinations", "ports", "hours", "volume", "x"]), json_values))
def test_any_profile_json_becomes_the_agreed_shape(profile):
    shaped = queries.normalize_profile(profile)
    assert set(shaped) == {"destinations", "ports", "hours", "volume"}
    assert len(shaped["hours"]) == 7 and all(len(row) == 24 for row in shaped["hours"])
    assert all(isinstance(c, int) and c >= 0 for row in shaped["hours"] for c in row)


def test_profile_keeps_good_data():
    shaped = queries.normalize_profile({
        "destinations": [{"ip": "198.51.100.1", "name": "a", "bytes": 10, "flows": 2},
                         {"ip": "198.51.100.2", "bytes": 99}],
        "hours": [[1] * 24] * 7, "volume": [{"hour_ts": 7200, "up": 5, "down": 6}], "ports": [443]})
    assert [d["ip"] for d in shaped["destinations"]] == ["198.51.100.2", "198.51.100.1"]
    assert shaped["ports"] == [{"port": 443, "proto": "", "flows": 0}]
    assert shaped["volume"] == [{"hour_ts": 7200.0, "up": 5, "down": 6}]


def test_anomaly_severity_bands():
    assert [queries.anomaly_severity(s) for s in (0.95, 0.8, 0.6, 0.1, None)] == [1, 1, 2, 3, 3]
