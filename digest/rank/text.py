"""Pure text helpers for ranking: tokens, a light stemmer and keyword matching.

No scikit-learn here, so that keyword checks (and the CLI's validation of a profile) cost no
heavy import. The same :func:`stem_tokens` feeds the TF-IDF vocabulary, so that a keyword,
an interests sentence and an abstract meet on the same stems ("personalized",
"personalization" and "personalize" all become ``personal``).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

# A word: letters and digits; a one-letter word may end in "+"s or "#"s when no letter
# or digit follows them ("C++", "C#", "F#", "J#"), so those keywords match only
# themselves, not every lone "C" ("a+b" stays two words, "10+" is "10"). Longer words
# drop the symbols: "LoRA+" is "lora", so the keyword "LoRA" finds the paper.
_WORD = re.compile(r"[^\W_]+(?:(?<=[^\W\d_])(?<![^\W_][^\W_])[+#]++(?![^\W_]))?")
_ARXIV = re.compile(r"^(?:arxiv:\s*)?(\d{4}\.\d{4,5})(?:v\d+)?$", re.IGNORECASE)


def arxiv_id(name: str) -> str | None:
    """``2403.01234`` of ``2403.01234``, ``arXiv:2403.01234v2``; None for anything else."""
    found = _ARXIV.match(name.strip())
    return found.group(1) if found else None


# Longest first; each applies only if at least four letters stay.
_SUFFIXES = (
    "izations",
    "ization",
    "isation",
    "ational",
    "ations",
    "ation",
    "nesses",
    "ness",
    "izing",
    "ising",
    "ities",
    "ity",
    "ized",
    "ised",
    "izes",
    "ises",
    "ize",
    "ise",
    "ings",
    "ing",
    "ally",
    "ly",
    "ed",
)


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A small, deterministic suffix stripper (plural, -ing/-ed, -ization, -ity...).

    Not Porter: it only folds the forms a reader's keyword and a paper most often differ
    by, and leaves short words (``nerf``, ``gan``, ``3d``) alone.
    """
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("sses"):
        word = word[:-2]
    elif word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            word = word[: -len(suffix)]
            break
    if word.endswith("e") and len(word) > 4:
        word = word[:-1]
    if len(word) > 4 and word[-1] == word[-2] and word[-1] not in "lsz":
        word = word[:-1]  # "mapped" -> "mapp" -> "map"
    return word


def fold(text: str) -> str:
    """``text`` casefolded, without accents (NFKD, combining marks dropped, then NFC):
    "Fréchet", "FRECHET" and "frechet" read the same, as do "Naïve" and "naive"."""
    text = text.casefold()
    if text.isascii():
        return text
    bare = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return unicodedata.normalize("NFC", bare)


@lru_cache(maxsize=4096)  # a digest's titles and abstracts, read for the vectors, keywords and reasons
def shown(text: str) -> str:
    """``text`` as readers see it on the pages (:func:`digest.text.display`: LaTeX
    leftovers such as ``Fr\\'echet`` turned into text), the text ranking reads."""
    from digest.text import display  # pylatexenc: loaded when papers are ranked, not for a keyword

    return display(text)


def tokens(text: str) -> list[str]:
    """Words of ``text``, :func:`fold`-ed (hyphenated words split into their parts)."""
    return _WORD.findall(fold(text))


def written(text: str) -> list[str]:
    """The words of :func:`tokens` as ``text`` writes them (casefolded, accents kept):
    what a reason shows ("fréchet" for the token "frechet")."""
    return _WORD.findall(text.casefold())


def stem_tokens(text: str) -> list[str]:
    """:func:`tokens` of ``text``, stemmed."""
    return [stem(t) for t in tokens(text)]


@dataclass(frozen=True, slots=True)
class Keyword:
    """A reader's keyword or phrase, as the stems it matches in order."""

    text: str
    stems: tuple[str, ...]

    @classmethod
    def of(cls, text: str) -> Keyword:
        return cls(text.strip(), tuple(stem_tokens(text)))


def find(stems: tuple[str, ...], words: list[str]) -> bool:
    """Whether the phrase ``stems`` occurs as consecutive words of ``words`` (stemmed)."""
    n = len(stems)
    if n == 0:
        return False
    first = stems[0]
    for i in range(len(words) - n + 1):
        if words[i] == first and tuple(words[i : i + n]) == stems:
            return True
    # "self-supervised" written "selfsupervised", "class incremental" as "class-incremental"
    joined = "".join(stems)
    return n > 1 and joined in words
