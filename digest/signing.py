"""DKIM signing of outgoing mail (RFC 6376), with dkimpy.

A signed message is a pure function of the message bytes and the key: the ``t=`` tag
is the message's own Date header (the digest's time), never the clock, and RSA
PKCS#1 v1.5 signatures carry no randomness, so the same delivery signs to the same
bytes on every retry (docs/DESIGN.md invariants 8 and 12). Signing happens after the
per-recipient splice (``render.email.Prepared``), on the finished bytes, in the
:class:`SigningTransport` wrapper both transports are used through.

The private key is held as bytes with ``repr=False`` and never printed (docs/DESIGN.md invariant 11).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from email.utils import parseaddr, parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from digest.errors import ConfigError
from digest.render.email import Wire
from digest.wrapping import TransportWrapper

if TYPE_CHECKING:
    from digest.transports import Outgoing, Transport

KEY_FILE_ENV = "DIGEST_DKIM_KEY_FILE"

# What the signature covers. List-Unsubscribe and List-Unsubscribe-Post must be
# signed for Gmail/Yahoo to honour one-click unsubscribe (RFC 8058 section 4); a
# header listed but absent is signed as empty, so adding it later breaks the
# signature too.
SIGNED_HEADERS: tuple[str, ...] = (
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "MIME-Version",
    "Content-Type",
)


@dataclass(frozen=True)
class DkimKey:
    """A selector, a signing domain (``d=``) and the PEM private key."""

    selector: str
    domain: str
    private_key: bytes = field(repr=False)


def load_key(selector: str, domain: str, key_file: Path) -> DkimKey:
    """Reads and checks the PEM key at ``key_file``; a ConfigError names the key and the fix.

    The message never quotes the file's content."""
    import dkim.crypto

    key = "email.dkim.key_file"
    try:
        pem = key_file.read_bytes()
    except OSError as err:
        raise ConfigError(
            key,
            f"cannot read the DKIM key {key_file} ({err.strerror})",
            f"check the path (or {KEY_FILE_ENV}) and that this user may read it; "
            "`digest dkim-keygen SELECTOR` makes one",
        ) from err
    try:
        dkim.crypto.parse_pem_private_key(pem)
    except dkim.crypto.UnparsableKeyError:
        raise ConfigError(
            key,
            f"{key_file} holds no RSA private key in PEM form",
            "give a PKCS#1 or PKCS#8 PEM file, e.g. one `digest dkim-keygen SELECTOR` wrote",
        ) from None
    return DkimKey(selector=selector, domain=domain, private_key=pem)


def _timestamp(data: bytes) -> int:
    """The message's Date header as seconds since the epoch (the signature's ``t=``)."""
    end = data.find(b"\r\n\r\n")
    for line in data[: end if end >= 0 else len(data)].split(b"\r\n"):
        if line[:5].lower() == b"date:":
            return int(parsedate_to_datetime(line[5:].decode("ascii").strip()).timestamp())
    raise ValueError("the message has no Date header to take the DKIM timestamp from")


def sign(data: bytes, key: DkimKey) -> bytes:
    """``data`` (CRLF line ends) with a DKIM-Signature header put in front.

    relaxed/simple canonicalization, rsa-sha256, the headers of :data:`SIGNED_HEADERS`,
    ``t=`` from the Date header: the same input gives the same bytes."""
    import dkim
    from dkim.canonicalization import CanonicalizationPolicy
    from dkim.crypto import parse_pem_private_key

    signer = dkim.DKIM(data, linesep=b"\r\n")
    policy = CanonicalizationPolicy.from_c_value(b"relaxed/simple")
    include = tuple(h.lower().encode("ascii") for h in SIGNED_HEADERS)
    signer.include_headers = include
    signer.hasher = dkim.HASH_ALGORITHMS[b"rsa-sha256"]
    body_hash = signer.hasher(policy.canonicalize_body(signer.body)).digest()
    domain = key.domain.encode("ascii")
    # dkimpy's DKIM.sign stamps t= from time.time(); the fields are built here instead,
    # in its order, so the signature depends on the message only.
    fields: list[tuple[bytes, bytes]] = [
        (b"v", b"1"),
        (b"a", b"rsa-sha256"),
        (b"c", policy.to_c_value()),
        (b"d", domain),
        (b"i", b"@" + domain),
        (b"q", b"dns/txt"),
        (b"s", key.selector.encode("ascii")),
        (b"t", str(_timestamp(data)).encode("ascii")),
        (b"h", b" : ".join(include)),
        (b"bh", base64.b64encode(body_hash)),
        (b"b", b"0" * 60),
    ]
    pk: Any = parse_pem_private_key(key.private_key)
    value: bytes = signer.gen_header(fields, include, policy, b"DKIM-Signature", pk)
    return b"DKIM-Signature: " + value + data


def aligned(from_domain: str, dkim_domain: str) -> bool:
    """DMARC relaxed alignment: the From domain is the DKIM domain or under it."""
    a, b = from_domain.lower().rstrip("."), dkim_domain.lower().rstrip(".")
    return a == b or a.endswith("." + b) or b.endswith("." + a)


class SigningTransport(TransportWrapper):
    """Wraps a transport: every message it sends is signed with ``key`` first."""

    def __init__(self, inner: Transport, key: DkimKey) -> None:
        super().__init__(inner)
        self.key = key

    def __getattr__(self, name: str) -> Any:
        # where/security/path_for of the wrapped transport, for `digest send-test`.
        return getattr(self.inner, name)

    def send(self, message: Outgoing, recipient: str) -> None:
        wire = Wire.of(message)
        self.inner.send(Wire(sign(wire.data, self.key), wire.message_id, wire.envelope_from), recipient)


@dataclass(frozen=True)
class KeyPair:
    private_pem: bytes = field(repr=False)
    public_b64: str  # SubjectPublicKeyInfo, DER, base64: the p= of the DNS record


def generate_key(bits: int = 2048) -> KeyPair:
    """A new RSA key pair (PKCS#1 PEM private key)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return KeyPair(private_pem=pem, public_b64=base64.b64encode(der).decode("ascii"))


def txt_record(public_b64: str) -> str:
    """The TXT record's value: ``v=DKIM1; k=rsa; p=…``."""
    return f"v=DKIM1; k=rsa; p={public_b64}"


def dns_name(selector: str, domain: str) -> str:
    return f"{selector}._domainkey.{domain}"


def from_domain(sender: str) -> str:
    return parseaddr(sender)[1].rpartition("@")[2].lower()
