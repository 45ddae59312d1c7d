"""Run every benchmark in turn (`make bench`). Inline benchmarks need root."""
from __future__ import annotations

import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
BENCHES = ["decode_flow.py", "replay.py", "detect.py", "connection.py", "profile.py", "webui.py"]


def main() -> int:
    failed = 0
    benches = list(BENCHES)
    if os.geteuid() == 0:
        benches.append("inline.py")
    else:
        print("skipping inline.py: needs root")
    for name in benches:
        print(f"\n=== bench/{name} ===", flush=True)
        rc = subprocess.call([sys.executable, os.path.join(HERE, name)])
        failed += rc != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
