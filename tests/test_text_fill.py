"""text.fill must give exactly what textwrap.fill gives: the email's text part depends on it."""

from __future__ import annotations

import textwrap

from hypothesis import given
from hypothesis import strategies as st

from digest.text import fill
from tests.helpers import DUMP_000, DUMP_002


def reference(text: str, width: int, indent: str, first: str | None = None) -> str:
    return textwrap.fill(
        text,
        width=width,
        initial_indent=indent if first is None else first,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )


def test_same_as_textwrap_on_every_line_of_the_sample_dumps() -> None:
    lines = [ln for path in (DUMP_000, DUMP_002) for ln in path.read_text("utf-8").splitlines()]
    assert len(lines) > 500
    for line in lines:
        for width, indent in ((72, "   "), (40, ""), (20, "  ")):
            assert fill(line, width, indent) == reference(line, width, indent)


words = st.text(alphabet=st.sampled_from("ab-é.\u00a0\t x"), min_size=0, max_size=30)


@given(
    st.lists(words, max_size=30),
    st.sampled_from([" ", "  ", "\t", "\n", " \u2003 "]),
    st.integers(min_value=4, max_value=80),
    st.sampled_from(["", "   ", "> "]),
    st.sampled_from([None, "", "* "]),
)
def test_same_as_textwrap_on_any_text(
    parts: list[str], sep: str, width: int, indent: str, first: str | None
) -> None:
    text = sep.join(parts)
    assert fill(text, width, indent, first) == reference(text, width, indent, first)


def test_a_word_longer_than_the_line_gets_a_line_of_its_own() -> None:
    long = "x" * 90
    assert fill(f"a b {long} c", 72, "   ") == f"   a b\n   {long}\n   c"
