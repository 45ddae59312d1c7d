"""`reefguard rules check -S FILE [FILE ...] [-S FILE ...]`: what would load, and why not.

Prints the skipped rules counted by reason (and keyword), each syntax error
with its file and line, then exactly `N loaded, M skipped`. Exits 1 when any
line is not a rule at all (a syntax error), 0 otherwise: refused keywords are
expected in third-party rulesets and are not failures.
"""
from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="reefguard rules check",
                                     description="Parse rule files and report what loads.")
    parser.add_argument("-S", "--rules", dest="rules", action="extend", nargs="+", required=True,
                        metavar="FILE", help="rule file (repeatable; several may follow one -S)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="list every skipped rule with file, line and sid")
    args = parser.parse_args(argv)

    from ips.config import Config
    from ips.detect import DetectEngine

    _, report = DetectEngine.load(args.rules, Config())
    out = sys.stdout
    if report.skipped:
        print("skipped by reason:", file=out)
        for reason, count in sorted(report.by_keyword().items(), key=lambda item: (-item[1], item[0])):
            print(f"  {count:6d}  {reason}", file=out)
    if args.verbose:
        for path, line, sid, reason, keyword in report.skipped:
            detail = report.details.get((path, line))
            print(f"  skipped {path}:{line} sid={sid} {reason}{' ' + keyword if keyword else ''}"
                  f"{' (' + detail + ')' if detail else ''}", file=out)
    for path, line, sid, reason, keyword in report.errors:
        print(f"error: {path}:{line} sid={sid} {reason}{' (' + keyword + ')' if keyword else ''}",
              file=out)
    skipped = len(report.skipped) + len(report.errors)
    print(f"{report.loaded} loaded, {skipped} skipped", file=out)
    return 1 if report.errors else 0


if __name__ == "__main__":
    sys.exit(main())
