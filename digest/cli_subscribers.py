"""``digest subscribers add|list|show|set|remove|import|export`` (issue 14).

Output never carries a subscriber's secret token or a signed link: ``export`` is a list
of addresses, statuses and preferences, safe to hand to another install (which gives
every row a new secret on ``import``).
"""

from __future__ import annotations

import argparse
import sys

from digest.errors import DigestError

# Spelled out to spare importing typing at start-up (see digest/cli.py).
TYPE_CHECKING = False

# `digest --help` imports this module for its parser only: what the commands need (csv,
# json, datetime, pathlib) is imported when one runs (see digest.cli).
if TYPE_CHECKING:
    from datetime import datetime
    from pathlib import Path
    from typing import Any

    from digest.config import Config

FIELDS = (
    "address",
    "status",
    "cadence",
    "max_papers",
    "only_top",
    "interests",
    "keywords",
    "exclude",
    "likes",
    "dislikes",
    "voted_at",
)
PREFS = FIELDS[2:8]  # the preferences; likes and dislikes are votes (paper keys)
# ``voted_at``: when each vote was cast, paper key -> ISO time (a JSON object; in CSV
# ``key=time; key=time``: keys are letters, digits and spaces). Files written before it
# existed lack it: their votes are dated at the import.


def _now() -> datetime:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def _prefs_args(parser: argparse.ArgumentParser, *, changing: bool = False) -> None:
    """The preference options of ``add`` and (``changing``) of ``set``, where a list
    given replaces the stored one."""
    replaces = "; replaces the list, {} '' clears it" if changing else ""
    parser.add_argument("--cadence", metavar="C", help="daily, or weekly:mon … weekly:sun")
    parser.add_argument("--max-papers", type=int, metavar="N", help="top picks shown in full (default 10)")
    parser.add_argument(
        "--only-top", action=argparse.BooleanOptionalAction, default=None, help="send only the top picks"
    )
    parser.add_argument("--interests", metavar="TEXT", help="a sentence or two about what to put first")
    parser.add_argument(
        "--keyword",
        action="append",
        metavar="K",
        help="a word or phrase that weighs heavily (repeat)" + replaces.format("--keyword"),
    )
    parser.add_argument(
        "--exclude",
        action="append",
        metavar="K",
        help="papers matching it sink (repeat)" + replaces.format("--exclude"),
    )
    parser.add_argument(
        "--like",
        action="append",
        default=[],
        metavar="TITLE",
        help="a liked paper: title or arXiv id (repeat)",
    )
    parser.add_argument(
        "--dislike", action="append", default=[], metavar="TITLE", help="a disliked paper (repeat)"
    )


def _votes(store: Any, args: argparse.Namespace) -> list[tuple[str, int]]:
    """(paper key, +1/-1) of --like/--dislike; an unknown title is an error naming the
    closest known titles, raised before anything is written."""
    from digest.store.rank import resolve

    return [(k, 1) for k in resolve(store, args.like)] + [(k, -1) for k in resolve(store, args.dislike)]


def _unvotes(store: Any, subs: Any, sub: Any, args: argparse.Namespace, votes: list[tuple[str, int]]) -> Any:
    """(paper key, title as shown, their vote on it or None) of each --unvote, resolved as
    --like is (an unknown title is an error with suggestions), before anything is
    written. A vote on a paper this state does not hold (imported) is found by its key."""
    from digest.identity import paper_key
    from digest.store.rank import resolve
    from digest.text import display

    cast = {v.paper_key: v.value for v in subs.votes(sub.id)}
    voted = {key for key, _ in votes}
    named: dict[str, str] = {}
    for name in args.unvote:
        key = paper_key(name)
        if key not in cast:
            [key] = resolve(store, [name])
        if key in voted:
            raise DigestError(f"{name!r} is both voted on and withdrawn (--unvote) in one command; give one")
        named.setdefault(key, name)
    titles = subs.titles(list(named)) if named else {}
    return [(key, display(titles.get(key, name)), cast.get(key)) for key, name in named.items()]


def _prefs_from_args(args: argparse.Namespace, base: Any = None) -> Any:
    from digest.subscribers import preferences_from

    data = {
        "cadence": args.cadence,
        "max_papers": args.max_papers,
        "only_top": args.only_top,
        "interests": args.interests,
        "keywords": args.keyword,
        "exclude": args.exclude,
    }
    try:
        return preferences_from(data, base)
    except ValueError as err:
        raise DigestError(f"{err}; see digest subscribers {args.subcommand} --help") from None


def checked_address(value: str) -> str:
    """``value`` as the address to store or mail (:func:`digest.mailaddr.ascii_address`);
    a DigestError saying why and how it should look."""
    from digest.mailaddr import ascii_address

    try:
        return ascii_address(value)
    except ValueError as err:
        raise DigestError(
            f"{value.strip()!r} is not an email address we can mail ({err}); write it like user@example.org"
        ) from None


def add_parser(add: Any) -> None:
    """Adds ``subscribers`` and its commands through ``add`` (the ``digest`` parser's
    ``add(name, **kwargs)``, which gives every command the common options)."""
    top = add("subscribers", help="add, list, change, remove, import and export subscribers")
    cmds = top.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")

    add = cmds.add_parser("add", help="add ADDRESS as an active subscriber (the operator vouches)")
    add.add_argument("address", metavar="ADDRESS")
    add.add_argument("--pending", action="store_true", help="pending instead: mail a confirmation link")
    _prefs_args(add)
    add.set_defaults(func=cmd_add)

    lst = cmds.add_parser("list", help="every subscriber: address, status, cadence, source")
    lst.add_argument("--status", choices=["pending", "active", "unsubscribed", "bounced"])
    lst.add_argument("--json", action="store_true", help="print only a JSON list of objects")
    lst.set_defaults(func=cmd_list)

    show = cmds.add_parser("show", help="one subscriber: status, times, preferences, votes")
    show.add_argument("address", metavar="ADDRESS")
    show.add_argument("--json", action="store_true", help="print only JSON")
    show.set_defaults(func=cmd_show)

    set_ = cmds.add_parser("set", help="change a subscriber's status or preferences")
    set_.add_argument("address", metavar="ADDRESS")
    set_.add_argument("--status", choices=["pending", "active", "unsubscribed", "bounced"])
    set_.add_argument(
        "--new-token", action="store_true", help="a new secret: every link sent so far stops working"
    )
    _prefs_args(set_, changing=True)
    set_.add_argument(
        "--unvote",
        action="append",
        default=[],
        metavar="TITLE",
        help="withdraw the like or dislike of a paper: title or arXiv id (repeat)",
    )
    set_.set_defaults(func=cmd_set)

    rm = cmds.add_parser("remove", help="delete a subscriber and their votes (deliveries stay as history)")
    rm.add_argument("address", metavar="ADDRESS")
    rm.set_defaults(func=cmd_remove)

    imp = cmds.add_parser("import", help="add or update subscribers from a CSV or JSON file (all or nothing)")
    imp.add_argument("file", metavar="FILE")
    imp.add_argument("--format", choices=["csv", "json"], help="default: from the file name")
    imp.set_defaults(func=cmd_import)

    exp = cmds.add_parser("export", help="every subscriber with preferences as CSV or JSON on stdout")
    exp.add_argument("--format", choices=["csv", "json"], default="json")
    exp.set_defaults(func=cmd_export)


def _open(config: Config) -> Any:
    from digest.store import Store

    return Store.open(config.state.url)


def _subs(store: Any) -> Any:
    from digest.store.subscribers import Subscribers

    return Subscribers(store)


def _need(subs: Any, address: str) -> Any:
    sub = subs.get(address)
    if sub is None:
        raise DigestError(f"{address} is not a subscriber; add it with digest subscribers add {address}")
    return sub


def cmd_add(args: argparse.Namespace, config: Config) -> int:
    from digest import audience

    address = checked_address(args.address)
    prefs = _prefs_from_args(args)
    with _open(config) as store:
        subs = _subs(store)
        votes = _votes(store, args)
        sub = subs.add(
            address, _now(), status="pending" if args.pending else "active", source="cli", prefs=prefs
        )
        for key, value in votes:
            subs.vote(sub.id, key, value, _now())
        if args.pending:
            audience.send_confirmation(config, audience.tokens(config, store), sub, _now())
    what = "pending: a confirmation link was mailed to it" if args.pending else "active"
    print(f"{sub.address} added, {what} ({sub.preferences.cadence})")
    return 0


def cmd_list(args: argparse.Namespace, config: Config) -> int:
    import json

    with _open(config) as store:
        rows = _subs(store).all(args.status)
    if args.json:
        print(json.dumps([s.as_dict() for s in rows], indent=2, ensure_ascii=False))
        return 0
    for s in rows:
        print(f"{s.address}\t{s.status}\t{s.preferences.cadence}\t{s.source}")
    print(f"{len(rows)} subscriber{'' if len(rows) == 1 else 's'}", file=sys.stderr)
    return 0


def cmd_show(args: argparse.Namespace, config: Config) -> int:
    import json

    with _open(config) as store:
        subs = _subs(store)
        sub = _need(subs, args.address)
        votes = subs.votes(sub.id)
        titles = subs.titles([v.paper_key for v in votes]) if votes else {}
    data = sub.as_dict()
    data["votes"] = [
        {"paper": titles.get(v.paper_key, v.paper_key), "value": v.value, "at": v.at.isoformat()}
        for v in votes
    ]
    if args.json:
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return 0
    for key, value in data.items():
        if key == "votes":
            continue
        shown = ", ".join(value) if isinstance(value, list) else value
        print(f"{key}: {'' if shown is None else shown}")
    from digest.text import display  # as the pages show a title (JSON keeps the stored one)

    for v in data["votes"]:
        print(f"{'like' if v['value'] > 0 else 'dislike'}: {display(v['paper'])}")
    return 0


def cmd_set(args: argparse.Namespace, config: Config) -> int:
    with _open(config) as store:
        subs = _subs(store)
        sub = _need(subs, args.address)
        prefs = _prefs_from_args(args, sub.preferences)
        votes = _votes(store, args)
        unvotes = _unvotes(store, subs, sub, args, votes)
        if prefs != sub.preferences:
            subs.set_preferences(sub.id, prefs)
        for key, value in votes:
            subs.vote(sub.id, key, value, _now())
        for key, title, value in unvotes:
            # Withdrawn as the preferences page's undo does: from now on no ranking reads
            # it (the personal page and feeds, digest rank, the next digest's email); an
            # email made before keeps ranking by it when rebuilt (invariant 12).
            if value is not None and subs.unvote(sub.id, key, _now()):
                print(f"{sub.address}: {'like' if value > 0 else 'dislike'} of {title!r} withdrawn")
            else:  # already so: nothing to do, said in one line
                print(f"{sub.address}: no vote on {title!r} to withdraw")
        cancelled = 0
        if args.status and args.status != sub.status:
            cancelled = subs.set_status(sub.id, args.status, _now(), "set by the operator").cancelled
        if args.new_token:
            subs.new_token(sub.id)
        sub = _need(subs, args.address)
    extra = f"; {cancelled} pending deliveries cancelled" if cancelled else ""
    print(f"{sub.address}: {sub.status}, {sub.preferences.cadence}{extra}")
    return 0


def cmd_remove(args: argparse.Namespace, config: Config) -> int:
    with _open(config) as store:
        removed = _subs(store).remove(args.address, _now())
    if not removed:
        raise DigestError(f"{args.address} is not a subscriber; nothing removed")
    print(f"{args.address} removed")
    if args.address.strip().lower() in {a.lower() for a in config.email.to}:
        print(f"note: {args.address} is listed in email.to: the next run adds it again", file=sys.stderr)
    return 0


def _rows_from(path: Path, fmt: str) -> list[tuple[str, dict[str, Any]]]:
    """(where, fields) for each subscriber in the file: ``where`` is ``file:line`` or
    ``file[i]`` for messages."""
    import csv
    import io
    import json

    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise DigestError(f"cannot read {path}: {err}") from None
    if fmt == "json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise DigestError(f"{path}:{err.lineno}: not valid JSON ({err.msg})") from None
        if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
            raise DigestError(f"{path}: expected a JSON list of objects, as digest subscribers export writes")
        return [(f"{path}[{i}]", d) for i, d in enumerate(data)]
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "address" not in reader.fieldnames:
        raise DigestError(f"{path}:1: the header must name an address column (columns: {', '.join(FIELDS)})")
    return [(f"{path}:{reader.line_num}", {k: v for k, v in row.items() if k and v != ""}) for row in reader]


def _file_votes(row: dict[str, Any]) -> list[tuple[str, int, datetime | None]]:
    """(paper key, +1/-1, when cast or None) of a row's ``likes`` and ``dislikes`` (paper
    keys, or titles: both go through paper_key) and ``voted_at``; ValueError for a paper
    both liked and disliked, or a bad or unmatched ``voted_at`` entry."""
    from digest.identity import paper_key
    from digest.subscribers import split_terms

    out: dict[str, int] = {}
    for name, value in (("likes", 1), ("dislikes", -1)):
        for item in split_terms(name, row.get(name) or []):
            key = paper_key(item)
            if key and out.setdefault(key, value) != value:
                raise ValueError(f"{name}: {item!r} is both liked and disliked")
    when = _voted_at(row.get("voted_at") or {})
    stray = sorted(when.keys() - out.keys())
    if stray:
        raise ValueError(f"voted_at: {stray[0]!r} is neither in likes nor in dislikes")
    return [(key, value, when.get(key)) for key, value in out.items()]


def _voted_at(value: object) -> dict[str, datetime]:
    """paper key -> aware time of a ``voted_at`` cell (``key=time; …``) or JSON object."""
    from datetime import UTC, datetime

    from digest.identity import paper_key
    from digest.subscribers import split_terms

    if isinstance(value, dict):
        pairs = [(str(k), str(v)) for k, v in value.items()]
    else:
        cells = [c.rpartition("=") for c in split_terms("voted_at", value) if c.strip()]
        pairs = [(key, text) for key, _, text in cells]  # the last "=": a title may hold one
    out: dict[str, datetime] = {}
    for key, text in pairs:
        try:
            at = datetime.fromisoformat(text.strip())
        except ValueError:
            at = None
        if not key.strip() or at is None or at.tzinfo is None:
            raise ValueError(
                f"voted_at: {key.strip()}={text.strip()} is not paper=time with a UTC offset, "
                "as export writes (key=2026-11-22T07:00:00+00:00)"
            )
        out[paper_key(key)] = at.astimezone(UTC)
    return out


def cmd_import(args: argparse.Namespace, config: Config) -> int:
    from pathlib import Path

    from digest.subscribers import STATUSES, preferences_from

    path = Path(args.file)
    fmt = args.format or ("json" if path.suffix.lower() == ".json" else "csv")
    checked = []
    for where, row in _rows_from(path, fmt):
        try:
            address = checked_address(str(row.get("address", "")))
        except DigestError as err:
            raise DigestError(f"{where}: {err}") from None
        status = str(row.get("status") or "active")
        if status not in STATUSES:
            raise DigestError(f"{where}: status {status!r} is not one of {', '.join(STATUSES)}")
        try:
            prefs = preferences_from({k: row.get(k) for k in PREFS})
            votes = _file_votes(row)
        except ValueError as err:
            raise DigestError(f"{where}: {err}") from None
        checked.append((address, status, prefs, votes))
    new = 0
    with _open(config) as store:
        subs = _subs(store)
        now = _now()
        for address, status, prefs, votes in checked:
            new += subs.upsert(address, status, prefs, now, "import")
            sub = subs.get(address)
            for key, value, at in votes:
                subs.vote(sub.id, key, value, at or now)  # dated when cast, where the file says
    print(f"imported {len(checked)} subscribers from {path}: {new} new, {len(checked) - new} updated")
    return 0


def cmd_export(args: argparse.Namespace, config: Config) -> int:
    import csv
    import json

    with _open(config) as store:
        subs = _subs(store)
        rows, votes = subs.all(), subs.all_votes()
    data = []
    for s in rows:
        mine = votes.get(s.id, [])
        likes = [v.paper_key for v in mine if v.value > 0]
        dislikes = [v.paper_key for v in mine if v.value < 0]
        when = {v.paper_key: v.at.isoformat() for v in mine}
        data.append({**s.as_dict(), "likes": likes, "dislikes": dislikes, "voted_at": when})
    if args.format == "json":
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return 0
    out = csv.DictWriter(sys.stdout, fieldnames=FIELDS, lineterminator="\n", extrasaction="ignore")
    out.writeheader()
    for row in data:
        # No term holds ";" (refused at input; paper keys are letters, digits and spaces).
        row["voted_at"] = [f"{k}={t}" for k, t in row["voted_at"].items()]
        out.writerow({k: "; ".join(v) if isinstance(v, list) else v for k, v in row.items()})
    return 0
