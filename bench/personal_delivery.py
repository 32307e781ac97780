"""Personal delivery (issue 15): a digest sent to subscribers who each have a profile, so
every email is different (their picks, reasons, vote links), through ``deliver_pending``
to a local aiosmtpd sink, as a ratio to the bare smtplib floor: the same messages,
built beforehand, sent with smtplib alone over one connection (as the "delivery"
scenario does for the shared email).

The papers and profiles come from the ranking dev set (tests/data/rank): the history
(81 papers plus the judged papers not in the digest) is ingested first, the digest holds
``delivery_papers`` judged papers. Each subscriber takes one dev profile's interests,
three of its keywords, its exclusions and one to three liked history papers; the pages
are served, so each paper of each email carries its signed vote links. The measured time
includes everything a run does: reading the subscribers and votes, fitting the corpus,
ranking every reader, rendering, sending and marking each row sent.
"""

from __future__ import annotations

import random
import smtplib
import time
from pathlib import Path
from typing import Any

from bench.scenarios import NOW, Result, Sizes, _load, _ratio_ok, _Sink, free_port, write_config

HEADER = (
    "new\nGet trending papers in your email inbox!\nSubscribe\nDaily Papers\n"
    "byAK and the research community\nAug 8\n"
)
TARGET = 0.30


def _dump(path: Path, docs: Any) -> None:
    body = "".join(f"\n{' '.join(d.title.split())}\n\n{' '.join(d.abstract.split())}\n" for d in docs)
    path.write_text(HEADER + body, encoding="utf-8")


def personal_delivery(work: Path, sizes: Sizes) -> Result:
    from aiosmtpd.controller import Controller

    from bench.rank_eval import DEV, load
    from digest.identity import message_ids, paper_key
    from digest.ingest import ingest_inbox
    from digest.outbox import deliver_pending, personal_links
    from digest.personal_mail import PersonalMail
    from digest.store import Store
    from digest.store.subscribers import Subscribers
    from digest.subscribers import Preferences
    from digest.transports import make_transport

    n = sizes.delivery_recipients
    what = f"{n:,} subscribers with a profile, {sizes.delivery_papers} papers, local aiosmtpd sink"
    port = free_port()
    root = work / "personal-delivery"
    path = write_config(
        root, transport="smtp", to=[], smtp={"host": "127.0.0.1", "port": port, "security": "none"}
    )
    with path.open("a", encoding="utf-8") as f:
        f.write('[http]\nlisten = "127.0.0.1:8080"\n')  # served pages: vote and page links
    config = _load(path)
    dev = load(DEV)
    digest_docs = dev.papers[: sizes.delivery_papers]
    in_digest = {d.key for d in digest_docs}
    history = [d for d in dev.corpus if d.key not in in_digest]
    _dump(config.sources.inbox / "history.txt", history)
    store = Store.open(config.state.url)
    ingest_inbox(config, store, NOW)
    ids = message_ids("example.org", store.install_id())
    store.create_digest(now=NOW, day=NOW.date(), recipients=(), message_id=ids)
    subs = Subscribers(store)
    rnd = random.Random(15)
    recipients = []
    for i in range(n):
        p = dev.profiles[i % len(dev.profiles)]
        prefs = Preferences(
            interests=p["interests"],
            keywords=tuple(rnd.sample(p["keywords"], min(3, len(p["keywords"])))),
            exclude=tuple(p.get("exclude", ())),
        )
        sub = subs.add(f"reader{i:05d}@example.org", NOW, prefs=prefs)
        for title in rnd.sample([d.title for d in history], rnd.randint(1, 3)):
            subs.vote(sub.id, paper_key(title), 1, NOW)
        recipients.append(sub.address)
    later = NOW.replace(hour=NOW.hour + 1)
    _dump(config.sources.inbox / "digest.txt", digest_docs)
    ingest_inbox(config, store, later)
    digest = store.create_digest(now=later, day=later.date(), recipients=recipients, message_id=ids)
    assert digest is not None and digest.paper_count == len(digest_docs)

    sink = _Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        # The floor: the very messages the run sends, built first, sent by smtplib alone.
        links = personal_links(config, store)
        mail = PersonalMail(config, store)
        rows = store.deliveries("pending")
        built = []
        for r in rows:
            wire = mail.wire(digest, r.recipient, r.message_id, links(r.recipient))
            assert wire is not None
            built.append((r.recipient, wire.data))
        assert len({data for _, data in built}) == n  # every email is different
        started = time.perf_counter()
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            for recipient, data in built:
                smtp.sendmail(config.email.from_, [recipient], data)
        floor_s = time.perf_counter() - started
        del built, mail
        started = time.perf_counter()
        report = deliver_pending(config, store, make_transport(config), later)
        real_s = time.perf_counter() - started
    finally:
        controller.stop()
        store.close()
    if report.sent != n:
        raise RuntimeError(f"personal delivery bench: {report}")
    value, floor = n / real_s, n / floor_s
    ratio = value / floor
    return Result(
        "personal-delivery",
        what,
        value,
        floor,
        "msg/s",
        ratio,
        f">= {TARGET:.2f}",
        _ratio_ok(ratio, ">=", TARGET),
        {"seconds": real_s, "floor_seconds": floor_s},
    )
