"""``digest run``: one run by hand, its summary line and where its outputs went.

Kept apart from :mod:`digest.cli` (which registers it) to keep that module short; like
it, it imports the pipeline only when the command runs.
"""

from __future__ import annotations

import argparse
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from datetime import datetime

    from digest.config import Config
    from digest.pipeline import RunOptions, RunReport
    from digest.transports import Transport


def _now() -> datetime:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def cmd_run(args: argparse.Namespace, config: Config) -> int:
    from pathlib import Path

    from digest.pipeline import RunOptions, run_once
    from digest.store import Store
    from digest.transports import make_transport

    options = RunOptions(
        send=not (args.no_send or args.backfill),
        retry_failed=args.retry_failed,
        backfill=args.backfill,
        dry_run_dir=Path(args.dry_run).resolve() if args.dry_run else None,
        lock_wait=args.wait,
    )
    transport = make_transport(config)
    with Store.open(config.state.url) as store:
        report = run_once(config, store, transport, _now(), options)
    print(report.summary())
    if args.log_format == "json":
        import logging

        from digest.logformat import job_fields

        logging.getLogger("digest.run").info(
            "%s", report.summary(), extra=job_fields("run", report, report.ok)
        )
    for note in report.notes:
        print(note)
    for line in _where_outputs_went(config, options, report, transport):
        print(line)
    for error in report.fetch.errors if report.fetch else ():
        print(f"failed fetch: {error}", file=sys.stderr)
    for error in report.ingest.errors:
        print(f"failed dump: {error}", file=sys.stderr)
    for error in report.delivery.errors:
        print(f"delivery: {error}", file=sys.stderr)
    if options.dry_run_dir:
        print(f"dry run: outputs written to {options.dry_run_dir}; the state is unchanged")
    if not report.ok:
        print(
            f"digest: error: {_undelivered(report.delivery.pending, report.delivery.failed)}", file=sys.stderr
        )
        return 1
    return 0


def _where_outputs_went(
    config: Config, options: RunOptions, report: RunReport, transport: Transport
) -> list[str]:
    """Where ``digest run`` put the site and the email, in words; when no email went
    out, why: deliveries that were tried and failed, else what kept any from being due."""
    from digest.text import counted
    from digest.transports import SmtpTransport

    dry = options.dry_run_dir
    site = dry / "site" if dry else config.feed.output_dir
    files = len(report.published.files)
    lines = [f"site: {counted(files, 'file')} written into {site}" if files else f"site: unchanged ({site})"]
    sent = report.delivery.sent
    if dry or not isinstance(transport, SmtpTransport):
        outbox = dry / "outbox" if dry else config.email.outbox
        if sent:
            lines.append(f"email: {counted(sent, '.eml file')} written into {outbox}")
    elif sent:
        lines.append(f"email: {counted(sent, 'message')} sent via SMTP {transport.where}")
    pending, failed = report.delivery.pending, report.delivery.failed
    if not sent and (pending or failed):
        # Something was due and did not go out: say so, not why nothing was due.
        outcome = [f"{pending} pending, will be retried on the next run"] if pending else []
        outcome += [f"{failed} failed for good"] if failed else []
        lines.append(f"email: none sent: {'; '.join(outcome)}")
    elif not sent:
        why = (
            "--backfill never mails"
            if options.backfill
            else "--no-send"
            if not options.send
            else "email.enabled is false"
            if not config.email.enabled
            else "email.to is empty"
            if not config.email.to
            else "nothing to deliver"
        )
        lines.append(f"email: none sent ({why})")
    return lines


def _undelivered(pending: int, failed: int) -> str:
    """What became of the deliveries that did not go out: a permanent refusal (5xx) is
    not retried, so it must not be announced as if it were."""
    said = []
    if failed:
        one = failed == 1
        said.append(
            f"{failed} {'delivery' if one else 'deliveries'} failed for good (see above); "
            f"{'it is' if one else 'they are'} not retried"
        )
    if pending:
        one = pending == 1
        said.append(
            f"{pending} {'delivery' if one else 'deliveries'} did not go out; "
            f"{'it is' if one else 'they are'} kept and retried on the next run"
        )
    return "; ".join(said)
