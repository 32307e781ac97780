"""Weekly cadence over a simulated fortnight (issue 14): a fixed clock, three digests a
day, a service restart in the middle. Each weekly subscriber gets exactly one email on
their weekday holding exactly the papers first seen since their previous one; daily
subscribers get every digest as before. Rebuilding an email gives the same bytes."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest

from digest.config import Config
from digest.identity import message_id
from digest.outbox import personal_links, renderer, weekly_message
from digest.pipeline import run_once
from digest.render.email import Personal, to_bytes
from digest.store import Store
from digest.store import weekly as store_weekly
from digest.store.subscribers import Subscribers
from digest.subscribers import Preferences
from digest.transports import FileTransport
from tests.helpers import GOLDEN, MakeConfig, check_golden
from tests.subscribe_site import write_dump

START = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)  # a Sunday
HOURS = (8, 13, 18)
DAYS = 14


def sent_to(config: Config, address: str) -> list[EmailMessage]:
    out = []
    for path in sorted(config.email.outbox.rglob("*.eml")):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        if msg["To"] == address:
            out.append(msg)
    return sorted(out, key=lambda m: (m["Date"].datetime, str(m["Message-ID"])))


def titles_in(msg: EmailMessage, every: set[str]) -> set[str]:
    text = " ".join(str(msg.get_body(("plain",)).get_content()).split())  # type: ignore[union-attr]
    return {t for t in every if f"{t}." in text or f"{t} " in text}


@pytest.mark.slow
def test_a_fortnight_of_weekly_and_daily_subscribers(
    make_config: MakeConfig, inbox: Path, tmp_path: Path
) -> None:
    config = make_config(email={"to": []}, sources={"settle_seconds": 0})
    store = Store.open(config.state.url)
    subs = Subscribers(store)
    subs.add("mon@example.org", START, prefs=Preferences(cadence="weekly:mon"))
    subs.add("thu@example.org", START, prefs=Preferences(cadence="weekly:thu"))
    subs.add("daily@example.org", START)
    first_seen: dict[str, datetime] = {}
    n = 0
    for day in range(DAYS):
        if day == 7:  # the service restarts: a new process, a new Store on the same state
            store.close()
            store = Store.open(config.state.url)
        for hour in HOURS:
            now = START.replace(hour=hour) + timedelta(days=day)
            titles = [f"Paper {n + i:03d} of {now:%a %d %b %Hh}" for i in range(2)]
            n += 2
            write_dump(inbox, f"{n:03d}.txt", titles)
            first_seen.update(dict.fromkeys(titles, now))
            report = run_once(config, store, FileTransport(config.email.outbox), now)
            assert report.digest is not None and report.delivery.failed == report.delivery.pending == 0
            if day == 7 and hour == HOURS[0]:
                # Restarted, it runs the missed job again at once: nothing new, nothing twice.
                again = run_once(config, store, FileTransport(config.email.outbox), now)
                assert again.digest is None and again.delivery.sent == 0
    every = set(first_seen)

    daily = sent_to(config, "daily@example.org")
    assert len(daily) == DAYS * len(HOURS)  # every digest, as before
    for msg in daily:
        got = titles_in(msg, every)
        assert len(got) == 2 and {first_seen[t] for t in got} == {msg["Date"].datetime}

    for address, weekday in (("mon@example.org", 0), ("thu@example.org", 3)):
        mails = sent_to(config, address)
        days = [START + timedelta(days=d) for d in range(DAYS)]
        due = [d.replace(hour=HOURS[0]) for d in days if d.weekday() == weekday]
        assert [m["Date"].datetime for m in mails] == due, address  # one a week, on the day
        previous = START
        seen: set[str] = set()
        for msg, when in zip(mails, due, strict=True):
            got = titles_in(msg, every)
            expected = {t for t, at in first_seen.items() if previous < at <= when}
            assert got == expected, (address, when)
            assert not got & seen  # nothing twice
            seen |= got
            previous = when
        # Nothing skipped: what came after the last one waits for the next week.
        rest = {t for t, at in first_seen.items() if at > previous}
        assert seen | rest == every and rest

    # Invariant 12: rebuilding a subscriber's email for the same delivery gives the same bytes.
    rows = [r for r in store.deliveries("sent") if r.recipient == "mon@example.org"]
    spans = store_weekly.ranges(store, (r.id for r in rows))
    links = personal_links(config, store)
    for row in rows:
        digest = store.digest(row.digest_id)
        rebuilt = weekly_message(
            config, store, digest, spans[row.id], row.recipient, row.message_id, links(row.recipient)
        )
        path = FileTransport(config.email.outbox).path_for(rebuilt, row.recipient)
        assert rebuilt.data == path.read_bytes()
    daily_row = next(r for r in store.deliveries("sent") if r.recipient == "daily@example.org")
    build = renderer(config, store)
    one = to_bytes(build(store.digest(daily_row.digest_id), daily_row.recipient, daily_row.message_id))
    two = to_bytes(
        renderer(config, store)(store.digest(daily_row.digest_id), daily_row.recipient, daily_row.message_id)
    )
    assert one == two
    store.close()


def test_a_weekly_email_without_a_profile_matches_its_golden(make_config: MakeConfig, inbox: Path) -> None:
    """The shared weekly email, pinned byte for byte (golden made before weekly emails
    became personal for readers with a profile): papers of three digests, oldest first,
    each linked to its own digest's page; dated by the digest carrying the row; "view in
    a browser" and "On the web:" link the archive's index (the week spans three digests)."""
    config = make_config(email={"to": []}, sources={"settle_seconds": 0})
    store = Store.open(config.state.url)
    Subscribers(store).add("nora@example.org", START, prefs=Preferences(cadence="weekly:mon"))
    for n, hours in enumerate((2, 12, 26)):  # Sunday 08:00 and 18:00, Monday 08:00
        now = START + timedelta(hours=hours)
        write_dump(inbox, f"{n}.txt", [f"Paper {n}-{i} of {now:%a %Hh}" for i in range(2)])
        run_once(config, store, FileTransport(config.email.outbox), now)
    (row,) = [r for r in store.deliveries("sent") if r.recipient == "nora@example.org"]
    span = store_weekly.ranges(store, [row.id])[row.id]
    digest = store.digest(row.digest_id)
    links = Personal(
        (
            "https://example.org/digest/unsubscribe?t=fixed",
            "mailto:digest@example.org?subject=unsubscribe-fixed",
        ),
        "https://example.org/digest/preferences?t=fixed",
    )
    mid = message_id(digest.id, row.recipient, config.email.domain, "0123456789abcdef")
    wire = weekly_message(config, store, digest, span, row.recipient, mid, links)
    check_golden(wire.data, GOLDEN / "email" / "weekly.eml")
    store.close()
