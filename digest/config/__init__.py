"""Configuration: a TOML file plus the environment (and a ``.env`` beside the file).

``load_config`` returns a frozen :class:`Config`; every problem is a ConfigError that
names the key and the fix. Relative paths resolve against the config file's folder.
Secrets (the SMTP password) come only from the environment: ``DIGEST_SMTP_PASSWORD``.

Layout:

- ``sections.py``: every key, declared once as a dataclass field made by ``key(default,
  reader, help)``: its type (the annotation), default, reader and help text.
- ``readers.py``: one reader per kind of value (``duration()`` is the only duration
  reader: a number of seconds or ``"30s"``, ``"5m"``, ``"2h"``, ``"3d"``).
- ``crontab.py``: the crontab reader of ``schedule.digest`` (weekdays by name only).
- ``declare.py``: ``key``, ``secret``, ``section`` and ``declared`` (every key, in order).
- ``load.py``: TOML → ``Config`` and back (``describe``, for ``check-config``).

To add a key, add one field to its section in ``sections.py``, e.g.::

    page_size: int = key(500, integer(1), "digest pages over this many papers are paginated")

and its row (key, default as ``check-config`` shows it, meaning) to the README's key
table; ``tests/test_config_keys.py`` fails until both agree. A new table is a frozen
dataclass of such fields plus ``name: NewSection = section(NewSection)`` in its parent.
A secret is ``secret("DIGEST_…", help)``: read only from the environment. A default that
depends on other keys of the section takes ``derive=`` (and ``doc=`` for the README).
"""

from digest.config.declare import declared
from digest.config.load import (
    CONFIG_ENV,
    DEFAULT_FILE,
    as_toml,
    build_config,
    describe,
    environment,
    find_config_file,
    load_config,
)
from digest.config.readers import ON_INGEST, format_duration, parse_duration, split_listen, sqlite_path
from digest.config.sections import (
    PASSWORD_ENV,
    Config,
    DigestSection,
    EmailSection,
    FeedSection,
    HttpSection,
    ScheduleSection,
    SmtpSection,
    SourcesSection,
    StateSection,
)

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_FILE",
    "ON_INGEST",
    "PASSWORD_ENV",
    "Config",
    "DigestSection",
    "EmailSection",
    "FeedSection",
    "HttpSection",
    "ScheduleSection",
    "SmtpSection",
    "SourcesSection",
    "StateSection",
    "as_toml",
    "build_config",
    "declared",
    "describe",
    "environment",
    "find_config_file",
    "format_duration",
    "load_config",
    "parse_duration",
    "split_listen",
    "sqlite_path",
]
