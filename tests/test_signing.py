"""DKIM: every outgoing message signed with dkimpy, verified by dkimpy's own verifier
against the public key (the DNS lookup injected), deterministic bytes, the key never shown."""

from __future__ import annotations

import re
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from functools import cache
from pathlib import Path

import dkim
import pytest

from digest.cli import main
from digest.config import Config
from digest.errors import ConfigError
from digest.signing import DkimKey, KeyPair, generate_key, sign, txt_record
from tests.helpers import DUMP_000, MakeConfig, drop
from tests.smtpsink import Recorder, StartServer

SELECTOR = "2026a"


@cache
def keypair() -> KeyPair:
    return generate_key()


def dnsfunc_for(selector: str, domain: str, public_b64: str) -> Callable[..., bytes | None]:
    """A DNS TXT lookup answering for one name only, as dkimpy's ``dnsfunc`` is called."""

    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        if name.decode().rstrip(".") == f"{selector}._domainkey.{domain}":
            return txt_record(public_b64).encode()
        return None

    return lookup


def verify(data: bytes, domain: str = "example.org") -> bool:
    return bool(dkim.verify(data, dnsfunc=dnsfunc_for(SELECTOR, domain, keypair().public_b64)))


def tags(data: bytes) -> dict[str, str]:
    header = data.split(b"\r\n\r\n", 1)[0].decode()
    sig = re.search(r"^DKIM-Signature:(.*?)(?=^\S)", header + "\r\nX:", re.S | re.M)
    assert sig is not None
    value = "".join(sig.group(1).split())
    return dict(part.split("=", 1) for part in value.split(";") if part)


def key_file(tmp_path: Path) -> Path:
    path = tmp_path / f"{SELECTOR}.private"
    path.write_bytes(keypair().private_pem)
    return path


@pytest.fixture
def dkim_config(make_config: MakeConfig, tmp_path: Path) -> Callable[..., Config]:
    def make(**email: object) -> Config:
        return make_config(
            email={"unsubscribe": ["https://example.org/unsubscribe", "mailto:unsub@example.org"], **email},
            email__dkim={"selector": SELECTOR, "domain": "example.org", "key_file": str(key_file(tmp_path))},
        )

    return make


def run_and_read_outbox(config: Config, inbox: Path) -> list[bytes]:
    drop(inbox, DUMP_000)
    assert main(["-c", str(config.path), "run"]) == 0
    return [p.read_bytes() for p in sorted(config.email.outbox.glob("*.eml"))]


def test_a_digest_written_by_the_file_transport_verifies_against_the_public_key(
    dkim_config: Callable[..., Config], inbox: Path
) -> None:
    [data] = run_and_read_outbox(dkim_config(), inbox)
    assert data.startswith(b"DKIM-Signature: ")
    assert verify(data)
    t = tags(data)
    assert t["d"] == "example.org" and t["s"] == SELECTOR and t["a"] == "rsa-sha256"
    signed = t["h"].split(":")
    for name in ("from", "to", "subject", "date", "message-id", "list-id"):
        assert name in signed
    assert "list-unsubscribe" in signed and "list-unsubscribe-post" in signed
    # t= is the digest's time (its Date header), not the clock at sending.
    date = re.search(rb"\r\nDate: ([^\r]*)", data)
    assert date is not None
    assert int(t["t"]) == int(parsedate_to_datetime(date.group(1).decode()).timestamp())


@pytest.mark.parametrize(
    "change",
    [
        (b"Subject: ", b"Subject: URGENT "),
        (b"<https://example.org/unsubscribe>", b"<https://evil.example/unsubscribe>"),
        (
            b"Content-Transfer-Encoding: quoted-printable\r\n\r\n",
            b"Content-Transfer-Encoding: quoted-printable\r\n\r\nX",
        ),
    ],
    ids=["subject", "list-unsubscribe", "body"],
)
def test_a_message_altered_after_signing_fails(
    dkim_config: Callable[..., Config], inbox: Path, change: tuple[bytes, bytes]
) -> None:
    [data] = run_and_read_outbox(dkim_config(), inbox)
    old, new = change
    assert old in data
    assert not verify(data.replace(old, new, 1))


def test_adding_a_list_unsubscribe_post_header_later_breaks_the_signature(
    dkim_config: Callable[..., Config], inbox: Path
) -> None:
    # Only a mailto: unsubscribe: no List-Unsubscribe-Post header, yet it is in h=, so
    # one added in transit (turning on one-click unsubscribe) fails verification.
    [data] = run_and_read_outbox(dkim_config(unsubscribe=["mailto:unsub@example.org"]), inbox)
    head, body = data.split(b"\r\n\r\n", 1)
    assert b"\r\nList-Unsubscribe-Post:" not in head
    assert verify(data)
    assert not verify(head + b"\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n\r\n" + body)


def test_signing_is_deterministic_and_the_wrong_key_fails() -> None:
    message = (
        b"From: Paper Digest <digest@example.org>\r\nTo: a@example.org\r\nSubject: hi\r\n"
        b"Date: Sun, 22 Nov 2026 07:00:00 +0000\r\nMessage-ID: <x.1@example.org>\r\n\r\nbody\r\n"
    )
    key = DkimKey(SELECTOR, "example.org", keypair().private_pem)
    assert sign(message, key) == sign(message, key)
    assert verify(sign(message, key))
    other = generate_key(1024)
    assert not dkim.verify(sign(message, key), dnsfunc=dnsfunc_for(SELECTOR, "example.org", other.public_b64))
    assert "PRIVATE" not in repr(key) and "PRIVATE" not in repr(keypair())


def test_smtp_transport_sends_signed_mail(
    start_server: StartServer, make_config: MakeConfig, tmp_path: Path, inbox: Path
) -> None:
    handler = Recorder()
    server = start_server(handler)
    config = make_config(
        email={"transport": "smtp", "to": ["ann@example.org", "bob@example.org"]},
        email__smtp={"host": "127.0.0.1", "port": server.port, "security": "none", "timeout": "5s"},
        email__dkim={"selector": SELECTOR, "domain": "example.org", "key_file": str(key_file(tmp_path))},
    )
    drop(inbox, DUMP_000)
    assert main(["-c", str(config.path), "run"]) == 0
    assert len(handler.offered_bytes) == 2
    for data in handler.offered_bytes:
        assert verify(data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))


def test_the_key_file_comes_from_the_environment_and_is_never_printed(
    make_config: MakeConfig,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = key_file(tmp_path)
    monkeypatch.setenv("DIGEST_DKIM_KEY_FILE", str(path))
    config = make_config(
        env={"DIGEST_DKIM_KEY_FILE": str(path)},
        email__dkim={"selector": SELECTOR, "domain": "example.org"},
    )
    assert config.email.dkim.key_file == path.resolve()
    assert main(["-c", str(config.path), "check-config"]) == 0
    out, err = capsys.readouterr()
    assert "PRIVATE KEY" not in out + err and keypair().public_b64[:40] not in out + err
    # The one warning: no bounces_source, so mailed unsubscribe requests go unread.
    assert [w for w in err.splitlines() if "warning" in w and "email.bounces_source" not in w] == []


def test_check_config_warns_when_the_dkim_domain_is_not_aligned(
    make_config: MakeConfig, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = make_config(
        email__dkim={
            "selector": SELECTOR,
            "domain": "mailer.example.net",
            "key_file": str(key_file(tmp_path)),
        }
    )
    assert main(["-c", str(config.path), "check-config"]) == 0
    err = capsys.readouterr().err
    assert (
        "digest: warning: email.dkim.domain 'mailer.example.net' is not aligned with the From domain 'example.org'"
        in err
    )
    # A parent domain is aligned (DMARC relaxed alignment).
    config = make_config(
        email={"from": "Digest <digest@news.example.org>"},
        email__dkim={"selector": SELECTOR, "domain": "example.org", "key_file": str(key_file(tmp_path))},
    )
    assert main(["-c", str(config.path), "check-config"]) == 0
    assert "not aligned" not in capsys.readouterr().err


def test_incomplete_or_unreadable_dkim_settings_name_the_key(make_config: MakeConfig, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"email\.dkim\.key_file.*is missing"):
        make_config(email__dkim={"selector": SELECTOR, "domain": "example.org"})
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    config = make_config(email__dkim={"selector": SELECTOR, "domain": "example.org", "key_file": str(bad)})
    from digest.transports import make_transport

    with pytest.raises(ConfigError, match=r"email\.dkim\.key_file.*holds no RSA private key") as info:
        make_transport(config)
    assert "not a key" not in str(info.value)


def test_dkim_keygen_writes_a_key_pair_and_prints_the_txt_record(
    config: Config, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "keys"
    assert main(["-c", str(config.path), "dkim-keygen", "sel1", "--dir", str(out_dir)]) == 0
    out = capsys.readouterr().out
    private = out_dir / "sel1.private"
    assert private.stat().st_mode & 0o777 == 0o600
    assert "PRIVATE" not in out
    assert "sel1._domainkey.example.org" in out
    record = next(line for line in out.splitlines() if line.startswith("v=DKIM1; k=rsa; p="))
    key = DkimKey("sel1", "example.org", private.read_bytes())
    message = (
        b"From: d@example.org\r\nTo: a@example.org\r\nSubject: s\r\n"
        b"Date: Sun, 22 Nov 2026 07:00:00 +0000\r\n\r\nbody\r\n"
    )

    def lookup(name: bytes, timeout: int = 5) -> bytes:
        assert name.decode().rstrip(".") == "sel1._domainkey.example.org"
        return record.encode()

    assert dkim.verify(sign(message, key), dnsfunc=lookup)
    assert (out_dir / "sel1.txt").read_text().startswith('sel1._domainkey.example.org. IN TXT "v=DKIM1')
    # Never overwrites a key.
    assert main(["-c", str(config.path), "dkim-keygen", "sel1", "--dir", str(out_dir)]) == 1
