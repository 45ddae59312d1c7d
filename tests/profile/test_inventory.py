from hypothesis import given, settings, strategies as st

from ips.inventory import HomeNet, Inventory, device_key
from ips.store import Store

from devicefactories import T0, flow, record

HUE_MAC = "c4:29:96:00:00:20"


def test_home_net_membership():
    home = HomeNet("[192.0.2.0/24,2001:db8::/32,!192.0.2.128/25,$EXTERNAL_NET]")
    assert "192.0.2.10" in home
    assert "192.0.2.200" not in home          # negated part
    assert "2001:db8::5" in home
    assert "198.51.100.1" not in home
    assert "garbage" not in home and None not in home


def test_device_keys():
    assert device_key("44:47:CC:00:00:10", "192.0.2.10") == "44:47:cc:00:00:10"
    assert device_key("01:00:5e:00:00:fb", "192.0.2.10") is None   # multicast MAC
    assert device_key("ff:ff:ff:ff:ff:ff", "192.0.2.10") is None
    assert device_key(None, "192.0.2.10") == "ip:192.0.2.10"         # raw-IP capture
    assert device_key(None, "224.0.0.251") is None


def test_flow_sides_and_ip_history(config):
    inventory = Inventory(config)
    inventory.flow_end(flow(ts=T0))
    inventory.flow_end(flow(src="192.0.2.99", ts=T0 + 3600, flow_id=2))   # new DHCP lease
    camera = inventory.get("44:47:cc:00:00:10")
    assert set(camera.ips) == {"192.0.2.10", "192.0.2.99"}
    assert camera.ip == "192.0.2.99"
    assert camera.vendor.startswith("Hangzhou Hikvision")
    assert camera.first_seen == T0 and camera.last_seen == T0 + 3601
    # the router MAC seen with an internet address is not a device
    assert set(inventory.devices) == {"44:47:cc:00:00:10"}


def test_unanswered_local_target_is_not_a_device(config):
    inventory = Inventory(config)
    inventory.flow_end(flow(dst="192.0.2.77", dport=23, pkts_down=0, down=0, server_mac=None))
    assert "ip:192.0.2.77" not in inventory.devices


def test_hue_bridge_from_vendor_and_mdns_with_evidence(config):
    inventory = Inventory(config)
    inventory.app_record(record("mdns", {"type": "response",
                                         "service_types": ["_hue._tcp.local"],
                                         "names": ["Philips-hue.local"]},
                                src="192.0.2.20", dst="224.0.0.251", src_mac=HUE_MAC))
    device = inventory.get(HUE_MAC)
    inventory.guess(device)
    assert device.type_guess == "Hue bridge"
    assert device.confidence >= 0.9
    assert {"source": "vendor", "value": "Signify B.V."} in device.evidence
    assert any(e["source"] == "mdns" and "_hue._tcp" in e["value"] for e in device.evidence)
    assert device.hostname == "Philips-hue"


def test_mdns_query_does_not_describe_the_asker(config):
    inventory = Inventory(config)
    inventory.app_record(record("mdns", {"type": "query", "names": ["_hue._tcp.local"]},
                                src="192.0.2.30", dst="224.0.0.251",
                                src_mac="da:a1:19:00:00:01"))
    phone = inventory.get("da:a1:19:00:00:01")
    inventory.guess(phone)
    assert phone.type_guess is None


def test_tp_link_plug_from_service_port(config):
    inventory = Inventory(config)
    plug = "d0:37:45:00:00:11"
    inventory.flow_end(flow(src="192.0.2.30", dst="192.0.2.11", dport=9999,
                            client_mac="da:a1:19:00:00:01", server_mac=plug))
    device = inventory.get(plug)
    inventory.guess(device)
    assert (device.type_guess, device.model_guess) == ("smart plug", "TP-Link Kasa")
    assert {"source": "listens", "value": "tcp/9999"} in device.evidence


def test_dhcp_hints(config):
    inventory = Inventory(config)
    inventory.app_record(record("dhcp", {
        "type": "request", "client_mac": "18:b4:30:00:00:12", "hostname": "Nest-Thermostat",
        "vendor_class_identifier": "dhcpcd-6.8.2", "parameter_request_list": "1,3,6,15",
        "mud_url": "https://mud.example/nest.json", "requested_ip": "192.0.2.12"},
        src="0.0.0.0", dst="255.255.255.255", src_mac="18:b4:30:00:00:12"))
    device = inventory.get("18:b4:30:00:00:12")
    assert device.hostname == "Nest-Thermostat"
    assert device.hints["dhcp_params"] == ["1,3,6,15"]
    assert device.hints["mud_url"] == ["https://mud.example/nest.json"]
    assert device.ip == "192.0.2.12"
    inventory.guess(device)
    assert device.type_guess == "thermostat"   # Nest Labs vendor + "nest" hostname


def test_http_headers_go_to_their_sender(config):
    inventory = Inventory(config)
    inventory.flow_end(flow(src="192.0.2.30", dst="192.0.2.40", dport=80,
                            client_mac="da:a1:19:00:00:01", server_mac="00:11:22:00:00:40"))
    # HTTP records are logged from the flow's point of view: client first,
    # with the client's MAC, whichever packet completed the transaction
    inventory.app_record(record("http", {"hostname": "192.0.2.40", "url": "/",
                                         "http_user_agent": "Mozilla/5.0 (iPhone)",
                                         "status": 200, "server": "Boa/0.94.14rc21"},
                                src="192.0.2.30", sport=40000, dst="192.0.2.40", dport=80,
                                src_mac="da:a1:19:00:00:01", proto="TCP"))
    assert inventory.get("da:a1:19:00:00:01").hints["user_agent"] == ["Mozilla/5.0 (iPhone)"]
    assert inventory.get("00:11:22:00:00:40").hints["http_server"] == ["Boa/0.94.14rc21"]


def test_sync_persists_and_user_override_sticks(config, tmp_path):
    store = Store(tmp_path / "s.sqlite")
    inventory = Inventory(config)
    inventory.flow_end(flow())
    assert inventory.sync(store) == 1
    store.conn.execute("UPDATE devices SET user_name='Living-room camera', user_type='camera'"
                       " WHERE mac='44:47:cc:00:00:10'")
    inventory.flow_end(flow(ts=T0 + 60, flow_id=2))
    inventory.sync(store)
    device = inventory.get("44:47:cc:00:00:10")
    assert device.display_name == "Living-room camera"
    row = store.conn.execute("SELECT user_name, vendor, ip FROM devices").fetchone()
    assert tuple(row) == ("Living-room camera", device.vendor, "192.0.2.10")
    assert store.conn.execute("SELECT count(*) FROM device_ips").fetchone()[0] == 1
    restored = Inventory(config)
    assert restored.load(store) == 1
    assert restored.get("44:47:cc:00:00:10").user_name == "Living-room camera"


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                           max_leaves=12)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(["dhcp", "mdns", "ssdp", "http", "tls", "dns", "telnet"]),
       st.dictionaries(st.sampled_from(["hostname", "client_mac", "names", "server", "sni",
                                        "ja3", "ja4", "queries", "answers", "type", "status",
                                        "upnp", "method", "service_types", "assigned_ip"]),
                       json_values, max_size=6))
def test_odd_fields_never_raise(app_proto, fields):
    from ips.config import Config
    cfg = Config()
    cfg.home_net = "[192.0.2.0/24]"
    inventory = Inventory(cfg)
    inventory.app_record(record(app_proto, fields))
    for device in inventory.devices.values():
        inventory.guess(device)
