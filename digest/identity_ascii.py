"""Pure: the ASCII fast path of :func:`digest.identity.paper_key` (README, Performance:
ingest), kept apart so that its one trick is read, and tested, on its own.

For an ASCII title NFKC changes nothing, casefold is ``lower`` and the alphanumerics are
``[a-z0-9]``: a byte translation and a split do the work of the regex about 4x faster.
``tests/test_reference.py`` holds it to the rule written out the plain way.
"""

from __future__ import annotations

# ASCII letters and digits kept, every other byte a space.
_ASCII_ALNUM = bytes(c if chr(c).isalnum() and c < 128 else 32 for c in range(256))


def ascii_key(title: str) -> str:
    """``paper_key(title)`` for an ASCII ``title`` (``title.isascii()`` must hold)."""
    return " ".join(title.lower().encode("ascii").translate(_ASCII_ALNUM).decode("ascii").split())
