"""A crash trial's checks: after recovery, the state and every output (site, feeds,
outbox, SMTP sink) against what was dropped (docs/DESIGN.md invariants 1-6)."""

from __future__ import annotations

import email
import email.policy
import hashlib
import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import feedparser

from crash.world import DOMAIN, RECIPIENTS, Dump, Install, Row
from digest.errors import DumpError
from digest.identity import digest_path, message_id, paper_anchor, paper_guid
from digest.parse import parse_dump
from digest.render import feed
from digest.transports import FileTransport


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def temp_leftovers(folder: Path) -> list[Path]:
    """write_atomic's temp files (``.<name>.<random>.tmp``) anywhere under ``folder``."""
    if not folder.exists():
        return []
    return sorted(p for p in folder.rglob(".*.tmp"))


def outbox_snapshot(install: Install) -> dict[str, str]:
    if not install.outbox.exists():
        return {}
    return {p.name: _sha(p.read_bytes()) for p in install.outbox.glob("*.eml")}


def pending_rows(install: Install) -> list[tuple[str, str]]:
    """(recipient, Message-ID) of every pending delivery."""
    if not install.db.exists():
        return []
    with sqlite3.connect(f"file:{install.db}?mode=ro", uri=True) as db:
        try:
            return [
                (r, m)
                for r, m in db.execute(
                    "SELECT recipient, message_id FROM deliveries WHERE status = 'pending'"
                )
            ]
        except sqlite3.OperationalError:
            return []


def pending_with_file(install: Install) -> dict[str, str]:
    """Pending deliveries whose ``.eml`` already exists: the accept→mark_sent window.
    file name → Message-ID."""
    found: dict[str, str] = {}
    transport = FileTransport(install.outbox)
    for recipient, mid in pending_rows(install):
        msg = email.message.EmailMessage()
        msg["Message-ID"] = mid
        path = transport.path_for(msg, recipient)
        if path.exists():
            found[path.name] = mid
    return found


def progress(install: Install) -> tuple[int, ...]:
    """(dumps, papers, digests, published digests, sent deliveries, pending deliveries)."""
    if not install.db.exists():
        return (0, 0, 0, 0, 0, 0)
    with sqlite3.connect(f"file:{install.db}?mode=ro", uri=True) as db:
        try:
            return tuple(
                db.execute(q).fetchone()[0]
                for q in (
                    "SELECT count(*) FROM dumps",
                    "SELECT count(*) FROM papers",
                    "SELECT count(*) FROM digests",
                    "SELECT count(*) FROM digests WHERE published_at IS NOT NULL",
                    "SELECT count(*) FROM deliveries WHERE status = 'sent'",
                    "SELECT count(*) FROM deliveries WHERE status = 'pending'",
                )
            )
        except sqlite3.OperationalError:
            return (0, 0, 0, 0, 0, 0)


def stage(before: tuple[int, ...], after: tuple[int, ...], window: bool) -> str:
    """Where a killed run died, judged from what it committed."""
    dumps, _, digests, published, sent, _ = (a - b for a, b in zip(after, before, strict=True))
    if window:
        return "accept→mark_sent"
    if sent:
        return "delivering" if after[5] else "after delivery"
    if published:
        return "published, before delivery"
    if digests or after[2] > after[3]:
        return "digest created, not published"
    if dumps:
        return "ingest (dumps committed, no digest yet)"
    return "start-up (nothing committed)"


def check(install: Install, dropped: Sequence[Dump], *, smtp: bool = False) -> list[str]:
    """Every problem with the state and outputs after a completed run; [] when all is well.
    With ``smtp`` the messages went to a sink (checked by the trial), not to ``.eml`` files."""
    problems: list[str] = []
    expected: dict[str, set[str]] = {}  # dump sha → keys
    bad: dict[str, str] = {}  # name → sha
    latest = dict(dropped)  # a name dropped twice holds its second version
    for name, data in latest.items():
        if (install.inbox / name).read_bytes() != data:
            problems.append(f"input {name} was changed")
    for name, data in dropped:
        try:
            expected[_sha(data)] = {p.key for p in parse_dump(data, name).papers}
        except DumpError:
            bad[name] = _sha(data)
    all_keys = set().union(*expected.values()) if expected else set()

    db = sqlite3.connect(f"file:{install.db}?mode=ro", uri=True)
    try:
        dumps = {
            sha: (status, err) for sha, status, err in db.execute("SELECT sha256, status, error FROM dumps")
        }
        papers = db.execute(
            "SELECT seq, key, d.sha256 FROM papers JOIN dumps d ON d.id = papers.dump_id"
        ).fetchall()
        digests = db.execute(
            "SELECT id, slug, first_seq, last_seq, paper_count, published_at FROM digests ORDER BY id"
        ).fetchall()
        deliveries = db.execute("SELECT digest_id, recipient, status, message_id FROM deliveries").fetchall()
        seen = {name: sha for name, sha in db.execute("SELECT name, sha256 FROM seen_files")}
        [(install_id,)] = db.execute("SELECT value FROM meta WHERE name = 'install_id'").fetchall()
    finally:
        db.close()

    # Dumps: each good one ingested, each bad one failed with a reason naming it.
    for sha in expected:
        if dumps.get(sha, ("missing",))[0] != "ingested":
            problems.append(f"dump {sha[:12]} is {dumps.get(sha, ('missing',))[0]}, not ingested")
    for name, sha in bad.items():
        status, err = dumps.get(sha, ("missing", None))
        if status != "failed" or not err or name not in err:
            problems.append(f"bad dump {name}: status {status}, error {err!r}")
    for name, data in latest.items():
        if seen.get(name) != _sha(data):
            problems.append(f"{name}: the stat cache holds {seen.get(name)}, not its content hash")

    # Papers: exactly the keys of the good dumps, each once, each from a dump listing it.
    keys = [k for _, k, _ in papers]
    if len(keys) != len(set(keys)):
        problems.append(f"{len(keys) - len(set(keys))} papers stored twice")
    if set(keys) != all_keys:
        problems.append(
            f"papers: {len(all_keys - set(keys))} missing, {len(set(keys) - all_keys)} unexpected"
        )
    for _, key, sha in papers:
        if key not in expected.get(sha, set()):
            problems.append(f"paper {key!r} attributed to a dump that does not list it")
            break

    # Digests: their seq ranges partition the papers; each published.
    seqs = sorted(s for s, _, _ in papers)
    covered: list[int] = []
    for _, slug, first, last, count, published in digests:
        inside = [s for s in seqs if first <= s <= last]
        if len(inside) != count or count == 0:
            problems.append(f"digest {slug}: paper_count {count}, {len(inside)} papers in its range")
        covered += inside
        if published is None:
            problems.append(f"digest {slug} never marked published")
    if sorted(covered) != seqs:
        problems.append("digest ranges do not cover every paper exactly once")

    problems += _check_site(install, papers, digests)
    problems += _check_outbox(install, install_id, digests, deliveries, files=not smtp)
    return problems


def _check_site(
    install: Install, papers: Sequence[tuple[int, str, str]], digests: Sequence[Row]
) -> list[str]:
    problems: list[str] = []
    leftovers = temp_leftovers(install.site)
    if leftovers:
        problems.append(
            f"temp files left in the site: {[str(p.relative_to(install.site)) for p in leftovers]}"
        )
    if not digests:
        return problems
    want = {paper_guid(k) for _, k, _ in papers}
    for name in (feed.RSS_FILE, feed.ATOM_FILE, feed.JSON_FILE):
        path = install.site / name
        if not path.exists():
            problems.append(f"{name} missing")
            continue
        if name == feed.JSON_FILE:
            try:
                ids = [item.get("id") for item in json.loads(path.read_bytes())["items"]]
            except (ValueError, KeyError) as err:
                problems.append(f"{name} is not a JSON Feed: {err}")
                continue
        else:
            parsed = feedparser.parse(path.read_bytes())
            if parsed.bozo:
                problems.append(f"{name} does not parse: {parsed.bozo_exception}")
            ids = [e.get("id") for e in parsed.entries]
        if len(ids) != len(set(ids)) or set(ids) != want:
            problems.append(f"{name}: {len(ids)} entries, {len(set(ids) & want)} of {len(want)} papers")
    index = (
        (install.site / "index.html").read_text(encoding="utf-8")
        if (install.site / "index.html").exists()
        else ""
    )
    if not index.rstrip().endswith("</html>"):
        problems.append("index.html missing or incomplete")
    by_seq = {s: k for s, k, _ in papers}
    for _, slug, first, last, count, _ in digests:
        path = install.site / digest_path(slug)
        if f'{digest_path(slug)}"' not in index:
            problems.append(f"index.html does not link {slug}")
        if not path.exists():
            problems.append(f"page of digest {slug} missing")
            continue
        # A digest over archive.page_size papers is split into <slug>-p2.html, -p3.html, ...
        pages = [path.read_text(encoding="utf-8")]
        while (install.site / digest_path(slug, len(pages) + 1)).exists():
            pages.append((install.site / digest_path(slug, len(pages) + 1)).read_text(encoding="utf-8"))
        page = "".join(pages)
        anchors = {paper_anchor(k) for s, k in by_seq.items() if first <= s <= last}
        if any(not p.rstrip().endswith("</html>") for p in pages) or page.count('class="paper" id=') != count:
            problems.append(f"page of digest {slug} incomplete")
        elif any(f'class="paper" id="{a}"' not in page for a in anchors):
            problems.append(f"page of digest {slug} lacks some of its papers")
    return problems


def _check_outbox(
    install: Install,
    install_id: str,
    digests: Sequence[Row],
    deliveries: Sequence[Row],
    *,
    files: bool = True,
) -> list[str]:
    problems: list[str] = []
    leftovers = temp_leftovers(install.outbox)
    if leftovers:
        problems.append(f"temp files left in the outbox: {[p.name for p in leftovers]}")
    rows = {(d, r): (status, mid) for d, r, status, mid in deliveries}
    transport = FileTransport(install.outbox)
    want_files: set[str] = set()
    for did, slug, *_ in digests:
        for r in RECIPIENTS:
            status, mid = rows.get((did, r), ("missing", ""))
            if status != "sent":
                problems.append(f"delivery of {slug} to {r} is {status}")
                continue
            if mid != message_id(did, r, DOMAIN, install_id):
                problems.append(f"delivery of {slug} to {r} has Message-ID {mid}")
            if not files:
                continue
            msg = email.message.EmailMessage()
            msg["Message-ID"] = mid
            path = transport.path_for(msg, r)
            want_files.add(path.name)
            if not path.exists():
                problems.append(f"{slug} to {r}: marked sent, no {path.name}")
                continue
            parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            if parsed["Message-ID"] != mid or parsed["To"] != r or parsed.get_body(("html",)) is None:
                problems.append(f"{path.name}: wrong or incomplete message")
    if len(rows) != len(digests) * len(RECIPIENTS):
        problems.append(f"{len(rows)} outbox rows for {len(digests)} digests")
    have = set(outbox_snapshot(install))
    if files and have != want_files:
        problems.append(
            f"outbox: {len(have - want_files)} unexpected .eml files, {len(want_files - have)} missing"
        )
    return problems
