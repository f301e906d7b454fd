"""A throwaway PostgreSQL server on a loopback port that a test can kill and start again."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

__all__ = ["PostgresServer", "pg_bin"]


def pg_bin() -> Path:
    """Return the folder of PostgreSQL's server programs (``initdb``, ``pg_ctl``).

    Returns
    -------
    pathlib.Path
        The newest installed version's ``bin``.

    Raises
    ------
    RuntimeError
        If PostgreSQL is not installed.
    """
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    raise RuntimeError("PostgreSQL is not installed: run scripts/install-system-deps.sh")


class PostgresServer:
    """A PostgreSQL cluster in a temporary directory, served on ``127.0.0.1:port``.

    As root (CI) the server runs as the ``postgres`` system user, which refuses root.
    :meth:`create` makes the cluster and starts it; :meth:`kill` stops it the way a crash
    would (``pg_ctl stop -m immediate``: no checkpoint, clients cut); :meth:`start` brings it
    back on the same port; :meth:`destroy` stops it and removes its files.

    Parameters
    ----------
    port
        The TCP port.
    durable
        Keep PostgreSQL's fsync on (benchmarks); tests run it with ``fsync=off``.
    """

    def __init__(self, port: int, *, durable: bool = False) -> None:
        self.port = port
        self.durable = durable
        self.bindir = pg_bin()
        self.root = Path(tempfile.mkdtemp(prefix="triage-pg-"))
        self.data = self.root / "data"
        self._prefix: list[str] = []
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
            self._prefix = ["runuser", "-u", "postgres", "--"]
        self._env = {**os.environ, "LC_ALL": "C.UTF-8"}

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of the ``triage`` database."""
        return f"postgresql+psycopg://triage@127.0.0.1:{self.port}/triage"

    def _ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [*self._prefix, str(self.bindir / "pg_ctl"), "-D", str(self.data), *args],
            check=check,
            capture_output=True,
            env=self._env,
            timeout=120,
        )

    def create(self) -> str:
        """Initialise the cluster, start it and create the ``triage`` database; return its URL."""
        subprocess.run(
            [
                *self._prefix,
                str(self.bindir / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "triage",
                "--auth=trust",
                "-E",
                "UTF8",
            ],
            check=True,
            capture_output=True,
            env=self._env,
        )
        self.start()
        subprocess.run(
            [
                str(self.bindir / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "triage",
                "triage",
            ],
            check=True,
            capture_output=True,
        )
        return self.url

    def start(self) -> None:
        """Start the server (again) and wait until it accepts connections."""
        opts = f"-h 127.0.0.1 -p {self.port} -k {self.root} -c max_connections=200"
        if not self.durable:  # tests need no crash safety of the server itself
            opts += " -c fsync=off"
        self._ctl("-o", opts, "-l", str(self.root / "log"), "-w", "start")

    def kill(self) -> None:
        """Stop the server at once, as a crash would (no shutdown checkpoint; clients cut)."""
        self._ctl("-m", "immediate", "stop")

    def destroy(self) -> None:
        """Stop the server if it runs and remove its files."""
        self._ctl("-m", "immediate", "stop", check=False)
        shutil.rmtree(self.root, ignore_errors=True)
