"""The scale-out under chaos: processes killed and restarted, senders that retry like modalities.

- :class:`Cluster` runs ``triage gateway`` and ``triage worker`` processes (each in its own
  process group, logging to its own file) on one store and one archive, and SIGKILLs and
  restarts them by name.
- :class:`Sender` is one modality: it sends its studies with DCMTK's ``storescu`` (one
  association per attempt) and re-sends, to either gateway, every file that did not get a
  C-STORE response of Success, until all did; it records every status it saw.
- :class:`Chaos` is the driver: every few seconds it SIGKILLs a random gateway or worker and
  starts it again, and once it kills the PostgreSQL server and starts it again.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.builders import REPO
from tests.builders.peers import dcmtk, store_responses
from tests.builders.postgres import PostgresServer

__all__ = ["Chaos", "Cluster", "Sender", "named_status", "send_batch"]

_DCMTK_NAMES = {
    "Success",
    "Refused: OutOfResources",
    "Refused: SOPClassNotSupported",
    "Error: CannotUnderstand",
    "Error: DataSetDoesNotMatchSOPClass",
}
"""DCMTK's texts of the C-STORE statuses its storescu knows by name."""
_UNKNOWN = re.compile(r"Unknown Status: 0x([0-9A-Fa-f]+)$")


def named_status(text: str) -> bool:
    """Say whether a status storescu printed is Success or a failure PS3.4/PS3.7 names.

    DCMTK's storescu names only the Storage Service Class's own codes; for others (such as the
    general 0x0110 Processing Failure) it prints ``Unknown Status: 0x110``, and the code is
    looked up in pynetdicom's tables instead.

    Parameters
    ----------
    text : str
        What storescu printed in ``Received Store Response (...)``.

    Returns
    -------
    bool
        True when the status has a name.
    """
    from dicom_gateway.statuses import status_name

    if text in _DCMTK_NAMES:
        return True
    m = _UNKNOWN.match(text)
    return m is not None and not status_name(int(m.group(1), 16)).startswith("status 0x")


def send_batch(port: int, files: list[Path], aet: str) -> tuple[int, dict[str, str]]:
    """Send ``files`` in one association with DCMTK's storescu; return the responses seen.

    Parameters
    ----------
    port : int
        The gateway's port on 127.0.0.1.
    files : list of pathlib.Path
        The files, in order.
    aet : str
        The calling AE title.

    Returns
    -------
    tuple of (int, dict of str to str)
        storescu's exit status, and DCMTK's text of the C-STORE response status per file that
        got one (``"Success"``, ``"Failure: ProcessingFailure"``, ...). A file without an entry
        got no response (the association failed before it).
    """
    try:
        proc = subprocess.run(
            [dcmtk("storescu"), "-v", "-R", "-nh", "-aet", aet, "-aec", "ICS_TRIAGE"]
            + ["-to", "10", "-ta", "10", "-td", "15", "127.0.0.1", str(port)]
            + [str(f) for f in files],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "TCP_NODELAY": "1"},
        )
    except subprocess.TimeoutExpired:
        return -1, {}
    return proc.returncode, store_responses(proc.stdout + proc.stderr)


@dataclass
class Cluster:
    """Gateways and workers as processes on one store (``database_url``) and one archive.

    Parameters
    ----------
    root : pathlib.Path
        Logs and each process's own data folder go here.
    env : dict of str to str
        The environment of every process (``TRIAGE_*`` settings).
    gateway_ports : list of int
        One gateway per port, named ``gateway-0``, ``gateway-1``, ...
    workers : int
        How many workers, named ``worker-0``, ...
    """

    root: Path
    env: dict[str, str]
    gateway_ports: list[int]
    workers: int
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    starts: Counter[str] = field(default_factory=Counter)
    exits: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def names(self) -> list[str]:
        """Every process's name."""
        gateways = [f"gateway-{i}" for i in range(len(self.gateway_ports))]
        return gateways + [f"worker-{i}" for i in range(self.workers)]

    def _argv(self, name: str) -> list[str]:
        kind, index = name.split("-")
        data_dir = self.root / name
        if kind == "gateway":
            port = self.gateway_ports[int(index)]
            return ["gateway", "--host", "127.0.0.1", "--port", str(port), "--processes", "1"]
        return ["worker", "--worker-id", f"{name}.{self.starts[name]}", "--data-dir", str(data_dir)]

    def start(self, name: str) -> None:
        """Start ``name`` (again), in its own process group, logging to ``root/name.log``."""
        with self.lock:
            self.starts[name] += 1
            (self.root / name).mkdir(parents=True, exist_ok=True)
            env = {**self.env, "TRIAGE_WORKLIST_DATA_DIR": str(self.root / name)}
            with (self.root / f"{name}.log").open("ab") as log:
                self.procs[name] = subprocess.Popen(
                    [sys.executable, "-m", "triage", *self._argv(name)],
                    cwd=REPO,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )

    def kill(self, name: str) -> None:
        """SIGKILL ``name``'s whole process group and reap it."""
        with self.lock:
            proc = self.procs[name]
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)

    def supervise(self) -> None:
        """Start again any process that exited by itself (as a process manager would)."""
        for name in list(self.procs):
            code = self.procs[name].poll()
            if code is not None:
                self.exits[f"{name}:{code}"] += 1
                self.start(name)

    def stop_all(self) -> dict[str, int]:
        """SIGTERM every process, SIGKILL what does not stop; return each one's exit status."""
        codes: dict[str, int] = {}
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for name, proc in self.procs.items():
            try:  # a gateway stops within about 40 s (2 listeners x 15 s, the assembler 10 s)
                codes[name] = proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                codes[name] = proc.wait(timeout=10)
        return codes

    def log(self, name: str, tail: int = 3000) -> str:
        """Return the end of ``name``'s log."""
        path = self.root / f"{name}.log"
        return path.read_text(errors="replace")[-tail:] if path.exists() else ""


@dataclass(eq=False)
class Sender(threading.Thread):
    """One modality: sends each study, re-sending what was not acknowledged, to either gateway.

    Parameters
    ----------
    index : int
        Its number (AE title ``CDC_<index>``; which gateway it tries first).
    studies : list of list of pathlib.Path
        Its studies' files; each file is named after its SOP Instance UID.
    ports : list of int
        The gateways' ports; each attempt tries the next one.
    deadline : float
        ``time.monotonic()`` after which it stops re-sending.
    """

    index: int
    studies: list[list[Path]]
    ports: list[int]
    deadline: float
    acked: set[str] = field(default_factory=set)
    statuses: Counter[str] = field(default_factory=Counter)
    attempts: int = 0
    unsent: list[Path] = field(default_factory=list)

    def __post_init__(self) -> None:
        threading.Thread.__init__(self, name=f"sender-{self.index}", daemon=True)

    def run(self) -> None:
        """Send every study until each of its files got Success (or the deadline passed)."""
        for files in self.studies:
            remaining = list(files)
            while remaining and time.monotonic() < self.deadline:
                port = self.ports[(self.index + self.attempts) % len(self.ports)]
                self.attempts += 1
                _, responses = send_batch(port, remaining, f"CDC_{self.index}")
                for status in responses.values():
                    self.statuses[status] += 1
                self.acked.update(Path(p).stem for p, s in responses.items() if s == "Success")
                remaining = [f for f in remaining if f.stem not in self.acked]
                if remaining:
                    time.sleep(0.2)
            self.unsent += remaining


@dataclass(eq=False)
class Chaos(threading.Thread):
    """Kill a random gateway or worker every ``every_s`` and restart it; kill PostgreSQL once.

    Parameters
    ----------
    cluster : Cluster
        The processes.
    postgres : PostgresServer
        The store's server.
    every_s : float
        Seconds between kills.
    postgres_after : int
        Kill PostgreSQL after this many process kills.
    postgres_down_s : float
        How long PostgreSQL stays down.
    seed : int
        Seed of the choice of victims.
    on_event : callable
        Called with a line describing each kill and restart.
    """

    cluster: Cluster
    postgres: PostgresServer
    every_s: float = 3.0
    postgres_after: int = 4
    postgres_down_s: float = 3.0
    seed: int = 0
    on_event: Callable[[str], None] = print
    stop: threading.Event = field(default_factory=threading.Event)
    kills: Counter[str] = field(default_factory=Counter)
    postgres_killed: bool = False

    def __post_init__(self) -> None:
        threading.Thread.__init__(self, name="chaos", daemon=True)

    def run(self) -> None:
        """Kill and restart until :attr:`stop` is set."""
        rng = random.Random(self.seed)
        started = time.monotonic()
        while not self.stop.wait(self.every_s * rng.uniform(0.7, 1.3)):
            self.cluster.supervise()
            victim = rng.choice(self.cluster.names)
            self.cluster.kill(victim)
            self.kills[victim] += 1
            self.on_event(f"{time.monotonic() - started:6.1f}s SIGKILL {victim}")
            self.cluster.start(victim)
            if sum(self.kills.values()) == self.postgres_after and not self.postgres_killed:
                self.postgres.kill()
                self.postgres_killed = True
                self.on_event(f"{time.monotonic() - started:6.1f}s PostgreSQL stopped (immediate)")
                self.stop.wait(self.postgres_down_s)
                self.postgres.start()
                self.on_event(f"{time.monotonic() - started:6.1f}s PostgreSQL started")
