"""The ``digest`` command. Every DigestError becomes one line on stderr and exit 1;
usage errors (argparse's, and UsageError) exit 2; tracebacks only with ``-v``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from digest import __version__
from digest.cli_run import cmd_run
from digest.errors import DigestError, PublishError, UsageError

# Only what `digest --help` needs is imported up front: the config, the store
# (SQLAlchemy), the pipeline, even logging and pathlib are imported where they are
# used, so help and usage errors answer at once (bench/: start-up under 3x a bare
# interpreter). TYPE_CHECKING is spelled out to spare importing typing.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from datetime import datetime
    from typing import Any

    from digest.config import Config

Command = Callable[[argparse.Namespace, "Config"], int]


def _now() -> datetime:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def cmd_fetch(args: argparse.Namespace, config: Config) -> int:
    from digest.errors import ConfigError
    from digest.fetch import fetch_all, make_client
    from digest.lock import state_lock
    from digest.store import Store

    if not config.sources.urls:
        raise ConfigError(
            "sources.urls", "is empty: nothing to fetch", 'list dump URLs: urls = ["https://…"]'
        )
    with (
        Store.open(config.state.url) as store,
        state_lock(config.lock_path, config.state.url, wait=args.wait, holder=config.instance.name),
        make_client(config) as client,
    ):
        report = fetch_all(config, store, client, _now(), force=True)
    for r in report.results:
        detail = f" -> {config.sources.inbox / r.file}" if r.file else f": {r.error}" if r.error else ""
        print(f"{r.outcome}: {r.url}{detail}")
    print(report.summary() + ("; the next run ingests the new dumps" if report.written else ""))
    if report.failed:
        print(
            f"digest: error: {report.failed} of {len(report.results)} URLs failed; "
            "they are retried on the next fetch",
            file=sys.stderr,
        )
        return 1
    return 0


def cmd_status(args: argparse.Namespace, config: Config) -> int:
    import json

    from digest import status
    from digest.store import Store

    with Store.open(config.state.url) as store:
        snap = status.snapshot(store, config.sources.urls)
    if args.json:
        print(json.dumps(status.to_json(snap), indent=2, sort_keys=True))
    else:
        print("\n".join(status.lines(snap, config.state.url, len(config.sources.urls))))
    return 0


def cmd_check_config(args: argparse.Namespace, config: Config) -> int:
    import json
    from pathlib import Path

    from digest.config import as_toml, describe
    from digest.errors import DumpError
    from digest.sources import scan

    problems: list[str] = []
    try:
        scan(config.sources.inbox, config.sources.pattern)  # what `digest run` does first
    except DumpError as err:
        problems.append(f"sources.inbox: {err}")
    if config.email.transport == "smtp" and config.email.smtp.username and not config.email.smtp.password:
        problems.append(
            "email.smtp.username is set but DIGEST_SMTP_PASSWORD is empty; "
            "set it in the environment or in .env beside the config file"
        )
    dkim = config.email.dkim
    if dkim.enabled:
        from digest.errors import ConfigError
        from digest.signing import aligned, from_domain, load_key

        try:
            load_key(dkim.selector, dkim.domain, dkim.key_file or Path())  # never printed
        except ConfigError as err:
            problems.append(str(err))
        sender = from_domain(config.email.from_)
        if not aligned(sender, dkim.domain):
            print(
                f"digest: warning: email.dkim.domain {dkim.domain!r} is not aligned with the From "
                f"domain {sender!r}: DMARC fails and Gmail, Yahoo and Outlook junk or refuse the mail; "
                "sign with the From domain (or a parent of it)",
                file=sys.stderr,
            )
    effective = describe(config)
    if args.json:
        print(json.dumps(effective, indent=2, ensure_ascii=False))
    else:
        print(f"# the effective config read from {config.path}, secrets masked")
        print(as_toml(effective), end="")
    for problem in problems:
        print(f"digest: warning: {problem}", file=sys.stderr)
    if config.http.listen and config.digest.base_url.startswith("http://"):
        # Not a problem for a trial on one machine; mail providers want https links.
        print(
            "digest: warning: digest.base_url is http://: the one-click unsubscribe link in "
            "List-Unsubscribe should be https (RFC 8058); fine for a local trial",
            file=sys.stderr,
        )
    if config.email.enabled and not config.email.bounces_source:
        from digest.audience import mailbox, served

        # Every email's List-Unsubscribe and footer offer a mailto: to this address; without
        # the pages (http.listen) it is the reader's only way out.
        print(
            f"digest: warning: email.bounces_source is not set, so unsubscribe requests mailed to "
            f"{mailbox(config)} (the mailto: in every email) are never read"
            + ("" if served(config) else ", and without http.listen that is the only way to unsubscribe")
            + "; point email.bounces_source at that address's mailbox "
            "(README: Unsubscribe requests by email)",
            file=sys.stderr,
        )
    if problems:
        print(
            f"digest: error: `digest run` would refuse this config ({len(problems)} above)", file=sys.stderr
        )
        return 1
    print("config OK", file=sys.stderr)
    return 0


def cmd_publish(args: argparse.Namespace, config: Config) -> int:
    from pathlib import Path

    from digest.pipeline import republish
    from digest.store import Store
    from digest.text import counted

    output = Path(args.output).resolve() if args.output else None
    with Store.open(config.state.url) as store:
        report = republish(config, store, _now(), output_dir=output, lock_wait=args.wait)
    target = output or config.feed.output_dir
    if not report.files:
        print(f"nothing to publish: no digest yet (the site in {target} is unchanged)")
        return 0
    pages = sum(1 for f in report.files if f.parent.name == "digests")
    years = sum(1 for f in report.files if f.parent.name == "archive")
    # A reader's folder, for/<hex>/, holds their page and feeds: not the site's feeds.
    readers = {f.parent for f in report.files if f.parent.parent.name == "for"}
    mine = sum(1 for f in report.files if f.parent in readers)
    feeds = len(report.files) - pages - years - mine - 1
    own = f", and the own pages and feeds of {counted(len(readers), 'reader')}" if readers else ""
    print(
        f"published {len(report.files)} files into {target}: {pages} digest pages, "
        f"{years} year page{'' if years == 1 else 's'}, the index and {feeds} feeds{own}"
    )
    return 0


def _address_arg(value: str) -> str:
    from email.utils import parseaddr

    from digest.cli_subscribers import checked_address

    addr = parseaddr(value)[1]
    if "\r" in value or "\n" in value or "@" not in addr:
        raise DigestError(f"{value!r} is not an email address; write it like user@example.org")
    return checked_address(addr)


def cmd_send_test(args: argparse.Namespace, config: Config) -> int:
    from digest.outbox import sample_message
    from digest.store import Store
    from digest.transports import FileTransport, SmtpTransport, make_transport

    address = _address_arg(args.address)
    with Store.open(config.state.url) as store:
        message = sample_message(config, store, address, _now())
    transport = make_transport(config)
    with transport:
        transport.send(message, address)
    signed = " (DKIM-signed)" if config.email.dkim.enabled else ""
    transport = getattr(transport, "inner", transport)
    if isinstance(transport, SmtpTransport):
        how = f"via SMTP {transport.where} ({transport.settings.security})"
    elif isinstance(transport, FileTransport):
        how = f"as {transport.path_for(message, address)}"
    else:  # pragma: no cover - only the two transports exist
        how = ""
    print(f"sent a test digest to {address} {how}{signed}; Message-ID {message['Message-ID']}")
    return 0


def cmd_unsubscribe(args: argparse.Namespace, config: Config) -> int:
    from digest.store import Store

    address = _address_arg(args.address)
    with Store.open(config.state.url) as store:
        if args.undo:
            removed = store.unsuppress(address, _now())
            print(f"{address} no longer unsubscribed" if removed else f"{address} had not unsubscribed")
            return 0
        cancelled = store.suppress(address, _now())
    print(
        f"{address} unsubscribed: no digest will be created for it; {cancelled} pending deliveries cancelled"
    )
    if address.lower() in {a.lower() for a in config.email.to}:
        print(f"note: {address} is still listed in email.to; remove it there too", file=sys.stderr)
    return 0


def cmd_preview(args: argparse.Namespace, config: Config) -> int:
    import tempfile
    from pathlib import Path

    from digest.atomic import write_atomic
    from digest.preview import preview
    from digest.store import Store

    with Store.open(config.state.url) as store:
        rendered = preview(config, store, _now(), to=args.to)
    if rendered is None:
        raise DigestError("nothing to preview: no paper has been ingested yet; run `digest run` first")
    out = Path(args.out).resolve() if args.out else Path(tempfile.mkdtemp(prefix="digest-preview-"))
    html = out / f"{rendered.digest.slug}.html"
    eml = out / f"{rendered.digest.slug}.eml"
    try:
        write_atomic(html, rendered.html.encode("utf-8"))
        write_atomic(eml, rendered.wire.data)
    except OSError as err:
        raise PublishError(f"cannot write the preview to {out}: {err.strerror}") from err
    print(f"# {rendered.what} for {rendered.recipient}: {rendered.message['Subject']}", file=sys.stderr)
    print(html)
    print(eml)
    return 0


def cmd_dkim_keygen(args: argparse.Namespace, config: Config) -> int:
    from pathlib import Path

    from digest.atomic import write_atomic
    from digest.signing import dns_name, from_domain, generate_key, txt_record

    selector = args.selector
    if not selector.replace("-", "").isalnum():
        raise DigestError(f"{selector!r} is not a DKIM selector; use letters, digits and '-', like 2026a")
    domain = args.domain or config.email.dkim.domain or from_domain(config.email.from_)
    out = Path(args.dir).resolve() if args.dir else (config.path.parent if config.path else Path.cwd())
    private = out / f"{selector}.private"
    if private.exists():
        raise DigestError(f"{private} exists already; choose another selector or move it away")
    pair = generate_key()
    record = txt_record(pair.public_b64)
    try:
        out.mkdir(parents=True, exist_ok=True)
        # Created 0600 from the start: the key is never readable by others, not even briefly.
        fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pair.private_pem)
        write_atomic(out / f"{selector}.txt", f'{dns_name(selector, domain)}. IN TXT "{record}"\n'.encode())
    except OSError as err:
        raise PublishError(f"cannot write the key into {out}: {err.strerror}") from err
    print(f"wrote the private key to {private} (mode 600) and the DNS record to {out / (selector + '.txt')}")
    print(f"publish this TXT record at {dns_name(selector, domain)}:")
    print(record)
    print(
        f'then set [email.dkim] selector = "{selector}", domain = "{domain}", key_file = "{private}"',
        file=sys.stderr,
    )
    return 0


def cmd_serve(args: argparse.Namespace, config: Config) -> int:
    from digest.schedule import serve

    return serve(config, verbose=args.verbose)


_CONFIG_HELP = "config file (default: $DIGEST_CONFIG or ./digest.toml)"
_VERBOSE_HELP = "debug logs and tracebacks"


def _common_options() -> argparse.ArgumentParser:
    """-c and -v for every command, so they work after the command too. SUPPRESS keeps a
    subcommand that was not given them from overwriting the ones given before it."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-c", "--config", default=argparse.SUPPRESS, help=_CONFIG_HELP)
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=_VERBOSE_HELP)
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="digest",
        description="Turn saved 'Daily Papers' listing pages into feeds, an email digest and an archive.",
    )
    parser.add_argument("-c", "--config", help=_CONFIG_HELP)
    parser.add_argument("-v", "--verbose", action="store_true", help=_VERBOSE_HELP)
    parser.add_argument("--version", action="version", version=f"paper-digest {__version__}")
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="log lines on stderr as text (default) or one JSON object each, for log shippers",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = _common_options()

    def add(name: str, **kwargs: Any) -> argparse.ArgumentParser:
        kwargs.setdefault("description", kwargs.get("help"))  # `digest CMD --help` says it too
        return sub.add_parser(name, parents=[common], **kwargs)

    run = add("run", help="ingest new dumps, build the digest, publish it and deliver it")
    run.add_argument("--dry-run", metavar="DIR", help="write what would be published to DIR; change no state")
    run.add_argument(
        "--no-send", action="store_true", help="record the digest as delivered without mailing it"
    )
    run.add_argument("--retry-failed", action="store_true", help="parse dumps that failed before again")
    run.add_argument(
        "--backfill",
        action="store_true",
        help="first run over history: one digest per dump, dated by its listing, never mailed",
    )
    run.add_argument(
        "--wait", type=float, default=0.0, metavar="SECONDS", help="wait this long for another run's lock"
    )
    run.set_defaults(func=cmd_run)

    fetch = add("fetch", help="fetch the dumps of sources.urls into the inbox once, now")
    fetch.add_argument(
        "--wait", type=float, default=0.0, metavar="SECONDS", help="wait this long for another run's lock"
    )
    fetch.set_defaults(func=cmd_fetch)

    status = add("status", help="what the state holds: dumps, papers, digests, deliveries")
    status.add_argument("--json", action="store_true", help="print only JSON on stdout")
    status.set_defaults(func=cmd_status)

    publish = add(
        "publish",
        help="rebuild the whole site: every digest and year page, the index, the six feeds "
        "and each reader's own page and feeds",
    )
    publish.add_argument(
        "--output", metavar="DIR", help="write into DIR instead of feed.output_dir; change no state"
    )
    publish.add_argument(
        "--wait", type=float, default=0.0, metavar="SECONDS", help="wait this long for another run's lock"
    )
    publish.set_defaults(func=cmd_publish)

    check = add(
        "check-config",
        help="print the effective config (defaults filled in, secrets masked) and what `run` would refuse",
    )
    check.add_argument("--json", action="store_true", help="print only JSON on stdout")
    check.set_defaults(func=cmd_check_config)

    send_test = add("send-test", help="send a sample digest to ADDRESS through the configured transport")
    send_test.add_argument("address", metavar="ADDRESS", help="where the sample goes")
    send_test.set_defaults(func=cmd_send_test)

    unsub = add(
        "unsubscribe",
        help="make ADDRESS an unsubscribed subscriber: no more deliveries, its pending ones cancelled",
    )
    unsub.add_argument("address", metavar="ADDRESS", help="the address to stop mailing")
    unsub.add_argument(
        "--undo",
        action="store_true",
        help="take it back: an address that was no subscriber is forgotten, any other is active again",
    )
    unsub.set_defaults(func=cmd_unsubscribe)

    prev = add(
        "preview",
        help="render the next (or latest) digest email to an .html and an .eml file; change nothing",
    )
    prev.add_argument(
        "--to",
        metavar="ADDRESS",
        help="the email this subscriber would get for that digest (their own, or their weekly one)",
    )
    prev.add_argument(
        "--out", metavar="DIR", help="folder for the two files (default: a new temporary folder)"
    )
    prev.set_defaults(func=cmd_preview)

    keygen = add("dkim-keygen", help="make a DKIM key pair and print the DNS TXT record to publish")
    keygen.add_argument("selector", metavar="SELECTOR", help="the selector, e.g. 2026a")
    keygen.add_argument("--domain", help="the signing domain (default email.dkim.domain or the From domain)")
    keygen.add_argument(
        "--dir", help="where to write SELECTOR.private and SELECTOR.txt (default: the config's folder)"
    )
    keygen.set_defaults(func=cmd_dkim_keygen)

    serve = add(
        "serve",
        help="run until stopped: poll the inbox, send the digest on schedule, serve the site over HTTP",
        description="Run the service: poll every schedule.poll, build and send the digest at "
        "schedule.digest, and serve feed.output_dir and /healthz on http.listen. "
        "SIGTERM or Ctrl-C stops it cleanly.",
    )
    serve.set_defaults(func=cmd_serve)

    from digest.cli_subscribers import add_parser as add_subscribers

    add_subscribers(add)

    from digest.cli_bounces import add_parser as add_bounces

    add_bounces(add)

    from digest import cli_rank  # argparse only; the ranking loads when the command runs

    cli_rank.add_parser(add)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The ``digest`` command. Output into a closed pipe (``digest status | head -1``)
    ends quietly with exit 0, like other Unix tools."""
    try:
        code = _main(argv)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
        return code
    except BrokenPipeError:
        # Point stdout at /dev/null so the interpreter's final flush cannot fail again.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):  # pragma: no cover - a stdout without a descriptor
            pass
        return 0


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    import logging
    from pathlib import Path

    from digest.logformat import configure

    configure(args.log_format, args.verbose)
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
        return 2 if isinstance(err, UsageError) else 1
    except KeyboardInterrupt:
        print("digest: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
