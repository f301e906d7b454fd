"""The real peers of the tests: free ports, DCMTK's echoscu/storescu, a throwaway PostgreSQL."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.builders.postgres import PostgresServer

__all__ = [
    "dcmtk",
    "echoscu",
    "free_port",
    "fresh_postgres_db",
    "need_dcmtk",
    "postgres_server",
    "store_responses",
    "storescu",
    "wait_for",
    "wait_for_port",
]


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago.

    Returns
    -------
    int
        The port.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30.0, host: str = "127.0.0.1") -> None:
    """Wait until something listens on ``host:port``.

    Parameters
    ----------
    port : int
        The TCP port.
    timeout : float, optional
        Seconds to wait.
    host : str, optional
        The address.

    Raises
    ------
    TimeoutError
        If nothing listens after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout} s")


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll ``predicate`` every 50 ms until it holds or ``timeout`` seconds pass.

    Parameters
    ----------
    predicate : callable
        What to wait for.
    timeout : float, optional
        Seconds to wait.

    Returns
    -------
    bool
        The predicate's last value.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def dcmtk(tool: str) -> str:
    """Return the path of DCMTK's ``tool`` (``storescu``, ``storescp``, ``echoscu``...).

    pynetdicom installs Python scripts with the same names into the virtual environment's
    ``bin``; when that folder comes first on ``PATH`` (an activated venv), a plain ``storescu``
    would run pynetdicom's, which takes other options. DCMTK's tools are native executables, so
    the first match on ``PATH`` that is not a ``#!`` script is DCMTK's.

    Parameters
    ----------
    tool : str
        The DCMTK program's name.

    Returns
    -------
    str
        Its absolute path. The test fails (never skips) when DCMTK is not installed.
    """
    for folder in os.get_exec_path():
        candidate = Path(folder) / tool
        if candidate.is_file() and os.access(candidate, os.X_OK):
            with candidate.open("rb") as f:
                if f.read(2) != b"#!":
                    return str(candidate)
    pytest.fail(f"DCMTK's {tool} is not installed: run scripts/install-system-deps.sh")


def need_dcmtk() -> None:
    """Fail the test (never skip it) when DCMTK's storescu or echoscu is missing."""
    dcmtk("storescu")
    dcmtk("echoscu")


def echoscu(port: int, *args: str) -> subprocess.CompletedProcess[str]:
    """Run DCMTK's echoscu against ``127.0.0.1:port``.

    Parameters
    ----------
    port : int
        The SCP's port.
    *args : str
        Further echoscu options (``-aet NAME``, ...).

    Returns
    -------
    subprocess.CompletedProcess
        Its exit code and output.
    """
    need_dcmtk()
    return subprocess.run(
        [dcmtk("echoscu"), "-to", "10", *args, "127.0.0.1", str(port)],
        capture_output=True,
        text=True,
        timeout=30,
    )


_SENDING = re.compile(r"Sending file: (.+)$")
_RESPONSE = re.compile(r"Received Store Response \((.+)\)")


def storescu(port: int, files: list[Path], *args: str) -> tuple[int, dict[str, str]]:
    """Send ``files`` with DCMTK's storescu to ``127.0.0.1:port``, one association.

    Parameters
    ----------
    port : int
        The SCP's port.
    files : list of pathlib.Path
        The files, in order.
    *args : str
        Further storescu options.

    Returns
    -------
    tuple of (int, dict of str to str)
        Its exit code, and the response per file sent (``"Success"``, ...).
    """
    need_dcmtk()
    proc = subprocess.run(
        [dcmtk("storescu"), "-v", "-R", "-nh", "-to", "20", *args, "127.0.0.1", str(port)]
        + [str(f) for f in files],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc.returncode, store_responses(proc.stdout + proc.stderr)


def store_responses(output: str) -> dict[str, str]:
    """Return the C-STORE response status storescu (``-v``) printed for each file it sent.

    Parameters
    ----------
    output : str
        storescu's stdout and stderr.

    Returns
    -------
    dict of str to str
        DCMTK's text of the status (``"Success"``, ``"Refused: OutOfResources"``, ...) per file
        path that got a response; a file without an entry got none.
    """
    responses: dict[str, str] = {}
    current: str | None = None
    for line in output.splitlines():
        m = _SENDING.search(line)
        if m:
            current = m.group(1).strip()
            continue
        m = _RESPONSE.search(line)
        if m and current is not None:
            responses[current] = m.group(1)
            current = None
    return responses


@contextlib.contextmanager
def postgres_server(*, durable: bool = False) -> Iterator[str]:
    """Start a PostgreSQL server on a loopback port in a temporary directory; yield its URL.

    As root (CI), the server runs as the ``postgres`` system user, which refuses root.

    Parameters
    ----------
    durable : bool, optional
        Keep PostgreSQL's own ``fsync=on`` (benchmarks); tests run with ``fsync=off``.

    Yields
    ------
    str
        The SQLAlchemy URL of its ``triage`` database; the server stops afterwards.
    """
    server = PostgresServer(free_port(), durable=durable)
    try:
        yield server.create()
    finally:
        server.destroy()


def fresh_postgres_db(server_url: str) -> str:
    """Create an empty database on the server of ``server_url``; return its URL.

    Parameters
    ----------
    server_url : str
        A URL of any database on the server, such as :func:`postgres_server` yields.

    Returns
    -------
    str
        The URL of the new database.
    """
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return server_url.rsplit("/", 1)[0] + "/" + name
