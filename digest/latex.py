"""Pure: LaTeX left over in titles and abstracts, shown as Unicode text.

Listing pages carry LaTeX the source did not render: ``$\\alpha$``, ``Fr\\'echet``,
``{\\em opposite trend}``, ``84.8\\%``, and LaTeX whose backslashes were lost on the way
(``mathcal{S^p} > mathcal{S^n}``, ``C_{Phicirc Psi}``). :func:`to_text` turns what is
recognisably LaTeX into text with pylatexenc's ``latex2text`` and leaves everything
else as it is: text without a LaTeX marker is returned unchanged, URLs are never
touched, and characters that are special to TeX but ordinary in prose (``%``, ``~``,
``&``, ``--``, quotes, a lone ``$``, braces not opened by a macro) keep their meaning.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from pylatexenc import latex2text, latexwalker

# Backslash-less LaTeX seen in real dumps. A math-alphabet macro glued to its brace:
_BARE_MACRO = re.compile(
    r"(?<![\\A-Za-z])(mathcal|mathscr|mathbb|mathbf|mathrm|mathit|mathsf|mathfrak|boldsymbol)\{"
)
_GREEK = (  # noqa: SIM905 -- a list of names reads better as words
    "alpha beta gamma delta epsilon varepsilon zeta eta theta vartheta iota kappa lambda mu nu xi "
    "pi varpi rho varrho sigma varsigma tau upsilon phi varphi chi psi omega "
    "Gamma Delta Theta Lambda Xi Pi Sigma Upsilon Phi Psi Omega"
).split()
_OPERATORS = ["circ", "cdot", "times", "otimes", "oplus"]
_NAME = "|".join(sorted(_GREEK + _OPERATORS, key=len, reverse=True))
# A one-letter variable subscripted or superscripted by a Greek name: ``C_Psi``.
_BARE_INDEX = re.compile(rf"(?<![A-Za-z\\])([A-Za-z][_^])({'|'.join(_GREEK)})(?![A-Za-z0-9])")
# ... or by a braced run of Greek names and operators: ``C_{Phicirc Psi}``.
_BARE_GROUP = re.compile(r"(?<![A-Za-z\\])([A-Za-z][_^]\{)([A-Za-z ]+)\}")
_NAMES = re.compile(rf"(?:{_NAME})+")
_ONE_NAME = re.compile(_NAME)

# What makes text recognisably LaTeX (after the repairs above): a control word or a
# control symbol, or a $...$ span holding math.
_MARKER = re.compile(r"\\(?:[A-Za-z]+|[%&_#$'\"^~`{}.=])|\$[^$]*[\\^_{}][^$]*\$")
_MATH = re.compile(r"\$([^$]{1,300}?)\$")
_MATHY = re.compile(r"[\\^_{}]")
_URL = re.compile(r"https?://[^\s{}<>\"]+")
_BARE_PERCENT = re.compile(r"(?<!\\)%")
_PRIVATE = re.compile("[\ue000-\uf8ff]")
_ABBREVIATION_END = "\uf8ff"  # stands for "a period unless one follows"
# Macros papers define for abbreviations (CVPR's \eg, \ie, \etc, \etal, \vs, \wrt).
_ABBREVIATIONS = {
    "eg": "e.g",
    "ie": "i.e",
    "etc": "etc",
    "etal": "et al",
    "vs": "vs",
    "cf": "cf",
    "wrt": "w.r.t",
    "aka": "a.k.a",
}
# Font switches: {\\em x} reads as x.
_SWITCHES = ("em", "it", "bf", "sl", "sc", "rm", "sf", "tt", "normalfont", "upshape", "itshape", "bfseries")
# Macros latex2text would expand from outside the text: the clock, the file system.
_NEVER = ("today", "input", "include")


def _repair(text: str) -> str:
    """Puts back the backslashes of the LaTeX that recognisably lost them."""
    text = _BARE_MACRO.sub(r"\\\1{", text)

    def group(m: re.Match[str]) -> str:
        words = m.group(2).split(" ")
        if not all(_NAMES.fullmatch(w) for w in words if w) or not any(
            g in _GREEK for w in words for g in _ONE_NAME.findall(w)
        ):
            return m.group(0)
        inner = "".join(_ONE_NAME.sub(r"\\\g<0>", w) for w in words)  # spaces: none in math
        return f"{m.group(1)}{inner}}}"

    text = _BARE_GROUP.sub(group, text)
    return _BARE_INDEX.sub(r"\1\\\2", text)


def _escape_lone_dollars(text: str) -> str:
    """``$`` that does not open a $...$ span holding math is a dollar sign."""
    out: list[str] = []
    pos = 0
    while (at := text.find("$", pos)) >= 0:
        out.append(text[pos:at])
        m = _MATH.match(text, at)
        if at and text[at - 1] == "\\":  # already \$
            out.append("$")
            pos = at + 1
        elif m and _MATHY.search(m.group(1)):
            out.append(m.group(0))
            pos = m.end()
        else:
            out.append("\\$")
            pos = at + 1
    out.append(text[pos:])
    return "".join(out)


def _math_alphabet_upper(style: str) -> Any:
    # \mathcal{S^p}: a script capital S, not a script p (LaTeX has no lower-case script).
    def repl(node: Any, l2tobj: Any) -> str:
        inner = l2tobj.node_arg_to_text(node, 0)
        return "".join(latex2text.fmt_math_text_style(c, style) if c.isupper() else c for c in inner)

    return repl


def _abbreviation(node: Any) -> str:
    return _ABBREVIATIONS[node.macroname] + _ABBREVIATION_END


class _Converter(latex2text.LatexNodes2Text):  # type: ignore[misc]
    """latex2text, minus what would change plain prose."""

    def macro_node_to_text(self, node: Any) -> str:
        if node.macroname in _NEVER or self.latex_context.get_macro_spec(node.macroname) is None:
            # A macro the paper defined (\overfeat): its name reads better than nothing.
            return str(node.macroname) + str(node.macro_post_space)
        out = str(super().macro_node_to_text(node))
        if out and not (node.nodeargd and node.nodeargd.argnlist):
            # A symbol (\Psi, \gg): TeX eats the space after it, but in an abstract
            # that space separates words (C_\Psi are, m \gg n).
            out += str(node.macro_post_space)
        return out

    def group_node_to_text(self, node: Any) -> str:
        # {\em x}, {\tau}: LaTeX grouping, dropped. {data}: braces the text meant, kept.
        first = next((n for n in node.nodelist if not _blank(n)), None)
        inner = str(super().group_node_to_text(node))
        if not node.nodelist:
            return ""  # \alpha{}: TeX's way to end a control word
        if first is not None and first.isNodeType(latexwalker.LatexMacroNode):
            return inner
        return "{" + inner + "}"


def _blank(node: Any) -> bool:
    return bool(node.isNodeType(latexwalker.LatexCharsNode) and not node.chars.strip())


@cache
def _converter() -> tuple[Any, _Converter]:
    # No specials: ~, --, ``, '' and & are prose here, not TeX.
    walker_db = latexwalker.get_default_latex_context_db().filter_context(
        keep_which=["macros", "environments"]
    )
    text_db = latex2text.get_default_latex_context_db().filter_context(keep_which=["macros", "environments"])
    text_db.add_context_category(
        "paper-digest",
        prepend=True,
        macros=[
            latex2text.MacroTextSpec("mathcal", simplify_repl=_math_alphabet_upper("script")),
            latex2text.MacroTextSpec("mathscr", simplify_repl=_math_alphabet_upper("script")),
            *(latex2text.MacroTextSpec(name, simplify_repl=_abbreviation) for name in _ABBREVIATIONS),
            *(latex2text.MacroTextSpec(name, discard=True) for name in _SWITCHES),
        ],
    )
    return walker_db, _Converter(latex_context=text_db, math_mode="text")


def to_text(text: str) -> str:
    """``text`` with recognisable LaTeX turned into Unicode text; anything else unchanged.

    Pure and total: never raises, and returns ``text`` itself when it holds no LaTeX or
    when the conversion fails. Idempotent on its own output for the LaTeX seen so far.
    """
    if ("\\" not in text and "$" not in text and "{" not in text) or _PRIVATE.search(text):
        return text  # most titles and abstracts; private-use characters mark URLs below
    repaired = _repair(text)
    if not _MARKER.search(repaired):
        return text
    urls: list[str] = []

    def hide(m: re.Match[str]) -> str:
        urls.append(m.group(0))
        return chr(0xE000 + len(urls) - 1)

    # % would start a comment: in prose it is a percent sign.
    hidden = _BARE_PERCENT.sub(r"\\%", _escape_lone_dollars(_URL.sub(hide, repaired)))
    walker_db, converter = _converter()
    try:
        nodes = latexwalker.LatexWalker(hidden, latex_context=walker_db, tolerant_parsing=True)
        out = converter.nodelist_to_text(nodes.get_latex_nodes()[0])
    except Exception:  # a renderer must not fail on odd input: show it as it came
        return text
    out = re.sub(f"{_ABBREVIATION_END}(?!\\.)", ".", out).replace(_ABBREVIATION_END, "")
    return _PRIVATE.sub(lambda m: urls[ord(m.group(0)) - 0xE000], out)
