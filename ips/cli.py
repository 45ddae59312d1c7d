"""`reefguard` command line.

Sub-commands follow Suricata's flags where a Suricata user would reach for
them (`-r`, `-S`, `-l`, `-k`, `--set`).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from ips.config import Config

DEFAULT_RULES = [str(Path(__file__).resolve().parent.parent / "signatures")]


def _config_from(args) -> Config:
    config = Config()
    if getattr(args, "checksum", None):
        config.checksum_mode = args.checksum
    try:
        config.apply(getattr(args, "set", None) or [])
    except ValueError as exc:
        raise SystemExit(f"reefguard: {exc}")
    return config


def rule_files(paths: list[str]) -> list[str]:
    """Expand directories to their *.rules files, in name order."""
    out: list[str] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            out.extend(str(f) for f in sorted(path.glob("*.rules")))
        else:
            out.append(str(path))
    return out


def default_cache_dir() -> str:
    """Where compiled Hyperscan databases are kept between runs, so a restart
    or the next replay with the same rules does not recompile."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "reefguard", "rules")


def load_engine(paths: list[str], config: Config, cache_dir: str | None = None,
                quiet: bool = False):
    from ips.detect import DetectEngine
    if cache_dir in ("", "none"):
        cache_dir = None
    files = rule_files(paths)
    if not files:
        return None, None
    engine, report = DetectEngine.load(files, config, cache_dir=cache_dir)
    if not quiet:
        skipped = len(report.skipped)
        errors = len(report.errors)
        print(f"rules: {report.loaded} loaded, {skipped} skipped, {errors} errors "
              f"from {len(files)} file(s)", file=sys.stderr)
        for item in list(report.errors)[:5]:
            print(f"  error: {item}", file=sys.stderr)
        if config.threshold_file:
            print(f"threshold file {config.threshold_file}: {report.threshold_entries} "
                  f"entries, {len(report.threshold_errors)} not loaded", file=sys.stderr)
            for file, line, message in report.threshold_errors[:5]:
                print(f"  {file}:{line}: {message}", file=sys.stderr)
    return engine, report


def cmd_replay(args) -> int:
    from ips.replay import replay
    config = _config_from(args)
    engine, _ = load_engine(args.rules or [], config, args.cache_dir)
    consumers = []
    Path(args.outdir).mkdir(parents=True, exist_ok=True)
    store = None
    if not args.no_store:
        from ips.store import Store, StoreConsumer
        store = Store(Path(args.outdir) / "reefguard.sqlite")
        consumers.append(StoreConsumer(store))
    if config.profiling and not args.no_profile:
        # Profilers first: the anomalies they derive reach the store and EVE.
        consumers[:0] = _profiling_consumers(config, store)
    summary = replay(args.pcaps, engine, args.outdir, config, consumers=consumers,
                     progress=None if not args.quiet else False)
    for err in summary.errors:
        print(f"reefguard: {err}", file=sys.stderr)
    if not args.quiet:
        rate = summary.packets / summary.seconds if summary.seconds else 0.0
        cpu_rate = summary.packets / summary.cpu_seconds if summary.cpu_seconds else 0.0
        print(f"{summary.packets} packets in {summary.seconds:.2f} s ({rate:,.0f} pkt/s; "
              f"{summary.cpu_seconds:.2f} s CPU, {cpu_rate:,.0f} pkt/s per core): "
              f"{summary.alerts} alerts ({summary.blocked} blocked), "
              f"{summary.flows} flows, {summary.anomalies} anomalies; "
              f"EVE in {Path(args.outdir) / 'eve.json'}")
        if summary.signatures:
            print("\nSignatures that fired:")
            for name, count in sorted(summary.signatures.items(), key=lambda kv: -kv[1])[:15]:
                print(f"  {count:6d}  {name}")
        if store is not None:
            _print_devices(store)
        if summary.device_anomalies:
            print(f"\nDevice behaviour ({len(summary.device_anomalies)} anomalies):")
            for event in summary.device_anomalies[:10]:
                print(f"  [{event.kind}] {event.explanation}")
    return 0 if not summary.errors or summary.packets else 1


def _print_devices(store, limit: int = 25) -> None:
    """The inventory as the replay left it in the store."""
    rows = store.conn.execute(
        "SELECT mac, ip, vendor, COALESCE(user_type, type_guess), model_guess, confidence"
        " FROM devices ORDER BY ip").fetchall()
    if not rows:
        return
    print(f"\nDevices ({len(rows)}):")
    for mac, ip, vendor, kind, model, confidence in rows[:limit]:
        guess = f"{kind} ({model}, {confidence:.2f})" if kind and model and confidence else (kind or "")
        print(f"  {ip or '-':<16} {mac:<20} {(vendor or '-')[:36]:<36} {guess}")
    if len(rows) > limit:
        print(f"  ... and {len(rows) - limit} more in {store.path}")


def _profiling_consumers(config: Config, store=None) -> list:
    """The device inventory and profiler."""
    from ips.profile import make_consumers
    return list(make_consumers(config, store))


def cmd_rules_check(args) -> int:
    from ips.detect.check import main as check_main
    argv: list[str] = []
    for path in rule_files(args.rules):
        argv += ["-S", path]
    if args.verbose:
        argv.append("-v")
    return check_main(argv)


def cmd_verify(args) -> int:
    from ips.verify import main as verify_main
    return verify_main(args.dirs, keep=args.keep, filter_=args.filter, verbose=args.verbose)


def _feed_data_dir(args) -> str:
    from ips.service import DEFAULT_DATA_DIR
    return args.data_dir or os.environ.get("REEFGUARD_DATA_DIR") or DEFAULT_DATA_DIR


def cmd_feed_keygen(args) -> int:
    from ips import feed
    try:
        private, public = feed.generate_key(args.out)
        key = feed.parse_public_key(public.read_bytes(), str(public))
    except (feed.FeedError, OSError) as exc:
        print(f"reefguard feed keygen: {exc}", file=sys.stderr)
        return 1
    print(f"private key {private}: keep it offline, it signs bundles\n"
          f"public key {public} (id {key.key_id}): install it in a trusted key directory")
    return 0


def cmd_feed_build(args) -> int:
    from ips import feed
    try:
        out = feed.build_bundle(rule_files(args.rules), args.key, args.version, args.out,
                                args.feed_name, revoke=args.revoke)
    except (feed.FeedError, OSError) as exc:
        print(f"reefguard feed build: {exc}", file=sys.stderr)
        return 1
    revoking = f", revoking key {', '.join(args.revoke)}" if args.revoke else ""
    print(f"{out}: feed {args.feed_name} version {args.version}{revoking}")
    return 0


def cmd_feed_apply(args) -> int:
    from ips import feed
    from ips.service import request_reload
    config = _config_from(args)
    data_dir = _feed_data_dir(args)
    try:
        result = feed.apply_from(args.bundle, data_dir,
                                 feed.default_key_dirs(args.feed_keys, config.feed_keys_dir),
                                 allow_downgrade=args.allow_downgrade,
                                 allow_other_feed=args.allow_other_feed, config=config,
                                 cache_dir=os.path.join(data_dir, "rule-cache"))
    except feed.FeedError as exc:
        print(f"reefguard feed apply: refused: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"reefguard feed apply: {exc}", file=sys.stderr)
        return 1
    status = result.status
    if result.outcome == "current":
        print(f"feed {status.get('feed')} version {status.get('version')} is already installed")
        return 0
    skipped = f", {status.get('skipped')} skipped" if status.get("skipped") else ""
    print(f"installed feed {status.get('feed')} version {status.get('version')}: "
          f"{status.get('rules')} rules{skipped} (signed by {status.get('signed_by')})")
    _reload_service(data_dir, request_reload)
    return 0


def _reload_service(data_dir: str, request_reload) -> None:
    pid = request_reload(data_dir)
    if pid is None:
        print("no inline service running for this data directory; "
              "the feed is used at its next start")
    else:
        print(f"asked the inline service (pid {pid}) to reload")


def cmd_feed_status(args) -> int:
    import json as json_module

    from ips import feed
    status = feed.status(_feed_data_dir(args))
    if args.json:
        print(json_module.dumps(status, indent=1, default=str))
        return 0
    installed = status.get("installed")
    if installed:
        print(f"feed {installed['feed']} version {installed['version']} "
              f"({status.get('rules')} rules, {status.get('skipped') or 0} skipped, "
              f"signed by {status.get('signed_by')}) in {installed['directory']}")
        print(f"last known good: version {status.get('previous_version') or '-'}")
    else:
        print("no feed installed")
    attempt = status.get("last_attempt")
    if attempt:
        reason = f": {attempt['reason']}" if attempt.get("reason") else ""
        print(f"last attempt: {attempt['result']} (version {attempt.get('version') or '-'}, "
              f"{attempt.get('source') or '-'}){reason}")
    for key, entry in status.get("revoked_keys", {}).items():
        if key == "error":
            print(f"revoked keys: {entry}")
        else:
            print(f"revoked key {key} (by key {entry.get('by')} in version {entry.get('version')})")
    return 0


def cmd_feed_rollback(args) -> int:
    from ips import feed
    from ips.service import request_reload
    data_dir = _feed_data_dir(args)
    key_dirs = feed.default_key_dirs(args.feed_keys, _config_from(args).feed_keys_dir)
    try:
        status = feed.rollback(data_dir, key_dirs)
    except (feed.FeedError, OSError) as exc:
        print(f"reefguard feed rollback: {exc}", file=sys.stderr)
        return 1
    print(f"rolled back to feed {status.get('feed')} version {status.get('version')}")
    _reload_service(data_dir, request_reload)
    return 0


def _register_feed(sub) -> None:
    p = sub.add_parser("feed", help="signed signature-feed bundles (docs/feed.md)")
    fsub = p.add_subparsers(dest="feed_command", required=True)
    c = fsub.add_parser("keygen", help="vendor: a new Ed25519 key pair (OUT and OUT.pub)")
    c.add_argument("out", metavar="OUT")
    c.set_defaults(func=cmd_feed_keygen)

    c = fsub.add_parser("build", help="vendor: sign rule files into a bundle")
    c.add_argument("-k", "--key", required=True, metavar="KEY", help="private key (PEM)")
    c.add_argument("--version", required=True, type=int, metavar="N",
                   help="feed version, greater than the last one published")
    c.add_argument("-o", "--out", required=True, metavar="BUNDLE")
    c.add_argument("--feed-name", default="reefguard", metavar="NAME")
    c.add_argument("--revoke", action="append", metavar="KEY_ID", default=[],
                   help="a signing key id the boxes must stop trusting (repeatable)")
    c.add_argument("rules", nargs="+", metavar="RULES", help="rule files or directories")
    c.set_defaults(func=cmd_feed_build)

    c = fsub.add_parser("apply", help="verify and install a bundle (file or http(s) URL); "
                                      "the running service reloads")
    c.add_argument("bundle", metavar="BUNDLE")
    c.add_argument("--data-dir", default=None,
                   help="default: $REEFGUARD_DATA_DIR or /var/lib/reefguard")
    c.add_argument("--allow-downgrade", action="store_true",
                   help="install a version not newer than the installed one")
    c.add_argument("--allow-other-feed", action="store_true",
                   help="replace the installed feed by a bundle of another feed name")
    c.add_argument("--feed-keys", action="append", metavar="DIR", default=[],
                   help="another directory of trusted public keys (*.pub; repeatable)")
    c.add_argument("--set", action="append", metavar="KEY=VALUE", default=[])
    c.set_defaults(func=cmd_feed_apply)

    c = fsub.add_parser("status", help="installed feed version and the last attempt")
    c.add_argument("--data-dir", default=None)
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_feed_status)

    c = fsub.add_parser("rollback", help="go back to the last-known-good feed version")
    c.add_argument("--data-dir", default=None)
    c.add_argument("--feed-keys", action="append", metavar="DIR", default=[],
                   help="another key directory whose `revoked` list applies (repeatable)")
    c.add_argument("--set", action="append", metavar="KEY=VALUE", default=[])
    c.set_defaults(func=cmd_feed_rollback)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="reefguard", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="count", default=0)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("replay", help="run captures through the engine offline")
    # `-S a.rules b.rules` (what a shell glob gives) and `-S a -S b` both work.
    p.add_argument("-r", dest="pcaps", action="extend", nargs="+", required=True, metavar="PCAP",
                   help="capture file or directory (repeatable; several may follow one -r)")
    p.add_argument("-S", dest="rules", action="extend", nargs="+", metavar="RULES",
                   help="rule file or directory (repeatable; several may follow one -S)")
    p.add_argument("-l", dest="outdir", required=True, metavar="OUTDIR")
    p.add_argument("-k", dest="checksum", choices=["none", "all", "auto"], default="auto")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", default=[])
    p.add_argument("--cache-dir", default=default_cache_dir(),
                   help="compiled rule cache directory ('none' to turn the cache off; "
                        "default: %(default)s)")
    p.add_argument("--no-store", action="store_true", help="do not write the SQLite store")
    p.add_argument("--no-profile", action="store_true", help="turn device profiling off")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("rules", help="rule tools")
    rsub = p.add_subparsers(dest="rules_command", required=True)
    c = rsub.add_parser("check", help="parse rules; report what would be skipped and why")
    c.add_argument("-S", dest="rules", action="extend", nargs="+", required=True, metavar="RULES",
                   help="rule file or directory (repeatable; several may follow one -S)")
    c.add_argument("--verbose", "-v", action="store_true", help="list every skipped rule")
    c.set_defaults(func=cmd_rules_check)

    p = sub.add_parser("verify", help="run suricata-verify style cases")
    p.add_argument("dirs", nargs="+", metavar="DIR")
    p.add_argument("--keep", metavar="OUTDIR", help="keep each case's output here")
    p.add_argument("--filter", "-k", dest="filter", help="only cases whose name contains this")
    p.add_argument("--verbose", action="store_true")
    p.set_defaults(func=cmd_verify)

    _register_feed(sub)

    from ips import service
    service.register(sub)     # run, down, reload, lab
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose > 1 else
                        logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
