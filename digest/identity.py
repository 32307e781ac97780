"""Stable identities: paper keys, GUIDs, archive URLs and Message-IDs.

These never change between versions: feed readers and mail clients remember them.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable
from functools import partial
from urllib.parse import quote

from digest.identity_ascii import ascii_key

_NON_ALNUM = re.compile(r"[\W_]+")


# Unicode category Cf (soft hyphen, zero-width space/joiners, word joiner, BOM, bidi
# marks): invisible, so "Atten\u00adtion" is the title "Attention" to a reader. Written
# out (Unicode 14, Python 3.11), not computed: a key must not change with the Python
# that runs (tests/test_harden_inbox.py checks the list against unicodedata).
FORMAT_RANGES = (
    (0x00AD, 0x00AD), (0x0600, 0x0605), (0x061C, 0x061C), (0x06DD, 0x06DD), (0x070F, 0x070F),
    (0x0890, 0x0891), (0x08E2, 0x08E2), (0x180E, 0x180E), (0x200B, 0x200F), (0x202A, 0x202E),
    (0x2060, 0x2064), (0x2066, 0x206F), (0xFEFF, 0xFEFF), (0xFFF9, 0xFFFB), (0x110BD, 0x110BD),
    (0x110CD, 0x110CD), (0x13430, 0x13438), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001), (0xE0020, 0xE007F),
)  # fmt: skip
_DROP_FORMAT: dict[int, None] = {c: None for lo, hi in FORMAT_RANGES for c in range(lo, hi + 1)}


def paper_key(title: str) -> str:
    """Format characters (Unicode category Cf) dropped, NFKC, casefold, every run of
    non-alphanumerics to one space, stripped. Idempotent.

    Until schema version 6 format characters became spaces; papers stored before keep
    the GUID and anchor of their old key (``papers.guid_key``, :mod:`digest.store.keys`).
    """
    if title.isascii():  # most titles: the fast path, same key (digest/identity_ascii.py)
        return ascii_key(title)
    text = unicodedata.normalize("NFKC", title.translate(_DROP_FORMAT)).casefold()
    return _NON_ALNUM.sub(" ", text.translate(_DROP_FORMAT)).strip()


def has_format_chars(text: str) -> bool:
    """Whether ``text`` holds a character :func:`paper_key` drops (category Cf)."""
    return not text.isascii() and len(text.translate(_DROP_FORMAT)) != len(text)


def key_hash(key: str) -> str:
    """First 16 hex digits of the key's sha256: short, stable, URL- and id-safe."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def paper_guid(key: str) -> str:
    """The feed GUID / Atom id of a paper, stable forever."""
    return f"urn:paper-digest:{key_hash(key)}"


def paper_anchor(key: str) -> str:
    """The fragment id of a paper on its digest's archive page."""
    return f"p-{key_hash(key)}"


def digest_path(slug: str, page: int = 1) -> str:
    """Path of a digest's archive page, relative to the site root: ``digests/<slug>.html``
    for its first page, ``digests/<slug>-p<n>.html`` for page ``n`` of a paginated one."""
    return f"digests/{slug}.html" if page <= 1 else f"digests/{slug}-p{page}.html"


def site_url(base_url: str, path: str = "") -> str:
    """``path`` joined to the site's base URL (which always ends in a slash)."""
    return base_url.rstrip("/") + "/" + path.lstrip("/")


def archive_url(base_url: str, slug: str, key: str, page: int = 1) -> str:
    """Absolute URL of a paper's entry on (page ``page`` of) its digest's archive page."""
    return f"{site_url(base_url, digest_path(slug, page))}#{paper_anchor(key)}"


def page_of(seq: int, first_seq: int, page_size: int) -> int:
    """The page (1-based) of a digest's archive that holds the paper ``seq``: pages cut
    the digest's seq range into runs of ``page_size``, so a page never holds more than
    ``page_size`` papers and a paper's page follows from its seq alone (a feed or an
    email links to it without reading the rest of the digest)."""
    return max(0, seq - first_seq) // page_size + 1


def message_id(digest_id: int, recipient: str, domain: str, install: str) -> str:
    """Message-ID of a digest for one recipient. ``install`` is the state's random install
    id, so another install (or this one after its state was deleted) never repeats it;
    the outbox stores it on the delivery row, so every retry sends the same one."""
    who = hashlib.sha256(recipient.strip().lower().encode("utf-8")).hexdigest()[:16]
    return f"<digest-{digest_id}.{who}.{install}@{domain}>"


def message_ids(domain: str, install: str) -> Callable[[int, str], str]:
    """:func:`message_id` for ``domain`` and the state's ``install`` id
    (``Store.install_id()``): what ``Store.create_digest`` mints each delivery's
    Message-ID with."""
    return partial(message_id, domain=domain, install=install)


def arxiv_search_url(title: str) -> str:
    """An arXiv title search for a paper the dump gave no URL for."""
    return f"https://arxiv.org/search/?query={quote(title, safe='')}&searchtype=title"


def hf_search_url(title: str) -> str:
    """A Hugging Face papers search for the title."""
    return f"https://huggingface.co/papers?q={quote(title, safe='')}"
