"""Edge: each reader's own page and feeds (issue 15), published beside the site.

Who gets one: every subscriber who receives mail (active, and still in ``email.to`` when
the config put them there) and has a profile: interests, keywords, exclusions or a vote.
Someone with none of those would get the site's own feed in listing order, so they get
no folder; their first vote (or interest) makes one on the next run.

Where: ``<feed.output_dir>/for/<32 hex>/`` (:meth:`digest.tokens.Tokens.personal_dir`, a
keyed hash of their secret: not derivable from the address, and moved when the secret is
renewed), holding ``index.html``, ``feed.xml``, ``atom.xml`` and ``feed.json``, the
site's names. What: the papers of the digests of ``feed.window`` back from the newest
digest (at least the newest digest; at most ``feed.max_items_hard`` items): each
digest's top picks for the reader, its first ``max_papers`` papers (their "top picks"
number, 10 unless they chose another) in the reader's order
(:class:`digest.personal.DigestRanking`, the order ``digest rank`` and their email give),
papers matching an excluded keyword left out. The votes are the current ones (a vote
shows on the next run), where their email ranks by the votes in force at its digest's
time.
The whole digest stays on the site's feeds and archive; a reader's feed is what they
would read first, and its cost per reader is bounded by their number, not by the
digest's size. Each item carries its reasons and,
when the built-in pages are served (``http.listen``), the more/less-like-this links
(``/vote``).

When: every run and ``digest publish``, under the run lock, after the site. A folder is
rewritten only when what it is made of changed (its digests and their corpora, which a
vote by anyone on a paper older than a corpus (and no newer than its digest) widens,
the reader's profile and secret,
the config it shows): a digest of those inputs is kept in ``<folder>/.inputs``,
written last, so a run killed midway redoes the folder. Files are written atomically,
``WRITE_CHUNK`` folders at a time (:func:`digest.atomic.write_folders`: their fsyncs
issued together, one per folder for the renames).
Folders of subscribers who left, lost their profile or had their secret renewed are
removed (renamed to a hidden name first, so nobody is served half a folder).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from digest import audience, identity
from digest.atomic import write_folders
from digest.config import Config
from digest.errors import PublishError
from digest.model import Digest
from digest.personal import DigestRanking, Pick, profile_of, top_picks
from digest.render import feed, personal
from digest.render.view import DigestView, PaperView, digest_view, paper_view
from digest.site import site_of
from digest.store import Store
from digest.store.subscribers import Subscribers
from digest.subscribers import Subscriber
from digest.tokens import Tokens, fingerprint, link, vote_urls

if TYPE_CHECKING:
    from digest.rank.model import Profile

log = logging.getLogger(__name__)

ROOT = "for"
INPUTS_FILE = ".inputs"
# Bump when the page or the feeds change shape: every folder is then rewritten once.
VERSION = 1
BATCH = 200  # readers ranked together (one fit per digest is shared by all batches)
WRITE_CHUNK = 25  # readers' folders written together (~0.6 MB each with 4 digests of 10 picks)
_FOLDER = re.compile(r"^[0-9a-f]{32}$")
_GONE = ".gone-"


@dataclass(frozen=True, slots=True)
class Reader:
    subscriber: Subscriber
    folder: str  # "for/<hex>", relative to feed.output_dir
    profile: Profile
    inputs: str  # the digest of what the folder is made of


def _has_profile(sub: Subscriber, votes: int) -> bool:
    p = sub.preferences
    return bool(p.interests.strip() or p.keywords or p.exclude or votes)


def _window(config: Config, store: Store, newest: Digest) -> list[Digest]:
    """The digests of ``feed.window`` back from the newest (newest first), at least the
    newest, no further back than ``feed.max_items_hard`` papers reach."""
    found = store.digests_between(newest.created - timedelta(seconds=config.feed.window)) or [newest]
    chosen: list[Digest] = []
    total = 0
    for d in found:
        if chosen and total + d.paper_count > config.feed.max_items_hard:
            break
        chosen.append(d)
        total += d.paper_count
    return chosen


def _inputs(config: Config, reader: tuple[Subscriber, str, Profile], window: Sequence[DigestRanking]) -> str:
    sub, folder, profile = reader
    c = config
    facts = {
        "version": VERSION,
        "folder": folder,
        "subscriber": [sub.id, fingerprint(sub.token)],
        "profile": [profile.interests, profile.keywords, profile.exclude, profile.likes, profile.dislikes],
        "top": sub.preferences.max_papers,
        "digests": [
            [d.id, d.slug, d.first_seq, d.last_seq, d.paper_count, d.created.isoformat(), r.corpus_hash()]
            for r in window
            for d in (r.digest,)
        ],
        "config": [
            c.digest.base_url,
            c.digest.title,
            c.digest.description,
            c.digest.language,
            c.feed.ttl,
            c.feed.max_items_hard,
            str(c.tz),
            c.archive.page_size,
            audience.served(c),
        ],
    }
    return hashlib.sha256(json.dumps(facts, ensure_ascii=False, sort_keys=True).encode()).hexdigest()


def readers(config: Config, store: Store, tokens: Tokens, window: Sequence[DigestRanking]) -> list[Reader]:
    """Who gets a folder (see the module docstring), by address."""
    subs = Subscribers(store)
    cast = subs.all_votes()
    out = []
    for sub in subs.recipients(config.email.to):
        votes = cast.get(sub.id, [])
        if not _has_profile(sub, len(votes)):
            continue
        folder = tokens.personal_dir(sub)
        profile = profile_of(sub.preferences, votes)
        out.append(Reader(sub, folder, profile, _inputs(config, (sub, folder, profile), window)))
    return out


def _write(folders: list[tuple[Path, list[tuple[str, bytes]]]]) -> list[Path]:
    """Writes the folders (each file atomically, ``.inputs`` last in each: see
    :func:`digest.atomic.write_folders`); returns the files written but ``.inputs``."""
    try:
        write_folders(folders)
    except OSError as err:
        where = err.filename or (folders[0][0] if folders else "")
        raise PublishError(
            f"cannot write {where}: {err.strerror or err}; check that feed.output_dir is writable"
        ) from err
    return [folder / name for folder, files in folders for name, _ in files[:-1]]


def _current(output_dir: Path, reader: Reader) -> bool:
    try:
        return (output_dir / reader.folder / INPUTS_FILE).read_text(encoding="ascii") == reader.inputs
    except (OSError, UnicodeDecodeError):
        return False


def publish_personal(
    config: Config, store: Store, output_dir: Path, *, everything: bool = False
) -> list[Path]:
    """Brings every reader's folder up to date (all of them with ``everything``) and
    removes the folders nobody owns any more. Returns the files written."""
    latest = store.digests(limit=1)
    tokens = audience.tokens(config, store)
    # The current votes: a vote shows on the next run (the email ranks as of its digest).
    rankings = [DigestRanking(store, d) for d in _window(config, store, latest[0])] if latest else []
    found = readers(config, store, tokens, rankings) if latest else []
    written: list[Path] = []
    todo = [r for r in found if everything or not _current(output_dir, r)]
    if todo:
        window = [r.digest for r in rankings]
        views = _Views(config)
        for start in range(0, len(todo), BATCH):
            batch = todo[start : start + BATCH]
            explain = max(x.subscriber.preferences.max_papers for x in batch)  # reasons for the top only
            ranked = [r.rank([x.profile for x in batch], explain) for r in rankings]  # [digest][reader]
            for at in range(0, len(batch), WRITE_CHUNK):
                folders = []
                for i in range(at, min(at + WRITE_CHUNK, len(batch))):
                    picks = [(rankings[k].digest, ranked[k][i]) for k in range(len(window))]
                    folders.append(_folder(config, tokens, output_dir, batch[i], picks, views))
                written.extend(_write(folders))
        log.info("personal pages: %d of %d readers' folders rewritten", len(todo), len(found))
    _remove_others(output_dir, {r.folder.rpartition("/")[2] for r in found})
    return written


class _Views:
    """Paper and digest views, made once per run whoever reads them (a paper's view,
    with its LaTeX turned into text, is the same in every reader's feed)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._papers: dict[int, PaperView] = {}
        self._digests: dict[int, DigestView] = {}

    def paper(self, pick: Pick, digest: Digest) -> PaperView:
        seq = pick.paper.seq
        if seq not in self._papers:
            page = identity.page_of(seq, digest.first_seq, self.config.archive.page_size)
            self._papers[seq] = paper_view(pick.paper, digest.slug, self.config.digest.base_url, page)
        return self._papers[seq]

    def digest(self, digest: Digest) -> DigestView:
        if digest.id not in self._digests:
            c = self.config
            self._digests[digest.id] = digest_view(digest, c.digest.base_url, c.tz, c.archive.page_size)
        return self._digests[digest.id]


def _groups(
    config: Config,
    tokens: Tokens,
    reader: Reader,
    picks: Sequence[tuple[Digest, list[Pick]]],
    views: _Views,
) -> list[personal.Group]:
    base = config.digest.base_url
    served = audience.served(config)
    room = config.feed.max_items_hard
    groups = []
    for digest, order in picks:
        kept = top_picks(order, reader.subscriber.preferences.max_papers)[0]
        kept = kept[: max(room, 0)]
        room -= len(kept)
        entries = []
        for pick in kept:
            more, less = (
                vote_urls(tokens, reader.subscriber, pick.paper.key, base_url=base)
                if served
                else (None, None)
            )
            entries.append(
                personal.Entry(views.paper(pick, digest), feed.Note(pick.ranked.reasons, more, less))
            )
        groups.append(personal.Group(views.digest(digest), tuple(entries), len(order)))
    return groups


def _folder(
    config: Config,
    tokens: Tokens,
    output_dir: Path,
    reader: Reader,
    picks: Sequence[tuple[Digest, list[Pick]]],
    views: _Views,
) -> tuple[Path, list[tuple[str, bytes]]]:
    """The reader's folder and its files, ``.inputs`` last."""
    groups = _groups(config, tokens, reader, picks, views)
    base = config.digest.base_url
    folder_url = identity.site_url(base, reader.folder + "/")
    channel = feed.Channel(
        title=f"{config.digest.title}: your picks",
        description=config.digest.description or config.digest.title,
        base_url=folder_url,
        language=config.digest.language,
        ttl=config.feed.ttl,
        updated=picks[0][0].created,  # the newest digest's time
    )
    site = site_of(config)
    prefs = (
        link(base, "preferences", tokens.make("preferences", reader.subscriber))
        if audience.served(config)
        else None
    )
    files = dict(personal.feeds(channel, groups))
    files[personal.PAGE_FILE] = personal.page(site, reader.folder, groups, preferences_url=prefs)
    inputs = (INPUTS_FILE, reader.inputs.encode("ascii"))  # last: the folder is whole
    return output_dir / reader.folder, [*((name, files[name]) for name in personal.FILES), inputs]


def _children(root: Path) -> Iterator[Path]:
    try:
        yield from sorted(root.iterdir())
    except FileNotFoundError:
        return


def _remove_others(output_dir: Path, keep: set[str]) -> None:
    """Removes the readers' folders not in ``keep`` (and what an interrupted removal left)."""
    root = output_dir / ROOT
    for child in _children(root):
        if child.is_symlink() or not child.is_dir():
            continue
        if child.name.startswith(_GONE):
            shutil.rmtree(child, ignore_errors=True)
        elif _FOLDER.match(child.name) and child.name not in keep:
            gone = root / (_GONE + child.name)
            try:
                os.rename(child, gone)  # at once: nothing is served from it any more
            except OSError as err:
                raise PublishError(f"cannot remove {child}: {err.strerror or err}") from err
            shutil.rmtree(gone, ignore_errors=True)
            log.info("removed a personal folder nobody owns any more")
