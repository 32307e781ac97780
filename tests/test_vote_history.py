"""Votes are a history (digest/store/votes.py): a like flipped to a dislike, or withdrawn,
after a digest's time leaves the votes in force at that time as they were, so the
digest's personal email is rebuilt to the same bytes and ``digest rank --as-emailed``
ranks as the email did (docs/DESIGN.md, invariant 12), while the current ranking (the
personal page and feeds, ``digest rank``) follows the change."""

from __future__ import annotations

import email
import email.policy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from html import unescape
from pathlib import Path

import pytest
import sqlalchemy as sa

from digest.cli import main
from digest.config import Config
from digest.identity import paper_key
from digest.model import Delivery
from digest.outbox import row_renderer
from digest.pipeline import run_once
from digest.store import Store
from digest.store.rank import voted_keys, votes_as_of
from digest.store.subscribers import Subscribers
from digest.store.votes import vote_events as ev
from digest.subscribers import Vote
from digest.transports import FileTransport
from tests.helpers import DUMP_000, DUMP_002, NOW, MakeConfig, drop

# Two papers of the first sample dump (digest 1), liked before digest 2 is made.
A = "Wild-GS: Real-Time Novel View Synthesis from Unconstrained Photo Collections"
B = "STREAM: Spatio-TempoRal Evaluation and Analysis Metric for Video Generative Models"
KA, KB = paper_key(A), paper_key(B)
CAST = NOW + timedelta(minutes=10)
MADE = NOW + timedelta(hours=1)  # digest 2's time: what its email ranks at
LATER = NOW + timedelta(hours=2)
_H2 = re.compile(r'<h2[^>]*><a href="[^"]+"[^>]*>([^<]+)</a></h2>')


# --- the store --------------------------------------------------------------------------


def test_the_votes_in_force_at_a_moment_outlive_a_later_flip_and_withdrawal(store: Store) -> None:
    subs = Subscribers(store)
    ann = subs.add("ann@example.org", NOW)
    subs.vote(ann.id, "a", 1, NOW)
    subs.vote(ann.id, "b", 1, NOW)
    subs.vote(ann.id, "c", -1, LATER)
    subs.vote(ann.id, "a", -1, LATER)  # flipped
    assert subs.unvote(ann.id, "b", LATER)  # withdrawn
    at_made = [Vote(ann.id, "a", 1, NOW), Vote(ann.id, "b", 1, NOW)]
    assert votes_as_of(store, MADE) == {ann.id: at_made}
    assert subs.votes(ann.id, MADE) == at_made
    assert voted_keys(store, MADE) == ["a", "b"]
    now = [Vote(ann.id, "a", -1, LATER), Vote(ann.id, "c", -1, LATER)]
    assert subs.votes(ann.id) == now and subs.all_votes() == {ann.id: now}
    assert votes_as_of(store, LATER) == {ann.id: now}
    assert voted_keys(store) == ["a", "c"]
    # Withdrawn, then cast again: in force from the new vote on.
    subs.vote(ann.id, "b", -1, LATER + timedelta(hours=1))
    assert [v.paper_key for v in subs.votes(ann.id, LATER)] == ["a", "c"]
    assert subs.votes(ann.id)[0] == Vote(ann.id, "b", -1, LATER + timedelta(hours=1))


def test_an_unvote_with_nothing_to_withdraw_records_nothing(store: Store) -> None:
    subs = Subscribers(store)
    ann = subs.add("ann@example.org", NOW)
    subs.vote(ann.id, "a", 1, NOW)
    assert subs.unvote(ann.id, "a", MADE)
    assert not subs.unvote(ann.id, "a", LATER) and not subs.unvote(ann.id, "never", LATER)
    assert _events(store) == [(ann.id, "a", 1), (ann.id, "a", 0)]


def test_a_vote_imported_with_an_older_time_replaces_the_one_there(store: Store) -> None:
    """As when a vote was one row: the last recorded vote is the current one, dated as
    the file says."""
    subs = Subscribers(store)
    ann = subs.add("ann@example.org", NOW)
    subs.vote(ann.id, "a", 1, LATER)
    subs.vote(ann.id, "a", -1, NOW)
    assert subs.votes(ann.id) == [Vote(ann.id, "a", -1, NOW)]
    assert votes_as_of(store, MADE) == {ann.id: [Vote(ann.id, "a", -1, NOW)]}


def test_removing_a_subscriber_removes_their_vote_history(store: Store) -> None:
    subs = Subscribers(store)
    ann, bob = subs.add("ann@example.org", NOW), subs.add("bob@example.org", NOW)
    for sub in (ann, bob):
        subs.vote(sub.id, "a", 1, NOW)
        subs.vote(sub.id, "a", -1, LATER)
    assert subs.remove("ann@example.org", LATER)
    assert _events(store) == [(bob.id, "a", 1), (bob.id, "a", -1)]
    assert set(votes_as_of(store, MADE)) == {bob.id}


def _events(store: Store) -> list[tuple[int, str, int]]:
    """Every vote event recorded: subscriber, paper, value, in the order recorded."""
    with store.transaction(read=True) as conn:
        query = sa.select(ev.c.subscriber_id, ev.c.paper_key, ev.c.value).order_by(ev.c.id)
        return [(r.subscriber_id, r.paper_key, r.value) for r in conn.execute(query)]


# --- a personal email rebuilt after the votes changed --------------------------------------


@dataclass
class Mailed:
    """Digest 2, emailed to Ann, who liked A and B before it was made."""

    config: Config
    store: Store
    row: Delivery
    sent: bytes  # the .eml the file transport wrote

    def rebuilt(self) -> bytes:
        return row_renderer(self.config, self.store)(self.row, None).data

    def ann(self) -> int:
        sub = Subscribers(self.store).get("ann@example.org")
        assert sub is not None
        return sub.id


@pytest.fixture
def mailed(make_config: MakeConfig, inbox: Path) -> Iterator[Mailed]:
    config = make_config(http={"listen": "127.0.0.1:8080"}, email={"to": []})  # vote links: pages served
    store = Store.open(config.state.url)
    drop(inbox, DUMP_000)
    run_once(config, store, FileTransport(config.email.outbox), NOW)
    subs = Subscribers(store)
    ann = subs.add("ann@example.org", NOW + timedelta(minutes=5))
    subs.vote(ann.id, KA, 1, CAST)
    subs.vote(ann.id, KB, 1, CAST)
    drop(inbox, DUMP_002)
    report = run_once(config, store, FileTransport(config.email.outbox), MADE)
    assert report.digest is not None and report.delivery.sent == 1
    (row,) = store.deliveries("sent")
    (path,) = [p for p in config.email.outbox.rglob("*.eml") if b"ann@example.org" in p.read_bytes()]
    world = Mailed(config, store, row, path.read_bytes())
    assert _crlf(world.rebuilt()) == _crlf(world.sent)
    assert len(emailed_picks(world.sent)) == 10  # a personal email: ranked by the likes
    yield world
    store.close()


def rank(config: Config, capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, object]]:
    capsys.readouterr()
    assert main(["-c", str(config.path), "rank", "--json", *args]) == 0
    rows: list[dict[str, object]] = json.loads(capsys.readouterr().out)
    return rows


def emailed_picks(data: bytes) -> list[str]:
    """The titles of an email's top picks, in its order."""
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    html = str(msg.get_body(("html",)).get_content())  # type: ignore[union-attr]
    return [unescape(t) for t in _H2.findall(html)]


@pytest.mark.slow
def test_a_like_flipped_to_a_dislike_after_the_digest_rebuilds_the_same_email(
    mailed: Mailed, capsys: pytest.CaptureFixture[str]
) -> None:
    config, before = mailed.config, mailed.rebuilt()
    as_liked = rank(config, capsys, "--like", A, "--like", B)
    assert rank(config, capsys, "ann@example.org") == as_liked
    Subscribers(mailed.store).vote(mailed.ann(), KA, -1, LATER)

    assert mailed.rebuilt() == before
    assert rank(config, capsys, "ann@example.org", "--as-emailed") == as_liked
    # The current ranking (digest rank, the personal page and feeds) follows the flip.
    flipped = rank(config, capsys, "--like", B, "--dislike", A)
    assert flipped != as_liked
    assert rank(config, capsys, "ann@example.org") == flipped


@pytest.mark.slow
def test_a_vote_withdrawn_after_the_digest_rebuilds_the_same_email(
    mailed: Mailed, capsys: pytest.CaptureFixture[str]
) -> None:
    config, before = mailed.config, mailed.rebuilt()
    as_liked = rank(config, capsys, "--like", A, "--like", B)
    assert Subscribers(mailed.store).unvote(mailed.ann(), KB, LATER)

    assert mailed.rebuilt() == before
    emailed = rank(config, capsys, "ann@example.org", "--as-emailed")
    assert emailed == as_liked
    assert emailed_picks(mailed.sent) == [r["title"] for r in emailed[:10]]
    # The current ranking no longer reads the withdrawn like.
    withdrawn = rank(config, capsys, "--like", A)
    assert withdrawn != as_liked
    assert rank(config, capsys, "ann@example.org") == withdrawn
    assert not any(f"similar to: {B}" in r["reasons"] for r in withdrawn)  # type: ignore[operator]


def _crlf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n")
