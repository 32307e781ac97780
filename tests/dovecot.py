"""A real IMAP server for tests: Debian's Dovecot (``dovecot-imapd``, installed by .ci/run),
started by the test on 127.0.0.1 with a throwaway config, as the current user, with a
self-signed certificate made here (``cryptography``). Skips with the reason when
Dovecot is not installed.

Each test gets a user of its own (:meth:`Dovecot.user`), so its mailbox starts empty.
"""

from __future__ import annotations

import datetime as dt
import grp
import imaplib
import ipaddress
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

DOVECOT = shutil.which("dovecot") or (
    "/usr/sbin/dovecot" if os.access("/usr/sbin/dovecot", os.X_OK) else None
)
PASSWORD = "imap-pw-9!x"  # a static passdb argument: no spaces


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost (its own CA), and its key, as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


CONF = """\
base_dir = {base}
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <{cert}
ssl_key = <{key}
ssl_min_protocol = TLSv1.2
auth_mechanisms = plain
auth_failure_delay = 0
mail_location = maildir:{mail}/%u
default_internal_user = {user}
default_login_user = {login_user}
default_internal_group = {group}
first_valid_uid = {uid}
first_valid_gid = {gid}
passdb {{
  driver = static
  args = password={password}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={mail}/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
"""


@dataclass
class Dovecot:
    root: Path
    cert: Path
    imaps_port: int
    imap_port: int
    proc: subprocess.Popen[bytes]
    base: Path
    users: list[str] = field(default_factory=list)

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def user(self, name: str) -> str:
        """A user of its own (an empty INBOX): any name logs in with :data:`PASSWORD`
        (a static passdb)."""
        assert name not in self.users, f"user {name} is taken by another test"
        self.users.append(name)
        return name

    def tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))

    def connect(self, user: str) -> imaplib.IMAP4_SSL:
        """An IMAP session of the test itself (APPEND, looking at flags), logged in."""
        conn = imaplib.IMAP4_SSL("127.0.0.1", self.imaps_port, ssl_context=self.tls(), timeout=10)
        conn.login(user, PASSWORD)
        return conn

    def append(self, user: str, *messages: bytes, mailbox: str = "INBOX") -> None:
        conn = self.connect(user)
        try:
            for raw in messages:
                typ, data = conn.append(mailbox, None, None, raw)
                assert typ == "OK", data
        finally:
            conn.logout()

    def flags(self, user: str, mailbox: str = "INBOX") -> dict[str, set[str]]:
        """Message-ID (or the first header line) → flags of every message."""
        conn = self.connect(user)
        try:
            conn.select(mailbox, readonly=True)
            typ, data = conn.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
            assert typ == "OK", data
            out: dict[str, set[str]] = {}
            for part in data:
                if not isinstance(part, tuple):
                    continue
                meta, header = part[0].decode(), part[1].decode().strip()
                flags = meta.split("FLAGS (", 1)[1].split(")", 1)[0].split()
                out[header.partition(":")[2].strip() or meta] = set(flags)
            return out
        finally:
            conn.logout()


def _accounts() -> tuple[str, str, pwd.struct_passwd]:
    """(internal user, login user, mail user). Dovecot runs as the current user; as root it
    refuses to run the login process or a mailbox as root: those get Debian's unprivileged
    ``dovenull`` and ``nobody``."""
    me = pwd.getpwuid(os.getuid())
    if os.getuid() != 0:
        return me.pw_name, me.pw_name, me
    try:
        login = pwd.getpwnam("dovenull").pw_name
    except KeyError:
        login = "nobody"
    return me.pw_name, login, pwd.getpwnam("nobody")


def start(root: Path) -> Dovecot:
    assert DOVECOT is not None
    cert, key = self_signed(root)
    # A short folder of its own for base_dir (Unix socket paths must stay under 108 bytes)
    # and the mailboxes, which the unprivileged users must reach.
    work = Path(tempfile.mkdtemp(prefix="dovecot-", dir="/tmp"))
    work.chmod(0o755)
    user, login, mail_user = _accounts()
    for sub in ("run", "mail"):
        (work / sub).mkdir(mode=0o755)
    if os.getuid() == 0:
        os.chown(work / "mail", mail_user.pw_uid, mail_user.pw_gid)
    for sub in ("state",):
        (root / sub).mkdir()
    conf = root / "dovecot.conf"
    imaps_port, imap_port = free_port(), free_port()
    conf.write_text(
        CONF.format(
            base=work / "run",
            mail=work / "mail",
            root=root,
            cert=cert,
            key=key,
            user=user,
            login_user=login,
            group=grp.getgrgid(os.getgid()).gr_name,
            uid=mail_user.pw_uid,
            gid=mail_user.pw_gid,
            imap_port=imap_port,
            imaps_port=imaps_port,
            password=PASSWORD,
        )
    )
    base = work
    proc = subprocess.Popen(
        [DOVECOT, "-F", "-c", str(conf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    server = Dovecot(root, cert, imaps_port, imap_port, proc, base)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            raise AssertionError(f"dovecot exited with {proc.returncode}: {out}\n{server.log()}")
        try:
            with socket.create_connection(("127.0.0.1", imaps_port), timeout=1):
                break
        except OSError:
            time.sleep(0.1)
    else:
        stop(server)
        raise AssertionError(f"dovecot did not listen on {imaps_port}: {server.log()}")
    return server


def stop(server: Dovecot) -> None:
    if server.proc.poll() is None:
        server.proc.send_signal(signal.SIGTERM)
        try:
            server.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait()
    if server.proc.stdout is not None:
        server.proc.stdout.close()
    shutil.rmtree(server.base, ignore_errors=True)


@pytest.fixture(scope="module")
def dovecot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dovecot]:
    """A Dovecot for the module's tests; skipped when it is not installed."""
    if DOVECOT is None:
        pytest.skip("Dovecot is not installed (Debian: apt-get install dovecot-imapd; .ci/run does)")
    server = start(tmp_path_factory.mktemp("dovecot"))
    yield server
    stop(server)
