"""Coverage-guided fuzzing of the dump parser with atheris (a dev tool, not a dependency).

The contract under test: for any bytes, :func:`digest.parse.parse_dump` either returns
papers or raises :class:`digest.errors.DumpError`; streaming the same bytes line by line
gives the same result; every paper has a non-empty, normalised key. Anything else
(another exception, a broken invariant) is a crash atheris reports. See fuzz/README.md.
"""

from __future__ import annotations

import io
import sys

import atheris

with atheris.instrument_imports():
    from digest import parse
    from digest.errors import DumpError
    from digest.identity import paper_key


def _streamed(data: bytes) -> object:
    # As `digest run` reads a dump: the LF-terminated lines a binary file yields (the
    # in-memory parse splits on CR too), so both ways of splitting must agree.
    parser = parse.DumpParser("fuzz.txt")
    try:
        return [(p.key, p.title, p.abstract) for p in parser.papers(io.BytesIO(data))]
    except DumpError as err:
        return ("error", str(err))


def test_one_input(data: bytes) -> None:
    try:
        result = parse.parse_dump(data, "fuzz.txt")
    except DumpError as err:
        assert str(err).startswith("fuzz.txt"), err
        assert err.line >= 0
        assert _streamed(data) == ("error", str(err)), "streamed parse disagrees"
        return
    keys = [p.key for p in result.papers]
    assert len(keys) == len(set(keys)), "a key twice in one dump"
    for p in result.papers:
        assert p.key and paper_key(p.title) == p.key == paper_key(p.key), p
        assert p.title == p.title.strip() and "\n" not in p.title and "\r" not in p.title, p
    assert _streamed(data) == [(p.key, p.title, p.abstract) for p in result.papers]


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
