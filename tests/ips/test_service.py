"""Service pieces that need no root: metrics text, CLI registration."""
import argparse

from ips import service


def test_render_metrics_has_the_policy_counters():
    status = {"state": "running", "policy": "fail-open", "workers_alive": 2,
              "totals": {"inspected": 10, "bypassed": 4, "dropped": 1, "uninspected": 7},
              "queues": {"0": {"queue_total": 3}}}
    text = service.render_metrics(status)
    assert "reefguard_up 1" in text
    assert "reefguard_inspected_total 10" in text
    assert "reefguard_uninspected_total 7" in text
    assert 'reefguard_queue_waiting{queue="0"} 3' in text
    assert "# TYPE reefguard_dropped_total counter" in text


def test_render_metrics_without_status_file_reports_down(tmp_path):
    assert "reefguard_up 0" in service.render_metrics(data_dir=str(tmp_path))


def test_register_adds_commands():
    parser = argparse.ArgumentParser()
    service.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["run", "--wan", "a", "--lan", "b", "--policy", "fail-closed"])
    assert args.func is service.cmd_run and args.policy == "fail-closed"
    assert parser.parse_args(["down"]).func is service.cmd_down
    assert parser.parse_args(["lab", "--duration", "3"]).duration == 3.0


def test_worker_priority_falls_back_when_not_permitted(monkeypatch):
    from ips import service

    def refuse(*_args):
        raise PermissionError("not permitted")

    monkeypatch.setattr(service.os, "sched_setscheduler", refuse)
    assert service.raise_priority("realtime") == "normal"
    assert service.raise_priority("normal") == "normal"


def test_the_rules_report_says_what_was_refused_with_file_and_line(tmp_path):
    from ips.config import Config
    rules = tmp_path / "local.rules"
    rules.write_text('alert tcp any any -> any any (msg:"fine"; content:"x"; sid:1;)\n'
                     'alert sip any any -> any any (msg:"never fires here"; content:"INVITE"; sid:2;)\n'
                     'alert tcp any any -> any any (msg:"broken"; content:"x"; sid:3\n')
    engine, message, report = service.load_engine([str(rules)], Config(), None)
    assert engine is not None and message == "1 rules loaded, 1 refused, 1 with syntax errors"
    assert (report["loaded"], report["refused"], report["syntax_errors"]) == (1, 1, 1)
    assert report["by_reason"] == {"unsupported-protocol: sip": 1}
    assert [(r["file"], r["line"], r["sid"]) for r in report["rules"]] == [("local.rules", 3, 3),
                                                                         ("local.rules", 2, 2)]
    assert report["rules"][1]["reason"] == "unsupported-protocol: sip"


def test_no_rules_no_report():
    from ips.config import Config
    assert service.load_engine([], Config(), None) == (None, "no rules", None)
