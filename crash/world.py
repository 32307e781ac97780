"""A crash trial's world: the install it runs in (config, inbox, state, site, outbox),
the dumps it drops there, and a real SMTP sink counting what it accepts."""

from __future__ import annotations

import collections
import dataclasses
import email
import email.policy
import random
import socket
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = sorted((ROOT / "examples" / "dumps").glob("*.txt"))
RECIPIENTS = ("ada@example.org", "bob@example.net", "cy@example.com")
DOMAIN = "example.org"

_TOPICS = (
    "sparse attention diffusion transformer graph neural network scaling laws retrieval "
    "augmented generation reinforcement learning from human feedback vision language model "
    "token pruning mixture of experts quantization distillation benchmark agents planning "
    "world models video synthesis 3D gaussian splatting protein folding speech recognition "
    "contrastive pretraining robust calibration federated privacy causal reasoning"
)
_WORDS = tuple(_TOPICS.split(" "))
_ODD = ("[MASK]", "W_+", "é", "Über", "(Re)", "ß", "1.5B", "x2", "--", "naïve")


# --- the install ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Install:
    root: Path

    @property
    def inbox(self) -> Path:
        return self.root / "inbox"

    @property
    def config(self) -> Path:
        return self.root / "digest.toml"

    @property
    def site(self) -> Path:
        return self.root / "var" / "site"

    @property
    def outbox(self) -> Path:
        return self.root / "var" / "outbox"

    @property
    def db(self) -> Path:
        return self.root / "var" / "digest.db"


def make_install(root: Path, smtp_port: int | None = None) -> Install:
    """A config with three recipients and a feed long enough for all; the file transport,
    or SMTP to 127.0.0.1:``smtp_port``."""
    install = Install(root)
    transport = (
        f'transport = "smtp"\n[email.smtp]\nhost = "127.0.0.1"\nport = {smtp_port}\nsecurity = "none"\n'
        if smtp_port
        else 'transport = "file"\n'
    )
    install.inbox.mkdir(parents=True)
    to = ", ".join(f'"{r}"' for r in RECIPIENTS)
    install.config.write_text(
        "[digest]\n"
        'title = "Crash Digest"\n'
        'base_url = "https://example.org/crash/"\n'
        "[sources]\n"
        'inbox = "inbox"\n'
        "[state]\n"
        'url = "sqlite:///var/digest.db"\n'
        "[feed]\n"
        'output_dir = "var/site"\n'
        "max_items = 100000\n"
        "max_items_hard = 100000\n"
        # One page per digest: check() counts a digest's papers on its page.
        "[archive]\n"
        "page_size = 100000\n"
        "[email]\n"
        'outbox = "var/outbox"\n'
        f'from = "Crash Digest <digest@{DOMAIN}>"\n'
        f"to = [{to}]\n" + transport,
        encoding="utf-8",
    )
    return install


# --- dumps ---------------------------------------------------------------------------------


def _title(rng: random.Random, n: int) -> str:
    words = rng.sample(_WORDS, rng.randint(2, 7))
    if rng.random() < 0.2:
        words.insert(rng.randrange(len(words) + 1), rng.choice(_ODD))
    head = " ".join(words).capitalize()
    return f"{head} {n}" if rng.random() < 0.7 else f"P{n}: {head}"


def _abstract(rng: random.Random, n: int) -> str:
    body = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(45, 90)))
    link = f" Code is available at https://github.com/lab{n}/repo{n}." if rng.random() < 0.3 else ""
    return f"We study paper {n}: {body}.{link}"


def _render(papers: Sequence[tuple[str, str]], compact: bool, crlf: bool) -> bytes:
    if compact:
        lines = [
            "Get trending papers in your email inbox once a day!",
            "Get trending papers in your email inbox!",
        ]
        for i, (t, a) in enumerate(papers):
            lines += [("Subscribe" + t) if i == 0 else t, a]
    else:
        lines = [
            "new",
            "",
            "Subscribe",
            "",
            "Daily Papers",
            "",
            "byAK and the research community",
            "",
            "Nov 3",
            "",
        ]
        for t, a in papers:
            lines += [t, "", a, ""]
    eol = "\r\n" if crlf else "\n"
    return (eol.join(lines) + eol).encode("utf-8")


Dump = tuple[str, bytes]
Row = tuple[Any, ...]  # a row read back from the state


def dump_batches(
    rng: random.Random, *, large: int = 1100, samples: bool = True
) -> tuple[list[Dump], list[Dump]]:
    """Two batches of dumps: (first, later). Papers overlap between synthetic dumps and
    within a batch; one dump is larger than a store batch; a sample appears again under
    a new name; one file is binary garbage (a recorded failure)."""
    pool = [(_title(rng, n), _abstract(rng, n)) for n in range(large + 400)]

    def pick(k: int) -> list[tuple[str, str]]:
        return rng.sample(pool, k)

    first: list[Dump] = [(p.name, p.read_bytes()) for p in SAMPLES] if samples else []
    first.append(("100_large.txt", _render(pick(large), compact=False, crlf=rng.random() < 0.5)))
    first.append(("101_small.txt", _render(pick(rng.randint(5, 40)), compact=True, crlf=False)))
    first.append(("102_garbage.txt", bytes(rng.randrange(256) for _ in range(3000))))
    later: list[Dump] = [
        ("200_more.txt", _render(pick(rng.randint(30, 120)), compact=rng.random() < 0.5, crlf=False)),
        ("201_more.txt", _render(pick(rng.randint(5, 60)), compact=False, crlf=True)),
    ]
    if samples:
        later.append(("202_copy.txt", SAMPLES[0].read_bytes()))  # the same bytes under a second name
    return first, later


def drop(install: Install, dumps: Iterable[Dump]) -> None:
    for name, data in dumps:
        tmp = install.inbox / f".{name}.part"
        tmp.write_bytes(data)
        tmp.rename(install.inbox / name)


# --- an SMTP sink ------------------------------------------------------------------------------


def free_port() -> int:
    # aiosmtpd 1.4.6 cannot bind port 0: ask the OS for a free port first.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Sink:
    """A real SMTP server (aiosmtpd) in this process, counting what it accepted per
    (Message-ID, recipient) and keeping the bytes."""

    def __init__(self) -> None:
        self.received: dict[tuple[str, str], list[bytes]] = collections.defaultdict(list)
        self.lock = threading.Lock()
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                self.received[(str(msg["Message-ID"]), rcpt)].append(bytes(envelope.content))
        return "250 2.0.0 accepted"

    def count(self, mid: str, recipient: str) -> int:
        with self.lock:
            return len(self.received.get((mid, recipient), []))

    def __enter__(self) -> Sink:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()
