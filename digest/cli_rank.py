"""``digest rank``: a subscriber's ranking of a digest, best first, with the reasons.

Registered by :func:`digest.cli.build_parser`; kept apart so the ranking imports
(scikit-learn) load only when the command runs.
"""

from __future__ import annotations

import argparse

# Spelled out to spare importing typing at start-up (see digest/cli.py).
TYPE_CHECKING = False

if TYPE_CHECKING:
    from datetime import datetime
    from typing import Any

    from digest.config import Config
    from digest.rank.model import Profile
    from digest.store import Store


def add_parser(add: Any) -> None:
    """Adds the ``rank`` command through ``add(name, **kwargs)`` (see digest.cli)."""
    rank = add(
        "rank",
        help="a subscriber's ranking of a digest, best first, with the reasons (why did I get this?)",
        description="Rank a digest's papers for ADDRESS (its interests, keywords, exclusions and "
        "votes), or for the profile given by the options (added to ADDRESS's when both are given).",
    )
    rank.add_argument("address", metavar="ADDRESS", nargs="?", help="a subscriber's address")
    rank.add_argument(
        "--digest", default="latest", metavar="SLUG", help="the digest: its slug (2026-11-22) or latest"
    )
    rank.add_argument("--json", action="store_true", help="print only a JSON list on stdout")
    rank.add_argument("--interests", metavar="TEXT", help="interests, in a sentence or two")
    rank.add_argument("--keyword", action="append", default=[], metavar="K", help="a keyword (repeatable)")
    rank.add_argument("--exclude", action="append", default=[], metavar="K", help="an excluded keyword")
    rank.add_argument(
        "--like", action="append", default=[], metavar="TITLE", help="a liked paper: title or arXiv id"
    )
    rank.add_argument("--dislike", action="append", default=[], metavar="TITLE", help="a disliked paper")
    rank.add_argument("--top", type=_at_least_one, metavar="N", help="show only the first N papers")
    rank.add_argument(
        "--as-emailed",
        action="store_true",
        help="rank by the votes in force at the digest's time, as its personal email did "
        "(default: the current votes, as the personal page and feeds)",
    )
    rank.set_defaults(func=cmd_rank)


def _at_least_one(text: str) -> int:
    """An argparse type: a whole number of 1 or more (``--top 0`` would print nothing)."""
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{number} is not 1 or more")
    return number


def subscriber_profile(store: Store, address: str, until: datetime | None = None) -> Profile:
    """The ranking profile of the subscriber ``address`` (their preferences and votes,
    those in force at ``until`` when given)."""
    from digest.errors import DigestError
    from digest.personal import profile_of
    from digest.store.subscribers import Subscribers

    subs = Subscribers(store)
    sub = subs.get(address)
    if sub is None:
        raise DigestError(f"no subscriber {address!r}; see `digest subscribers list`")
    return profile_of(sub.preferences, subs.votes(sub.id, until))


def _with_options(profile: Profile, args: argparse.Namespace) -> Profile:
    """``profile`` with the interests, keywords and exclusions of the options added, held
    to the rules of ``subscribers set`` (:func:`digest.subscribers.preferences_from`: the
    limits, a keyword also excluded): UsageError naming what breaks them. Unchanged
    when no such option is given, so a profile stored before a rule still ranks."""
    from dataclasses import replace

    from digest.errors import UsageError
    from digest.subscribers import preferences_from

    data: dict[str, object] = {}
    if args.interests is not None:
        data["interests"] = " ".join(x for x in (profile.interests, args.interests) if x)
    if args.keyword or args.exclude:
        data["keywords"] = [*profile.keywords, *args.keyword]
        data["exclude"] = [*profile.exclude, *args.exclude]
    if not data:
        return profile
    try:
        prefs = preferences_from(data)
    except ValueError as err:
        theirs = f" (with {args.address}'s own preferences)" if args.address else ""
        raise UsageError(f"{err}{theirs}") from None
    if "interests" in data:
        profile = replace(profile, interests=prefs.interests)
    if "keywords" in data:
        profile = replace(profile, keywords=prefs.keywords, exclude=prefs.exclude)
    return profile


def cmd_rank(args: argparse.Namespace, config: Config) -> int:
    import json
    from dataclasses import replace

    from digest.errors import DigestError
    from digest.personal import find_digest, rank_digest
    from digest.rank.model import Profile
    from digest.store import Store
    from digest.store.rank import resolve
    from digest.text import display  # titles as the pages show them (JSON keeps the stored one)

    with Store.open(config.state.url) as store:
        digest = find_digest(store, args.digest)
        until = digest.created if args.as_emailed else None
        profile = subscriber_profile(store, args.address, until) if args.address else Profile()
        likes = resolve(store, args.like)
        dislikes = resolve(store, args.dislike)
        profile = replace(
            _with_options(profile, args),
            likes=(*profile.likes, *likes),
            dislikes=(*profile.dislikes, *dislikes),
        )
        if not args.address and not (profile.personal or profile.exclude):
            raise DigestError("give ADDRESS or at least one of --interests, --keyword, --exclude, --like")
        picks = rank_digest(store, digest, profile, until=until)
    shown = picks if args.top is None else picks[: args.top]
    if args.json:
        print(json.dumps([p.as_json(n) for n, p in enumerate(shown, 1)], ensure_ascii=False, indent=1))
        return 0
    print(f"digest {digest.slug}: {len(picks)} papers" + ("" if profile.personal else ", listing order"))
    for n, p in enumerate(shown, 1):
        print(f"{n:>4}. {p.ranked.score:8.3f}  {display(p.paper.title)}")
        for reason in p.ranked.reasons:
            print(f"{'':16}{reason}")
    return 0
