"""The shape the next engineer picks up (docs/DESIGN.md, "Where to add things"): no module
in digest/, bench/, crash/ or tests/ over 500 lines, no class over 300, and every citation
of the design document in the code and the tests resolves to docs/DESIGN.md: the numbered
invariants it names exist (in the list and in the table of where each is kept), the
sections it names are headings there, and no citation names some other DESIGN.md."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.helpers import ROOT

MAX_MODULE_LINES = 500
MAX_CLASS_LINES = 300
DESIGN = ROOT / "docs" / "DESIGN.md"
CITING = ("digest", "tests", "crash", "bench")


def _python(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def test_no_module_is_over_500_lines_and_no_class_over_300() -> None:
    too_long: list[str] = []
    for path in _python(*CITING):
        source = path.read_text(encoding="utf-8")
        name = path.relative_to(ROOT).as_posix()
        lines = len(source.splitlines())
        if lines > MAX_MODULE_LINES:
            too_long.append(f"{name}: {lines} lines")
        for node in ast.walk(ast.parse(source, name)):
            if isinstance(node, ast.ClassDef):
                start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                size = (node.end_lineno or node.lineno) - start + 1
                if size > MAX_CLASS_LINES:
                    too_long.append(f"{name}: class {node.name}: {size} lines")
    assert too_long == []


def test_the_size_check_sees_a_long_class() -> None:
    """The plain reference for the check above: it counts a class's lines right."""
    source = "@dataclass\nclass A:\n" + "    x = 1\n" * 300
    [node] = [n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.ClassDef)]
    assert (node.end_lineno or 0) - node.decorator_list[0].lineno + 1 == 302


def _design_invariants() -> tuple[set[int], set[int]]:
    """(the numbers of the invariants list, the numbers of the rows of its table)."""
    text = DESIGN.read_text(encoding="utf-8")
    section = text.split("## Invariants", 1)[1].split("\n## ", 1)[0]
    listed = {int(n) for n in re.findall(r"^(\d+)\. ", section, re.M)}
    kept = {int(n) for n in re.findall(r"^\| (\d+) \|", section, re.M)}
    return listed, kept


def _design_headings() -> list[str]:
    return re.findall(r"^#+ (.+)$", DESIGN.read_text(encoding="utf-8"), re.M)


# "invariant 4", "invariants 8 and 12", "invariants 1-6", "invariants 5, 6 and 8"
_CITED = re.compile(r"\b[Ii]nvariants? (\d+(?:(?:\s*[-–,]\s*|\s+and\s+)\d+)*)")


def cited_numbers(text: str) -> set[int]:
    numbers: set[int] = set()
    for match in _CITED.finditer(text):
        for part in re.split(r"\s*,\s*|\s+and\s+", match.group(1)):
            ends = [int(n) for n in re.split(r"\s*[-–]\s*", part)]
            numbers.update(range(ends[0], ends[-1] + 1))
    return numbers


@pytest.mark.parametrize(
    ("text", "numbers"),
    [
        ("(invariant 4)", {4}),
        ("docs/DESIGN.md invariants 8 and 12", {8, 12}),
        ("Invariants 1-6 hold", {1, 2, 3, 4, 5, 6}),
        ("invariants 5, 6 and 8, dry runs", {5, 6, 8}),
        ("loss-invariant features", set()),
    ],
)
def test_citations_are_read_as_written(text: str, numbers: set[int]) -> None:
    assert cited_numbers(text) == numbers


def test_every_cited_invariant_is_in_docs_design() -> None:
    listed, kept = _design_invariants()
    assert listed == kept == set(range(1, len(listed) + 1)), "the list and its table disagree"
    unknown = [
        f"{path.relative_to(ROOT)}: invariant {n}"
        for path in _python(*CITING)
        for n in sorted(cited_numbers(path.read_text(encoding="utf-8")))
        if n not in listed
    ]
    assert unknown == []


def test_every_design_citation_names_docs_design_and_its_sections_exist() -> None:
    headings = _design_headings()
    wrong: list[str] = []
    for path in _python(*CITING):
        name = path.relative_to(ROOT).as_posix()
        if name == "tests/test_codebase_shape.py":
            continue
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(r"\S*(?<!docs/)DESIGN\.md", text):
            wrong.append(f"{name}: {match.group(0)!r} (cite docs/DESIGN.md)")
        for section in re.findall(r'DESIGN\.md,? "([^"]+)"', text):
            if not any(h.startswith(section) for h in headings):
                wrong.append(f"{name}: no section {section!r} in docs/DESIGN.md")
    assert wrong == []
