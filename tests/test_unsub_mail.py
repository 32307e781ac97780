"""Unsubscribe requests by email end to end: the ``mailto:`` of a real digest email (file
transport, no web pages: the only way out), the request a mail client sends for it
written into a real maildir, an mbox and a Dovecot IMAP mailbox, ``digest bounces``, and
who is unsubscribed. A valid signed token in the Subject unsubscribes the reader it
names; a bare "unsubscribe", or a token cut short or forged, changes nothing whatever the
From header says, and is kept for a human. ``check-config`` warns when nothing reads the
mailbox."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from digest.cli import main
from digest.config import Config
from digest.store import Store
from digest.store.subscribers import Subscribers
from digest.unsubscribe_mail import request_tokens
from tests.dovecot import PASSWORD, Dovecot
from tests.helpers import DUMP_000, DUMP_002, MakeConfig, drop
from tests.test_bounce_imap import imap_keys

LOU, ANN, BOB = "lou@example.org", "ann@example.org", "bob@example.org"
READERS = [LOU, ANN, BOB]
FROM = "digest@example.org"


def run(config: Config, *args: str) -> int:
    assert config.path is not None
    return main(["-c", str(config.path), *args])


def mailed(config: Config) -> dict[str, EmailMessage]:
    """The newest .eml file the file transport wrote to each address."""
    out: dict[str, EmailMessage] = {}
    for path in sorted(config.email.outbox.rglob("*.eml"), key=lambda p: p.stat().st_mtime_ns):
        msg = BytesParser(policy=default).parsebytes(path.read_bytes())
        out[str(msg["To"])] = msg
    return out


def mailto_subject(message: EmailMessage) -> tuple[str, str]:
    """(address, subject) of the ``mailto:`` in List-Unsubscribe, decoded as a mail
    client decodes it before sending."""
    [url] = [u for u in re.findall(r"<([^>]+)>", str(message["List-Unsubscribe"])) if u.startswith("mailto:")]
    parts = urlsplit(url)
    return parts.path, parse_qs(parts.query)["subject"][0]


def request(sender: str, subject: str, n: int, to: str = FROM) -> bytes:
    """What a mail client sends for a mailto: link (Gmail's unsubscribe button, say)."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = "Mon, 23 Nov 2026 08:00:00 +0000"
    msg["Message-ID"] = f"<req{n}@client.example>"
    msg.set_content("This message was sent to unsubscribe.\n")
    return msg.as_bytes()


def maildir(root: Path) -> Path:
    for sub in ("new", "cur", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    return root


def statuses(config: Config) -> dict[str, tuple[str, str | None]]:
    with Store.open(config.state.url) as store:
        subs = Subscribers(store)
        return {a: (s.status, s.reason) for a in READERS if (s := subs.get(a)) is not None}


def test_a_mailed_request_with_its_token_unsubscribes_that_reader_and_no_other(
    make_config: MakeConfig,
    inbox: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    box = maildir(tmp_path / "Maildir")
    config = make_config(email={"to": READERS, "bounces_source": f"maildir:{box}"})
    assert not config.http.listen  # no web pages: the mailto: is the only way to leave
    drop(inbox, DUMP_000)
    assert run(config, "run") == 0
    got = mailed(config)
    assert set(got) == set(READERS)
    for message in got.values():
        assert "http" not in str(message["List-Unsubscribe"])
    (lou_to, lou_subject), (_, ann_subject), (_, bob_subject) = (mailto_subject(got[a]) for a in READERS)
    assert lou_to == FROM and lou_subject.startswith("unsubscribe ") and lou_subject != ann_subject
    ann_token = ann_subject.split()[1]
    files = {
        "1.lou": request(LOU, lou_subject, 1),  # the List-Unsubscribe mailto:, as sent
        "2.bare": request(ANN, "unsubscribe", 2),  # what the plain-text footer says: no token
        "3.forged": request(ANN, "unsubscribe " + ann_token[:-6] + "AAAAAA", 3),
        "4.cut": request(ANN, "unsubscribe " + ann_token[: len(ann_token) // 2], 4),
        # The token is the capability, as for the one-click link: a reply keeps it, and
        # the From header plays no part (bob's token, whoever forwarded it).
        "5.reply": request("someone@example.net", "Re: " + bob_subject, 5),
        "6.chat": request(ANN, "thanks for the digest", 6),
    }
    for name, data in files.items():
        (box / "new" / name).write_bytes(data)
    caplog.set_level("INFO", logger="digest.bouncing")
    capsys.readouterr()
    assert run(config, "bounces") == 0
    out = capsys.readouterr().out
    assert "2 unsubscribed by email: bob@example.org, lou@example.org" in out or (
        "2 unsubscribed by email: lou@example.org, bob@example.org" in out
    )
    assert "3 unsubscribe requests without a valid link kept" in out
    assert statuses(config) == {
        LOU: ("unsubscribed", "unsubscribed by email"),
        ANN: ("active", None),  # her From header on a bare or a forged request proves nothing
        BOB: ("unsubscribed", "unsubscribed by email"),
    }
    assert sorted(p.name for p in (box / "new").iterdir()) == ["2.bare", "3.forged", "4.cut", "6.chat"]
    assert sorted(p.name for p in (box / "cur").iterdir()) == ["1.lou:2,S", "5.reply:2,S"]
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name == "digest.bouncing")
    assert logged.count("an unsubscribe request without a valid link") == 3
    assert "From: 'ann@example.org', which proves nothing" in logged
    for subject in (lou_subject, ann_subject, bob_subject):  # tokens are never logged or printed
        token = subject.split()[1]
        assert token not in logged and token not in out and token[:20] not in logged

    # Read again: nothing changes, nothing is logged again.
    caplog.clear()
    assert run(config, "bounces") == 0
    assert capsys.readouterr().out.startswith("0 reports read, 6 handled before, 0 kept unread")
    assert [r for r in caplog.records if r.levelname == "WARNING"] == []

    # The next digest goes to ann only.
    before = {p.name for p in config.email.outbox.rglob("*.eml")}
    drop(inbox, DUMP_002)
    assert run(config, "run") == 0
    new = [p for p in config.email.outbox.rglob("*.eml") if p.name not in before]
    to = [str(BytesParser(policy=default).parsebytes(p.read_bytes())["To"]) for p in new]
    assert to == [ANN]


def test_a_request_in_an_mbox_unsubscribes_and_the_file_is_left_as_it_was(
    make_config: MakeConfig, inbox: Path, tmp_path: Path
) -> None:
    mbox = tmp_path / "digest.mbox"
    config = make_config(email={"to": [LOU, ANN], "bounces_source": f"mbox:{mbox}"})
    drop(inbox, DUMP_000)
    assert run(config, "run") == 0
    _, subject = mailto_subject(mailed(config)[LOU])
    data = b"".join(
        b"From sender Mon Nov 23 08:00:00 2026\n" + raw.replace(b"\r\n", b"\n") + b"\n"
        for raw in (request(LOU, subject, 1), request(ANN, "UNSUBSCRIBE", 2))
    )
    mbox.write_bytes(data)
    assert run(config, "bounces") == 0
    assert run(config, "bounces") == 0
    assert statuses(config) == {LOU: ("unsubscribed", "unsubscribed by email"), ANN: ("active", None)}
    assert mbox.read_bytes() == data


def test_a_request_in_an_imap_mailbox_unsubscribes_and_a_bare_one_stays_unread(
    dovecot: Dovecot,
    make_config: MakeConfig,
    inbox: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Dovecot's certificate verified for real, trusting only the test's own.
    monkeypatch.setenv("SSL_CERT_FILE", str(dovecot.cert))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.setenv("DIGEST_IMAP_PASSWORD", PASSWORD)
    user = dovecot.user("unsub")
    config = make_config(
        email={"to": [LOU, ANN], "bounces_source": "imap:INBOX"}, email__imap=imap_keys(dovecot, user)
    )
    drop(inbox, DUMP_000)
    assert run(config, "run") == 0
    _, subject = mailto_subject(mailed(config)[LOU])
    dovecot.append(user, request(LOU, subject, 1), request(ANN, "unsubscribe", 2))
    capsys.readouterr()
    assert run(config, "bounces") == 0
    out = capsys.readouterr().out
    assert "1 unsubscribed by email: lou@example.org" in out
    assert "1 unsubscribe request without a valid link kept" in out
    assert statuses(config) == {LOU: ("unsubscribed", "unsubscribed by email"), ANN: ("active", None)}
    flags = dovecot.flags(user)
    assert flags["<req1@client.example>"] >= {"\\Seen", "$DigestHandled"}
    assert "\\Seen" not in flags["<req2@client.example>"] and "$DigestKept" in flags["<req2@client.example>"]
    assert run(config, "bounces") == 0
    assert capsys.readouterr().out.startswith("0 reports read, 0 handled before, 0 kept unread")


def test_a_request_for_someone_already_gone_or_renewed_changes_nothing(
    make_config: MakeConfig, inbox: Path, tmp_path: Path
) -> None:
    box = maildir(tmp_path / "Maildir")
    config = make_config(email={"to": [LOU, ANN], "bounces_source": f"maildir:{box}"})
    drop(inbox, DUMP_000)
    assert run(config, "run") == 0
    got = mailed(config)
    _, lou_subject = mailto_subject(got[LOU])
    _, ann_subject = mailto_subject(got[ANN])
    with Store.open(config.state.url) as store:  # ann's links are revoked (--new-token)
        subs = Subscribers(store)
        subs.new_token(subs.get(ANN).id)  # type: ignore[union-attr]
        subs.set_status(subs.get(LOU).id, "unsubscribed", datetime.now(UTC), "unsubscribed by its link")  # type: ignore[union-attr]
    (box / "new" / "1.lou").write_bytes(request(LOU, lou_subject, 1))
    (box / "new" / "2.ann").write_bytes(request(ANN, ann_subject, 2))
    assert run(config, "bounces") == 0
    assert statuses(config) == {LOU: ("unsubscribed", "unsubscribed by its link"), ANN: ("active", None)}
    assert sorted(p.name for p in (box / "new").iterdir()) == ["2.ann"]


@pytest.mark.parametrize(
    ("subject", "tokens"),
    [
        (b"unsubscribe WzEsImFiIl0.sig-nature_1", ("WzEsImFiIl0.sig-nature_1",)),
        (b"Re: Fwd: unsubscribe WzEsImFiIl0.sig-nature_1", ("WzEsImFiIl0.sig-nature_1",)),
        (b"unsubscribe%20WzEsImFiIl0.sig-nature_1", ("WzEsImFiIl0.sig-nature_1",)),  # not decoded
        (b"=?UTF-8?Q?unsubscribe_WzEsImFiIl0.sig-nature=5F1?=", ("WzEsImFiIl0.sig-nature_1",)),
        (b"unsubscribe\r\n WzEsImFiIl0.sig-nature_1", ("WzEsImFiIl0.sig-nature_1",)),  # folded
        (b"UNSUBSCRIBE", ()),
        (b"[Test Digest] unsubscribe", ()),
        (b"Unsubscribe me please", ()),  # words, no token
        (b"Please unsubscribe me", None),
        (b"Undelivered Mail Returned to Sender", None),
        (b"unsubscribed", None),
    ],
)
def test_what_counts_as_a_request_and_which_words_may_be_its_token(
    subject: bytes, tokens: tuple[str, ...] | None
) -> None:
    raw = b"From: a@example.org\r\nTo: digest@example.org\r\nSubject: " + subject + b"\r\n\r\nhi\r\n"
    assert request_tokens(raw) == tokens


def test_check_config_warns_when_nothing_reads_the_unsubscribe_mailbox(
    make_config: MakeConfig, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def warning(**sections: dict[str, object]) -> str:
        config = make_config(**sections)
        capsys.readouterr()
        assert run(config, "check-config") == 0
        lines = [w for w in capsys.readouterr().err.splitlines() if "bounces_source" in w]
        return "\n".join(lines)

    alone = warning()
    assert "unsubscribe requests mailed to digest@example.org" in alone
    assert "only way to unsubscribe" in alone and "point email.bounces_source at" in alone
    served = warning(http={"listen": "127.0.0.1:8080"}, digest={"base_url": "https://example.org/"})
    assert "digest@example.org" in served and "only way" not in served
    custom = warning(email={"unsubscribe": ["mailto:leave@example.org"]})
    assert "mailed to leave@example.org" in custom
    assert warning(email={"bounces_source": f"maildir:{tmp_path / 'Maildir'}"}) == ""
    assert warning(email={"enabled": False}) == ""
