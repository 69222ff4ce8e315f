"""A real PostgreSQL server for tests, started from the installed binaries.

PostgreSQL refuses to run as root, and tests here run as root: the data directory is
created in a fresh temporary folder owned by the ``postgres`` OS user and the server runs as
that user (``runuser``). It listens on 127.0.0.1 only, on a free port, with its unix socket
in the same folder and trust auth for loopback (tests pass no password)::

    def test_x(pg_url):            # a fresh, empty database per test
        PostgresRequestCache(pg_url, "run-1").put_response(...)

    def test_y(pg_server):         # the session's server (~1 s to start once)
        pg_server.create_db("other")

    with start_postgres() as srv:  # a private server a test may stop and restart
        srv.stop(); srv.start()

Without the binaries (``pg_config --bindir`` or ``/usr/lib/postgresql/*/bin``) the fixtures
skip with the reason; ``make system-deps`` installs Debian's ``postgresql``.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.servers import free_port

_names = itertools.count()


def find_bindir() -> Path | None:
    """The folder holding ``initdb``, ``pg_ctl`` and ``postgres``, if installed."""
    candidates = []
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        candidates.append(out.stdout.strip())
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for folder in candidates:
        if folder and all((Path(folder) / b).is_file() for b in ("initdb", "pg_ctl", "postgres")):
            return Path(folder)
    return None


def _as_server_user() -> list[str]:
    """The command prefix that runs a server binary as a user PostgreSQL accepts."""
    if os.geteuid() != 0:
        return []
    if shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: cannot start PostgreSQL as postgres")
    try:
        import pwd

        pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("running as root and no 'postgres' OS user to run PostgreSQL as")
    return ["runuser", "-u", "postgres", "--"]


@dataclass
class PgServer:
    bindir: Path
    root: Path
    port: int
    prefix: list[str]
    user: str = "postgres"

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, db: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{db}"

    def _ctl(self, *args: str) -> None:
        cmd = [*self.prefix, str(self.bindir / "pg_ctl"), "-D", str(self.data), *args]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"pg_ctl {' '.join(args)} failed: {done.stderr or done.stdout}")

    def start(self) -> None:
        opts = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} "
            "-c fsync=off -c full_page_writes=off -c max_connections=50"
        )
        self._ctl("-o", opts, "-l", str(self.root / "server.log"), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """``fast`` ends every client connection at once (what a restart looks like)."""
        self._ctl("-m", mode, "-w", "stop")

    def sql(self, query: str, params: tuple = (), db: str = "postgres") -> list[tuple]:
        import psycopg

        with psycopg.connect(self.url(db), autocommit=True) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else []

    def create_db(self, name: str) -> str:
        """A fresh, empty database; returns its URL."""
        self.sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.sql(f'CREATE DATABASE "{name}"')
        return self.url(name)


@contextlib.contextmanager
def start_postgres() -> Iterator[PgServer]:
    """A new PostgreSQL server in a temporary folder, stopped and removed on exit."""
    pytest.importorskip("psycopg")
    bindir = find_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL binaries not found (install Debian's postgresql)")
    prefix = _as_server_user()
    root = Path(tempfile.mkdtemp(prefix="diffcap-pg-"))
    try:
        if prefix:
            shutil.chown(root, "postgres")
        init = [*prefix, str(bindir / "initdb"), "-D", str(root / "data"), "-U", "postgres"]
        init += ["-A", "trust", "-E", "UTF8", "--no-sync", "--no-instructions"]
        subprocess.run(init, check=True, capture_output=True, timeout=120)
        srv = PgServer(bindir, root, free_port(), prefix)
        srv.start()
        try:
            yield srv
        finally:
            with contextlib.suppress(RuntimeError):
                srv.stop("immediate")
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    with start_postgres() as srv:
        yield srv


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    """A fresh empty database on the session's server."""
    return pg_server.create_db(f"t{os.getpid()}_{next(_names)}")
