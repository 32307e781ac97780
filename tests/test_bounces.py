"""digest.bounces: who bounced, hard or soft, from real report bytes."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from digest.bounces import Failure, parse_report, refusal, verp_address, verp_token

BOUNCE = "bounces@example.org"


def dsn(rcpt: str, status: str, action: str, to: str = "bounces+s42@example.org") -> bytes:
    """A multipart/report DSN as an MTA writes it (RFC 3464)."""
    return (
        f"From: MAILER-DAEMON@mx.example.net\r\n"
        f"To: {to}\r\n"
        f"Delivered-To: {to}\r\n"
        f"Subject: Delivery Status Notification\r\n"
        f"MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n'
        f"\r\n--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        f"--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        f"Reporting-MTA: dns; mx.example.net\r\n\r\n"
        f"Final-Recipient: rfc822; {rcpt}\r\n"
        f"Action: {action}\r\n"
        f"Status: {status}\r\n"
        f"Diagnostic-Code: smtp; 550 5.1.1 <{rcpt}>: user\r\n  unknown\r\n"
        f"\r\n--B\r\nContent-Type: text/rfc822-headers\r\n\r\nSubject: paper digest\r\n\r\n--B--\r\n"
    ).encode()


def test_hard_dsn() -> None:
    r = parse_report(dsn("Gone@Example.com", "5.1.1", "failed"), BOUNCE)
    assert r.token == "s42"
    assert r.failures == (
        Failure("gone@example.com", "hard", "5.1.1", "smtp; 550 5.1.1 <Gone@Example.com>: user unknown"),
    )


def test_soft_dsn() -> None:
    r = parse_report(dsn("full@example.com", "4.2.2", "delayed"), BOUNCE)
    assert [(f.address, f.kind, f.status) for f in r.failures] == [("full@example.com", "soft", "4.2.2")]


def test_delivered_is_no_failure() -> None:
    assert parse_report(dsn("ok@example.com", "2.0.0", "delivered"), BOUNCE).failures == ()


def test_non_dsn_bounce_uses_flufl() -> None:
    # A qmail-style bounce (no delivery-status part): flufl.bounce finds it, permanent → hard.
    raw = (
        b"From: MAILER-DAEMON@mx.example.net\r\nTo: bounces+s7@example.org\r\n"
        b"Subject: failure notice\r\n\r\n"
        b"Hi. This is the qmail-send program at mx.example.net.\r\n"
        b"I'm afraid I wasn't able to deliver your message to the following addresses.\r\n"
        b"This is a permanent error; I've given up. Sorry it didn't work out.\r\n\r\n"
        b"<nobody@example.net>:\r\nSorry, no mailbox here by that name. (#5.1.1)\r\n\r\n"
        b"--- Below this line is a copy of the message.\r\n\r\nSubject: x\r\n\r\nbody\r\n"
    )
    r = parse_report(raw, BOUNCE)
    assert r.token == "s7"
    assert [(f.address, f.kind) for f in r.failures] == [("nobody@example.net", "hard")]


def test_not_a_bounce_and_garbage() -> None:
    m = EmailMessage()
    m["From"] = "a@example.com"
    m["To"] = "bounces@example.org"
    m.set_content("hello")
    r = parse_report(m.as_bytes(), BOUNCE)
    assert (r.token, r.failures, r.is_bounce) == (None, (), False)
    assert parse_report(b"\x00\xff not mail at all", BOUNCE).failures == ()


def test_verp_roundtrip() -> None:
    a = verp_address(BOUNCE, "s42.ab")
    assert a == "bounces+s42.ab@example.org"
    assert verp_token(f"<{a.upper()}>", BOUNCE) == "s42.ab"
    assert verp_token("bounces+x@other.org", BOUNCE) is None
    assert verp_token("bounces@example.org", BOUNCE) is None
    with pytest.raises(ValueError):
        verp_address(BOUNCE, "a@b")
    with pytest.raises(ValueError):
        verp_address(BOUNCE, "Upper")
    with pytest.raises(ValueError):
        verp_address("nodomain", "x")


@pytest.mark.parametrize(
    ("code", "text", "verdict"),
    [
        (550, "5.1.1 <x@example.com>: Recipient address rejected: User unknown", ("hard", "5.1.1")),
        (550, "5.1.10 Recipient address rejected: null MX", ("hard", "5.1.10")),
        (550, "5.2.1 The email account that you tried to reach is disabled", ("hard", "5.2.1")),
        (550, "Requested action not taken: mailbox unavailable", ("hard", "")),
        (551, "User not local", ("hard", "")),
        (553, "mailbox name not allowed", ("hard", "")),
        (554, "5.7.1 <x@example.com>: Relay access denied", None),
        (550, "5.7.1 Message rejected as spam", None),
        (550, "5.7.515 Access denied, sending domain does not meet the required authentication level", None),
        (552, "5.2.2 mailbox full", None),
        (554, "Transaction failed", None),
        (450, "4.1.1 try again", None),
        (421, "closing", None),
    ],
)
def test_which_refusals_at_rcpt_are_hard_bounces(code: int, text: str, verdict: object) -> None:
    assert refusal(code, text) == verdict
