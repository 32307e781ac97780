"""A small, fixed published state shared by the feed and site tests (and their goldens).

Two digests: the first three papers of each real sample dump, a dump of titles and
abstracts that look like markup or templates, and one paper with authors, an arXiv id
and upvotes (what the Hugging Face JSON source gives), all on a fixed clock.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from digest.config import Config
from digest.identity import paper_key
from digest.model import Paper
from digest.pipeline import RunReport, run_once
from digest.store import Store
from digest.transports import FileTransport
from tests.helpers import DUMP_000, DUMP_002, NOW

DAY1 = NOW - timedelta(days=1)

TRICKY_TITLE = "<b>Bold</b> & <script>alert(1)</script> Claims: W_+ [MASK] Models"
TRICKY_ABSTRACT = (
    "We prove x < y && y > z for every W_+ and W_- weight, that a tag such as <i>this</i> stays text, "
    "and that {{ x }}, {% if x %} and ${x} are not templates; [MASK] tokens, café, Łódź, naïve "
    "and emoji 🦀🚀 survive every format. Code: https://github.com/ex/ample{https://github.com/ex/ample}."
)
TEMPLATE_TITLE = "Łukasz's Café: {{ x }} Is Not a Template 🦀"
TEMPLATE_ABSTRACT = (
    "A title with a template marker {{ x }}, a Polish Ł and an emoji 🦀 must come out exactly as written, "
    "in feeds, pages and emails alike; see https://example.com/a_(b)?q=1&r=2, (https://example.org/x)."
)
TRICKY_DUMP = (
    "new\n\nGet trending papers in your email inbox!\n\nSubscribe\n\nDaily Papers\n\n"
    "byAK and the research community\n\nNov 22\n\n"
    f"{TRICKY_TITLE}\n\n{TRICKY_ABSTRACT}\n\n{TEMPLATE_TITLE}\n\n{TEMPLATE_ABSTRACT}\n"
)
AUTHORED = Paper(
    key=paper_key("Attention Is All You Need"),
    title="Attention Is All You Need",
    abstract="The dominant sequence transduction models are based on complex recurrent networks.",
    arxiv_id="1706.03762",
    authors=("Ashish Vaswani", "Noam Shazeer", "Niki Parmar"),
    upvotes=42,
)


def head_spaced(path: Path, papers: int) -> str:
    """The furniture and the first ``papers`` papers of a spaced dump (000_…)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    start = lines.index("Aug 8") + 2
    return "\n".join(lines[: start + 4 * papers]) + "\n"


def head_compact(path: Path, papers: int) -> str:
    """The furniture and the first ``papers`` papers of a compact dump (002_…)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return "\n".join(lines[: 2 + 2 * papers]) + "\n"


def ingest_authored(store: Store) -> None:
    """Stores a paper the way a JSON source would, with authors, arXiv id and upvotes."""
    store.ingest(
        name="hf-daily-papers.json",
        sha256="f" * 64,
        size=1,
        mtime_ns=0,
        papers_in=[AUTHORED],
        layout=lambda: "json",
        now=NOW,
    )


def build_fixed_state(config: Config, store: Store, inbox: Path) -> tuple[RunReport, RunReport]:
    """Day 1: three papers of 000_…; day 2: three of 002_…, the tricky dump and the
    authored paper. Returns both runs' reports; the site is in ``config.feed.output_dir``."""
    transport = FileTransport(config.email.outbox)
    (inbox / "a_000_head.txt").write_text(head_spaced(DUMP_000, 3), encoding="utf-8")
    first = run_once(config, store, transport, DAY1)
    ingest_authored(store)
    (inbox / "b_002_head.txt").write_text(head_compact(DUMP_002, 3), encoding="utf-8")
    (inbox / "c_tricky.txt").write_text(TRICKY_DUMP, encoding="utf-8")
    second = run_once(config, store, transport, NOW)
    return first, second
