"""Signed feed bundles: what installs, what is refused (and that a refusal
leaves the installed feed untouched), rollback, and the `reefguard feed` CLI.

Every test makes its own key pair: no key is shipped in the repository."""
from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from ips import cli, feed, service

ROOT = Path(__file__).resolve().parents[2]
GOOD_RULES = (
    'drop http any any -> any any (msg:"FEED TEST snapshot upload"; flow:to_server,established; '
    'http.uri; content:"/upload/snapshot"; classtype:policy-violation; sid:9199101; rev:1;)\n'
    'alert tcp any any -> any 23 (msg:"FEED TEST telnet root"; flow:to_server,established; '
    'content:"root"; classtype:default-login-attempt; sid:9199102; rev:1;)\n')
NEWER_RULES = GOOD_RULES.replace("rev:1;)", "rev:2;)")
SKIPPED_RULE = 'alert http any any -> any any (msg:"FEED TEST lua"; lua:x.lua; sid:9199103; rev:1;)\n'
SYNTAX_ERRORS = GOOD_RULES + "this is not a rule\n"


# ----------------------------------------------------------------------
# factories

class Vendor:
    """A signing key and the bundles it makes."""

    def __init__(self, directory: Path, name: str = "vendor") -> None:
        self.private, self.public = feed.generate_key(directory / f"{name}.key")
        self.keys_dir = directory / f"{name}-keys"
        self.keys_dir.mkdir()
        (self.keys_dir / "vendor.pub").write_bytes(self.public.read_bytes())

    @property
    def keys(self) -> list[feed.TrustedKey]:
        return feed.load_trusted_keys([self.keys_dir])

    def sign(self, manifest: bytes) -> bytes:
        return base64.b64encode(feed._load_private_key(self.private).sign(manifest)) + b"\n"


def manifest_for(files: dict[str, bytes], *, version: int = 1, name: str = "test-feed",
                 created: int = 1_700_000_000, revoke=None) -> bytes:
    manifest = {"format": 1, "feed": name, "version": version, "created": created,
                "files": [{"name": n, "sha256": hashlib.sha256(d).hexdigest(),
                           "size": len(d)} for n, d in files.items()]}
    if revoke is not None:
        manifest["revoke"] = revoke
    return json.dumps(manifest).encode()


def tar_of(members: list[tuple[str, bytes] | tarfile.TarInfo], *, gz: bool = True) -> bytes:
    """A tar (gzip by default) of (name, content) pairs and ready-made TarInfos."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz" if gz else "w") as tar:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                tar.addfile(member)
                continue
            name, data = member
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def bundle(vendor: Vendor, *, rules: str | dict[str, bytes] = GOOD_RULES, version: int = 1,
           signer: Vendor | None = None, extra: list | None = None,
           tamper: dict[str, bytes] | None = None, gz: bool = True,
           feed_name: str = "test-feed", revoke=None) -> bytes:
    """A signed bundle; `tamper` replaces file contents after signing,
    `extra` adds members the manifest does not list."""
    files = rules if isinstance(rules, dict) else {"rules/test.rules": rules.encode()}
    manifest = manifest_for(files, version=version, name=feed_name, revoke=revoke)
    signature = (signer or vendor).sign(manifest)
    contents = dict(files, **(tamper or {}))
    members = [("manifest.json", manifest), ("manifest.sig", signature),
               *contents.items(), *(extra or [])]
    return tar_of(members, gz=gz)


def snapshot(data_dir: Path) -> dict[str, str]:
    """Everything under feed/ the service could read: files by hash, links by target."""
    root = feed.feed_dir(data_dir)
    seen = {}
    for path in sorted(root.rglob("*")):
        relative = str(path.relative_to(root))
        if relative in ("status.json", ".lock"):
            continue
        if path.is_symlink():
            seen[relative] = "-> " + os.readlink(path)
        elif path.is_file():
            seen[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
    return seen


def store_feed_status(data_dir: Path) -> dict:
    conn = sqlite3.connect(data_dir / "reefguard.db")
    try:
        row = conn.execute("SELECT value FROM settings WHERE key='feed.status'").fetchone()
    finally:
        conn.close()
    return json.loads(row[0])


@pytest.fixture
def vendor(tmp_path) -> Vendor:
    return Vendor(tmp_path)


@pytest.fixture
def installed(tmp_path, vendor) -> Path:
    """A data dir with version 1 of the test feed installed."""
    data_dir = tmp_path / "data"
    feed.apply(bundle(vendor, version=1), data_dir, vendor.keys, source="v1")
    return data_dir


# ----------------------------------------------------------------------
# a good bundle

def test_good_bundle_installs_and_reports(tmp_path, vendor):
    data_dir = tmp_path / "data"
    assert feed.current_rule_files(data_dir) == []
    result = feed.apply(bundle(vendor, rules=GOOD_RULES + SKIPPED_RULE, version=7), data_dir,
                        vendor.keys, source="bundle-7.tgz")
    assert result.outcome == "installed"
    files = feed.current_rule_files(data_dir)
    assert len(files) == 1 and Path(files[0]).read_text() == GOOD_RULES + SKIPPED_RULE
    assert Path(files[0]).parent.parent.name.startswith("v7-")
    status = json.loads((data_dir / "feed" / "status.json").read_text())
    assert status["state"] == "ok" and status["version"] == 7 and status["feed"] == "test-feed"
    assert status["rules"] == 2 and status["skipped"] == 1
    assert status["skipped_by_reason"] == {"unsupported-keyword: lua": 1}
    assert status["created"] == 1_700_000_000 and status["installed_at"] <= time.time()
    assert status["signed_by"] == vendor.keys[0].key_id
    assert status["last_attempt"]["result"] == "installed"
    assert status["last_attempt"]["source"] == "bundle-7.tgz"
    assert store_feed_status(data_dir) == status


def test_store_status_keeps_the_shape_the_dashboard_reads(installed):
    from ips.store import connect
    from webui import queries

    state = queries.rule_settings(connect(installed / "reefguard.db"))
    assert state["feed"]["state"] == "ok" and state["feed"]["version"] == 1
    assert isinstance(state["feed"]["updated"], float) and "error" not in state["feed"]


def test_same_bundle_again_is_up_to_date_not_refused(installed, vendor):
    before = snapshot(installed)
    result = feed.apply(bundle(vendor, version=1), installed, vendor.keys)
    assert result.outcome == "current" and snapshot(installed) == before


def test_plain_tar_is_accepted_too(tmp_path, vendor):
    result = feed.apply(bundle(vendor, gz=False), tmp_path / "data", vendor.keys)
    assert result.outcome == "installed"


def test_rules_directory_entry_is_accepted(tmp_path, vendor):
    rules_dir = tarfile.TarInfo("rules")
    rules_dir.type = tarfile.DIRTYPE
    data = bundle(vendor, extra=[rules_dir])
    assert feed.apply(data, tmp_path / "data", vendor.keys).outcome == "installed"


def test_built_bundle_round_trips(tmp_path, vendor):
    rules = tmp_path / "iot.rules"
    rules.write_text(GOOD_RULES)
    out = feed.build_bundle([rules], vendor.private, 3, tmp_path / "b.tgz", "iot-feed")
    verified = feed.verify_bundle(out.read_bytes(), vendor.keys)
    assert verified.version == 3 and verified.feed == "iot-feed"
    assert verified.files == {"rules/iot.rules": GOOD_RULES.encode()}


# ----------------------------------------------------------------------
# refusals: each leaves the installed version and its files untouched

def _symlink(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    return info


def _hardlink(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE
    info.linkname = target
    return info


def _device(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.CHRTYPE
    info.devmajor, info.devminor = 1, 3
    return info


def _signed_members(vendor, files: dict[str, bytes], version: int = 2) -> list:
    manifest = manifest_for(files, version=version)
    return [("manifest.json", manifest), ("manifest.sig", vendor.sign(manifest))]


def _bad_signature(vendor):
    members = _signed_members(vendor, {"rules/test.rules": NEWER_RULES.encode()})
    flipped = bytearray(base64.b64decode(members[1][1]))
    flipped[0] ^= 1
    return tar_of([members[0], ("manifest.sig", base64.b64encode(bytes(flipped))),
                   ("rules/test.rules", NEWER_RULES.encode())])


REFUSALS = {
    "bad signature": (_bad_signature, "bad signature"),
    "wrong key": (lambda v: bundle(v, rules=NEWER_RULES, version=2,
                                   signer=Vendor(v.keys_dir.parent, "intruder")),
                  "bad signature"),
    "signature not base64": (lambda v: tar_of([
        ("manifest.json", manifest_for({"rules/test.rules": b"x"})),
        ("manifest.sig", b"!!not base64!!"), ("rules/test.rules", b"x")]), "not base64"),
    "no signature": (lambda v: tar_of([
        ("manifest.json", manifest_for({"rules/test.rules": b"x"})),
        ("rules/test.rules", b"x")]), "no manifest.sig"),
    "tampered rule file": (lambda v: bundle(v, rules=NEWER_RULES, version=2, tamper={
        "rules/test.rules": NEWER_RULES.replace("/upload/snapshot", "/upload/snapshoX").encode()}),
        "does not match its sha256"),
    "truncated rule file": (lambda v: bundle(v, rules=NEWER_RULES, version=2, tamper={
        "rules/test.rules": NEWER_RULES[:-20].encode()}), "the manifest says"),
    "extra member": (lambda v: bundle(v, rules=NEWER_RULES, version=2,
                                      extra=[("rules/extra.rules", GOOD_RULES.encode())]),
                     "not listed in manifest.json"),
    "unexpected member": (lambda v: bundle(v, rules=NEWER_RULES, version=2,
                                           extra=[("install.sh", b"rm -rf /")]),
                          "unexpected member"),
    "listed file missing": (lambda v: tar_of(_signed_members(
        v, {"rules/test.rules": NEWER_RULES.encode()})), "missing from the bundle"),
    "path traversal": (lambda v: bundle(v, rules=NEWER_RULES, version=2,
                                        extra=[("../evil.rules", b"x")]), "unsafe member name"),
    "path traversal inside rules": (lambda v: bundle(v, rules=NEWER_RULES, version=2, extra=[
        ("rules/../../evil.rules", b"x")]), "unsafe member name"),
    "newline in a name": (lambda v: bundle(v, rules=NEWER_RULES, version=2, extra=[
        ("rules/x.rules\n", b"x")]), "unexpected member"),
    "absolute path": (lambda v: bundle(v, rules=NEWER_RULES, version=2,
                                       extra=[("/etc/cron.d/evil", b"x")]), "unsafe member name"),
    "symlink member": (lambda v: bundle(v, rules=NEWER_RULES, version=2, extra=[
        _symlink("rules/link.rules", "/etc/shadow")]), "symbolic link"),
    "symlink as a listed file": (lambda v: tar_of(_signed_members(
        v, {"rules/test.rules": b""}) + [_symlink("rules/test.rules", "/etc/shadow")]),
        "symbolic link"),
    "hard link member": (lambda v: bundle(v, rules=NEWER_RULES, version=2, extra=[
        _hardlink("rules/link.rules", "manifest.json")]), "hard link"),
    "device member": (lambda v: bundle(v, rules=NEWER_RULES, version=2, extra=[
        _device("rules/null.rules")]), "a device"),
    "duplicate member": (lambda v: bundle(v, rules=NEWER_RULES, version=2, extra=[
        ("rules/test.rules", GOOD_RULES.encode())]), "appears twice"),
    "downgrade": (lambda v: bundle(v, rules=NEWER_RULES, version=1), "not newer than"),
    "same version, other content": (lambda v: bundle(v, rules=NEWER_RULES, version=1),
                                    "not newer than"),
    "syntax errors": (lambda v: bundle(v, rules=SYNTAX_ERRORS, version=2),
                      "rule error in rules/test.rules line 3: syntax"),
    "no rule loads": (lambda v: bundle(v, rules="# only a comment\n", version=2),
                      "no rule loads"),
    "not a tar": (lambda v: os.urandom(4096), "not a readable tar bundle"),
    "truncated gzip": (lambda v: bundle(v, rules=NEWER_RULES, version=2)[:-40],
                       "not a readable tar bundle"),
    "empty file": (lambda v: b"", "not a readable tar bundle"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_refused_bundle_leaves_the_installed_feed_untouched(case, installed, vendor):
    make, reason = REFUSALS[case]
    before = snapshot(installed)
    files_before = feed.current_rule_files(installed)
    with pytest.raises(feed.FeedError, match=reason):
        feed.apply(make(vendor), installed, vendor.keys, source=case)
    assert snapshot(installed) == before
    assert feed.current_rule_files(installed) == files_before
    assert Path(files_before[0]).read_text() == GOOD_RULES
    status = feed.status(installed)
    assert status["state"] == "refused" and reason in status["error"]
    assert status["version"] == 1 and status["installed"]["version"] == 1
    assert status["last_attempt"]["result"] == "refused"
    assert status["last_attempt"]["source"] == case
    assert store_feed_status(installed)["error"] == status["error"]
    assert not any(p.name.startswith(".staging-") for p in (installed / "feed").iterdir())


def test_refusal_reason_is_one_line(installed, vendor):
    for make, _ in REFUSALS.values():
        try:
            feed.apply(make(vendor), installed, vendor.keys)
        except feed.FeedError as exc:
            assert "\n" not in str(exc)


def test_oversized_bundle_and_member_are_refused(installed, vendor):
    before = snapshot(installed)
    big = NEWER_RULES + "".join(f"# {os.urandom(32).hex()}\n" for _ in range(200))
    with pytest.raises(feed.FeedError, match="over the 4096-byte limit"):
        feed.apply(bundle(vendor, rules=big, version=2), installed, vendor.keys,
                   limits=feed.Limits(file_bytes=4096))
    with pytest.raises(feed.FeedError, match="bundle is .* over the 1000-byte limit"):
        feed.apply(bundle(vendor, rules=big, version=2), installed, vendor.keys,
                   limits=feed.Limits(bundle_bytes=1000))
    assert snapshot(installed) == before


def test_gzip_bomb_is_refused_without_inflating_it(installed, vendor):
    zeros = {"rules/test.rules": b"\0" * (8 << 20)}
    data = tar_of(_signed_members(vendor, zeros) + list(zeros.items()))
    assert len(data) < 100_000
    with pytest.raises(feed.FeedError, match="inflates to more than"):
        feed.apply(data, installed, vendor.keys, limits=feed.Limits(total_bytes=1 << 20))


def test_downgrade_is_installed_when_asked(installed, vendor):
    feed.apply(bundle(vendor, rules=NEWER_RULES, version=5), installed, vendor.keys)
    result = feed.apply(bundle(vendor, rules=GOOD_RULES, version=4), installed, vendor.keys,
                        allow_downgrade=True)
    assert result.outcome == "installed" and feed.installed_version(installed) == 4


def test_manifest_shape_is_checked_after_the_signature(installed, vendor):
    files = {"rules/test.rules": NEWER_RULES.encode()}
    for field, value, reason in (("version", 1 << 64, "version"), ("version", "3", "version"),
                                 ("feed", "a/b", "feed name"), ("format", 2, "format")):
        manifest = json.loads(manifest_for(files, version=2))
        manifest[field] = value
        data = json.dumps(manifest).encode()
        with pytest.raises(feed.FeedError, match=reason):
            feed.apply(tar_of([("manifest.json", data), ("manifest.sig", vendor.sign(data)),
                               *files.items()]), installed, vendor.keys)
    assert feed.installed_version(installed) == 1


def test_no_trusted_key_refuses(tmp_path, vendor):
    with pytest.raises(feed.FeedError, match="no trusted feed keys"):
        feed.apply(bundle(vendor), tmp_path / "data", [])


def test_unreadable_trusted_key_is_an_error_not_ignored(tmp_path):
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "broken.pub").write_text("not a key\n")
    with pytest.raises(feed.FeedError, match="not a PEM public key"):
        feed.load_trusted_keys([keys])


def test_shipped_key_directory_holds_no_private_key():
    for path in feed.SHIPPED_KEYS_DIR.iterdir():
        assert b"PRIVATE KEY" not in path.read_bytes(), path


# ----------------------------------------------------------------------
# rollback, pruning

def test_rollback_returns_to_last_known_good_and_back(installed, vendor):
    feed.apply(bundle(vendor, rules=NEWER_RULES, version=2), installed, vendor.keys)
    assert Path(feed.current_rule_files(installed)[0]).read_text() == NEWER_RULES
    status = feed.rollback(installed)
    assert status["version"] == 1 and status["previous_version"] == 2
    assert status["rules"] == 2 and status["last_attempt"]["result"] == "rolled back"
    assert Path(feed.current_rule_files(installed)[0]).read_text() == GOOD_RULES
    assert store_feed_status(installed)["version"] == 1
    assert feed.rollback(installed)["version"] == 2      # a second rollback undoes the first
    # After rolling back, the newer bundle is newer again: it may come back.
    feed.rollback(installed)
    assert feed.apply(bundle(vendor, rules=NEWER_RULES, version=2), installed,
                      vendor.keys).outcome == "installed"


def test_rollback_without_previous_version_refuses(installed, tmp_path):
    with pytest.raises(feed.FeedError, match="no previous version"):
        feed.rollback(installed)
    assert feed.installed_version(installed) == 1
    with pytest.raises(feed.FeedError):
        feed.rollback(tmp_path / "empty")


def test_old_versions_are_pruned_but_current_and_previous_kept(installed, vendor):
    for version in range(2, 7):
        rules = GOOD_RULES.replace("rev:1;)", f"rev:{version};)")
        feed.apply(bundle(vendor, rules=rules, version=version), installed, vendor.keys)
    directory = installed / "feed"
    versions = sorted(p.name.split("-")[0] for p in directory.iterdir()
                      if p.is_dir() and not p.is_symlink())
    assert versions == ["v4", "v5", "v6"]
    assert os.readlink(directory / "current").startswith("v6-")
    assert os.readlink(directory / "previous").startswith("v5-")


# ----------------------------------------------------------------------
# service integration (no root: only the rule list)

def test_service_rule_list_is_the_s_rules_plus_the_installed_feed(installed, vendor, tmp_path):
    import argparse

    from ips.service import InlineService

    local = tmp_path / "local.rules"
    local.write_text(GOOD_RULES)
    args = argparse.Namespace(data_dir=str(installed), policy="fail-open", set=[],
                              rules=[str(local)])
    service = InlineService(args)
    assert service._rule_list() == [str(local)] + feed.current_rule_files(installed)
    feed.apply(bundle(vendor, rules=NEWER_RULES, version=2), installed, vendor.keys)
    assert Path(service._rule_list()[1]).read_text() == NEWER_RULES   # read again each time


# ----------------------------------------------------------------------
# CLI

def _run(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_keygen_build_apply_status_rollback(tmp_path, capsys):
    key = tmp_path / "vendor.key"
    code, out, _ = _run(capsys, "feed", "keygen", str(key))
    assert code == 0 and (tmp_path / "vendor.key.pub").exists()
    assert os.stat(key).st_mode & 0o077 == 0
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "vendor.pub").write_bytes((tmp_path / "vendor.key.pub").read_bytes())
    assert _run(capsys, "feed", "keygen", str(key))[0] == 1        # never overwrites a key
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    (rules_dir / "iot.rules").write_text(GOOD_RULES)
    data_dir = str(tmp_path / "data")
    for version in (1, 2):
        code, out, _ = _run(capsys, "feed", "build", "-k", str(key), "--version", str(version),
                            "-o", str(tmp_path / f"b{version}.tgz"), str(rules_dir))
        assert code == 0, out

    apply = ["feed", "apply", "--data-dir", data_dir, "--feed-keys", str(keys)]
    code, out, err = _run(capsys, "feed", "apply", "--data-dir", data_dir, str(tmp_path / "b1.tgz"))
    assert code == 1 and "refused: no trusted feed keys" in err          # no key, no install
    code, out, _ = _run(capsys, *apply, str(tmp_path / "b1.tgz"))
    assert code == 0 and "installed feed reefguard version 1: 2 rules" in out
    assert "no inline service running" in out
    assert _run(capsys, *apply, str(tmp_path / "b1.tgz"))[0] == 0      # up to date
    code, out, _ = _run(capsys, *apply, str(tmp_path / "b2.tgz"))
    assert code == 0 and "version 2" in out
    code, _, err = _run(capsys, *apply, str(tmp_path / "b1.tgz"))
    assert code == 1 and "refused: version 1 is not newer than the installed 2" in err
    code, out, _ = _run(capsys, *apply, "--allow-downgrade", str(tmp_path / "b1.tgz"))
    assert code == 0
    code, _, err = _run(capsys, *apply, str(tmp_path / "missing.tgz"))
    assert code == 1 and "cannot read" in err
    code, _, err = _run(capsys, *apply, "ftp://example.invalid/b.tgz")
    assert code == 1 and "cannot read" in err

    code, out, _ = _run(capsys, "feed", "status", "--data-dir", data_dir)
    assert code == 0 and "feed reefguard version 1" in out and "last attempt: refused" in out
    code, out, _ = _run(capsys, "feed", "status", "--data-dir", data_dir, "--json")
    assert json.loads(out)["installed"]["version"] == 1
    code, out, _ = _run(capsys, "feed", "rollback", "--data-dir", data_dir)
    assert code == 0 and "rolled back to feed reefguard version 2" in out
    assert _run(capsys, "feed", "rollback", "--data-dir", str(tmp_path / "none"))[0] == 1


def test_cli_trusts_the_configured_key_directory(tmp_path, capsys, vendor):
    (tmp_path / "b.tgz").write_bytes(bundle(vendor))
    code, _, err = _run(capsys, "feed", "apply", "--data-dir", str(tmp_path / "data"),
                        "--set", f"feed.keys-dir={vendor.keys_dir}", str(tmp_path / "b.tgz"))
    assert code == 0, err


def test_cli_apply_over_http_with_a_size_cap(tmp_path, vendor, capsys):
    import http.server
    import threading

    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "b.tgz").write_bytes(bundle(vendor))

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(tmp_path / "www"), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/b.tgz"
    try:
        code, out, err = _run(capsys, "feed", "apply", "--data-dir", str(tmp_path / "data"),
                              "--feed-keys", str(vendor.keys_dir), url)
        assert code == 0 and "installed" in out, err
        with pytest.raises(feed.FeedError, match="over the 100-byte limit"):
            feed.fetch(url, feed.Limits(bundle_bytes=100))
        code, _, err = _run(capsys, "feed", "apply", "--data-dir", str(tmp_path / "data"),
                            "--feed-keys", str(vendor.keys_dir), url.replace("b.tgz", "none"))
        assert code == 1 and "could not download" in err
    finally:
        server.shutdown()


def test_cli_apply_asks_the_running_service_to_reload(tmp_path, vendor):
    """The same state file / SIGHUP path as `reefguard reload`."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    fake_service = subprocess.Popen(
        [sys.executable, "-c",
         "import signal, sys, time\n"
         "signal.signal(signal.SIGHUP, lambda *_: (print('reload', flush=True), sys.exit(0)))\n"
         "print('ready', flush=True)\n"
         "time.sleep(30)\n", "reefguard-stand-in"], stdout=subprocess.PIPE, text=True)
    try:
        assert fake_service.stdout.readline().strip() == "ready"
        (data_dir / "state.json").write_text(json.dumps({"pid": fake_service.pid}))
        (tmp_path / "b.tgz").write_bytes(bundle(vendor))
        done = subprocess.run([sys.executable, "-m", "ips.cli", "feed", "apply", "--data-dir",
                               str(data_dir), "--feed-keys", str(vendor.keys_dir),
                               str(tmp_path / "b.tgz")],
                              cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert f"asked the inline service (pid {fake_service.pid}) to reload" in done.stdout
        assert fake_service.stdout.readline().strip() == "reload"
        # A refusal does not disturb the service.
        (tmp_path / "bad.tgz").write_bytes(b"garbage")
        done = subprocess.run([sys.executable, "-m", "ips.cli", "feed", "apply", "--data-dir",
                               str(data_dir), "--feed-keys", str(vendor.keys_dir),
                               str(tmp_path / "bad.tgz")],
                              cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert done.returncode == 1 and "refused: not a readable tar bundle" in done.stderr
    finally:
        if fake_service.poll() is None:
            fake_service.send_signal(signal.SIGTERM)
        fake_service.wait(5)


def test_a_reused_pid_of_another_program_is_not_signalled(tmp_path):
    # The state file outlives a crash; its pid may now belong to anything.
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (data_dir / "state.json").write_text(json.dumps({"pid": other.pid}))
        assert service.request_reload(data_dir) is None
        assert other.poll() is None          # SIGHUP would have killed it
    finally:
        other.kill()
        other.wait()


def test_bundle_of_another_feed_is_refused_unless_asked(installed, vendor):
    # The same trusted key signs two feeds: the other one's higher version
    # must not replace the installed feed's rules behind the operator's back.
    before = snapshot(installed)
    other = bundle(vendor, rules=NEWER_RULES, version=9, feed_name="other-feed")
    with pytest.raises(feed.FeedError, match="'other-feed' is not the installed feed 'test-feed'"):
        feed.apply(other, installed, vendor.keys)
    assert snapshot(installed) == before
    result = feed.apply(other, installed, vendor.keys, allow_other_feed=True)
    assert result.outcome == "installed" and feed.installed_version(installed) == 9


# ----------------------------------------------------------------------
# key revocation

def _rotated(tmp_path, vendor) -> tuple[Vendor, list[Path]]:
    """The vendor's next key, shipped in advance: both keys trusted."""
    successor = Vendor(tmp_path, "successor")
    return successor, [vendor.keys_dir, successor.keys_dir]


def test_vendor_rotation_revokes_the_old_key_for_good(installed, vendor, tmp_path):
    successor, key_dirs = _rotated(tmp_path, vendor)
    old_id = vendor.keys[0].key_id
    keys = feed.load_trusted_keys(key_dirs)
    result = feed.apply(bundle(vendor, version=2, signer=successor, revoke=[old_id]),
                        installed, keys)
    assert result.outcome == "installed"
    # A later bundle signed by the leaked key is refused, though its .pub is
    # still in a trusted directory and its version is newer.
    before = snapshot(installed)
    with pytest.raises(feed.FeedError, match=f"signed by key {old_id}.*which is revoked "
                                             f"\\(revoked by key {successor.keys[0].key_id}"):
        feed.apply(bundle(vendor, rules=NEWER_RULES, version=3), installed,
                   feed.load_trusted_keys(key_dirs))
    assert snapshot(installed) == before
    status = feed.status(installed)
    assert status["revoked_keys"][old_id]["by"] == successor.keys[0].key_id
    assert status["revoked_keys"][old_id]["version"] == 2
    assert status["state"] == "refused" and status["version"] == 2
    assert store_feed_status(installed)["revoked_keys"] == status["revoked_keys"]   # the dashboard's copy
    # The successor still installs.
    assert feed.apply(bundle(vendor, version=3, signer=successor), installed,
                      feed.load_trusted_keys(key_dirs)).outcome == "installed"


def test_rollback_to_a_version_signed_by_a_revoked_key_is_refused(installed, vendor, tmp_path):
    successor, key_dirs = _rotated(tmp_path, vendor)
    feed.apply(bundle(vendor, version=2, signer=successor, revoke=[vendor.keys[0].key_id]),
               installed, feed.load_trusted_keys(key_dirs))
    before = snapshot(installed)
    with pytest.raises(feed.FeedError, match="version 1 was signed by key .* revoked since"):
        feed.rollback(installed)
    assert snapshot(installed) == before and feed.installed_version(installed) == 2


def test_operator_revoked_list_distrusts_a_key(installed, vendor, tmp_path):
    (vendor.keys_dir / "revoked").write_text(
        f"# leaked on 2026-11-01\n{vendor.keys[0].key_id.upper()}  # the old vendor key\n")
    keys = feed.load_trusted_keys([vendor.keys_dir])
    assert keys[0].revoked == f"listed in {vendor.keys_dir / 'revoked'}"
    before = snapshot(installed)
    with pytest.raises(feed.FeedError, match="which is revoked \\(listed in"):
        feed.apply(bundle(vendor, version=2), installed, keys)
    assert snapshot(installed) == before


def test_malformed_revoked_list_is_an_error_with_its_line(tmp_path, vendor):
    (vendor.keys_dir / "revoked").write_text("0123456789abcdef\nnot-a-key\n")
    with pytest.raises(feed.FeedError, match="revoked line 2: 'not-a-key' is not a key id"):
        feed.load_trusted_keys([vendor.keys_dir])


@pytest.mark.parametrize("revoke, reason", [
    ("0123456789abcdef", "revoke must be a list"),
    (["0123456789ABCDEF"], "revoke must be a list"),
    (["0123456789abcde"], "revoke must be a list"),
    (["0123456789abcdef"] * 65, "at most 64"),
])
def test_malformed_revoke_field_is_refused(installed, vendor, revoke, reason):
    before = snapshot(installed)
    with pytest.raises(feed.FeedError, match=reason):
        feed.apply(bundle(vendor, version=2, revoke=revoke), installed, vendor.keys)
    assert snapshot(installed) == before


def test_a_bundle_cannot_revoke_its_own_signer(installed, vendor, tmp_path):
    own = vendor.keys[0].key_id
    with pytest.raises(feed.FeedError, match=f"revokes key {own}, the key that signs it"):
        feed.apply(bundle(vendor, version=2, revoke=[own]), installed, vendor.keys)
    assert feed.revocations(installed) == {}
    with pytest.raises(feed.FeedError, match="cannot revoke itself"):
        rules = tmp_path / "iot.rules"
        rules.write_text(GOOD_RULES)
        feed.build_bundle([rules], vendor.private, 2, tmp_path / "b.tgz", revoke=[own])


def test_a_refused_bundle_revokes_nothing(installed, vendor, tmp_path):
    successor, key_dirs = _rotated(tmp_path, vendor)
    with pytest.raises(feed.FeedError, match="rule error"):
        feed.apply(bundle(vendor, rules=SYNTAX_ERRORS, version=2, signer=successor,
                          revoke=[vendor.keys[0].key_id]),
                   installed, feed.load_trusted_keys(key_dirs))
    assert feed.revocations(installed) == {}


def test_unreadable_revocations_fail_closed(installed, vendor):
    (feed.feed_dir(installed) / "revoked.json").write_text("{not json")
    with pytest.raises(feed.FeedError, match="revoked.json is unreadable"):
        feed.apply(bundle(vendor, version=2), installed, vendor.keys)
    assert feed.installed_version(installed) == 1


def test_cli_build_with_revoke_and_status(tmp_path, capsys, vendor):
    successor = Vendor(tmp_path, "successor")
    data_dir = tmp_path / "data"
    rules = tmp_path / "iot.rules"
    rules.write_text(GOOD_RULES)
    old_id = vendor.keys[0].key_id
    out = tmp_path / "v2.tgz"
    assert cli.main(["feed", "build", "-k", str(successor.private), "--version", "2",
                     "-o", str(out), "--revoke", old_id, str(rules)]) == 0
    assert f"revoking key {old_id}" in capsys.readouterr().out
    assert cli.main(["feed", "apply", str(out), "--data-dir", str(data_dir),
                     "--feed-keys", str(vendor.keys_dir),
                     "--feed-keys", str(successor.keys_dir)]) == 0
    capsys.readouterr()
    assert cli.main(["feed", "status", "--data-dir", str(data_dir)]) == 0
    assert (f"revoked key {old_id} (by key {successor.keys[0].key_id} in version 2)"
            in capsys.readouterr().out)
