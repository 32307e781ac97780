"""The render scenario: feeds, an archive page and an email against a bare template."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2

from bench import gen
from bench.common import NOW, Result, Sizes, _load, _ratio_ok, write_config

# --- render ------------------------------------------------------------------------------

_BARE = jinja2.Environment(autoescape=True).from_string(
    "<html><body><h1>{{ title }}</h1>{% for t, a in papers %}<article><h2>{{ t }}</h2><p>{{ a }}</p>"
    "</article>{% endfor %}</body></html>"
)


def sample_digest(n: int) -> tuple[Any, list[Any]]:
    """A digest of ``n`` generated papers and their stored form."""
    from digest.identity import paper_key
    from digest.model import Digest, Paper, StoredPaper
    from digest.text import links

    stored = []
    for i in range(n):
        p = gen.paper(3, i)
        paper = Paper(key=paper_key(p.title), title=p.title, abstract=p.abstract, links=links(p.abstract))
        stored.append(StoredPaper(seq=i + 1, paper=paper, first_seen=NOW, dump_name="bench.txt"))
    digest = Digest(id=1, slug="2026-11-22", created=NOW, first_seq=1, last_seq=n, paper_count=n)
    return digest, stored


def _feed_formats() -> dict[str, Callable[..., bytes]]:
    """The feed renderers this version has (RSS at least; Atom and JSON Feed when present)."""
    from digest.render import feed

    found = {}
    for label, names in (
        ("rss", ("rss",)),
        ("atom", ("atom",)),
        ("json", ("json_feed", "jsonfeed", "json")),
    ):
        for name in names:
            fn = getattr(feed, name, None)
            if callable(fn):
                found[label] = fn
                break
    return found


def render(work: Path, sizes: Sizes) -> list[Result]:
    from digest.render import archive, email, feed
    from digest.render.view import digest_view, paper_view

    config = _load(write_config(work / "render"))
    base = config.digest.base_url
    digest, stored = sample_digest(sizes.render_papers)
    dview = digest_view(digest, base, config.tz)
    views = [paper_view(p, digest.slug, base) for p in stored]
    items = [(v, dview) for v in views[: sizes.feed_items]]
    bare_all = [(v.title, v.abstract) for v in views]
    bare_feed = bare_all[: sizes.feed_items]
    from bench.repeat import paired  # imports this module: not at the top

    def floor_feed() -> object:
        return _BARE.render(title="t", papers=bare_feed)

    def floor_all() -> object:
        return _BARE.render(title="t", papers=bare_all)

    channel = feed.Channel(
        title="Bench Digest",
        description="bench",
        base_url=base,
        language="en",
        ttl=60,
        updated=NOW,
    )
    from digest.outbox import email_settings

    settings = email_settings(config)
    site = archive.Site(
        title="Bench Digest", description="bench", language="en", base_url=config.digest.base_url
    )
    cases: list[tuple[str, str, Callable[[], object], Callable[[], object]]] = [
        (f"feed-{label}", f"{len(items)} items", lambda fn=fn: fn(channel, items), floor_feed)  # type: ignore[misc]
        for label, fn in _feed_formats().items()
    ]
    cases.append(
        (
            "archive",
            f"{len(views)}-paper digest page",
            lambda: archive.digest_pages(site, dview, views, page_size=len(views))[0][1],
            floor_all,
        )
    )
    cases.append(
        (
            "email",
            f"{len(views)}-paper message",
            lambda: email.to_bytes(
                email.message(settings, dview, views, "reader@example.org", "<d-1.x@example.org>")
            ),
            floor_all,
        )
    )
    out = []
    for label, what, fn, floor_fn in cases:
        fn()  # templates compiled, caches warm: the steady state a service sees
        # Each side over loops of >= render_min_seconds of CPU time (one sub-millisecond
        # call moved by half its size between runs), the two sides timed in turns.
        t, floor, how = paired(fn, floor_fn, sizes.render_min_seconds, sizes.render_repeats)
        ratio = t / floor
        detail = {"timing": how}
        out.append(
            Result(f"render {label}", what, t, floor, "s", ratio, "< 10", _ratio_ok(ratio, "<", 10.0), detail)
        )
    return out
