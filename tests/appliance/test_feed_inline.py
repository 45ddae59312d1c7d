"""A signed feed update in the lab: `reefguard feed apply` brings a new drop
rule into the running box without dropping traffic, and a tampered bundle is
refused while the rule keeps blocking.

Real kernel, real NFQUEUE, real pipeline, documentation addresses only. The
signing key is generated here; the box never trusts a key from the repo."""
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.inline_support import Chatter, running_lab, why_not_inline
from tests.inline_support import box_status as _status, wait_for as _wait

pytestmark = pytest.mark.inline

if why_not_inline("ips.worker"):
    pytest.skip(why_not_inline("ips.worker"), allow_module_level=True)

from appliance.lab import read_alerts  # noqa: E402
from ips import feed  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
PATCHES = str(ROOT / "signatures" / "virtual-patches.rules")
FEED_RULE = ('drop http any any -> any any (msg:"REEFGUARD TEST feed blocks snapshot uploads"; '
             'flow:to_server,established; http.uri; content:"/upload/snapshot"; '
             'classtype:policy-violation; sid:9199201; rev:1;)\n')


def _feed_apply(data_dir: Path, bundle: Path, keys: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ips.cli", "feed", "apply", str(bundle),
                           "--data-dir", str(data_dir), "--feed-keys", str(keys)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


def _vendor(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A vendor key pair made for the test (private key, trusted directory
    holding its public half) and the feed's rule file."""
    vendor = tmp_path / "vendor"
    vendor.mkdir()
    private, public = feed.generate_key(vendor / "feed.key")
    keys = tmp_path / "trusted"
    keys.mkdir()
    (keys / "vendor.pub").write_bytes(public.read_bytes())
    rules = vendor / "iot.rules"
    rules.write_text(FEED_RULE)
    return private, keys, rules


def test_feed_update_takes_effect_live_and_a_tampered_bundle_is_refused(tmp_path):
    private, keys, rules = _vendor(tmp_path)
    good = feed.build_bundle([rules], private, 1, tmp_path / "feed-1.tgz", "lab-feed")

    data_dir = tmp_path / "box"
    data_dir.mkdir()
    with running_lab(data_dir, [PATCHES], workers=1, policy="fail-open") as lab:
        assert lab.act("cam", "upload")["ok"]

        # Traffic that must keep flowing while the feed compiles and swaps.
        with Chatter(lab) as chatter:
            done = _feed_apply(data_dir, good, keys)
            assert done.returncode == 0, done.stderr
            assert "asked the inline service" in done.stdout
            assert _wait(lambda: _status(data_dir)["totals"]["reloads"] >= 1), "no reload"
        assert chatter.attempts >= 3 and chatter.failures == [], vars(chatter)

        # The feed's rule is live: the upload is now dropped and alerted.
        assert not lab.act("cam", "upload")["ok"]
        assert _wait(lambda: any(a["alert"]["signature_id"] == 9199201
                                 for a in read_alerts(data_dir)), 30)

        # Version 2 with its rule file changed after signing (the drop rule
        # neutered, same length) is refused; the installed feed and the running
        # rule stay.
        reloads = _status(data_dir)["totals"]["reloads"]
        rules.write_text(FEED_RULE.replace("rev:1;", "rev:2;"))
        honest = feed.build_bundle([rules], private, 2, tmp_path / "feed-2.tgz", "lab-feed")
        tampered = tmp_path / "feed-2-tampered.tgz"
        _swap_rule_file(honest, tampered, FEED_RULE.replace("rev:1;", "rev:2;")
                        .replace("/upload/snapshot", "/upload/xxxxxxxx"))
        done = _feed_apply(data_dir, tampered, keys)
        assert done.returncode == 1 and "does not match its sha256" in done.stderr
        assert feed.installed_version(data_dir) == 1
        time.sleep(2)
        assert _status(data_dir)["totals"]["reloads"] == reloads   # nothing to reload
        assert not lab.act("cam", "upload")["ok"]
        assert lab.act("thermo", "mqtt")["ok"]
        assert lab.act("inet", "inject", "192.0.2.10")["ok"] is False  # the -S patches still block


def _swap_rule_file(source: Path, target: Path, content: str) -> None:
    """Copy a bundle, replacing its rule file's bytes but not the signed manifest."""
    import io
    import tarfile

    with tarfile.open(source) as original, tarfile.open(target, "w:gz") as out:
        for member in original.getmembers():
            data = original.extractfile(member).read()
            if member.name.startswith("rules/"):
                data = content.encode()
                member.size = len(data)
            out.addfile(member, io.BytesIO(data))


def test_box_polls_its_feed_url_and_swaps_in_a_new_version(tmp_path):
    # `--set feed.url=...`: the box fetches the vendor's bundle itself (here a
    # local mirror path: the lab box has no address of its own) and takes a
    # newly signed version by live reload, with no command from anyone.
    private, keys, rules = _vendor(tmp_path)
    mirror = tmp_path / "mirror.tgz"
    feed.build_bundle([rules], private, 7, mirror, "lab-feed")
    data_dir = tmp_path / "box"
    data_dir.mkdir()
    settings = [f"feed.url={mirror}", f"feed.keys-dir={keys}", "feed.interval=60"]
    extra = [arg for item in settings for arg in ("--set", item)]
    with running_lab(data_dir, [PATCHES], workers=1, policy="fail-open", extra=extra) as lab:
        assert _wait(lambda: feed.installed_version(data_dir) == 7), feed.status(data_dir)
        assert _wait(lambda: _status(data_dir)["totals"]["reloads"] >= 1), "no reload"
        assert not lab.act("cam", "upload")["ok"]
        assert _wait(lambda: any(a["alert"]["signature_id"] == 9199201
                                 for a in read_alerts(data_dir)), 30)
