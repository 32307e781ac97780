"""Edge: the transports (SMTP, ``.eml`` files) that hand one :data:`Outgoing` message to
one recipient. A transport either returns (the message was accepted) or raises
DeliveryError, whose ``temporary`` flag says whether to retry. Delivering the outbox,
and marking rows sent, is :func:`digest.outbox.deliver_pending`'s.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import smtplib
import ssl
from email.message import EmailMessage
from pathlib import Path
from types import TracebackType
from typing import Protocol

from digest.atomic import remove_stale_temps, write_atomic
from digest.config import Config, SmtpSection
from digest.crashpoints import crash_point
from digest.errors import DeliveryError
from digest.render.email import Wire, to_bytes

# What a transport sends: a built message, or its finished bytes with the Message-ID and
# envelope sender (``render.email.Wire``, what the outbox's shared rendering cuts).
Outgoing = EmailMessage | Wire


class Transport(Protocol):
    """Sends one message to one recipient; used as a context manager around a run."""

    def __enter__(self) -> Transport: ...

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    def send(self, message: Outgoing, recipient: str) -> None: ...


class FileTransport:
    """Writes each message as ``<outbox>/<digest slug>/<recipient>.eml``, atomically.

    Re-sending the same delivery overwrites the same file: the name comes from the
    Message-ID, which is stable across retries.
    """

    def __init__(self, outbox: Path) -> None:
        self.outbox = outbox

    def __enter__(self) -> FileTransport:
        # A run killed mid-write left a hidden temp file; its delivery is still pending.
        remove_stale_temps(self.outbox)
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    def path_for(self, message: Outgoing, recipient: str) -> Path:
        mid = message.message_id if isinstance(message, Wire) else str(message["Message-ID"])
        local = "".join(c if c.isalnum() or c in "-_.@" else "_" for c in recipient)[:64]
        tag = hashlib.sha256(mid.encode()).hexdigest()[:8]
        return self.outbox / f"{mid.strip('<>').split('@')[0]}-{local}-{tag}.eml"

    def send(self, message: Outgoing, recipient: str) -> None:
        try:
            write_atomic(self.path_for(message, recipient), to_bytes(message))
        except OSError as err:
            raise DeliveryError(
                f"cannot write to the outbox {self.outbox}: {err.strerror}", temporary=True
            ) from err
        crash_point("deliver.file_written")


def _reply(code: int, text: bytes | str) -> str:
    reply = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return f"{code} {' '.join(reply.split())}".strip()


class SmtpTransport:
    """Sends over SMTP: one connection for every message of a run, reconnecting once
    when the server drops it.

    Error classes (DeliveryError.temporary): a 4xx reply, connection refused, a timeout,
    a TLS failure, a disconnect or a refused login are temporary (the row stays pending;
    a login or TLS problem is a setting to fix, not a reason to give up on a reader); a
    5xx reply to the message or the recipient is permanent for that recipient only.
    After the connection could not be opened, the rest of the run fails fast with the
    same error instead of waiting out the timeout for every recipient.

    ``settings`` is ``[email.smtp]``: host, port, security, login and timeout.
    """

    def __init__(
        self,
        settings: SmtpSection,
        *,
        context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
    ) -> None:
        if settings.security not in ("starttls", "ssl", "none"):
            raise ValueError(f"unknown SMTP security {settings.security!r}")
        self.settings = settings
        self.context = context
        self.local_hostname = local_hostname
        self._smtp: smtplib.SMTP | None = None
        self._broken: DeliveryError | None = None

    @property
    def where(self) -> str:
        return f"{self.settings.host}:{self.settings.port}"

    def __enter__(self) -> SmtpTransport:
        self._broken = None
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()

    def _context(self) -> ssl.SSLContext:
        return self.context or ssl.create_default_context()

    def _connect(self) -> smtplib.SMTP:
        smtp: smtplib.SMTP
        s = self.settings
        stage = "connect to"
        try:
            if s.security == "ssl":
                smtp = smtplib.SMTP_SSL(
                    s.host,
                    s.port,
                    timeout=s.timeout,
                    context=self._context(),
                    local_hostname=self.local_hostname,
                )
            else:
                smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout, local_hostname=self.local_hostname)
            try:
                smtp.ehlo()
                if s.security == "starttls":
                    stage = "start TLS with"
                    smtp.starttls(context=self._context())
                    smtp.ehlo()
                if s.username:
                    stage = "log in to"
                    smtp.login(s.username, s.password)
            except BaseException:
                smtp.close()
                raise
        except smtplib.SMTPNotSupportedError as err:
            raise DeliveryError(
                f"cannot {stage} {self.where}: {err} (check email.smtp.security)", temporary=True
            ) from err
        except smtplib.SMTPAuthenticationError as err:
            raise DeliveryError(
                f"cannot log in to {self.where} as {s.username!r}: {_reply(err.smtp_code, err.smtp_error)}"
                " (check email.smtp.username and DIGEST_SMTP_PASSWORD)",
                temporary=True,
            ) from err
        except smtplib.SMTPResponseException as err:
            raise DeliveryError(
                f"cannot {stage} {self.where}: {_reply(err.smtp_code, err.smtp_error)}", temporary=True
            ) from err
        except (smtplib.SMTPException, OSError) as err:
            raise DeliveryError(f"cannot {stage} {self.where}: {_oserror(err)}", temporary=True) from err
        return smtp

    def send(self, message: Outgoing, recipient: str) -> None:
        """Sends one message. A connection kept from an earlier message that turns out
        to be closed is reopened once, for a disconnect before anything of this message
        was sent; nothing else is tried twice. Above all, once the final ``.`` went out
        an unanswered message may have been accepted: it is a temporary failure (the row
        stays pending, the next run sends it again with the same Message-ID), never sent
        again at once. A timeout is never retried here, so a stalled server costs one
        ``timeout`` per message, not two."""
        if self._broken is not None:
            raise self._broken
        wire = Wire.of(message)
        for attempt in (1, 2):
            reused = self._smtp is not None
            if self._smtp is None:
                try:
                    self._smtp = self._connect()
                except DeliveryError as err:
                    self._broken = err
                    raise
            stage = _Stage()
            try:
                _transaction(self._smtp, wire.envelope_from, recipient, wire.data, stage)
            except smtplib.SMTPServerDisconnected as err:
                self._smtp = None
                if stage.dot_sent:
                    raise DeliveryError(_unanswered(self.where, err), temporary=True) from err
                if attempt == 1 and reused and stage.commands == 1 and not _timed_out(err):
                    continue  # the server dropped an idle connection: reconnect once
                raise DeliveryError(f"{self.where} closed the connection: {err}", temporary=True) from err
            except smtplib.SMTPRecipientsRefused as err:
                code, text = err.recipients.get(recipient, (550, b"recipient refused"))
                raise _classified(code, text, "refused the recipient", recipient=True) from err
            except smtplib.SMTPSenderRefused as err:
                raise _classified(err.smtp_code, err.smtp_error, "refused the sender") from err
            except smtplib.SMTPResponseException as err:
                raise _classified(err.smtp_code, err.smtp_error, "refused the message") from err
            except (smtplib.SMTPException, OSError) as err:
                # A timeout or reset mid-message: the connection cannot be trusted any more.
                smtp, self._smtp = self._smtp, None
                if smtp is not None:
                    smtp.close()
                if stage.dot_sent:
                    raise DeliveryError(_unanswered(self.where, err), temporary=True) from err
                raise DeliveryError(
                    f"sending to {self.where} failed: {_oserror(err)}", temporary=True
                ) from err
            return


class _Stage:
    """How far one SMTP transaction got: commands sent, and whether the message's final
    ``.`` went out (after which the server may have accepted it)."""

    __slots__ = ("commands", "dot_sent")

    def __init__(self) -> None:
        self.commands = 0
        self.dot_sent = False


def _transaction(smtp: smtplib.SMTP, sender: str, recipient: str, data: bytes, stage: _Stage) -> None:
    """MAIL, RCPT, DATA, the message: what ``smtplib.SMTP.sendmail`` does for one
    recipient, step by step so that a failure is known to fall before or after the final
    ``.``. Raises the smtplib exceptions sendmail raises."""
    smtp.ehlo_or_helo_if_needed()
    options = [f"size={len(data)}"] if smtp.does_esmtp and smtp.has_extn("size") else []
    stage.commands = 1
    code, reply = smtp.mail(sender, options)
    if code != 250:
        _abandon(smtp, code)
        raise smtplib.SMTPSenderRefused(code, reply, sender)
    stage.commands = 2
    code, reply = smtp.rcpt(recipient)
    if code not in (250, 251):
        _abandon(smtp, code)
        raise smtplib.SMTPRecipientsRefused({recipient: (code, reply)})
    stage.commands = 3
    code, reply = smtp.docmd("DATA")
    if code != 354:
        _abandon(smtp, code)
        raise smtplib.SMTPDataError(code, reply)
    payload = _DOT_LINE.sub(b"..", data)  # dot-stuffing, as smtplib does
    if not payload.endswith(b"\r\n"):
        payload += b"\r\n"
    smtp.send(payload + b".\r\n")
    stage.dot_sent = True
    code, reply = smtp.getreply()
    if code != 250:
        _abandon(smtp, code)
        raise smtplib.SMTPDataError(code, reply)


_DOT_LINE = re.compile(rb"(?m)^\.")


def _abandon(smtp: smtplib.SMTP, code: int) -> None:
    # As sendmail: 421 means the server is closing; otherwise reset for the next message.
    if code == 421:
        smtp.close()
        return
    with contextlib.suppress(smtplib.SMTPServerDisconnected):
        smtp.rset()


def _timed_out(err: BaseException) -> bool:
    # smtplib turns a socket timeout into SMTPServerDisconnected("... timed out").
    return isinstance(err.__context__, TimeoutError) or "timed out" in str(err)


def _unanswered(where: str, err: BaseException) -> str:
    what = "timed out" if isinstance(err, TimeoutError) or _timed_out(err) else "the connection closed"
    return (
        f"{where} did not answer after the message was sent ({what}); it may have been "
        "delivered, so it is not resent in this run: it stays pending, and a later run "
        "sends it again with the same Message-ID"
    )


def _classified(code: int, text: bytes | str, what: str, *, recipient: bool = False) -> DeliveryError:
    permanent = 500 <= code < 600
    reply = _reply(code, text)
    refused = (code, reply.partition(" ")[2]) if recipient else None
    return DeliveryError(f"server {what}: {reply}", temporary=not permanent, refused_recipient=refused)


def _oserror(err: BaseException) -> str:
    if isinstance(err, TimeoutError):
        return "timed out"
    if isinstance(err, ConnectionRefusedError):
        return "connection refused"
    return str(err) or type(err).__name__


def make_transport(config: Config) -> Transport:
    """The transport ``email.transport`` names: ``file`` (the default) or ``smtp``,
    signing every message with DKIM when ``[email.dkim]`` is set."""
    transport: Transport
    if config.email.transport == "smtp":
        transport = SmtpTransport(config.email.smtp)
    else:
        transport = FileTransport(config.email.outbox)
    dkim = config.email.dkim
    if dkim.enabled and dkim.key_file is not None:
        from digest.signing import SigningTransport, load_key

        transport = SigningTransport(transport, load_key(dkim.selector, dkim.domain, dkim.key_file))
    return transport
