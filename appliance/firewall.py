"""ReefGuard's iptables rules: rendered as one payload, applied atomically.

Theory of operation
-------------------
Everything lives in our own chains `REEFGUARD-*` in the filter table; the only
rule placed in a built-in chain is one jump from FORWARD, for packets bridged
by our bridge. The whole set is one `iptables-restore --noflush` payload per
address family: declaring a chain in a restore payload creates or flushes it,
so applying twice is idempotent, and the kernel swaps the ruleset in one
transaction (no window with half the rules).

Teardown is the mirror payload: delete our jump, flush and delete our chains.
If that transaction fails (someone removed a piece by hand), it falls back to
removing each piece separately so that `reefguard down` always converges.

See `appliance/__init__.py` for the order a packet meets the chains and
`ips.nfq` for the mark bits.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from appliance import ipsets
from appliance.ipsets import Runner, run_command
from ips.nfq import MARK_BYPASS, MARK_DROP, MARK_MASK, MARK_REJECT

FORWARD_CHAIN = "REEFGUARD-FORWARD"
VERDICT_CHAIN = "REEFGUARD-VERDICT"
REJECT_CHAIN = "REEFGUARD-REJECT"
BLOCK_CHAIN = "REEFGUARD-BLOCK"
"""Rewritten by the enforcer: only the quarantine / block checks in use."""
QUARANTINE_CHAIN = "REEFGUARD-QUARANTINE"
QUARANTINE_MAC_CHAIN = "REEFGUARD-QUARANTINE-MAC"
"""Rewritten by the enforcer: one rule per quarantined MAC."""
BLOCK_PAIRS_CHAIN = "REEFGUARD-BLOCK-PAIRS"
"""Rewritten by the enforcer: device -> destination blocks."""
FASTPATH_CHAIN = "REEFGUARD-FASTPATH"
"""Rewritten by the service: packets of unjudged flows the kernel accepts
itself because no loaded rule can match them (pure ACKs, small ICMP echo;
ips.fastpath); empty until the rules are analysed."""
QUEUE_CHAIN = "REEFGUARD-QUEUE"
"""Holds only the NFQUEUE rule, so its packet counter is 'sent to a queue'."""
OVER_LIMIT_CHAIN = "REEFGUARD-OVER-LIMIT"
"""New flows of a source past `FirewallPlan.new_flow_limit`: holds only the
failure policy's verdict (ACCEPT or DROP), so its counter is theirs."""

CHAINS = (FORWARD_CHAIN, VERDICT_CHAIN, REJECT_CHAIN, BLOCK_CHAIN, QUARANTINE_CHAIN,
          QUARANTINE_MAC_CHAIN, BLOCK_PAIRS_CHAIN, FASTPATH_CHAIN, OVER_LIMIT_CHAIN,
          QUEUE_CHAIN)

RESTORE = {4: "iptables-restore", 6: "ip6tables-restore"}
HASHLIMIT_NAMES = {4: "reefguard-new4", 6: "reefguard-new6"}
TABLES = {4: "iptables", 6: "ip6tables"}


@dataclass(slots=True)
class FirewallPlan:
    """What `run` installs; stored in the state file so `down` can undo it."""
    bridge: str
    """Bridge whose bridged traffic is inspected."""
    queue_first: int = 0
    """First NFQUEUE number."""
    queue_count: int = 1
    """Number of queues (one per worker)."""
    fail_open: bool = True
    """--queue-bypass: no reader on the queue -> packets pass."""
    families: tuple[int, ...] = (4, 6)
    """Address families to install."""
    new_flow_limit: int = 2000
    """New flows per second (burst: twice that) one source address may send
    to the queues; past it, its new flows meet the failure policy in the
    kernel (fail-open: pass uninspected, fail-closed: dropped). 0: no limit."""
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["families"] = list(self.families)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "FirewallPlan":
        data = dict(data)
        data["families"] = tuple(data.get("families", (4, 6)))
        return cls(**data)


def jump_rule(plan: FirewallPlan) -> str:
    """The one rule in a built-in chain (without the -I/-A/-D verb)."""
    return (f"FORWARD -i {plan.bridge} -m physdev --physdev-is-bridged "
            f"-j {FORWARD_CHAIN}")


def queue_rule(plan: FirewallPlan) -> str:
    last = plan.queue_first + plan.queue_count - 1
    if plan.queue_count == 1:
        target = f"NFQUEUE --queue-num {plan.queue_first}"
    else:
        target = f"NFQUEUE --queue-balance {plan.queue_first}:{last}"
    if plan.fail_open:
        target += " --queue-bypass"
    return f"-A {QUEUE_CHAIN} -j {target}"


def _mark(value: int) -> str:
    return f"0x{value:08x}/0x{MARK_MASK:08x}"


def render_apply(plan: FirewallPlan, family: int, jump_present: bool = False) -> str:
    """The iptables-restore --noflush payload that installs everything."""
    gateway_set = ipsets.GATEWAYS[family]
    mask = f"0x{MARK_MASK:08x}"
    lines = ["*filter"]
    lines += [f":{chain} - [0:0]" for chain in CHAINS]
    if not jump_present:
        lines.append(f"-I {jump_rule(plan)}")
    forward = [
        # A packet coming back from a queue verdict (NF_REPEAT) carries our mark.
        f"-m mark ! --mark 0x0/{mask} -j {VERDICT_CHAIN}",
        # Blocks first, so quarantine also cuts flows the kernel already bypasses.
        f"-j {BLOCK_CHAIN}",
        # A RELATED packet (an ICMP error quoting a connection, an expected
        # data connection) shares the mark of the connection it relates to:
        # it is looked at on its own, never carried by that flow's bypass.
        f"-m conntrack --ctstate RELATED -j {QUEUE_CHAIN}",
        # A judged flow's packets: the fewest rules on the bulk path (every
        # rule here runs for every packet of a bypassed transfer).
        f"-m connmark --mark {_mark(MARK_BYPASS)} -j ACCEPT",
        f"-j CONNMARK --restore-mark --nfmask {mask} --ctmask {mask}",
        f"-m mark --mark {_mark(MARK_DROP)} -j DROP",
        f"-m mark --mark {_mark(MARK_REJECT)} -j {REJECT_CHAIN}",
        # After the drop/reject marks: a blocked flow's packets stay blocked.
        f"-j {FASTPATH_CHAIN}",
    ]
    if plan.new_flow_limit > 0:
        # One host opening flows faster than a worker can inspect them (a
        # flood from random ports, a scan) would otherwise fill the queue,
        # and every host's packets would then wait behind it or, past the
        # queue's length, pass uninspected. Its excess new flows meet the
        # failure policy here instead; the other hosts stay inspected and fast.
        forward.append(
            f"-m conntrack --ctstate NEW -m hashlimit --hashlimit-above "
            f"{plan.new_flow_limit}/sec --hashlimit-burst {2 * plan.new_flow_limit} "
            f"--hashlimit-mode srcip --hashlimit-name {HASHLIMIT_NAMES[family]} "
            f"-j {OVER_LIMIT_CHAIN}")
    forward.append(f"-j {QUEUE_CHAIN}")
    lines += [f"-A {FORWARD_CHAIN} {rule}" for rule in forward]
    verdict = [
        # The verdict on a RELATED packet is for that packet alone: saving it
        # would write the related connection's mark (an ICMP error could
        # otherwise get a TCP flow bypassed or blocked).
        f"-m conntrack ! --ctstate RELATED -j CONNMARK --save-mark --nfmask {mask} --ctmask {mask}",
        f"-m mark --mark {_mark(MARK_BYPASS)} -j ACCEPT",
        f"-m mark --mark {_mark(MARK_DROP)} -j DROP",
        f"-j {REJECT_CHAIN}",
    ]
    lines += [f"-A {VERDICT_CHAIN} {rule}" for rule in verdict]
    # The kernel's REJECT sends the reset out of the bridge port the packet
    # came in on (br_netfilter path), so each sender gets its own reset as
    # soon as it sends on the rejected connection.
    lines.append(f"-A {REJECT_CHAIN} -p tcp -j REJECT --reject-with tcp-reset")
    lines.append(f"-A {REJECT_CHAIN} -j DROP")
    # REEFGUARD-BLOCK starts empty: the enforcer (appliance.enforce) writes
    # into it only the checks that have something to match.
    lines += [f"-A {QUARANTINE_CHAIN} {rule}" for rule in quarantine_exceptions(family, gateway_set)]
    lines.append(f"-A {QUARANTINE_CHAIN} -j DROP")
    lines.append(f"-A {OVER_LIMIT_CHAIN} -j {'ACCEPT' if plan.fail_open else 'DROP'}")
    lines.append(queue_rule(plan))
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


# (TCP data offset in 32-bit words, what the options usually are): the shapes
# of a pure ACK worth keeping in the kernel. Any other shape goes to a worker.
PURE_ACK_SHAPES = ((5, "no options"), (8, "timestamps"))


def render_fastpath(family: int, pure_ack: bool, icmp_echo_limit: int = -1) -> str:
    """Payload rewriting REEFGUARD-FASTPATH (see ips.fastpath for why each
    match is exact): TCP segments of established connections that carry only
    ACK and provably no payload, and established ICMP echo requests/replies
    (code 0) whose payload is at most `icmp_echo_limit` bytes (-1: none)."""
    lines = ["*filter", f":{FASTPATH_CHAIN} - [0:0]"]
    established = "-m conntrack --ctstate ESTABLISHED"
    if pure_ack:
        for words, _why in PURE_ACK_SHAPES:
            tcp_header = words * 4
            if family == 4:
                # IHL = 5 (no IP options), data offset = words, total = 20 + tcp_header
                match = f"0>>24&0xF=5&&0&0xFFFF={20 + tcp_header}&&32>>28={words}"
            else:
                # next header TCP (no extension headers), payload length = tcp_header
                match = f"4>>16&0xFFFF={tcp_header}&&4>>8&0xFF=6&&52>>28={words}"
            lines.append(f"-A {FASTPATH_CHAIN} -p tcp --tcp-flags ALL ACK {established} "
                         f"-m u32 --u32 {match} -j ACCEPT")
    if icmp_echo_limit >= 0:
        if family == 4:
            # IP header >= 20 bytes, ICMP header 8: length <= 28 + limit bounds the payload
            kinds = [f"-p icmp -m icmp --icmp-type {kind}" for kind in ("8/0", "0/0")]
            longest = 28 + icmp_echo_limit
        else:
            kinds = [f"-p ipv6-icmp -m icmp6 --icmpv6-type {kind}" for kind in ("128/0", "129/0")]
            longest = 48 + icmp_echo_limit
        for kind in kinds:
            lines.append(f"-A {FASTPATH_CHAIN} {kind} {established} "
                         f"-m length --length 0:{longest} -j ACCEPT")
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def apply_fastpath(plan: FirewallPlan, pure_ack: bool, icmp_echo_limit: int = -1,
                   run: Runner = run_command) -> None:
    for family in plan.families:
        run([RESTORE[family], "-w", "--noflush"],
            render_fastpath(family, pure_ack, icmp_echo_limit))


def quarantine_exceptions(family: int, gateway_set: str) -> list[str]:
    """What a quarantined device keeps: address configuration and DNS to the
    gateway, so it stays reachable for repair and does not retry storms."""
    if family == 4:
        rules = ["-p udp -m multiport --dports 67,68 -j RETURN"]
    else:
        rules = ["-p udp -m multiport --dports 546,547 -j RETURN",
                 # neighbour discovery and router advertisements
                 "-p ipv6-icmp -j RETURN"]
    for proto in ("udp", "tcp"):
        rules.append(f"-p {proto} --dport 53 -m set --match-set {gateway_set} dst -j RETURN")
        rules.append(f"-p {proto} --sport 53 -m set --match-set {gateway_set} src -j RETURN")
    return rules


def render_teardown(plan: FirewallPlan, family: int, jump_present: bool = True) -> str:
    lines = ["*filter"]
    if jump_present:
        lines.append(f"-D {jump_rule(plan)}")
    lines += [f":{chain} - [0:0]" for chain in CHAINS]
    lines += [f"-X {chain}" for chain in CHAINS]
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def jump_present(plan: FirewallPlan, family: int, run: Runner = run_command) -> bool:
    try:
        run([TABLES[family], "-w", "-C"] + jump_rule(plan).split(), None)
        return True
    except RuntimeError:
        return False


def apply(plan: FirewallPlan, run: Runner = run_command) -> None:
    """Create the sets, then install the rules (one transaction per family)."""
    ipsets.create_all(run)
    for family in plan.families:
        payload = render_apply(plan, family, jump_present(plan, family, run))
        run([RESTORE[family], "-w", "--noflush"], payload)


def teardown(plan: FirewallPlan, run: Runner = run_command) -> list[str]:
    """Remove exactly our rules, chains and sets; return what could not be
    removed (empty when clean)."""
    leftovers: list[str] = []
    for family in plan.families:
        present = jump_present(plan, family, run)
        try:
            run([RESTORE[family], "-w", "--noflush"], render_teardown(plan, family, present))
            continue
        except RuntimeError:
            pass
        leftovers += _teardown_piecewise(plan, family, run)
    leftovers += ipsets.destroy([spec.name for spec in ipsets.ALL_SETS], run)
    return leftovers


def _teardown_piecewise(plan: FirewallPlan, family: int, run: Runner) -> list[str]:
    tool = TABLES[family]
    for _ in range(16):  # every copy of our jump, bounded
        try:
            run([tool, "-w", "-D"] + jump_rule(plan).split(), None)
        except RuntimeError:
            break
    for chain in CHAINS:
        try:
            run([tool, "-w", "-F", chain], None)
        except RuntimeError:
            pass
    failed = []
    for chain in CHAINS:
        try:
            run([tool, "-w", "-X", chain], None)
        except RuntimeError as exc:
            if "No chain" not in str(exc) and "does not exist" not in str(exc):
                failed.append(f"{tool}:{chain}")
    return failed


def owned_chains(family: int, run: Runner = run_command) -> list[str]:
    """REEFGUARD-* chains present now (for tests and `down` checks)."""
    out = run([TABLES[family] + "-save", "-t", "filter"], None)
    return sorted({line[1:].split()[0] for line in out.splitlines()
                   if line.startswith(":REEFGUARD-")})


def policy_counters(family: int = 4, run: Runner = run_command) -> dict[str, int]:
    """Packets that reached the NFQUEUE rule (inspected or not) and new-flow
    packets of sources over the new-flow limit (not queued), from one
    `iptables-save -c` (each of those chains holds that one rule)."""
    counts = {"sent_to_queue": 0, "over_limit": 0}
    wanted = {QUEUE_CHAIN: "sent_to_queue", OVER_LIMIT_CHAIN: "over_limit"}
    try:
        out = run([TABLES[family] + "-save", "-c", "-t", "filter"], None)
    except RuntimeError:
        return counts
    for line in out.splitlines():
        # "[packets:bytes] -A CHAIN ..."
        fields = line.split()
        if len(fields) > 2 and fields[1] == "-A" and fields[2] in wanted and line.startswith("["):
            try:
                counts[wanted[fields[2]]] += int(fields[0][1:].split(":")[0])
            except ValueError:
                pass
    return counts
