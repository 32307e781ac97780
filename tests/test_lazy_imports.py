"""Lazy heavy imports (README, Performance: start-up): ``digest --help`` and the parsing
of a command line load none of the heavy libraries; each is imported where it is used.
Run in a fresh interpreter, so other tests' imports do not hide one."""

from __future__ import annotations

import subprocess
import sys

HEAVY = (
    "sqlalchemy",
    "jinja2",
    "feedgen",
    "sklearn",
    "apscheduler",
    "httpx",
    "lxml",
    "starlette",
    "uvicorn",
    "css_inline",
    "pylatexenc",
    "dkim",
    "prometheus_client",
    "itsdangerous",
    # Standard modules, but each costs milliseconds of a ~50 ms start-up: the commands'
    # modules spell out TYPE_CHECKING and import datetime where a command runs.
    "typing",
    "datetime",
)

PROBE = """
import sys
from digest.cli import main
try:
    main(["--help"])
except SystemExit:
    pass
print(" ".join(m for m in {heavy!r} if m in sys.modules))
"""


def test_help_loads_no_heavy_library() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY)], capture_output=True, text=True, check=True
    ).stdout.splitlines()[-1]
    assert out == "", f"digest --help imported {out}: import it inside the function that uses it"


def test_the_probe_sees_an_eager_import() -> None:
    """The plain reference: importing the store loads SQLAlchemy, and the probe says so."""
    probe = PROBE.replace("from digest.cli import main", "import digest.store\nfrom digest.cli import main")
    out = subprocess.run(
        [sys.executable, "-c", probe.format(heavy=HEAVY)], capture_output=True, text=True, check=True
    ).stdout.splitlines()[-1]
    assert "sqlalchemy" in out.split()
