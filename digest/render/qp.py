"""Pure: a body as ``set_content(text, cte="quoted-printable")`` encodes it and the
generator writes it (CRLF line ends), several times faster than the email package.

``email.quoprimime.body_encode`` maps every character through a 256-entry table (the
generic, slow path of ``str.translate``); here a regular expression finds the few that
need escaping. The line wrapping is ``body_encode``'s own, unchanged.
``tests/test_email_personal.py`` holds the two equal on arbitrary text.
"""

from __future__ import annotations

import re

# What body_encode leaves as it is: tab, space and the printable ASCII characters but "="
# (and the line ends, which are all "\n" by then); "=" itself, the most frequent in HTML,
# is escaped first by a plain replace.
_UNSAFE = re.compile("[^\t\n !-~]")
_ESCAPE = {chr(c): f"={c:02X}" for c in range(256)}


def _escape(m: re.Match[str]) -> str:
    return _ESCAPE[m.group()]


def encode(text: str, maxlinelen: int = 78) -> bytes:
    """``text`` (UTF-8) as a quoted-printable body: lines of at most ``maxlinelen``
    characters (soft breaks ``=``), CRLF line ends, ending with one."""
    out: list[str] = []
    append = out.append
    maxlinelen1 = maxlinelen - 1
    body = text if text.isascii() else text.encode("utf-8").decode("latin-1")
    if "\r" in body:  # CR and CRLF end lines as LF does
        body = b"\n".join(body.encode("latin-1").splitlines()).decode("latin-1")
    elif body.endswith("\n"):
        body = body[:-1]
    for line in _UNSAFE.sub(_escape, body.replace("=", "=3D")).split("\n"):
        if len(line) <= maxlinelen and not (line and line[-1] in " \t"):
            append(line)
            continue
        # body_encode's loop (Lib/email/quoprimime.py), with eol "\n".
        start = 0
        laststart = len(line) - 1 - maxlinelen
        while start <= laststart:
            stop = start + maxlinelen1
            if line[stop - 2] == "=":
                append(line[start : stop - 1])
                start = stop - 2
            elif line[stop - 1] == "=":
                append(line[start:stop])
                start = stop - 1
            else:
                append(line[start:stop] + "=")
                start = stop
        if line and line[-1] in " \t":
            room = start - laststart
            if room >= 3:
                q = _ESCAPE[line[-1]]
            elif room == 2:
                q = line[-1] + "=\r\n"
            else:
                q = "=\r\n" + _ESCAPE[line[-1]]
            append(line[start:-1] + q)
        else:
            append(line[start:])
    append("")
    return "\r\n".join(out).encode("ascii")
