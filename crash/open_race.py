"""Many first runs opening one new SQLite state at the same instant (run by hand).

    python -m crash.open_race --rounds 30 --procs 6

Each round forks ``--procs`` processes that meet at a barrier, then open the state
(``Store.open``: connect, switch to WAL, migrate) and read it. Prints how many opens
failed and why; exit status 1 when any did. Before the WAL switch learned to wait,
about 1 open in 40 failed with "database is locked" on a busy machine
(it depends on load: on a quiet one it may take many rounds).
"""

from __future__ import annotations

import argparse
import collections
import multiprocessing
import sys
import tempfile
from collections.abc import Sequence
from typing import Any


def _open(url: str, barrier: Any, results: Any) -> None:
    from digest.store import Store  # imported in the child, as a real first run does

    barrier.wait()
    try:
        store = Store.open(url)
        store.counts()
        store.close()
        results.put("ok")
    except Exception as err:  # report every failure, expected or not
        results.put(f"{type(err).__name__}: {str(err).splitlines()[0][-80:]}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--procs", type=int, default=6)
    args = parser.parse_args(argv)
    outcomes: collections.Counter[str] = collections.Counter()
    with tempfile.TemporaryDirectory(prefix="digest-open-race-") as tmp:
        for n in range(args.rounds):
            url = f"sqlite:///{tmp}/state-{n}.db"
            barrier = multiprocessing.Barrier(args.procs)
            results: multiprocessing.Queue[str] = multiprocessing.Queue()
            procs = [
                multiprocessing.Process(target=_open, args=(url, barrier, results)) for _ in range(args.procs)
            ]
            for p in procs:
                p.start()
            outcomes.update(results.get(timeout=120) for _ in procs)
            for p in procs:
                p.join()
    for outcome, count in outcomes.most_common():
        print(f"{count:5d}  {outcome}")
    return 0 if set(outcomes) == {"ok"} else 1


if __name__ == "__main__":
    sys.exit(main())
