"""digest/render/escaping.py is ``html.escape(text, quote=True)``, character for character."""

from __future__ import annotations

import html

from hypothesis import example, given, settings
from hypothesis import strategies as st

from digest.render.escaping import escape

specials = st.sampled_from(["&", "<", ">", '"', "'", "&amp;", "&#x27;", "&lt;", " ", "a", "é", "\u2028"])
texts = st.one_of(
    st.text(max_size=200), st.lists(st.one_of(specials, st.text(max_size=5)), max_size=40).map("".join)
)


@settings(max_examples=500)
@given(texts)
@example("")
@example("plain text with none of them")
@example("a <b> & \"c\" 'd' &amp; &&")
def test_escape_is_html_escape(text: str) -> None:
    assert escape(text) == html.escape(text, quote=True)
