"""Pure: file names as they may be stored, logged and shown.

A POSIX file name is bytes. Python hands a name that is not valid UTF-8 over with each
bad byte as a lone surrogate (``surrogateescape``), which no database driver, log file or
terminal accepts; and a valid name may hold CR, LF or ESC, which would forge log lines or
drive a terminal. :func:`printable_name` is the one spelling of a name used everywhere but
to open the file (which keeps the name as the OS gave it).
"""

from __future__ import annotations

import unicodedata

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\x1b": "\\e"}


def printable_name(name: str) -> str:
    """``name`` with every byte that was not UTF-8 written ``\\xNN`` and every control or
    unassigned/surrogate character written as an escape (``\\n``, ``\\r``, ``\\t``,
    ``\\e``, ``\\xNN``, ``\\uNNNN``); printable names come back unchanged (the fast path,
    as this runs for each file of the inbox). The result encodes as UTF-8 and fits on one
    line. Two names can only spell the same if one of them literally holds such an
    escape, which costs at most a re-read of a file, never a lost one: dumps are known by
    their content hash.
    """
    if name.isprintable():
        return name
    out: list[str] = []
    for ch in name:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:  # a byte surrogateescape could not decode
            out.append(f"\\x{code - 0xDC00:02x}")
        elif ch in _NAMED:
            out.append(_NAMED[ch])
        elif ch == " " or unicodedata.category(ch)[0] not in "CZ" or unicodedata.category(ch) == "Zs":
            out.append(ch)
        elif code < 0x100:
            out.append(f"\\x{code:02x}")
        else:
            out.append(f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    return "".join(out)
