"""Edge helpers for :mod:`digest.fetch`: decoding a response body in bounded steps, and
telling an HTML page from a dump.

httpx decodes a ``Content-Encoding`` chain a whole network chunk at a time: a 1,827-byte
``gzip, gzip`` body that unpacks to 1 GiB reached 2.1 GB before the size limit could look
at it. Here each coding of the chain is undone by its own :mod:`zlib` decompressor that
never hands on more than :data:`STEP` bytes at once, lazily, so the caller counts (and
stops at its limit) while memory stays at a few steps per coding, whatever the ratio.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator

STEP = 64 * 1024  # bytes a decompressor hands on at most per call
MAX_CODINGS = 3  # a longer chain is no real server's doing
ACCEPT_ENCODING = "gzip, deflate"  # what :func:`decoded` undoes; sent with every request
_GZIP = frozenset({"gzip", "x-gzip"})
_CODINGS = _GZIP | {"deflate"}


class BodyError(Exception):
    """The body cannot be decoded; the message says why (one line)."""


def codings(header: str | None) -> list[str]:
    """The ``Content-Encoding`` chain in the order the server applied it, ``identity``
    left out. BodyError for a coding this module does not undo or a chain too long."""
    chain = [c.strip().lower() for c in (header or "").split(",") if c.strip()]
    chain = [c for c in chain if c != "identity"]
    for coding in chain:
        if coding not in _CODINGS:
            raise BodyError(
                f"Content-Encoding {coding!r} is not supported (only gzip and deflate were asked for)"
            )
    if len(chain) > MAX_CODINGS:
        raise BodyError(f"Content-Encoding stacks {len(chain)} codings ({', '.join(chain)}); refused")
    return chain


def decoded(raw: Iterable[bytes], chain: list[str], step: int = STEP) -> Iterator[bytes]:
    """The body with ``chain`` undone (last applied, first undone), in pieces of at most
    ``step`` bytes, produced only as fast as they are consumed. BodyError for a broken
    or cut-off stream."""
    stream: Iterator[bytes] = iter(raw)
    for coding in reversed(chain):
        stream = _inflate(stream, coding, step)
    return stream


def _wbits(coding: str, head: bytes) -> int:
    if coding in _GZIP:
        return 16 + zlib.MAX_WBITS
    # "deflate" is meant to be zlib-wrapped, but many servers send raw deflate.
    if len(head) >= 2 and head[0] & 0x0F == 8 and (head[0] << 8 | head[1]) % 31 == 0:
        return zlib.MAX_WBITS
    return -zlib.MAX_WBITS


def _inflate(chunks: Iterator[bytes], coding: str, step: int) -> Iterator[bytes]:
    d: zlib._Decompress | None = None
    done = False  # a whole stream was read (more gzip members may follow)
    try:
        for chunk in chunks:
            data = chunk
            while data:
                if d is None:
                    if done and coding not in _GZIP:
                        data = b""  # bytes after the end of a deflate stream: ignored
                        break
                    d = zlib.decompressobj(_wbits(coding, data))
                out = d.decompress(data, step)
                if out:
                    yield out
                # Output still pending inside zlib is asked for with no new input.
                while len(out) == step and not d.eof and not d.unconsumed_tail:
                    out = d.decompress(b"", step)
                    if out:
                        yield out
                if d.eof:
                    data, d, done = d.unused_data, None, True  # a next gzip member, or nothing
                else:
                    data = d.unconsumed_tail
    except zlib.error as err:
        raise BodyError(f"the {coding} body is broken ({err})") from err
    if d is not None or not done:
        raise BodyError(f"the {coding} body is cut short")


# How an HTML (or XML) document starts, after a BOM and white space, lower-cased.
_MARKUP_STARTS = (b"<!doctype", b"<html", b"<head", b"<body", b"<?xml", b"<!--", b"<meta", b"<title")
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})


def html_type(content_type: str | None) -> bool:
    """Whether a ``Content-Type`` names an HTML page."""
    return (content_type or "").split(";")[0].strip().lower() in HTML_TYPES


def markup_start(body: bytes) -> str | None:
    """The first line of ``body`` (up to 40 characters) when it starts like an HTML or XML
    document, else None."""
    head = body[:512].removeprefix(b"\xef\xbb\xbf").lstrip()
    if not head.lower().startswith(_MARKUP_STARTS):
        return None
    return head.split(b"\n", 1)[0][:40].decode("utf-8", "replace").strip()
