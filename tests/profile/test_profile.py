import json

from hypothesis import given, settings, strategies as st

from ips import events
from ips.inventory import Inventory
from ips.profile import (Blocklist, Profiler, is_high_confidence_compromise, make_consumers,
                         registered_domain)
from ips.store import Store

from devicefactories import T0, flow, record

CAMERA = "44:47:cc:00:00:10"
HOUR = 3600.0
DAY = 86400.0


def learned(config, hours=24, **kwargs):
    """A profiler whose camera uploaded ~10 KB to its cloud every hour for a day."""
    profiler = Profiler(config, blocklist=Blocklist(["198.51.100.66", "bad.example"]), **kwargs)
    for hour in range(hours):
        ts = T0 + hour * HOUR + 600
        profiler.app_record(record("dns", {"type": "response", "queries": [
            {"rrname": "cam.cloud.example", "rrtype": "A"}], "answers": [
            {"rrname": "cam.cloud.example", "rrtype": "A", "rdata": "198.51.100.10"}]},
            src="192.0.2.1", sport=53, dst="192.0.2.10", dport=40000, ts=ts - 1,
            src_mac="02:00:5e:00:00:01"))
        assert profiler.flow_end(flow(ts=ts, up=10_000, flow_id=hour)) == []
    return profiler


def kinds(anomalies):
    return [a.kind for a in anomalies]


def test_learning_then_protected(config):
    profiler = learned(config)
    assert profiler.stage(CAMERA) == "learning"
    profiler.tick(T0 + DAY + HOUR)
    assert profiler.stage(CAMERA) == "protected"
    profile = profiler.profiles[CAMERA]
    assert "198.51.100.10" in profile.destinations and "cam.cloud.example" in profile.names
    assert profile.ports == {"tcp/443": 24}


def test_new_destination_explained(config):
    profiler = learned(config)
    out = profiler.flow_end(flow(dst="203.0.113.50", ts=T0 + DAY + 3 * HOUR, flow_id=99))
    assert kinds(out) == ["new_destination"]
    anomaly = out[0]
    assert anomaly.mac == CAMERA and anomaly.ip == "192.0.2.10"
    assert anomaly.observed["destination"] == "203.0.113.50"
    assert "203.0.113.50" in anomaly.explanation and "03:00" in anomaly.explanation
    assert "cam.cloud.example" in anomaly.explanation     # the baseline, in words
    assert anomaly.score > 0.7                            # at night


def test_rotating_cloud_address_is_known_by_name(config):
    profiler = learned(config)
    ts = T0 + DAY + HOUR
    profiler.app_record(record("dns", {"type": "response", "queries": [
        {"rrname": "eu.cam.cloud.example", "rrtype": "A"}], "answers": [
        {"rrname": "eu.cam.cloud.example", "rrtype": "A", "rdata": "203.0.113.9"}]},
        src="192.0.2.1", sport=53, dst="192.0.2.10", dport=40000, ts=ts,
        src_mac="02:00:5e:00:00:01"))
    assert profiler.flow_end(flow(dst="203.0.113.9", ts=ts + 1, flow_id=100)) == []


def test_no_storm_one_event_per_hour_with_count(config):
    profiler = learned(config)
    start = T0 + DAY + 2 * HOUR
    out = []
    for n in range(30):
        out += profiler.flow_end(flow(dst=f"203.0.113.{n + 1}", ts=start + n * 60, flow_id=200 + n))
    assert kinds(out) == ["new_destination"]
    assert out[0].count == 1
    summary = profiler.tick(start + HOUR + 1)
    assert kinds(summary) == ["new_destination"]
    assert summary[0].count == 30 and summary[0].observed["summary"] is True
    assert summary[0].observed["window_start"] == out[0].observed["window_start"]
    # the same destination again is not news
    assert profiler.flow_end(flow(dst="203.0.113.1", ts=start + 2 * HOUR, flow_id=300)) == []


def test_unusual_volume_against_hourly_baseline(config):
    profiler = learned(config)
    ts = T0 + DAY + 3 * HOUR + 60
    out = []
    for n in range(5):
        out += profiler.flow_end(flow(ts=ts + n * 60, up=200_000, flow_id=400 + n))
    assert kinds(out) == ["unusual_volume"]
    anomaly = out[0]
    assert anomaly.baseline["max_bytes_up_per_hour"] == 10_000
    assert "in an hour" in anomaly.explanation and "03:00 and 04:00" in anomaly.explanation


def test_unusual_time_and_new_port(config):
    profiler = learned(config, hours=12)          # active 00:00-12:00 only
    profiler.tick(T0 + DAY)
    out = profiler.flow_end(flow(dport=8883, ts=T0 + DAY + 20 * HOUR, flow_id=500))
    assert sorted(kinds(out)) == ["new_port", "unusual_time"]
    new_port = next(a for a in out if a.kind == "new_port")
    assert "8883" in new_port.explanation and "tcp/443" in new_port.explanation


def test_relearn_window_extends_baseline(config):
    profiler = learned(config)
    profiler.relearn(CAMERA, until=T0 + DAY + 6 * HOUR)
    assert profiler.stage(CAMERA) == "relearning"
    assert profiler.flow_end(flow(dst="203.0.113.80", dport=8443, ts=T0 + DAY + HOUR, flow_id=600)) == []
    after = T0 + DAY + 7 * HOUR
    assert profiler.flow_end(flow(dst="203.0.113.80", dport=8443, ts=after, flow_id=601)) == []
    assert profiler.stage(CAMERA) == "protected"


def test_known_bad_in_every_stage(config):
    profiler = learned(config, hours=1)
    out = profiler.flow_end(flow(dst="198.51.100.66", ts=T0 + 2 * HOUR, flow_id=700))
    assert kinds(out) == ["known_bad_destination"]
    assert "blocklist" in out[0].explanation
    out = profiler.app_record(record("dns", {"type": "request", "queries": [
        {"rrname": "x.bad.example", "rrtype": "A"}]}, dport=53, ts=T0 + 5 * HOUR))
    assert kinds(out) == ["known_bad_destination"]


def test_blocklist_file(tmp_path):
    path = tmp_path / "bl.txt"
    path.write_text("# comment\n198.51.100.66\n203.0.113.0/28\nEvil.Example.\n\n")
    blocklist = Blocklist.from_file(path)
    assert blocklist.match_ip("198.51.100.66") == "198.51.100.66"
    assert blocklist.match_ip("203.0.113.5") == "203.0.113.0/28"
    assert blocklist.match_ip("203.0.113.50") is None
    assert blocklist.match_name("cdn.evil.example") == "evil.example"
    assert blocklist.match_name("notevil.example") is None
    assert len(Blocklist.from_file(tmp_path / "missing.txt")) == 0


def test_shipped_blocklist_has_the_lab_c2(config):
    assert Profiler(config).blocklist.match_ip("198.51.100.66")


def test_scan_needs_many_unanswered_destinations(config):
    profiler = learned(config)
    out = []
    for n in range(20):
        out += profiler.flow_end(flow(dst=f"192.0.2.{100 + n}", dport=23, ts=T0 + 3 * HOUR + n,
                                      pkts_down=0, down=0, server_mac=None, state="new",
                                      flow_id=800 + n))
    assert "scan" in kinds(out)
    scan = next(a for a in out if a.kind == "scan")
    assert scan.observed["direction"] == "outbound" and scan.observed["failed_ratio"] >= 0.9
    assert "telnet" in scan.explanation


def test_busy_answered_device_is_not_a_scan(config):
    profiler = learned(config, hours=1)
    out = []
    for n in range(40):
        out += profiler.flow_end(flow(dst=f"203.0.113.{n + 1}", ts=T0 + 2 * HOUR + n, flow_id=900 + n))
    assert "scan" not in kinds(out)


def test_brute_force_from_telnet_logins(config):
    profiler = learned(config)
    out = []
    for n in range(6):
        out += profiler.app_record(record("telnet", {"login": "root", "password": f"p{n}",
                                                     "result": "failure"},
                                          src="203.0.113.66", sport=50000 + n, dst="192.0.2.10",
                                          dport=23, ts=T0 + 5 * HOUR + n * 10,
                                          src_mac="02:00:5e:00:00:01", proto="TCP"))
    assert kinds(out) == ["brute_force"]
    assert out[0].mac == CAMERA and out[0].observed["direction"] == "inbound"
    assert not is_high_confidence_compromise(out)    # the camera was the target


def test_brute_force_from_short_connections_by_the_device(config):
    profiler = learned(config)
    out = []
    for n in range(10):
        out += profiler.flow_end(flow(dst="192.0.2.50", dport=23, ts=T0 + 5 * HOUR + n * 5,
                                      up=300, down=200, server_mac="00:11:22:00:00:50",
                                      flow_id=1000 + n))
    assert "brute_force" in kinds(out)
    assert is_high_confidence_compromise(out)


def test_high_confidence_rules():
    def anomaly(kind, score=0.8, ts=T0, **observed):
        return events.DeviceAnomaly(timestamp=ts, mac=CAMERA, ip=None, kind=kind, score=score,
                                    observed=observed, baseline={}, explanation="")
    assert is_high_confidence_compromise([anomaly("known_bad_destination", 1.0)])
    assert is_high_confidence_compromise([anomaly("scan", direction="outbound")])
    assert not is_high_confidence_compromise([anomaly("new_destination")])
    assert is_high_confidence_compromise([anomaly("new_destination"), anomaly("unusual_volume")])
    assert not is_high_confidence_compromise([anomaly("new_destination"),
                                              anomaly("unusual_volume", ts=T0 + 5 * HOUR)])
    assert not is_high_confidence_compromise([])


def test_new_device_after_the_box_learned(config):
    profiler = learned(config)
    out = profiler.app_record(record("dhcp", {"type": "request", "client_mac": "24:6f:28:00:00:13",
                                              "requested_ip": "192.0.2.13"},
                                     src="0.0.0.0", dst="255.255.255.255",
                                     src_mac="24:6f:28:00:00:13", ts=T0 + 2 * DAY))
    assert kinds(out) == ["new_device"]
    assert "Espressif" in out[0].explanation and out[0].ip == "192.0.2.13"


def test_explanations_use_the_inventory_name(config):
    inventory = Inventory(config)
    profiler = Profiler(config, inventory=inventory)
    for hour in range(25):
        event = flow(ts=T0 + hour * HOUR, flow_id=hour)
        inventory.flow_end(event)
        profiler.flow_end(event)
    inventory.set_override(CAMERA, name="Living-room camera")
    out = profiler.flow_end(flow(dst="203.0.113.9", ts=T0 + DAY + HOUR, flow_id=50))
    assert out[0].explanation.startswith("Living-room camera contacted 203.0.113.9")
    assert out[0].name == "Living-room camera"


def test_sync_load_round_trip_and_control_plane_relearn(config, tmp_path):
    store = Store(tmp_path / "s.sqlite")
    profiler = learned(config)
    profiler.tick(T0 + DAY + HOUR)
    assert profiler.sync(store) == 1
    row = store.conn.execute("SELECT stage, profile FROM devices WHERE mac=?", (CAMERA,)).fetchone()
    assert row[0] == "protected"
    assert json.loads(row[1])["names"] == ["cam.cloud.example"]
    # control plane opens a re-learning window; the next sync must keep it
    store.conn.execute("UPDATE devices SET stage='relearning', stage_until=? WHERE mac=?",
                       (T0 + 3 * DAY, CAMERA))
    profiler.sync(store)
    assert profiler.stage(CAMERA) == "relearning"
    restored = Profiler(config)
    assert restored.load(store) == 1
    assert "198.51.100.10" in restored.profiles[CAMERA].destinations
    assert restored.profiles[CAMERA].stage == "relearning"


def test_make_consumers_order(config):
    inventory, profiler = make_consumers(config)
    assert isinstance(inventory, Inventory) and profiler.inventory is inventory


def test_to_mud(config):
    profiler = learned(config)
    mud = profiler.to_mud(CAMERA)
    assert mud["ietf-mud:mud"]["mud-version"] == 1
    acl = mud["ietf-access-control-list:acls"]["acl"][0]
    ace = acl["aces"]["ace"][0]
    assert ace["matches"]["ipv4"]["ietf-acldns:dst-dnsname"] == "cam.cloud.example"
    assert ace["matches"]["tcp"]["destination-port"] == {"operator": "eq", "port": 443}
    assert profiler.to_mud("00:00:00:00:00:99") is None


def test_registered_domain():
    assert registered_domain("a.b.cloud.example") == "cloud.example"
    assert registered_domain("x.example.co.uk") == "example.co.uk"


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(["dns", "tls", "http", "telnet", "dhcp"]),
       st.dictionaries(st.sampled_from(["queries", "answers", "rrname", "grouped", "sni",
                                        "hostname", "result", "login_attempts", "client_mac",
                                        "type", "status", "requested_ip"]),
                       st.recursive(st.none() | st.integers() | st.text(max_size=12),
                                    lambda inner: st.lists(inner, max_size=3)
                                    | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                                    max_leaves=8), max_size=5))
def test_odd_records_never_raise(app_proto, fields):
    from ips.config import Config
    cfg = Config()
    cfg.home_net = "[192.0.2.0/24]"
    profiler = Profiler(cfg, blocklist=Blocklist(["bad.example"]))
    result = profiler.app_record(record(app_proto, fields, dport=53))
    assert isinstance(result, list)


def test_frequent_short_uploads_to_a_learned_server_are_not_brute_force(config):
    # A camera posting a snapshot to its cloud every few seconds: the same
    # short connections to port 80 it made all through learning.
    profiler = learned(config)
    cloud = "203.0.113.10"
    for n in range(40):
        profiler.flow_end(flow(dst=cloud, dport=80, ts=T0 + n * 3, up=900, down=200,
                               flow_id=5000 + n))
    profiler.flow_end(flow(dst=cloud, dport=80, ts=T0 + 8 * 86400, up=900, down=200,
                           flow_id=5999))
    out = []
    for n in range(20):
        out += profiler.flow_end(flow(dst=cloud, dport=80, ts=T0 + 9 * 86400 + n * 2,
                                      up=900, down=200, flow_id=6000 + n))
    assert "brute_force" not in kinds(out)


def test_refused_web_logins_are_brute_force_on_the_target(config):
    profiler = learned(config)
    out = []
    for n in range(12):
        out += profiler.app_record(record(
            "http", {"hostname": "cam", "url": "/login.cgi", "http_method": "POST", "status": 401},
            src="198.51.100.99", sport=50000 + n, dst="192.0.2.10", dport=80,
            ts=T0 + 30 * HOUR + n * 3, src_mac="02:00:5e:00:00:01", proto="TCP"))
    assert "brute_force" in kinds(out)
