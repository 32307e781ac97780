"""The Jinja2 environment over the packaged ``templates/`` folder."""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path

import jinja2


def templates_dir() -> Path:
    """Inside an installed wheel the templates sit in ``digest/templates``; in a source
    checkout they are the top-level ``templates/`` folder."""
    packaged = Path(str(resources.files("digest"))) / "templates"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "templates"


def _autoescape(name: str | None) -> bool:
    # select_autoescape(["html"]) misses "x.html.j2"; match on the name itself.
    return bool(name) and (".html" in name or ".xml" in name)  # type: ignore[operator]


@cache
def environment() -> jinja2.Environment:
    """One shared environment: autoescaped HTML, strict undefined, trailing newlines kept."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir()),
        autoescape=_autoescape,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env


def render(name: str, **context: object) -> str:
    return environment().get_template(name).render(**context)
