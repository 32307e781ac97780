"""Pure: an unsubscribe request that came by email → the tokens its Subject carries.

Every email's ``List-Unsubscribe`` has a ``mailto:`` asking for the subject
``unsubscribe <token>``, the token signed for that subscriber and the purpose
"unsubscribe" (:func:`digest.tokens.unsubscribe_urls`). :func:`request_tokens` says
whether a message is such a request (its Subject, decoded and unfolded, is the word
"unsubscribe" after any reply or forward prefixes, then anything) and which words after
it may be the token. Whether one is valid, and whom it names, is for the signer to say
(:mod:`digest.bouncing`): a From header is not looked at, since anyone can write one.
Reads no clock, environment or disk.
"""

from __future__ import annotations

import re
from email.header import decode_header, make_header
from email.parser import BytesParser
from email.policy import compat32
from urllib.parse import unquote

# "Re: ", "Fwd: ", "AW: ", "SV: ", "[list] "…, then the word itself, then the rest.
_REQUEST = re.compile(
    r"^(?:\s*(?:(?:re|fwd?|aw|sv|wg|tr)(?:\[\d+\])?\s*:|\[[^\]]*\]))*\s*unsubscribe\b(.*)$",
    re.IGNORECASE | re.DOTALL,
)
_WORD = re.compile(r"^[A-Za-z0-9_.-]{8,400}$")  # what a signed token is made of (URL-safe)
MAX_CANDIDATES = 4  # words tried against the signer: a long subject tries no more


def header_of(raw: bytes, name: str) -> str:
    """The message's header ``name`` as text: RFC 2047 words decoded, folded lines
    joined; empty when it has none."""
    msg = BytesParser(policy=compat32).parsebytes(raw, headersonly=True)
    value = msg.get(name)
    if value is None:
        return ""
    try:
        text = str(make_header(decode_header(str(value))))
    except (LookupError, UnicodeError, ValueError):  # an unknown charset: read it as it is
        text = str(value)
    return " ".join(text.split())


def request_tokens(raw: bytes) -> tuple[str, ...] | None:
    """None when the message is no unsubscribe request; else the words of its Subject
    after "unsubscribe" that may be a token (percent-escapes undone, as a mail client
    that did not decode the ``mailto:`` leaves them), at most :data:`MAX_CANDIDATES`;
    empty for a bare "unsubscribe"."""
    match = _REQUEST.match(header_of(raw, "Subject"))
    if match is None:
        return None
    words = unquote(match.group(1)).split()
    return tuple(w for w in words if _WORD.match(w))[:MAX_CANDIDATES]
