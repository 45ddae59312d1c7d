from ips.verify import lookup, record_matches, requirements_met, _MISSING


REC = {"event_type": "alert", "alert": {"signature_id": 5, "metadata": {"cve": ["x"]}},
       "dns": {"queries": [{"rrname": "a.example"}]}, "flow": {"alerted": True}}


def test_dotted_and_indexed_lookup():
    assert lookup(REC, "alert.signature_id") == 5
    assert lookup(REC, "dns.queries[0].rrname") == "a.example"
    assert lookup(REC, "dns.queries[3].rrname") is _MISSING
    assert lookup(REC, "nope.x") is _MISSING


def test_match_semantics():
    assert record_matches(REC, {"event_type": "alert", "alert.signature_id": 5})
    assert not record_matches(REC, {"alert.signature_id": 6})
    assert record_matches(REC, {"alert": {"signature_id": 5}})   # nested subset
    assert record_matches(REC, {"has-key": "alert.metadata"})
    assert not record_matches(REC, {"has-key": "alert.engine"})
    assert record_matches(REC, {"not-has-key": "alert.engine"})
    assert record_matches(REC, {"flow.alerted": True})
    assert not record_matches(REC, {"flow.alerted": 1 == 0})


def test_requires_versions():
    assert requirements_met({"min-version": "7.0.0"})[0]
    assert not requirements_met({"min-version": "9"})[0]
    assert not requirements_met({"lt-version": "8.0.0"})[0]


def test_suricata_args_map_onto_the_config():
    from ips.config import Config
    from ips.verify import _parse_args
    config = Config()
    _parse_args(["-k none --set stream.midstream=true", "--simulate-ips", "--runmode=single"], config)
    assert config.checksum_mode == "none" and config.stream_midstream and config.stream_inline
    assert config.extra["ignored_args"] == ["--runmode=single"]
    plain = Config()
    _parse_args(["-k none"], plain)
    assert not plain.stream_inline
