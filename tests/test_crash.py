"""Crash safety (docs/DESIGN.md invariants 1-6): ``digest run`` SIGKILLed at every named crash point,
then run again, leaves every paper stored once, every digest published and delivered,
no half-written or temp file, and a re-delivery only in the accept→mark_sent window,
byte-identical. The by-hand harness (``python -m crash.harness``) runs hundreds of
trials with random timing as well; this is its quick pass over the named points."""

from __future__ import annotations

from pathlib import Path

import pytest

from crash.harness import Kill, Sink, Trial
from digest.crashpoints import POINTS

pytestmark = pytest.mark.slow  # kills real runs at every crash point

# Each named point once. Only the batch point needs a dump larger than a store batch,
# and the two sample dumps ride along with the accept→mark_sent point; the rest stay small.
KILLS = [Kill(point=p) for p in POINTS]


@pytest.mark.parametrize("kill", KILLS, ids=Kill.label)
def test_killed_run_then_recovery_loses_and_duplicates_nothing(tmp_path: Path, kill: Kill) -> None:
    large = 510 if kill.point == "ingest.batch" else 40
    samples = kill.point == "outbox.accepted"
    trial = Trial(
        seed=7, root=tmp_path / "install", mode="points", duration=1.0, large=large, samples=samples
    )
    result = trial.crash_once(kill)

    assert result.landed == 1, f"{kill.label()} was never reached: the crash point is not wired"
    assert result.problems == []
    if kill.point in ("outbox.accepted", "deliver.file_written"):
        assert result.redelivered == 1  # sent again, byte-identical (checked by the trial)
    else:
        assert result.redelivered == 0


def test_crash_between_smtp_accept_and_mark_sent_resends_the_same_message(tmp_path: Path) -> None:
    # A real SMTP server in this process counts copies per (Message-ID, recipient): the
    # second recipient's message was accepted when the run died, so it arrives twice,
    # byte-identical; every other message arrives once (checked by the trial).
    with Sink() as sink:
        trial = Trial(seed=7, root=tmp_path / "install", mode="points", duration=1.0, large=40, sink=sink)
        result = trial.crash_once(Kill(point="outbox.accepted", n=2))
        copies = sorted(len(v) for v in sink.received.values())

    assert result.landed == 1
    assert result.problems == []
    assert result.redelivered == 1
    assert copies == [1, 1, 1, 1, 1, 2]  # two digests × three recipients, one sent twice
