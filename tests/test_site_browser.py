"""The archive page in a real browser: headless Chromium renders a digest page on a phone,
in light and dark, and the screenshot is read back pixel by pixel."""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from tests.test_site import site  # noqa: F401  (a fixture)


def png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """Decodes an 8-bit RGB or RGBA, non-interlaced PNG (what Chromium writes) into rows of
    RGB bytes: enough to look at a screenshot without an imaging library."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height, channels = 8, b"", 0, 0, 3
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert (depth, interlace) == (8, 0) and color in (2, 6)
            channels = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        filt = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b = prev[i]
            c = prev[i - channels] if i >= channels else 0
            if filt == 1:
                line[i] = (line[i] + a) & 0xFF
            elif filt == 2:
                line[i] = (line[i] + b) & 0xFF
            elif filt == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif filt == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        prev = line
        rgb = bytes(line) if channels == 3 else bytes(v for i, v in enumerate(line) if i % 4 != 3)
        rows.append(rgb)
    return width, height, rows


def luminance(rgb: bytes, x: int) -> float:
    r, g, b = rgb[3 * x : 3 * x + 3]
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def screenshot(page_url: Path, out: Path, width: int, height: int, *, dark: bool) -> bytes:
    profile = out.parent / f"profile-{out.stem}"
    args = [
        shutil.which("chromium") or "chromium",
        *("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"),
        *("--disable-background-networking", "--disable-component-update", "--disable-sync"),
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        f"--screenshot={out}",
        f"--window-size={width},{height}",
    ]
    if dark:
        args += ["--force-dark-mode", "--blink-settings=preferredColorScheme=0"]
    subprocess.run([*args, page_url.as_uri()], capture_output=True, timeout=90, check=True)
    return out.read_bytes()


@pytest.mark.chromium
@pytest.mark.skipif(
    shutil.which("chromium") is None, reason="headless Chromium is not installed (apt-get install chromium)"
)
@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
def test_archive_page_on_a_phone_in_light_and_dark(site: Path, tmp_path: Path, dark: bool) -> None:  # noqa: F811
    """Chromium renders the digest page 390 px wide: the background follows the colour
    scheme, text is painted in contrast to it, and nothing runs into the right edge."""
    width, height, rows = png_pixels(
        screenshot(site / "digests/2026-11-22.html", tmp_path / "shot.png", 390, 700, dark=dark)
    )
    assert (width, height) == (390, 700)
    background = luminance(rows[-1], width - 1)
    if dark:
        assert background < 50
    else:
        assert background > 230
    ink = [luminance(row, x) for row in rows[::4] for x in range(0, width, 2)]
    contrast = [v for v in ink if abs(v - background) > 120]
    assert len(contrast) > len(ink) // 100  # text was painted, legibly
    # The page has a 16 px margin at this width: no text reaches the rightmost 8 columns
    # (only full-width hairlines do, at a third of the text's contrast).
    edge = [luminance(row, x) for row in rows for x in range(width - 8, width)]
    assert max(abs(v - background) for v in edge) < 60
