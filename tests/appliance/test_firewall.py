"""Rendering of the iptables-restore payloads (no kernel needed)."""
from appliance import firewall, ipsets
from appliance.enforce import Enforcer
from appliance.firewall import FirewallPlan
from ips.nfq import MARK_BYPASS, MARK_MASK


def _rules(payload: str) -> list[str]:
    return [line for line in payload.splitlines() if line.startswith("-")]


def test_apply_payload_is_one_transaction_in_own_chains():
    payload = firewall.render_apply(FirewallPlan(bridge="br0", queue_count=2), 4)
    lines = payload.splitlines()
    assert lines[0] == "*filter" and lines[-1] == "COMMIT"
    assert payload.count("COMMIT") == 1
    for rule in _rules(payload):
        chain = rule.split()[1]
        # the only rule outside our chains is the one jump from FORWARD
        assert chain.startswith("REEFGUARD-") or rule == "-I " + firewall.jump_rule(FirewallPlan("br0"))


def test_queue_rule_follows_policy_and_balance():
    open_plan = FirewallPlan(bridge="br0", queue_first=4, queue_count=3, fail_open=True)
    closed_plan = FirewallPlan(bridge="br0", queue_first=4, queue_count=1, fail_open=False)
    assert "--queue-balance 4:6 --queue-bypass" in firewall.queue_rule(open_plan)
    assert firewall.queue_rule(closed_plan).endswith("NFQUEUE --queue-num 4")


def test_blocks_come_before_the_bypass_accept():
    rules = _rules(firewall.render_apply(FirewallPlan(bridge="br0"), 4))
    forward = [r for r in rules if r.startswith(f"-A {firewall.FORWARD_CHAIN}")]
    block = next(i for i, r in enumerate(forward) if r.endswith(f"-j {firewall.BLOCK_CHAIN}"))
    bypass = next(i for i, r in enumerate(forward) if f"0x{MARK_BYPASS:08x}/0x{MARK_MASK:08x} -j ACCEPT" in r)
    related = next(i for i, r in enumerate(forward) if "--ctstate RELATED" in r)
    queue = max(i for i, r in enumerate(forward) if r.endswith(f"-j {firewall.QUEUE_CHAIN}"))
    assert block < related < bypass < queue


def test_related_packets_are_queued_before_the_mark_is_restored_and_never_save_it():
    # An ICMP error shares its connection's conntrack entry: restoring that
    # mark would carry it past inspection, saving a verdict on it would judge
    # the connection it quotes.
    rules = _rules(firewall.render_apply(FirewallPlan(bridge="br0"), 4))
    forward = [r for r in rules if r.startswith(f"-A {firewall.FORWARD_CHAIN}")]
    related = next(i for i, r in enumerate(forward) if "--ctstate RELATED" in r)
    restore = next(i for i, r in enumerate(forward) if "--restore-mark" in r)
    assert related < restore and forward[related].endswith(f"-j {firewall.QUEUE_CHAIN}")
    save = [r for r in rules if "--save-mark" in r]
    assert save and all("! --ctstate RELATED" in r for r in save)


def test_jump_not_duplicated_when_present():
    plan = FirewallPlan(bridge="br0")
    assert "-I FORWARD" not in firewall.render_apply(plan, 4, jump_present=True)
    assert "-I FORWARD" in firewall.render_apply(plan, 4, jump_present=False)


def test_ipv6_payload_uses_v6_sets_and_keeps_neighbour_discovery():
    payload = firewall.render_apply(FirewallPlan(bridge="br0"), 6)
    assert ipsets.GATEWAYS[6] in payload and ipsets.GATEWAYS[4] not in payload
    assert "-p ipv6-icmp -j RETURN" in payload
    blocks = Enforcer.render_rules(6, set(), set(), quarantine_ips=True, blocked_for_all=True)
    assert ipsets.QUARANTINE[6] in blocks and ipsets.QUARANTINE[4] not in blocks
    assert ipsets.BLOCKED_DESTINATIONS[6] in blocks


def test_block_chain_holds_only_the_checks_in_use():
    # Every forwarded packet, bypassed bulk included, crosses REEFGUARD-BLOCK.
    nothing = _rules(Enforcer.render_rules(4, set(), set()))
    assert not [r for r in nothing if r.startswith(f"-A {firewall.BLOCK_CHAIN}")]
    one_mac = _rules(Enforcer.render_rules(4, {"02:00:00:00:00:10"}, set()))
    assert [r for r in one_mac if r.startswith(f"-A {firewall.BLOCK_CHAIN}")] == [
        f"-A {firewall.BLOCK_CHAIN} -j {firewall.QUARANTINE_MAC_CHAIN}"]


def test_teardown_removes_every_chain_it_declares():
    plan = FirewallPlan(bridge="br0")
    payload = firewall.render_teardown(plan, 4)
    for chain in firewall.CHAINS:
        assert f"-X {chain}" in payload
    assert f"-D {firewall.jump_rule(plan)}" in payload
    assert "-D FORWARD" not in firewall.render_teardown(plan, 4, jump_present=False)


def test_teardown_falls_back_piecewise_when_transaction_fails():
    calls = []

    def runner(argv, stdin=None):
        calls.append(argv)
        if argv[0].endswith("-restore"):
            raise RuntimeError("transaction refused")
        if "-C" in argv:
            return ""
        if "-D" in argv and sum(1 for c in calls if "-D" in c) > 1:
            raise RuntimeError("Bad rule")
        return ""

    leftovers = firewall.teardown(FirewallPlan(bridge="br0", families=(4,)), runner)
    assert leftovers == []
    assert any(argv[:3] == ["iptables", "-w", "-X"] for argv in calls)
    assert any(argv[:2] == ["ipset", "destroy"] for argv in calls)


def test_plan_round_trips_through_state_file():
    plan = FirewallPlan(bridge="br9", queue_first=2, queue_count=2, fail_open=False)
    assert FirewallPlan.from_dict(plan.to_dict()) == plan


def test_new_flows_over_the_per_source_limit_meet_the_policy_before_the_queue():
    for fail_open, verdict in ((True, "ACCEPT"), (False, "DROP")):
        for family in (4, 6):
            rules = _rules(firewall.render_apply(
                FirewallPlan(bridge="br0", fail_open=fail_open, new_flow_limit=500), family))
            forward = [r for r in rules if r.startswith(f"-A {firewall.FORWARD_CHAIN}")]
            limit = next(i for i, r in enumerate(forward) if "hashlimit" in r)
            assert "--ctstate NEW" in forward[limit]
            assert "--hashlimit-above 500/sec --hashlimit-burst 1000 --hashlimit-mode srcip" in forward[limit]
            assert forward[limit].endswith(f"-j {firewall.OVER_LIMIT_CHAIN}")
            assert forward[limit + 1].endswith(f"-j {firewall.QUEUE_CHAIN}")
            assert f"-A {firewall.OVER_LIMIT_CHAIN} -j {verdict}" in rules
    unlimited = firewall.render_apply(FirewallPlan(bridge="br0", new_flow_limit=0), 4)
    assert "hashlimit" not in unlimited


def test_policy_counters_read_the_queue_and_over_limit_rules_from_one_save():
    saved = ("*filter\n:REEFGUARD-QUEUE - [0:0]\n:REEFGUARD-OVER-LIMIT - [0:0]\n"
             "[12:3400] -A REEFGUARD-FORWARD -j REEFGUARD-QUEUE\n"
             "[981:65000] -A REEFGUARD-QUEUE -j NFQUEUE --queue-num 0 --queue-bypass\n"
             "[77:4928] -A REEFGUARD-OVER-LIMIT -j ACCEPT\nCOMMIT\n")
    calls = []

    def run(argv, payload):
        calls.append(argv)
        return saved
    assert firewall.policy_counters(4, run) == {"sent_to_queue": 981, "over_limit": 77}
    assert calls == [["iptables-save", "-c", "-t", "filter"]]
