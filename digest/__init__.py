"""paper-digest: turns saved "Daily Papers" listing pages into feeds, emails and an archive."""

__version__ = "0.1.0"
