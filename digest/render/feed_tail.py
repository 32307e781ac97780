"""The tail of an RSS item (``<category>``, ``<pubDate>``) and of an Atom entry
(``<category>``, ``<published>``), written by a feedgen entry
extension instead of feedgen's own setters (a speed and thread-safety fix, README,
Performance).

feedgen formats every ``pubDate`` with ``formatRFC2822``, which calls
``locale.setlocale(LC_ALL)`` three times per date: a tenth of an RSS feed's time, and
process-global, so not safe while another thread formats anything by locale. Its
``category`` setter validates a list of dicts per item. :func:`rfc2822` formats the date
without the locale, and :class:`ItemTail` appends the two elements where feedgen's
``rss_entry`` would have put them: after ``guid`` and before every extension (it is
registered before ``dc``), since an item sets no ``comments``, ``enclosure`` or ``source``.
An Atom entry's ``link``, ``summary``, ``category`` and ``published`` go the same way
(the link and category setters validate lists of dicts): last, after the content, where
``atom_entry`` puts them when no ``contributor``, ``rights`` or ``source`` is set.

The plain reference is ``fe.category(term=t, label=l)`` and ``fe.published(moment)``,
and for Atom ``fe.link(href=url, rel="alternate")`` and ``fe.summary(text, type="text")``:
``tests/test_feed_tail.py`` holds the feeds built both ways byte-identical.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import feedgen.feed  # noqa: F401  (feedgen.util uses lxml.etree, which feedgen.feed imports)

# isort: split
from feedgen.ext.base import BaseEntryExtension, BaseExtension
from feedgen.util import xml_elem

NAMESPACE = "paper_digest_tail"  # the attribute feedgen gives each entry: ``fe.paper_digest_tail``

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_ZERO = timedelta(0)


def rfc2822(moment: datetime) -> str:
    """``moment.strftime('%a, %d %b %Y %H:%M:%S %z')`` in the C locale, as feedgen's
    ``formatRFC2822`` gives it, without touching the process's locale."""
    offset = "+0000" if moment.utcoffset() == _ZERO else moment.strftime("%z")
    return (
        f"{_DAYS[moment.weekday()]}, {moment.day:02d} {_MONTHS[moment.month - 1]} {moment.year:d} "
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d} {offset}"
    )


class FeedTail(BaseExtension):  # type: ignore[misc]  # feedgen is untyped
    """The feed side of the extension: no namespace, nothing on the channel."""


class ItemTail(BaseEntryExtension):  # type: ignore[misc]
    """Call :meth:`set` once per entry (and :meth:`set_atom_link` for Atom); an entry
    left unset gets none of the elements."""

    def __init__(self) -> None:
        self._category: tuple[str, str] | None = None
        self._published: datetime | None = None
        self._link: str | None = None
        self._summary = ""

    def set(self, term: str, label: str, published: datetime) -> None:
        """What ``fe.category(term=term, label=label)`` and ``fe.published(published)``
        set (feedgen's RSS category is the label, its pubDate the published time)."""
        if not isinstance(published, datetime) or published.tzinfo is None:
            raise ValueError("published needs a datetime with a timezone")  # as feedgen's setter
        self._category = (term, label)
        self._published = published

    def set_atom_link(self, href: str, summary: str) -> None:
        """What ``fe.link(href=href, rel="alternate")`` and ``fe.summary(summary,
        type="text")`` give an Atom entry: feedgen writes an entry link's href only (its
        rel and type are lost to a shadowed variable in feedgen 1.0), then the summary.
        The entry must have a content element (feedgen requires content or a link)."""
        self._link = href
        self._summary = summary

    def extend_rss(self, entry: Any) -> Any:
        if self._category is not None and self._published is not None:
            xml_elem("category", entry).text = self._category[1]
            xml_elem("pubDate", entry).text = rfc2822(self._published)
        return entry

    def extend_atom(self, entry: Any) -> Any:
        if self._link is not None:
            xml_elem("link", entry, href=self._link)
            summary = xml_elem("summary", entry, type="text")
            if self._summary:
                summary.text = self._summary
        if self._category is not None and self._published is not None:
            term, label = self._category
            xml_elem("category", entry, term=term, label=label)
            xml_elem("published", entry).text = self._published.isoformat()
        return entry
