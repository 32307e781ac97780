"""Pure: the static archive site, an index of digests and one page per digest."""

from __future__ import annotations

from collections.abc import Sequence

from digest.render import templates
from digest.render.view import DigestView, PaperView


def digest_page(site_title: str, language: str, digest: DigestView, papers: Sequence[PaperView]) -> bytes:
    """One digest's page: every paper with an anchor readers and feeds link to."""
    html = templates.render(
        "archive.html",
        site_title=site_title,
        language=language,
        digest=digest,
        papers=papers,
        root="../",
    )
    return html.encode("utf-8")


def index_page(site_title: str, description: str, language: str, digests: Sequence[DigestView]) -> bytes:
    """The archive's front page: digests newest first, with feed autodiscovery."""
    html = templates.render(
        "index.html",
        site_title=site_title,
        description=description,
        language=language,
        digests=digests,
        root="",
    )
    return html.encode("utf-8")
