"""The declaration helpers: a config key is a dataclass field made by :func:`key`, a nested
table one made by :func:`section`, a secret one made by :func:`secret`. The loader, the
``check-config`` output and the README test read everything from the field's metadata."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import Field, dataclass, field, fields
from typing import Any, TypeVar

from digest.config.readers import Reader

T = TypeVar("T")
KEY = "digest.config.key"
SECTION = "digest.config.section"


@dataclass(frozen=True)
class Key:
    """What the metadata of one key's field holds."""

    reader: Reader
    help: str
    name: str = ""  # the TOML name when the field's differs ("from" → from_)
    doc: str = ""  # the README's default when it is not the value itself
    derive: Callable[[Mapping[str, Any]], Any] | None = None  # default from the section's other keys
    env: str = ""  # a secret: read only from this environment variable, never from the file


def key(
    default: T,
    reader: Reader,
    help: str,
    *,
    name: str = "",
    doc: str = "",
    derive: Callable[[Mapping[str, Any]], Any] | None = None,
) -> T:
    """Declares one config key: its default (the typed value), reader and help text.

    ``derive`` computes the default from the section's other values (already read) when
    the file does not set the key; ``doc`` then says in words what it is."""
    meta = Key(reader, help, name=name, doc=doc, derive=derive)
    return field(default=default, metadata={KEY: meta})


def secret(env: str, help: str) -> str:
    """Declares a secret: read only from the environment variable ``env`` (or ``.env``),
    refused in the file, masked by ``check-config`` and kept out of ``repr``."""
    return field(default="", repr=False, metadata={KEY: Key(Reader(_refuse), help, env=env)})


def section(cls: type[T]) -> T:
    """Declares a nested table ``[parent.name]`` read into the dataclass ``cls``."""
    return field(default_factory=cls, metadata={SECTION: cls})


def _refuse(key: str, value: Any, base: Any) -> Any:  # pragma: no cover - the loader refuses first
    raise AssertionError(key)


def toml_name(f: Field[Any]) -> str:
    meta = f.metadata.get(KEY)
    return meta.name if meta and meta.name else f.name


def declared(cls: type[Any], prefix: str = "") -> Iterator[tuple[str, Field[Any], Key]]:
    """Every key declared under ``cls``, depth first, as (dotted name, field, Key)."""
    for f in fields(cls):
        name = f"{prefix}{toml_name(f)}"
        if SECTION in f.metadata:
            yield from declared(f.metadata[SECTION], name + ".")
        elif KEY in f.metadata:
            yield name, f, f.metadata[KEY]


def documented_default(f: Field[Any], meta: Key) -> str:
    """The default as the README's key table writes it."""
    return meta.doc or meta.reader.document(f.default)
