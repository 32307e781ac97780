"""The fast paths kept for their targets, held to plain reference implementations.

``identity.paper_key`` has an ASCII fast path (``identity_ascii.ascii_key``: a byte
translation instead of NFKC, casefold and a regex) and ``text.links`` finds URLs without building :func:`text.segments`' runs.
Each is checked here, by hypothesis, against the rule written out the slow, obvious way.
"""

from __future__ import annotations

import re
import string
import unicodedata

from hypothesis import example, given, settings
from hypothesis import strategies as st

from digest.identity import FORMAT_RANGES, paper_key
from digest.identity_ascii import ascii_key
from digest.text import links, segments

_FORMAT = {chr(c) for lo, hi in FORMAT_RANGES for c in range(lo, hi + 1)}


def reference_key(title: str) -> str:
    """docs/DESIGN.md "Identity", literally: format characters dropped, NFKC, casefold, every
    run of non-alphanumeric characters one space, stripped."""
    text = "".join(c for c in title if c not in _FORMAT)
    text = unicodedata.normalize("NFKC", text).casefold()
    text = "".join(c for c in text if c not in _FORMAT)  # NFKC can make one (none today)
    out: list[str] = []
    gap = False
    for c in text:
        if c.isalnum():
            if gap and out:
                out.append(" ")
            out.append(c)
            gap = False
        else:
            gap = True
    return "".join(out)


ascii_titles = st.text(alphabet=string.printable, max_size=120)
tricky = st.sampled_from(
    [
        "\u00ad",
        "\u200b",
        "\ufeff",
        "é",
        "ß",
        "İ",
        "ﬁ",
        "Ⅻ",
        "①",
        "_",
        "\u0301",
        "Ω",
        "中文",
        "\t",
        "\n",
        "½",
        "²",
    ]
)
mixed_titles = st.lists(st.one_of(st.text(max_size=8), tricky, ascii_titles), max_size=12).map("".join)


@settings(max_examples=200)
@given(ascii_titles)
@example("Attention Is All You Need")
@example("  W_+ [MASK]: under_scores -- and  spaces ")
@example("")
def test_paper_key_ascii_fast_path_is_the_reference(title: str) -> None:
    assert ascii_key(title) == reference_key(title)
    assert paper_key(title) == reference_key(title)


@settings(max_examples=200)
@given(mixed_titles)
@example("Atten\u00adtion Is All You Need")
@example("Café ﬁne-tuning ① ²")
def test_paper_key_is_the_reference_for_any_text(title: str) -> None:
    assert paper_key(title) == reference_key(title)


# --- links ---------------------------------------------------------------------------------


def reference_links(text: str) -> tuple[str, ...]:
    """The distinct URLs of :func:`segments`' runs, in order: what ``links`` promises."""
    return tuple(dict.fromkeys(url for _, url in segments(text) if url is not None))


_URL_BITS = [
    "http://",
    "https://",
    "https://github.com/a/b",
    "example.org",
    "/path",
    "?q=1",
    "#frag",
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    "<",
    ">",
    '"',
    "'",
    ".",
    ",",
    ";",
    ":",
    "!",
    "?",
    " ",
    "\n",
    "code: ",
    "x",
    "é",
]
abstracts = st.lists(st.one_of(st.sampled_from(_URL_BITS), st.text(max_size=4)), max_size=30).map("".join)
artefacts = st.builds(
    lambda url, tail: f"See {url}{{{url}}}{tail}",
    st.from_regex(re.compile(r"https?://[a-z]{1,8}\.org(/[a-z0-9_.()-]{0,10}){0,3}"), fullmatch=True),
    st.sampled_from(["", ".", ").", ", and more", "}."]),
)


@settings(max_examples=300)
@given(st.one_of(abstracts, artefacts))
@example("Code: https://github.com/a/b{https://github.com/a/b}.")
@example("(see https://x.org/a_(b)).")
@example("https:// and http://x")
def test_links_are_the_urls_of_the_segments(text: str) -> None:
    assert links(text) == reference_links(text)
