"""Config values that mailed the wrong thing or crashed (issue 18): subject placeholders
other than the named ones, and ``email.to`` entries that are not exactly one address."""

from __future__ import annotations

import pytest

from digest.errors import ConfigError
from tests.helpers import MakeConfig


@pytest.mark.parametrize(
    "subject",
    [
        "{count.nope}",
        "{count.__class__}",
        "{title[0]}",
        "{}",
        "{0}",
        "{nope}",
        "{count:{s}}",
        "{count",
        "{count!x}",
    ],
)
def test_only_the_named_subject_placeholders_are_allowed(make_config: MakeConfig, subject: str) -> None:
    with pytest.raises(ConfigError) as caught:
        make_config(email={"subject": subject})
    message = str(caught.value)
    assert "email.subject" in message
    assert "use only {count}, {s} (plural s), {date} and {title}" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "subject", ["{count} new paper{s} · {date}", "{title} and {count:d} more", "{{literal}} {date}"]
)
def test_named_placeholders_still_work(make_config: MakeConfig, subject: str) -> None:
    assert make_config(email={"subject": subject}).email.subject == subject


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ("a@example.org, x@example.org", "holds 2 addresses, not one"),
        ("a@example.org x@example.org", "addresses, not one"),
        ("=?utf-8?q?Bob_x@y.z?=", "is not an email address"),
        ("x@y.z?=", "is not an email address"),
        ("Ann x@example.org <a@example.org>", "holds 2 addresses, not one"),
        ("no address", "is not an email address"),
    ],
)
def test_each_email_to_entry_must_be_exactly_one_address(
    make_config: MakeConfig, entry: str, reason: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        make_config(email={"to": ["ok@example.org", entry]})
    message = str(caught.value)
    assert "email.to[1]" in message and reason in message
    assert "write one address per entry" in message


@pytest.mark.parametrize(
    "entry",
    [
        "a@example.org",
        "Ann <a@example.org>",
        '"Doe, Jane" <j@example.org>',
        "=?utf-8?q?J=C3=B6rg?= <j@example.org>",
    ],
)
def test_one_address_with_or_without_a_name_is_accepted(make_config: MakeConfig, entry: str) -> None:
    config = make_config(email={"to": [entry]})
    assert len(config.email.to) == 1 and "@" in config.email.to[0]


def test_email_to_takes_an_idn_domain_in_ascii_and_refuses_a_non_ascii_local_part(
    make_config: MakeConfig,
) -> None:
    config = make_config(email={"to": ["zoe@exämple.org", "Zoë <z@bücher.example>"]})
    assert config.email.to == ("zoe@xn--exmple-cua.org", "z@xn--bcher-kva.example")
    with pytest.raises(ConfigError) as caught:
        make_config(email={"to": ["zoë@example.org"]})
    assert "email.to[0]" in str(caught.value) and "SMTPUTF8" in str(caught.value)


def test_a_line_break_in_an_address_is_refused() -> None:
    from pathlib import Path

    from digest.config.readers import ADDRESS

    with pytest.raises(ConfigError, match="holds a line break"):
        ADDRESS.read("email.from", "Ann <a@example.org>\nBcc: x@example.org", Path("."))
