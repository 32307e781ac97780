"""Pure core: read one delivery report (a bounce) and say who bounced, hard or soft.

:func:`parse_report` takes the bytes of one message as it arrived at the bounce
mailbox and returns a :class:`Report`: the VERP token of the envelope it came back to
(``bounces+TOKEN@domain`` in ``Delivered-To``/``To``/``X-Original-To``) and the failed
recipients, each classified:

- ``hard``: an RFC 3464 ``Status: 5.x.x`` (or ``Action: failed`` without a status), or a
  permanent failure flufl.bounce recognises in a non-standard bounce;
- ``soft``: ``Status: 4.x.x`` / ``Action: delayed``, or a temporary failure per flufl.bounce.

Recipients whose per-recipient DSN block says ``delivered``/``relayed``/``expanded`` are not
failures and are left out. :func:`refusal` says which refusals at ``RCPT TO`` (a
synchronous bounce) are hard bounces. Reads no clock, environment or disk.
"""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass, field
from email.message import EmailMessage, Message
from typing import Literal

from flufl.bounce import all_failures

from digest.render.email import Wire

Kind = Literal["hard", "soft"]

_STATUS_RE = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})")
_ADDR_RE = re.compile(r"^\s*(?:rfc822\s*;)?\s*<?([^<>\s;]+@[^<>\s;]+?)>?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Failure:
    """One failed recipient: the address (lower-cased), ``hard``/``soft``, the DSN status
    code (``"5.1.1"``; empty when the bounce gave none) and the diagnostic text if any."""

    address: str
    kind: Kind
    status: str = ""
    diagnostic: str = ""


@dataclass(frozen=True)
class Report:
    """What one bounce message says. ``token`` is the VERP token or ``None``; ``failures``
    is sorted by address, one entry per address (hard wins over soft)."""

    token: str | None
    failures: tuple[Failure, ...] = field(default_factory=tuple)

    @property
    def is_bounce(self) -> bool:
        """True when the message reports at least one failure."""
        return bool(self.failures)


def verp_address(bounce_address: str, token: str) -> str:
    """``bounces@example.org`` + ``TOKEN`` → ``bounces+TOKEN@example.org``.

    The token must be non-empty and made of ``[a-z0-9._=-]`` (safe in a local part; lower
    case because MTAs may change the case of a local part)."""
    local, sep, domain = bounce_address.rpartition("@")
    if not sep or not local or not domain:
        raise ValueError(f"not an address: {bounce_address!r}")
    if not token or not re.fullmatch(r"[a-z0-9._=-]+", token):
        raise ValueError(f"bad VERP token: {token!r}")
    return f"{local}+{token}@{domain}"


def delivery_token(delivery_id: int) -> str:
    """The VERP token of one outbox row: ``d<id>``, an opaque id into the state (no secret)."""
    return f"d{delivery_id}"


def delivery_of(token: str) -> int | None:
    """The outbox row id a :func:`delivery_token` names, ``None`` for any other token."""
    m = re.fullmatch(r"d(\d{1,18})", token)
    return int(m.group(1)) if m else None


def with_envelope(message: EmailMessage | Wire, sender: str, *, return_path: bool) -> Wire:
    """The message with ``sender`` as its envelope sender (SMTP ``MAIL FROM``); with
    ``return_path`` a ``Return-Path: <sender>`` line is put first, for a message that is
    written to a file rather than handed to an MTA (RFC 5321 §4.4: an MTA adds it at
    final delivery, a message sent over SMTP should not carry one)."""
    wire = Wire.of(message)
    data = wire.data
    if return_path:
        data = f"Return-Path: <{sender}>\r\n".encode() + data
    return Wire(data, wire.message_id, sender)


def verp_token(address: str, bounce_address: str) -> str | None:
    """The (lower-cased) token of ``bounces+TOKEN@domain`` when ``address`` is a VERP form of
    ``bounce_address`` (local part and domain compared case-insensitively), else ``None``."""
    m = re.search(r"<?([^<>\s,]+@[^<>\s,]+)>?", address or "")
    if not m:
        return None
    local, _, domain = m.group(1).rpartition("@")
    b_local, _, b_domain = bounce_address.rpartition("@")
    base, plus, token = local.partition("+")
    if not plus or not token or base.lower() != b_local.lower() or domain.lower() != b_domain.lower():
        return None
    return token.lower()  # MTAs may change the case of a local part: tokens are lower-case


def _kind_of(status: str, action: str) -> Kind | None:
    m = _STATUS_RE.match(status)
    if m:
        return {"5": "hard", "4": "soft"}.get(m.group(1))  # type: ignore[return-value]
    action = action.strip().lower()
    if action == "failed":
        return "hard"
    if action == "delayed":
        return "soft"
    return None


def _dsn_failures(msg: Message) -> list[Failure]:
    """Per-recipient blocks of every ``message/delivery-status`` part (RFC 3464 §2.3)."""
    out: list[Failure] = []
    for part in msg.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        payload = part.get_payload()
        # The stdlib parses the part into a list of header blocks: the per-message block
        # first, then one per recipient.
        blocks = payload if isinstance(payload, list) else []
        for block in blocks[1:]:
            if not isinstance(block, Message):
                continue
            rcpt = block.get("Final-Recipient") or block.get("Original-Recipient") or ""
            m = _ADDR_RE.match(str(rcpt))
            if not m:
                continue
            status = str(block.get("Status", "")).strip()
            kind = _kind_of(status, str(block.get("Action", "")))
            if kind is None:
                continue
            sm = _STATUS_RE.match(status)
            out.append(
                Failure(
                    address=m.group(1).lower(),
                    kind=kind,
                    status=".".join(sm.groups()) if sm else "",
                    diagnostic=" ".join(str(block.get("Diagnostic-Code", "")).split()),
                )
            )
    return out


_REPLY_STATUS_RE = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")


def refusal(code: int, text: str) -> tuple[Kind, str] | None:
    """A refusal at ``RCPT TO`` (reply ``code`` and its ``text``) as a bounce of the
    recipient: ``("hard", status)`` when the server said the address itself is bad, else
    None (the message failed, the address may be fine).

    Hard: a 5xx reply whose enhanced status (RFC 3463) is ``5.1.x`` (bad mailbox or
    domain) or ``5.2.1`` (mailbox disabled); without an enhanced status, 550, 551 or 553
    (RFC 5321: mailbox unavailable, not local, name not allowed). Not a bounce: 4xx (tried
    again), ``5.7.x`` (policy: relay denied, authentication needed, spam refused: a fault
    of this sender, which would otherwise mark every subscriber bounced at once), and the
    other 5.x.x (system, network, protocol, content, mailbox full)."""
    if not 500 <= code < 600:
        return None
    m = _REPLY_STATUS_RE.match(text)
    if m:
        status = ".".join(m.groups())
        if m.group(1) == "5" and (m.group(2) == "1" or status == "5.2.1"):
            return "hard", status
        return None
    if code in (550, 551, 553):
        return "hard", ""
    return None


def _decode(addr: bytes | str) -> str:
    return (addr.decode("utf-8", "replace") if isinstance(addr, bytes) else addr).strip().lower()


def parse_report(raw: bytes, bounce_address: str = "") -> Report:
    """Read one report. ``bounce_address`` (``email.bounce_address``) is what VERP
    addresses are recognised against; empty = look for no token.

    Never raises on malformed input: a message that is not a bounce gives a report with
    no failures (and maybe a token)."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    token: str | None = None
    if bounce_address:
        for header in ("Delivered-To", "X-Original-To", "To", "Envelope-To"):
            for value in msg.get_all(header) or []:
                token = verp_token(str(value), bounce_address)
                if token:
                    break
            if token:
                break
    found: dict[str, Failure] = {}
    for f in _dsn_failures(msg):
        _keep(found, f)
    if not found:
        try:
            temporary, permanent = all_failures(msg)
        except Exception:  # a detector choking on odd input must not lose the message
            temporary, permanent = frozenset(), frozenset()
        for a in permanent:
            _keep(found, Failure(address=_decode(a), kind="hard"))
        for a in temporary:
            _keep(found, Failure(address=_decode(a), kind="soft"))
    failures = tuple(sorted(found.values(), key=lambda f: f.address))
    return Report(token=token, failures=failures)


def _keep(found: dict[str, Failure], f: Failure) -> None:
    old = found.get(f.address)
    if old is None or (old.kind == "soft" and f.kind == "hard"):
        found[f.address] = f
