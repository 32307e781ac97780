"""The ``digest`` command. Every DigestError becomes one line on stderr and exit 1;
usage errors exit 2; tracebacks only with ``-v``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from digest import __version__
from digest.errors import DigestError

# Only what `digest --help` needs is imported up front: the config, the store
# (SQLAlchemy), the pipeline, even logging and pathlib are imported where they are
# used, so help and usage errors answer at once (bench/: start-up under 3x a bare
# interpreter). TYPE_CHECKING is spelled out to spare importing typing.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from datetime import datetime

    from digest.config import Config

Command = Callable[[argparse.Namespace, "Config"], int]


def _now() -> datetime:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def cmd_run(args: argparse.Namespace, config: Config) -> int:
    from pathlib import Path

    from digest.pipeline import RunOptions, make_transport, run_once
    from digest.store import Store

    options = RunOptions(
        send=not args.no_send,
        retry_failed=args.retry_failed,
        dry_run_dir=Path(args.dry_run).resolve() if args.dry_run else None,
        lock_wait=args.wait,
    )
    store = Store.open(config.state.url)
    try:
        report = run_once(config, store, make_transport(config), _now(), options)
    finally:
        store.close()
    print(report.summary())
    for error in report.ingest.errors:
        print(f"failed dump: {error}", file=sys.stderr)
    for error in report.delivery.errors:
        print(f"delivery: {error}", file=sys.stderr)
    if options.dry_run_dir:
        print(f"dry run: outputs written to {options.dry_run_dir}; the state is unchanged")
    if not report.ok:
        print(
            "digest: error: some deliveries did not go out; they are kept and retried on the next run",
            file=sys.stderr,
        )
        return 1
    return 0


def cmd_status(args: argparse.Namespace, config: Config) -> int:
    import json

    from digest.store import Store

    store = Store.open(config.state.url)
    try:
        counts = store.counts()
        failed_dumps = store.dump_records("failed")
        troubled = [d for d in store.deliveries() if d.status in ("pending", "failed") and d.last_error]
        latest = store.digests(limit=1)
    finally:
        store.close()
    if args.json:
        counts["failed_dumps"] = [{"name": d.name, "error": d.error} for d in failed_dumps]
        counts["last_digest"] = (
            {
                "slug": latest[0].slug,
                "created": latest[0].created.isoformat(),
                "papers": latest[0].paper_count,
            }
            if latest
            else None
        )
        counts["delivery_errors"] = [
            {"recipient": d.recipient, "digest": d.digest_id, "status": d.status, "error": d.last_error}
            for d in troubled
        ]
        print(json.dumps(counts, indent=2, sort_keys=True))
        return 0
    dumps, deliveries = counts["dumps"], counts["deliveries"]
    print(f"state: {config.state.url}")
    print(f"dumps: {dumps['ingested']} ingested, {dumps['failed']} failed")
    print(f"papers: {counts['papers']} stored, {counts['papers_waiting']} waiting for the next digest")
    last = f" (latest {latest[0].slug}, {latest[0].paper_count} papers)" if latest else ""
    print(f"digests: {counts['digests']}{last}")
    print(
        f"deliveries: {deliveries['pending']} pending, {deliveries['sent']} sent, "
        f"{deliveries['failed']} failed, {deliveries['cancelled']} cancelled"
    )
    for d in failed_dumps:
        print(f"  failed dump {d.name}: {d.error}")
    for row in troubled:
        print(f"  {row.status} delivery of digest {row.digest_id} to {row.recipient}: {row.last_error}")
    return 0


def cmd_check_config(args: argparse.Namespace, config: Config) -> int:
    import json

    from digest.config import describe

    print(f"# {config.path}")
    print(json.dumps(describe(config), indent=2, ensure_ascii=False))
    print("config OK", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="digest",
        description="Turn saved 'Daily Papers' listing pages into feeds, an email digest and an archive.",
    )
    parser.add_argument("-c", "--config", help="config file (default: $DIGEST_CONFIG or ./digest.toml)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logs and tracebacks")
    parser.add_argument("--version", action="version", version=f"paper-digest {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="ingest new dumps, build the digest, publish it and deliver it")
    run.add_argument("--dry-run", metavar="DIR", help="write what would be published to DIR; change no state")
    run.add_argument(
        "--no-send", action="store_true", help="record the digest as delivered without mailing it"
    )
    run.add_argument("--retry-failed", action="store_true", help="parse dumps that failed before again")
    run.add_argument(
        "--wait", type=float, default=0.0, metavar="SECONDS", help="wait this long for another run's lock"
    )
    run.set_defaults(func=cmd_run)

    status = sub.add_parser("status", help="what the state holds: dumps, papers, digests, deliveries")
    status.add_argument("--json", action="store_true", help="print only JSON on stdout")
    status.set_defaults(func=cmd_status)

    check = sub.add_parser("check-config", help="print the resolved config, secrets masked")
    check.set_defaults(func=cmd_check_config)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    import logging
    from pathlib import Path

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        from digest.config import find_config_file, load_config

        path = find_config_file(args.config, os.environ, Path.cwd())
        config = load_config(path, os.environ)
        func: Command = args.func
        return func(args, config)
    except DigestError as err:
        if args.verbose:
            logging.getLogger("digest").exception("failed")
        print(f"digest: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("digest: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
