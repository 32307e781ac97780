"""``digest subscribers …`` (issue 14), ``digest status`` and /healthz counts; secrets
never in output."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from digest.cli import main
from digest.config import Config
from digest.store import Store
from digest.store.subscribers import Subscribers
from tests.helpers import NOW, MakeConfig


def cli(config: Config, *args: str) -> int:
    return main(["-c", str(config.path), *args])


def tokens_of(config: Config) -> list[str]:
    db = config.state.url.removeprefix("sqlite:///")
    with sqlite3.connect(db) as conn:
        return [r[0] for r in conn.execute("SELECT token FROM subscribers")] + [
            r[0] for r in conn.execute("SELECT value FROM meta WHERE name = 'token_key'")
        ]


def test_add_list_show_set_remove(config: Config, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(config, "subscribers", "add", "Ann@Example.org", "--cadence", "weekly:fri", "--keyword", "diffusion",
               "--keyword", "faces", "--exclude", "survey", "--interests", "People in photos", "--max-papers", "5") == 0  # fmt: skip
    assert cli(config, "subscribers", "add", "bob@example.org") == 0
    assert cli(config, "subscribers", "add", "ann@example.org") == 1  # compared case-insensitively
    assert "already a subscriber" in capsys.readouterr().err
    assert cli(config, "subscribers", "list", "--json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(s["address"], s["status"]) for s in listed] == [
        ("Ann@Example.org", "active"),
        ("bob@example.org", "active"),
    ]
    assert listed[0]["keywords"] == ["diffusion", "faces"] and listed[0]["exclude"] == ["survey"]
    assert listed[0]["cadence"] == "weekly:fri" and listed[0]["max_papers"] == 5
    assert cli(config, "subscribers", "set", "ANN@example.org", "--status", "unsubscribed", "--only-top") == 0
    capsys.readouterr()
    assert cli(config, "subscribers", "show", "ann@example.org", "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["status"] == "unsubscribed" and shown["only_top"] is True and shown["votes"] == []
    assert cli(config, "subscribers", "set", "ann@example.org", "--cadence", "fortnightly") == 1
    assert "not a cadence" in capsys.readouterr().err
    assert cli(config, "subscribers", "remove", "bob@example.org") == 0
    assert cli(config, "subscribers", "list") == 0
    out = capsys.readouterr().out
    assert (
        "bob@example.org" not in out.split("removed")[-1]
        and "Ann@Example.org\tunsubscribed\tweekly:fri" in out
    )
    # Nothing printed carries a secret.
    assert cli(config, "subscribers", "export", "--format", "csv") == 0
    assert cli(config, "subscribers", "export") == 0
    assert cli(config, "status", "--json") == 0
    printed = capsys.readouterr()
    for secret in tokens_of(config):
        assert secret not in printed.out + printed.err


def test_set_replaces_the_keywords_and_exclusions_and_an_empty_one_clears_them(
    config: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    """As ``subscribers set --help`` says."""
    assert cli(config, "subscribers", "add", "ann@example.org", "--keyword", "diffusion", "--keyword", "faces",
               "--exclude", "survey", "--exclude", "benchmark") == 0  # fmt: skip

    def shown() -> tuple[list[str], list[str]]:
        capsys.readouterr()
        assert cli(config, "subscribers", "show", "ann@example.org", "--json") == 0
        data = json.loads(capsys.readouterr().out)
        return data["keywords"], data["exclude"]

    assert cli(config, "subscribers", "set", "ann@example.org", "--keyword", "video") == 0
    assert shown() == (["video"], ["survey", "benchmark"])  # replaced, not added to
    assert cli(config, "subscribers", "set", "ann@example.org", "--exclude", "") == 0
    assert shown() == (["video"], [])
    assert cli(config, "subscribers", "set", "ann@example.org", "--keyword", "") == 0
    assert shown() == ([], [])


def test_add_pending_mails_a_confirmation(config: Config, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(config, "subscribers", "add", "new@example.org", "--pending") == 0
    assert "pending" in capsys.readouterr().out
    [eml] = list(config.email.outbox.rglob("*.eml"))
    text = eml.read_text()
    assert "Subject: Confirm your subscription to Test Digest" in text and "/confirm?t=" in text


def test_an_idn_domain_goes_out_in_ascii_and_a_non_ascii_local_part_is_refused(
    config: Config, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(config, "subscribers", "add", "zoë@exämple.org") == 1
    err = capsys.readouterr().err
    assert "SMTPUTF8" in err and len(err.strip().splitlines()) == 1
    assert cli(config, "subscribers", "add", "zoe@exämple.org", "--pending") == 0
    assert "zoe@xn--exmple-cua.org added" in capsys.readouterr().out
    [eml] = list(config.email.outbox.rglob("*.eml"))
    assert "\nTo: zoe@xn--exmple-cua.org\n" in eml.read_text().replace("\r\n", "\n")
    bad = tmp_path / "bad.csv"
    bad.write_text("address\nok@example.org\nzoë@example.org\n", encoding="utf-8")
    assert cli(config, "subscribers", "import", str(bad)) == 1
    assert f"{bad}:3:" in (err := capsys.readouterr().err) and "SMTPUTF8" in err
    good = tmp_path / "good.json"
    good.write_text(json.dumps([{"address": "ann@bücher.example"}]), encoding="utf-8")
    assert cli(config, "subscribers", "import", str(good)) == 0
    assert cli(config, "subscribers", "list") == 0
    listed = capsys.readouterr().out
    assert "ann@xn--bcher-kva.example\t" in listed and "bücher" not in listed and "ok@" not in listed


def _prefs_and_votes(config: Config) -> dict[str, tuple[object, list[tuple[str, int]]]]:
    store = Store.open(config.state.url)
    try:
        subs = Subscribers(store)
        return {
            s.address: (s.preferences, sorted((v.paper_key, v.value) for v in subs.votes(s.id)))
            for s in subs.all()
        }
    finally:
        store.close()


def test_export_then_import_round_trips_with_preferences_and_votes(
    make_config: MakeConfig, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = make_config()
    cli(config, "subscribers", "add", "ann@example.org", "--cadence", "weekly:mon", "--keyword", "R&D, ablation",
        "--keyword", "c", "--exclude", "x-ray")  # fmt: skip
    cli(
        config,
        "subscribers",
        "add",
        "bob@example.org",
        "--no-only-top",
        "--interests",
        'Quotes "and", commas',
    )
    store = Store.open(config.state.url)
    try:
        subs = Subscribers(store)
        ann = subs.get("ann@example.org")
        assert ann is not None
        subs.vote(ann.id, "sparse attention at scale", 1, NOW)
        subs.vote(ann.id, "diffusion for faces", -1, NOW)
        subs.vote(ann.id, "a survey", 1, NOW)
    finally:
        store.close()
    want = _prefs_and_votes(config)
    assert len(want["ann@example.org"][1]) == 3
    for fmt in ("csv", "json"):
        capsys.readouterr()
        assert cli(config, "subscribers", "export", "--format", fmt) == 0
        exported = capsys.readouterr().out
        target = tmp_path / f"other-{fmt}"
        target.mkdir()
        other = make_config(state={"url": f"sqlite:///{target}/digest.db"})
        (target / f"subs.{fmt}").write_text(exported)
        assert cli(other, "subscribers", "import", str(target / f"subs.{fmt}")) == 0
        assert "2 new" in capsys.readouterr().out
        assert _prefs_and_votes(other) == want, fmt


def test_a_keyword_holding_the_separator_is_refused_at_input(
    config: Config, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``;`` separates terms in CSV cells and the preferences form: a term holding one
    could not come back from an export as itself."""
    assert cli(config, "subscribers", "add", "ann@example.org", "--keyword", "R&D; ablation") == 1
    err = capsys.readouterr().err
    assert "'R&D; ablation' holds ';'" in err and len(err.strip().splitlines()) == 1
    data = tmp_path / "subs.json"
    data.write_text(json.dumps([{"address": "ann@example.org", "exclude": ["a;b"]}]))
    assert cli(config, "subscribers", "import", str(data)) == 1
    assert f"{data}[0]: exclude: 'a;b' holds ';'" in capsys.readouterr().err


def test_a_bad_import_row_names_the_line_and_imports_nothing(
    config: Config, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "subs.csv"
    bad.write_text("address,status,cadence\nok@example.org,active,daily\nnot-an-address,active,daily\n")
    assert cli(config, "subscribers", "import", str(bad)) == 1
    err = capsys.readouterr().err
    assert f"{bad}:3:" in err and "not an email address" in err
    bad.write_text("address,status,cadence\nok@example.org,active,hourly\n")
    assert cli(config, "subscribers", "import", str(bad)) == 1
    assert f"{bad}:2:" in capsys.readouterr().err
    cli(config, "subscribers", "list", "--json")
    assert json.loads(capsys.readouterr().out) == []


def test_status_counts_subscribers_by_status(config: Config, capsys: pytest.CaptureFixture[str]) -> None:
    cli(config, "subscribers", "add", "a@example.org")
    cli(config, "subscribers", "add", "b@example.org", "--pending")
    cli(config, "subscribers", "add", "c@example.org")
    cli(config, "subscribers", "set", "c@example.org", "--status", "bounced")
    capsys.readouterr()
    assert cli(config, "status", "--json") == 0
    counts = json.loads(capsys.readouterr().out)["subscribers"]
    assert counts == {"pending": 1, "active": 1, "unsubscribed": 0, "bounced": 1}
    assert cli(config, "status") == 0
    assert "subscribers: 1 pending, 1 active, 0 unsubscribed, 1 bounced" in capsys.readouterr().out


def test_healthz_counts_subscribers(config: Config) -> None:
    from digest.schedule import Service

    store = Store.open(config.state.url)
    try:
        Subscribers(store).add("a@example.org", datetime.now(UTC))
        _, body = Service(config, store).health()
    finally:
        store.close()
    assert body["subscribers"] == {"pending": 0, "active": 1, "unsubscribed": 0, "bounced": 0}


def test_the_token_key_comes_from_the_environment_and_is_never_shown(
    make_config: MakeConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    config = make_config(env={"DIGEST_SECRET_KEY": "s3cret-key-from-env"})
    assert config.subscribe.secret_key == "s3cret-key-from-env"
    assert "s3cret" not in repr(config)
    assert cli(config, "check-config") == 0
    out = capsys.readouterr()
    assert "s3cret" not in out.out + out.err


def test_check_config_warns_about_an_http_base_url_when_the_pages_are_served(
    make_config: MakeConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    config = make_config(digest={"base_url": "http://127.0.0.1:8080/"}, http={"listen": "127.0.0.1:8080"})
    assert cli(config, "check-config") == 0
    err = capsys.readouterr().err
    assert "base_url is http://" in err and "RFC 8058" in err and err.strip().endswith("config OK")


def test_without_the_pages_the_operators_https_target_stays_beside_the_personal_mailto(
    make_config: MakeConfig, inbox: Path
) -> None:
    from digest.pipeline import run_once
    from digest.transports import FileTransport
    from tests.helpers import DUMP_000, NOW, drop

    config = make_config(
        email={"to": ["a@example.org", "b@example.org"], "unsubscribe": ["https://example.org/leave"]}
    )
    drop(inbox, DUMP_000)
    store = Store.open(config.state.url)
    try:
        run_once(config, store, FileTransport(config.email.outbox), NOW)
    finally:
        store.close()
    headers = []
    for eml in sorted(config.email.outbox.rglob("*.eml")):
        head = eml.read_text().split("\n\n")[0]
        [line] = [h for h in head.splitlines() if h.startswith("List-Unsubscribe:")]
        assert line.startswith(
            "List-Unsubscribe: <https://example.org/leave>, <mailto:digest@example.org?subject="
        )
        assert "List-Unsubscribe-Post: List-Unsubscribe=One-Click" in head
        headers.append(line)
    assert len(headers) == 2 and headers[0] != headers[1]


def _votes_with_times(config: Config) -> dict[str, list[tuple[str, int, datetime]]]:
    store = Store.open(config.state.url)
    try:
        subs = Subscribers(store)
        return {s.address: sorted((v.paper_key, v.value, v.at) for v in subs.votes(s.id)) for s in subs.all()}
    finally:
        store.close()


def test_import_keeps_when_each_exported_vote_was_cast(
    make_config: MakeConfig, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Votes came back dated at the import: a personal email ranks by the votes cast up to
    its digest, so an imported vote moved later than its digests (`rank --as-emailed`)."""
    from datetime import timedelta

    config = make_config()
    cli(config, "subscribers", "add", "ann@example.org")
    store = Store.open(config.state.url)
    try:
        subs = Subscribers(store)
        ann = subs.get("ann@example.org")
        assert ann is not None
        subs.vote(ann.id, "sparse attention at scale", 1, NOW - timedelta(days=30))
        subs.vote(ann.id, "diffusion for faces", -1, NOW - timedelta(days=2, microseconds=5))
    finally:
        store.close()
    want = _votes_with_times(config)
    for fmt in ("csv", "json"):
        capsys.readouterr()
        assert cli(config, "subscribers", "export", "--format", fmt) == 0
        target = tmp_path / f"other-{fmt}"
        target.mkdir()
        (target / f"subs.{fmt}").write_text(capsys.readouterr().out)
        other = make_config(state={"url": f"sqlite:///{target}/digest.db"})
        assert cli(other, "subscribers", "import", str(target / f"subs.{fmt}")) == 0
        assert _votes_with_times(other) == want, fmt


def test_a_file_without_vote_times_still_imports_dated_at_the_import(
    config: Config, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = datetime.now(UTC)
    old = tmp_path / "old.csv"  # as export wrote it before voted_at
    old.write_text("address,status,likes,dislikes\nann@example.org,active,sparse attention at scale,\n")
    assert cli(config, "subscribers", "import", str(old)) == 0
    [(key, value, at)] = _votes_with_times(config)["ann@example.org"]
    assert (key, value) == ("sparse attention at scale", 1) and before <= at <= datetime.now(UTC)


@pytest.mark.parametrize(
    ("cell", "says"),
    [
        (
            "sparse attention at scale=yesterday",
            "voted_at: sparse attention at scale=yesterday is not paper=time",
        ),
        (
            "sparse attention at scale=2026-11-20T07:00:00",
            "voted_at: sparse attention at scale=2026-11-20T07:00:00 is",
        ),
        (
            "other paper=2026-11-20T07:00:00+00:00",
            "voted_at: 'other paper' is neither in likes nor in dislikes",
        ),
    ],
)
def test_a_bad_vote_time_names_the_row_and_imports_nothing(
    config: Config, tmp_path: Path, capsys: pytest.CaptureFixture[str], cell: str, says: str
) -> None:
    bad = tmp_path / "subs.csv"
    bad.write_text(
        f"address,likes,voted_at\nok@example.org,,\nann@example.org,sparse attention at scale,{cell}\n"
    )
    assert cli(config, "subscribers", "import", str(bad)) == 1
    err = capsys.readouterr().err
    assert f"{bad}:3: {says}" in err and len(err.strip().splitlines()) == 1
    assert _votes_with_times(config) == {}
