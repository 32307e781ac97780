"""``digest preview --to ADDRESS``: the email that subscriber gets for the chosen digest,
built by ``outbox.row_renderer``, so it is the very bytes the run then sends them (their
own email with a profile; for a weekly subscriber their weekly email, whatever the day);
an unknown address is one line and exit 2."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from digest.cli import main
from digest.config import Config
from digest.ingest import ingest_inbox
from digest.pipeline import run_once
from digest.preview import Rendered, preview
from digest.store import Store
from digest.store.subscribers import Subscribers
from digest.subscribers import Preferences
from digest.transports import FileTransport
from tests.helpers import DUMP_000, DUMP_002, NOW, MakeConfig, drop

ANN = "ann@example.org"  # daily, with a profile: her own email
BOB = "bob@example.org"  # daily, no profile: the shared email
WES = "wes@example.org"  # weekly on Mondays, with a profile
MONDAY = NOW + timedelta(days=1)  # NOW is a Sunday
PICKS = re.compile(r"\d+ picks? for you")  # how many: the ranking's business


@pytest.fixture
def config(make_config: MakeConfig, inbox: Path, store: Store) -> Config:
    """Three subscribers; Sunday's run mailed digest 1 (81 papers) to the daily two."""
    cfg = make_config(email={"to": []})
    subs = Subscribers(store)
    before = NOW - timedelta(hours=1)
    subs.add(ANN, before, prefs=Preferences(interests="video inpainting and removing objects from clips"))
    subs.add(BOB, before)
    subs.add(WES, before, prefs=Preferences(cadence="weekly:mon", keywords=("video",)))
    drop(inbox, DUMP_000)
    report = run_once(cfg, store, FileTransport(cfg.email.outbox), NOW)
    assert report.delivery.sent == 2
    return cfg


def waiting(config: Config, store: Store) -> None:
    """The second dump ingested (216 new papers), as a service poll does: the next digest's."""
    drop(config.sources.inbox, DUMP_002)
    assert ingest_inbox(config, store, MONDAY).papers_new == 216


def sent_bytes(config: Config, shown: Rendered) -> bytes:
    """What the file transport wrote for the message ``shown`` previews."""
    return FileTransport(config.email.outbox).path_for(shown.wire, shown.recipient).read_bytes()


def test_the_preview_for_each_subscriber_is_what_the_next_run_sends_them(
    config: Config, store: Store
) -> None:
    waiting(config, store)
    shown = {a: preview(config, store, MONDAY, to=a) for a in (ANN, BOB, WES.upper())}
    assert len(store.digests()) == 1 and store.deliveries("pending") == []  # changed nothing
    ann, bob, wes = shown[ANN], shown[BOB], shown[WES.upper()]
    assert ann is not None and bob is not None and wes is not None
    assert (ann.what, ann.recipient) == ("the next digest", ANN)
    assert PICKS.fullmatch(ann.message["Subject"].removesuffix(" · 216 new papers · 23 Nov 2026"))
    assert bob.message["Subject"] == "216 new papers · 23 Nov 2026"
    # Wes's week: both digests (he was mailed neither), ranked as one listing.
    assert wes.recipient == WES and PICKS.fullmatch(
        wes.message["Subject"].removesuffix(" · 297 new papers · 23 Nov 2026")
    )

    report = run_once(config, store, FileTransport(config.email.outbox), MONDAY)
    assert report.delivery.sent == 3
    for rendered in (ann, bob, wes):
        assert rendered.wire.data == sent_bytes(config, rendered), rendered.recipient


def test_a_weekly_subscriber_previews_their_weekly_email_on_any_day(config: Config, store: Store) -> None:
    """Sunday, nothing waiting: the latest digest. Wes's row of it would be his weekly
    email of its 81 papers; Bob's is the one he was sent."""
    wes = preview(config, store, NOW + timedelta(hours=1), to=WES)
    assert wes is not None and wes.what == "the weekly email (weekly:mon) that the latest digest carries"
    assert PICKS.fullmatch(wes.message["Subject"].removesuffix(" · 81 new papers · 22 Nov 2026"))
    assert "view in a browser" in wes.html and 'href="https://example.org/digest/"' in wes.html
    bob = preview(config, store, NOW + timedelta(hours=1), to=BOB)
    assert bob is not None and bob.wire.data == sent_bytes(config, bob)  # rebuilt as sent
    store.suppress(BOB, NOW + timedelta(hours=1))
    gone = preview(config, store, NOW + timedelta(hours=1), to=BOB)
    assert (
        gone is not None
        and gone.what == "the latest digest (they are unsubscribed: no email goes to them now)"
    )


def test_an_unknown_address_is_one_line_and_exit_2(
    config: Config, store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "preview"
    assert main(["-c", str(config.path), "preview", "--to", "nobody@example.org", "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        "digest: error: 'nobody@example.org' is not a subscriber; `digest subscribers list` shows who is"
    ]
    assert not out.exists()
    waiting(config, store)
    assert main(["-c", str(config.path), "preview", "--to", WES, "--out", str(out)]) == 0
    captured = capsys.readouterr()
    head, _, subject = captured.err.partition(": ")
    assert head == f"# the weekly email (weekly:mon) that the next digest carries for {WES}"
    assert " picks for you · 297 new papers · " in subject
    assert [Path(p).parent for p in captured.out.split()] == [out, out]
