"""The receivers of the ingest benchmark, each a server started fresh for one run.

Every receiver runs in its own process group (``start_new_session``) so that its CPU time
(:func:`group_cpu_s`, reaped children included) and its resident memory (:func:`tree_rss_bytes`,
every live process of its tree) can be measured, and is stopped by its pid. Each counts what it
stored afterwards, so a run that lost an instance fails instead of printing a rate.

* :class:`Ours`: ``python -m triage gateway`` (one listener process per core, SQLite or
  PostgreSQL store, every instance fsynced and committed before Success).
* :class:`OrthancReceiver`: Debian's Orthanc with its own config (``SyncStorageArea`` true,
  SQLite index) and ``TCP_NODELAY=1`` in its environment.
* :class:`Dcmtk`: DCMTK ``storescp --fork`` (writes each file, no fsync).
* :class:`PynetdicomNoop`: :mod:`benchmarks.pynetdicom_noop`, pynetdicom storing nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from sqlalchemy import create_engine, text

from benchmarks.proc_cpu import process_tree
from tests.builders.peers import dcmtk, free_port, wait_for_port

__all__ = [
    "AE_TITLE",
    "Dcmtk",
    "OrthancReceiver",
    "Ours",
    "PynetdicomNoop",
    "Receiver",
    "group_cpu_s",
    "tree_rss_bytes",
]

ROOT = Path(__file__).resolve().parents[1]
AE_TITLE = "ICS_TRIAGE"


def group_cpu_s(pgid: int) -> float:
    """CPU seconds (user + system, with reaped children) of every live process in a group."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after the name: state ppid pgrp ...
            total += sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
    return total / os.sysconf("SC_CLK_TCK")


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` and its live descendants (Linux ``/proc``), in bytes."""
    page = os.sysconf("SC_PAGE_SIZE")
    total = 0
    for p in process_tree(pid):
        with contextlib.suppress(OSError, ValueError, IndexError):
            total += int(Path(f"/proc/{p}/statm").read_text().split()[1]) * page
    return total


class Receiver:
    """A receiver started fresh for one run (subclasses say how)."""

    name = ""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server and return once its DICOM port accepts connections."""
        raise NotImplementedError

    def stored(self) -> int:
        """How many instances it stored (after :meth:`stop`, unless said otherwise)."""
        raise NotImplementedError

    @property
    def pid(self) -> int:
        """The pid (and process group) of the server."""
        assert self.proc is not None
        return self.proc.pid

    def _popen(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env,
                start_new_session=True,
            )  # fmt: skip

    def _check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}")

    def stop(self) -> None:
        """Stop the whole process group (SIGTERM, then SIGKILL)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def cleanup(self) -> None:
        """Remove what the run wrote."""
        shutil.rmtree(self.work, ignore_errors=True)


class Ours(Receiver):
    """``triage gateway`` with a fresh data directory (and database, when ``db_url`` is given)."""

    name = "ours"

    def __init__(
        self, work: Path, *, processes: int, db_url: str | None = None, group_commit: bool = True
    ) -> None:
        super().__init__(work)
        self.processes, self.group_commit = processes, group_commit
        self.db_url = db_url or f"sqlite:///{work / 'triage.db'}"

    def start(self) -> None:
        """Start the gateway (migrating the store) and wait until every listener is bound."""
        self.work.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "triage", "--log-level", "WARNING", "gateway"]
        argv += ["--port", str(self.port), "--data-dir", str(self.work)]
        argv += ["--processes", str(self.processes)]
        env = dict(
            os.environ,
            TRIAGE_WORKLIST_MIN_FREE_BYTES="0",
            TRIAGE_WORKLIST_DATABASE_URL=self.db_url,
            TRIAGE_GATEWAY_GROUP_COMMIT=str(self.group_commit).lower(),
        )
        self._popen(argv, env, self.work / "gateway.log")
        wait_for_port(self.port, 120.0)
        time.sleep(1.0)  # let every listener process bind
        self._check_alive()

    def stored(self) -> int:
        """Rows in ``instances`` (each was committed before its Success)."""
        engine = create_engine(self.db_url)
        try:
            with engine.connect() as conn:
                return int(conn.execute(text("SELECT COUNT(*) FROM instances")).scalar_one())
        finally:
            engine.dispose()


class OrthancReceiver(Receiver):
    """Orthanc with its own config in ``work``: ``SyncStorageArea`` true, SQLite index.

    Orthanc 1.10 has no option to bind its DICOM port to one address: it listens on every
    interface (its HTTP API stays local, ``RemoteAccessAllowed`` false).
    """

    name = "orthanc"
    _count = 0

    def start(self) -> None:
        """Write the config, start Orthanc, wait for its REST API and DICOM port."""
        self.work.mkdir(parents=True, exist_ok=True)
        self.http_port = free_port()
        config = {
            "Name": "ingest-benchmark",
            "StorageDirectory": str(self.work / "storage"),
            "IndexDirectory": str(self.work / "index"),
            "HttpPort": self.http_port,
            "DicomPort": self.port,
            "DicomAet": AE_TITLE,
            "DicomCheckCalledAet": False,
            "DicomAlwaysAllowStore": True,
            "SyncStorageArea": True,
            "StorageCompression": False,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "Plugins": [],
        }
        path = self.work / "orthanc.json"
        path.write_text(json.dumps(config, indent=2))
        binary = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
        # Its DICOM layer is DCMTK: Nagle's algorithm is off only with TCP_NODELAY=1.
        self._popen([binary, str(path)], dict(os.environ, TCP_NODELAY="1"), self.work / "log")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            self._check_alive()
            with contextlib.suppress(OSError):
                self._statistics()
                break
            time.sleep(0.1)
        wait_for_port(self.port, 60.0)

    def _statistics(self) -> dict[str, object]:
        url = f"http://127.0.0.1:{self.http_port}/statistics"
        with urllib.request.urlopen(url, timeout=10) as response:
            stats: dict[str, object] = json.load(response)
            return stats

    def stored(self) -> int:
        """Orthanc's own count of instances (asked before it was stopped)."""
        return self._count

    def stop(self) -> None:
        """Count first (the count needs the REST API), then stop."""
        if self.proc is not None and self.proc.poll() is None:
            self._count = int(str(self._statistics()["CountInstances"]))
        super().stop()


class Dcmtk(Receiver):
    """DCMTK ``storescp --fork`` writing each instance to a folder (no fsync)."""

    name = "dcmtk"

    def start(self) -> None:
        """Start storescp and wait for its port."""
        (self.work / "out").mkdir(parents=True, exist_ok=True)
        argv = [dcmtk("storescp"), "--fork", "-aet", AE_TITLE, "-od", str(self.work / "out")]
        # DCMTK turns Nagle's algorithm off only with TCP_NODELAY=1 in its environment.
        self._popen([*argv, str(self.port)], dict(os.environ, TCP_NODELAY="1"), self.work / "log")
        wait_for_port(self.port, 30.0)

    def stored(self) -> int:
        """Files written."""
        return sum(1 for _ in (self.work / "out").iterdir())


class PynetdicomNoop(Receiver):
    """pynetdicom in ``processes`` processes, storing nothing (the pynetdicom ceiling)."""

    name = "pynetdicom"

    def __init__(self, work: Path, *, processes: int, run_loop_delay: float | None = None) -> None:
        super().__init__(work)
        self.processes = processes
        self.count_file = work / "count"
        self.run_loop_delay = run_loop_delay
        if run_loop_delay is not None:
            self.name = "pyn-dul"  # the DUL reactor's idle poll delay set (a measured knob)

    def start(self) -> None:
        """Start the processes and wait until they are bound."""
        self.work.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "benchmarks.pynetdicom_noop", "--port", str(self.port)]
        argv += ["-j", str(self.processes), "--count-dir", str(self.work)]
        if self.run_loop_delay is not None:
            argv += ["--run-loop-delay", str(self.run_loop_delay)]
        self._popen(argv, dict(os.environ), self.work / "log")
        wait_for_port(self.port, 60.0)
        time.sleep(1.0)  # let every process bind

    def stored(self) -> int:
        """C-STOREs acknowledged (each process writes its count when it stops)."""
        return sum(int(p.read_text()) for p in self.work.glob("count-*"))
