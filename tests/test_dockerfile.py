"""The Dockerfile is linted and what it runs works outside Docker.

No Docker engine runs on the CI machines, so the image itself is not built
here; instead the same entry point (`reefguard` with the image's CMD
sub-command) is exercised from the installed package.
"""
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"


def _instruction(name: str) -> str:
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith(name + " "):
            return line[len(name) + 1:]
    raise AssertionError(f"no {name} in Dockerfile")


def test_hadolint_is_clean():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).exists():
        pytest.skip("hadolint not installed (it comes with the test extras)")
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_entrypoint_and_cmd_are_a_valid_reefguard_invocation():
    import json
    entrypoint = json.loads(_instruction("ENTRYPOINT"))
    cmd = json.loads(_instruction("CMD"))
    assert entrypoint == ["reefguard"]
    from ips.cli import build_parser
    args = build_parser().parse_args(cmd)
    assert args.command == "run"
    assert args.wan == "eth0" and args.lan == "eth1"


def test_copied_paths_exist():
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith("COPY "):
            sources = shlex.split(line)[1:-1]
            for source in sources:
                assert (ROOT / source).exists(), source
