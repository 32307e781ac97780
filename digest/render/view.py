"""The view model every renderer shares: what a paper or digest shows, computed once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from digest import identity, text
from digest.model import Digest, StoredPaper


@dataclass(frozen=True, slots=True)
class Site:
    """What every page and feed says about the site."""

    title: str
    description: str
    language: str
    base_url: str


@dataclass(frozen=True, slots=True)
class PaperView:
    """One paper as readers see it, with every link it offers."""

    seq: int
    key: str
    title: str
    abstract: str  # the abstract with ``url{url}`` artefacts removed
    segments: tuple[tuple[str, str | None], ...]  # abstract as (text, url) runs
    links: tuple[str, ...]
    guid: str
    anchor: str
    url: str  # its entry on the digest's archive page
    arxiv_url: str  # the paper itself when the dump gave an arXiv id, else a title search
    hf_url: str
    first_seen: datetime
    listing_date: str | None
    authors: tuple[str, ...]
    upvotes: int | None
    digest_slug: str
    arxiv_id: str | None = None  # set when the source gave one (the Hugging Face JSON does)


@dataclass(frozen=True, slots=True)
class DigestView:
    """A digest as readers see it: where it lives and what date it carries."""

    id: int
    slug: str
    created: datetime
    day_label: str  # "22 Nov 2026" in the configured time zone
    iso_date: str  # "2026-11-22"
    url: str
    path: str
    count: int
    first_seq: int = 0  # a paper's position in the digest is its seq minus this
    pages: int = 1  # archive pages the digest is split into (archive.page_size)
    firsts: tuple[tuple[str, str], ...] = ()  # (title, anchor) of its first papers, for lists


def paper_view(paper: StoredPaper, slug: str, base_url: str, page: int = 1) -> PaperView:
    """``page``: the page of the digest's archive that holds the paper (its ``url``);
    :func:`digest_paper_views` works it out."""
    p = paper.paper
    if p.arxiv_id:
        arxiv = f"https://arxiv.org/abs/{p.arxiv_id}"
        hf = f"https://huggingface.co/papers/{p.arxiv_id}"
    else:
        arxiv = identity.arxiv_search_url(p.title)
        hf = identity.hf_search_url(p.title)
    # Stored text may predate the parser's cleaning or come from a JSON dump: render only
    # what every output format can carry, with leftover LaTeX shown as text.
    segs = text.segments(text.display(p.abstract))
    return PaperView(
        seq=paper.seq,
        key=p.key,
        title=text.display(p.title),
        abstract="".join(piece for piece, _ in segs),
        segments=segs,
        links=p.links,
        guid=identity.paper_guid(paper.ident),
        anchor=identity.paper_anchor(paper.ident),
        url=identity.archive_url(base_url, slug, paper.ident, page),
        arxiv_url=arxiv,
        hf_url=hf,
        first_seen=paper.first_seen,
        listing_date=p.listing_date,
        authors=tuple(text.display(a) for a in p.authors),
        upvotes=p.upvotes,
        digest_slug=slug,
        arxiv_id=p.arxiv_id,
    )


def digest_paper_views(
    digest: Digest, papers: Sequence[StoredPaper], base_url: str, page_size: int
) -> list[PaperView]:
    """Views of papers of ``digest``, each linking to the archive page that holds it."""
    return [
        paper_view(p, digest.slug, base_url, identity.page_of(p.seq, digest.first_seq, page_size))
        for p in papers
    ]


def day_label(moment: datetime, tz: ZoneInfo) -> str:
    """``22 Nov 2026``: unambiguous in every locale."""
    local = moment.astimezone(tz)
    return f"{local.day} {local:%b %Y}"


def digest_view(
    digest: Digest,
    base_url: str,
    tz: ZoneInfo,
    page_size: int | None = None,
    firsts: Sequence[tuple[str, str]] = (),
) -> DigestView:
    """``page_size`` None: one page, whatever the size (callers that link only to the
    digest's first page need not know the archive's page size)."""
    path = identity.digest_path(digest.slug)
    pages = 1 if page_size is None else identity.page_of(digest.last_seq, digest.first_seq, page_size)
    return DigestView(
        id=digest.id,
        slug=digest.slug,
        created=digest.created,
        day_label=day_label(digest.created, tz),
        iso_date=digest.created.astimezone(tz).date().isoformat(),
        url=identity.site_url(base_url, path),
        path=path,
        count=digest.paper_count,
        first_seq=digest.first_seq,
        pages=pages,
        firsts=tuple(firsts),
    )
