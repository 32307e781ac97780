"""Seeded synthetic dumps shaped like the real samples in ``examples/dumps``.

Titles run 12-128 characters (mean about 68) and abstracts 440-1,900 (mean about
1,300), about a third of abstracts carry a code link (some with the
``url{url}`` LaTeX artefact), and both page layouts occur. Every title carries a
unique made-up model name, so paper ``i`` is the same paper in every dump that
lists it: dumps overlap the way real daily listings do.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

WORDS = [
    "learning",
    "model",
    "models",
    "language",
    "large",
    "neural",
    "network",
    "networks",
    "training",
    "data",
    "diffusion",
    "video",
    "image",
    "images",
    "generation",
    "visual",
    "vision",
    "transformer",
    "transformers",
    "attention",
    "features",
    "performance",
    "benchmark",
    "tasks",
    "task",
    "method",
    "methods",
    "approach",
    "propose",
    "proposed",
    "framework",
    "efficient",
    "scalable",
    "robust",
    "multimodal",
    "reasoning",
    "agents",
    "agent",
    "policy",
    "reward",
    "reinforcement",
    "representation",
    "representations",
    "segmentation",
    "detection",
    "retrieval",
    "alignment",
    "evaluation",
    "sparse",
    "dense",
    "latent",
    "token",
    "tokens",
    "context",
    "inference",
    "fine-tuning",
    "pretraining",
    "supervised",
    "self-supervised",
    "contrastive",
    "graph",
    "graphs",
    "temporal",
    "spatial",
    "3D",
    "scene",
    "scenes",
    "point",
    "cloud",
    "editing",
    "synthesis",
    "text-to-image",
    "speech",
    "audio",
    "code",
    "instruction",
    "instructions",
    "datasets",
    "experiments",
    "results",
    "demonstrate",
    "achieves",
    "state-of-the-art",
    "outperforms",
    "existing",
    "baseline",
    "the",
    "of",
    "and",
    "to",
    "in",
    "for",
    "with",
    "on",
    "a",
    "an",
    "we",
    "our",
    "that",
    "by",
    "from",
    "this",
    "is",
    "are",
    "which",
    "as",
    "via",
    "into",
    "across",
    "while",
    "without",
    "between",
    "both",
    "high-resolution",
    "low-rank",
    "zero-shot",
    "few-shot",
    "open",
    "world",
    "physical",
    "memory",
    "compression",
    "quantization",
    "distillation",
    "adaptive",
    "hierarchical",
]
TITLE_WORDS = [
    "Learning",
    "Scaling",
    "Efficient",
    "Robust",
    "Towards",
    "Unified",
    "Generalist",
    "Sparse",
    "Dense",
    "Latent",
    "Diffusion",
    "Transformers",
    "Models",
    "Language",
    "Vision",
    "Video",
    "Agents",
    "Reasoning",
    "Memory",
    "Attention",
    "Graph",
    "Neural",
    "Fields",
    "Reward",
    "Policy",
    "Alignment",
    "Retrieval",
    "Segmentation",
    "Benchmark",
    "Data",
    "World",
    "Open",
    "Zero-Shot",
    "Multimodal",
    "Adaptive",
    "Hierarchical",
    "Contrastive",
    "Generation",
    "Editing",
    "for",
    "with",
    "via",
    "and",
    "of",
    "in",
    "from",
    "Large",
    "Small",
    "Fast",
    "Long-Context",
    "Compositional",
    "3D",
]
SYLLABLES = [
    "ba",
    "be",
    "bi",
    "bo",
    "bu",
    "da",
    "de",
    "di",
    "do",
    "ka",
    "ke",
    "ki",
    "ko",
    "la",
    "le",
    "li",
    "lo",
    "ma",
    "me",
    "mi",
    "mo",
    "na",
    "ne",
    "ni",
    "no",
    "ra",
    "re",
    "ri",
    "ro",
    "sa",
    "se",
    "si",
    "so",
    "ta",
    "te",
    "ti",
    "to",
    "va",
    "ve",
    "vi",
    "vo",
    "za",
    "ze",
    "zi",
    "zo",
]
SPACED_HEADER = (
    "new\n\nGet trending papers in your email inbox!\n\nSubscribe\n\nDaily Papers\n\n"
    "byAK and the research community\n\n{date}\n\n"
)
COMPACT_HEADER = (
    "Get trending papers in your email inbox once a day!\nGet trending papers in your email inbox!\n"
)
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def _name(i: int) -> str:
    """A unique, pronounceable model name for paper ``i`` (like ``ColorMNet``)."""
    parts = []
    n = i + len(SYLLABLES)  # at least two syllables
    while n:
        n, r = divmod(n, len(SYLLABLES))
        parts.append(SYLLABLES[r])
    return "".join(parts).capitalize()


@dataclass(frozen=True, slots=True)
class Paper:
    title: str
    abstract: str


def paper(seed: int, i: int) -> Paper:
    """Paper ``i`` of the universe ``seed``: the same arguments give the same paper."""
    rng = random.Random(seed * 1_000_003 + i)
    words = rng.choices(TITLE_WORDS, k=rng.randint(3, 12))
    title = f"{_name(i)}: {' '.join(words)}"
    n_words = min(240, max(60, int(rng.gauss(160, 40))))
    body = rng.choices(WORDS, k=n_words)
    sentences = []
    for start in range(0, n_words, 18):
        chunk = " ".join(body[start : start + 18])
        sentences.append(chunk[0].upper() + chunk[1:] + ".")
    abstract = " ".join(sentences)
    roll = rng.random()
    if roll < 0.2:
        abstract += f" Code is available at https://github.com/{_name(i).lower()}/{words[0].lower()}."
    elif roll < 0.3:
        url = f"https://github.com/{_name(i).lower()}/repo"
        abstract += f" Code: {url}{{{url}}}."
    return Paper(title, abstract)


def render(papers: list[Paper], layout: str, day: int) -> str:
    """The text of one listing page in ``layout`` ("spaced" or "compact")."""
    if layout == "spaced":
        head = SPACED_HEADER.format(date=f"{MONTHS[day % 12]} {day % 28 + 1}")
        return head + "".join(f"{p.title}\n\n{p.abstract}\n\n" for p in papers)
    lines = [f"{p.title}\n{p.abstract}\n" for p in papers]
    return COMPACT_HEADER + "Subscribe" + "".join(lines)


def dump_indexes(n_dumps: int, per_dump: int, overlap: float, seed: int) -> Iterator[list[int]]:
    """Paper indexes of each dump: mostly new papers, ``overlap`` of them listed before."""
    rng = random.Random(seed)
    fresh = 0
    for _ in range(n_dumps):
        repeats = int(per_dump * overlap) if fresh else 0
        old = rng.sample(range(fresh), min(repeats, fresh)) if repeats else []
        new = list(range(fresh, fresh + per_dump - len(old)))
        fresh += len(new)
        mixed = new + old
        rng.shuffle(mixed)
        yield mixed


def write_dumps(
    folder: Path,
    *,
    n_dumps: int,
    per_dump: int,
    overlap: float = 0.1,
    seed: int = 7,
    prefix: str = "dump",
) -> tuple[list[Path], int]:
    """Writes ``n_dumps`` dumps (alternating layouts) into ``folder``.

    Returns the files and the number of papers they list in total (repeats counted).
    """
    folder.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    listed = 0
    for d, indexes in enumerate(dump_indexes(n_dumps, per_dump, overlap, seed)):
        layout = "spaced" if d % 2 == 0 else "compact"
        path = folder / f"{prefix}_{d:05d}.txt"
        path.write_text(render([paper(seed, i) for i in indexes], layout, d), encoding="utf-8")
        files.append(path)
        listed += len(indexes)
    return files, listed


def write_big_dump(path: Path, target_bytes: int, *, seed: int = 11, layout: str = "spaced") -> int:
    """Writes one dump of about ``target_bytes``, streaming; returns the papers listed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = size = 0
    with path.open("w", encoding="utf-8") as fh:
        head = render([], layout, 0)
        fh.write(head)
        size += len(head)
        while size < target_bytes:
            p = paper(seed, count)
            chunk = f"{p.title}\n\n{p.abstract}\n\n" if layout == "spaced" else f"{p.title}\n{p.abstract}\n"
            fh.write(chunk)
            size += len(chunk.encode())
            count += 1
    return count
