"""Declarative enforcement against a fake kernel."""
import sqlite3

from appliance import ipsets
from appliance.enforce import Enforcer, wanted_from_store


class FakeKernel:
    def __init__(self):
        self.sets: dict[str, set[str]] = {}
        self.restores: list[str] = []

    def __call__(self, argv, stdin=None):
        if argv[:2] == ["ipset", "save"]:
            return "".join(f"add {argv[2]} {a}\n" for a in sorted(self.sets.get(argv[2], ())))
        if argv[:2] == ["ipset", "restore"]:
            for line in stdin.splitlines():
                verb, name, *rest = line.split()
                if verb == "create":
                    self.sets.setdefault(name, set())
                elif verb == "add":
                    self.sets.setdefault(name, set()).add(rest[0])
                elif verb == "del":
                    self.sets[name].discard(rest[0])
            return ""
        if argv[0].endswith("-restore"):
            self.restores.append(stdin)
            return ""
        raise AssertionError(argv)


def test_reconcile_adds_and_removes_exactly_the_difference():
    kernel = FakeKernel()
    enforcer = Enforcer(run=kernel)
    enforcer.reconcile({("02:00:00:00:00:10", "192.0.2.10")}, {(None, "198.51.100.66")})
    assert kernel.sets[ipsets.QUARANTINE[4]] == {"192.0.2.10"}
    assert kernel.sets[ipsets.BLOCKED_DESTINATIONS[4]] == {"198.51.100.66"}
    assert "--mac-source 02:00:00:00:00:10" in kernel.restores[-1] or \
        any("--mac-source 02:00:00:00:00:10" in r for r in kernel.restores)
    changes = enforcer.reconcile({(None, "2001:db8::10")}, set())
    assert kernel.sets[ipsets.QUARANTINE[4]] == set()
    assert kernel.sets[ipsets.QUARANTINE[6]] == {"2001:db8::10"}
    assert kernel.sets[ipsets.BLOCKED_DESTINATIONS[4]] == set()
    assert changes >= 3


def test_unchanged_state_makes_no_kernel_calls():
    kernel = FakeKernel()
    enforcer = Enforcer(run=kernel)
    wanted = ({("02:00:00:00:00:20", None)}, {("192.0.2.20", "203.0.113.0/24")})
    enforcer.reconcile(*wanted)
    restores = len(kernel.restores)
    assert enforcer.reconcile(*wanted) == 0
    assert len(kernel.restores) == restores


def test_pairs_and_networks_become_rules_both_ways():
    payload = Enforcer.render_rules(4, set(), {("192.0.2.20", "203.0.113.0/24")})
    assert "-s 192.0.2.20 -d 203.0.113.0/24 -j DROP" in payload
    assert "-s 203.0.113.0/24 -d 192.0.2.20 -j DROP" in payload


def test_malformed_requests_are_skipped_not_raised():
    kernel = FakeKernel()
    enforcer = Enforcer(run=kernel)
    enforcer.reconcile({("not-a-mac", "999.1.1.1"), (None, None)},
                       {("192.0.2.10", "nonsense"), ("192.0.2.10", "2001:db8::1")})
    assert enforcer.skipped == 4
    assert not kernel.sets.get(ipsets.QUARANTINE[4])


def test_wanted_state_from_store_rows_honours_expiry_and_activity():
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE blocks (id INTEGER PRIMARY KEY, kind TEXT, mac TEXT, device_ip TEXT,"
                 " destination TEXT, created REAL, expires REAL, reason TEXT, created_by TEXT,"
                 " active INTEGER)")
    rows = [("quarantine", "02:00:00:00:00:10", "192.0.2.10", None, None, 1),
            ("quarantine", "02:00:00:00:00:20", "192.0.2.20", None, 50.0, 1),   # expired
            ("quarantine", "02:00:00:00:00:30", "192.0.2.30", None, None, 0),   # lifted
            ("block_destination", "02:00:00:00:00:10", "192.0.2.10", "198.51.100.66", None, 1)]
    conn.executemany("INSERT INTO blocks (kind, mac, device_ip, destination, expires, active, created)"
                     " VALUES (?,?,?,?,?,?,0)", rows)
    quarantined, blocked = wanted_from_store(conn, now=100.0)
    assert quarantined == {("02:00:00:00:00:10", "192.0.2.10")}
    assert blocked == {("192.0.2.10", "198.51.100.66")}


def test_unchanged_sets_are_read_back_only_every_verify_period():
    """Each `ipset save` is a process per set, every second: while nothing
    changes the kernel is trusted for VERIFY_SECONDS, then read again, so a
    set flushed by hand is repaired; a new wanted state is applied at once."""
    from appliance.enforce import VERIFY_SECONDS

    kernel = FakeKernel()
    saves = []
    now = [1000.0]

    def counting(argv, stdin=None):
        if argv[:2] == ["ipset", "save"]:
            saves.append(argv[2])
        return kernel(argv, stdin)

    enforcer = Enforcer(run=counting, clock=lambda: now[0])
    wanted = ({(None, "192.0.2.10")}, set())
    enforcer.reconcile(*wanted)
    first = len(saves)
    assert first == 4
    now[0] += 1
    assert enforcer.reconcile(*wanted) == 0
    assert len(saves) == first
    kernel.sets[ipsets.QUARANTINE[4]].clear()          # someone flushed it by hand
    now[0] += VERIFY_SECONDS
    assert enforcer.reconcile(*wanted) == 1
    assert kernel.sets[ipsets.QUARANTINE[4]] == {"192.0.2.10"}
    now[0] += 1
    enforcer.reconcile({(None, "192.0.2.11")}, set())     # changed: applied at once
    assert kernel.sets[ipsets.QUARANTINE[4]] == {"192.0.2.11"}
