"""Run the gateway: the listener (one or several processes on one port) and the assembler.

``Gateway`` is the non-blocking handle (``start()``, ``stop()``, ``port``) that ``triage serve``
and the tests use; :func:`run_gateway` blocks until a stop event is set (``triage gateway``).

The listener always runs in child processes (``spawn``; ``processes`` of them, one at least),
each with its own store engine, all bound to the same port with ``SO_REUSEPORT``; the parent
keeps the port reserved while they start, runs the assembler, and stops them on
:meth:`Gateway.stop`. Children exit by themselves if the parent dies. Only they switch on the
process-wide receiving to files (:func:`~dicom_gateway.receiving.use_receive_dir`), so the
calling process (``triage serve``: the web app too) keeps pynetdicom's defaults.

``Gateway(..., in_process=True)`` runs one listener in a thread of the calling process instead:
for the tests only (receiving to memory, bounded by ``max_instance_bytes`` and the budget).
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.synchronize
import os
import queue
import socket
import threading
import time
from pathlib import Path
from typing import Any

from pynetdicom.transport import ThreadedAssociationServer

from dicom_gateway.assembler import Assembler
from dicom_gateway.handlers import HandlerContext
from dicom_gateway.memory import budget_for_process, plan_processes, resident_bytes
from dicom_gateway.receiving import start_sweeper, use_receive_dir
from dicom_gateway.refusals import RefusalLog
from dicom_gateway.scp import ListenerServer, start_listener
from dicom_gateway.settings import DuplicatePolicy, GatewaySettings
from dicom_gateway.tls import listener_context
from models.errors import Invalid, Unavailable
from worklist.archive import STALE_TMP_S, Archive
from worklist.children import ignore_stop_signals, stop_signals_blocked
from worklist.db.engine import Database
from worklist.ingest.recorder import Ingestor
from worklist.logsafe import protect
from worklist.settings import WorklistSettings

__all__ = ["Gateway", "GatewayError", "run_gateway"]

logger = logging.getLogger(__name__)

StopEvent = threading.Event | multiprocessing.synchronize.Event
_START_TIMEOUT_S = 60.0
_MIN_BUDGET_BYTES = 64 * 1024 * 1024
"""The least memory budget of a listener (the tests' in-process one: its process holds more)."""


class GatewayError(Unavailable):
    """The gateway could not start (port in use, a listener process failed)."""


def _context(gateway: GatewaySettings, worklist: WorklistSettings, db: Database) -> HandlerContext:
    archive = Archive(
        worklist.effective_archive_dir,
        quota_bytes=worklist.quota_bytes,
        min_free_bytes=worklist.min_free_bytes,
    )
    ingestor = Ingestor(
        db,
        archive,
        replace_duplicates=gateway.duplicate_policy == DuplicatePolicy.REPLACE,
        group_commit=gateway.group_commit,
    )
    return HandlerContext(
        db=db,
        ingestor=ingestor,
        assembler=Assembler(db, gateway),
        max_nesting_depth=gateway.max_nesting_depth,
        max_inflated_bytes=gateway.max_inflated_bytes,
        max_instance_bytes=gateway.max_instance_bytes,
        refusals=RefusalLog(gateway.refusal_log_per_peer, gateway.refusal_log_window_s),
    )


def _receive_to_files(gateway: GatewaySettings, archive_root: Path, stop: threading.Event) -> None:
    """In a listener process: receive datasets to files, sweep what ended associations left."""
    if gateway.receive_to_file:
        receiving = use_receive_dir(archive_root)  # process-wide: listener processes only
        start_sweeper(receiving, gateway.network_timeout_s + gateway.pdu_read_timeout_s, stop)


def _start_child_listeners(
    gateway: GatewaySettings,
    ctx: HandlerContext,
    servers: list[ThreadedAssociationServer],
    ports: tuple[int, int | None],
    share: int,
) -> None:
    """Give a listener process its memory budget and start its listener(s) into ``servers``."""
    ctx.budget = budget_for_process(share)
    if ctx.budget.capacity < _MIN_BUDGET_BYTES:
        raise GatewayError(
            f"a listener process holds {resident_bytes()} bytes at start, leaving "
            f"{ctx.budget.capacity} of its {share} share of max_memory_bytes for instances"
        )
    budget = ctx.budget
    logger.info("listener process %d: share %d of max_memory_bytes, budget %d (instances to %d)",
                os.getpid(), share, budget.capacity, budget.largest_instance())  # fmt: skip
    port, tls_port = ports
    servers.append(start_listener(gateway, ctx, port=port, reuse_port=True))
    if tls_port is not None:
        servers.append(start_listener(gateway, ctx, port=tls_port, reuse_port=True, tls=True))
    for server in servers:
        if isinstance(server, ListenerServer):
            server.memory_share = share


def _await_ready(ready: Any, children: list[multiprocessing.process.BaseProcess]) -> None:
    """Wait until every listener child says it listens; fail at once if one fails or dies."""
    deadline = time.monotonic() + _START_TIMEOUT_S
    waiting = len(children)
    while waiting:
        try:
            state, detail = ready.get(timeout=0.25)
        except queue.Empty:
            dead = [c for c in children if c.exitcode is not None]
            if dead:
                raise GatewayError(
                    f"listener process {dead[0].pid} exited with status {dead[0].exitcode} "
                    "while starting"
                ) from None
            if time.monotonic() > deadline:
                raise GatewayError("a listener process did not start in time") from None
            continue
        if state != "ok":
            raise GatewayError(f"a listener process failed to start: {detail}")
        waiting -= 1


def _listener_process(
    gateway: GatewaySettings,
    worklist: WorklistSettings,
    port: int,
    tls_port: int | None,
    share: int,
    log_level: int,
    ready: Any,
    stop: Any,
) -> None:
    """Body of one listener child process.

    ``stop`` is the read end of a pipe whose write end only the parent holds: it becomes
    readable (EOF) when the parent stops the gateway or dies, whatever signal killed it.
    """
    # The parent handles Ctrl-C and SIGTERM (also when they are sent to the whole group); it
    # started this process with them blocked, so that they cannot kill it half-started.
    ignore_stop_signals()
    logging.basicConfig(
        level=log_level,
        format="%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s",
    )
    for handler in logging.getLogger().handlers:
        protect(handler)  # peer data (AE titles, UIDs) cannot forge log lines
    sweeping = threading.Event()
    for noisy in ("pynetdicom", "alembic", "sqlalchemy"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, log_level))
    parent = os.getppid()
    db = Database(worklist.effective_database_url, create=False)
    servers: list[ThreadedAssociationServer] = []
    ctx = _context(gateway, worklist, db)
    try:
        _receive_to_files(gateway, ctx.ingestor.archive.root, sweeping)
        _start_child_listeners(gateway, ctx, servers, (port, tls_port), share)
        ready.put(("ok", os.getpid()))
        while not stop.poll(0.5):
            if os.getppid() != parent:
                logger.warning("parent process gone; listener %d stopping", os.getpid())
                break
    except Exception as exc:
        logger.exception("listener process failed")
        ready.put(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        sweeping.set()
        for server in servers:
            server.shutdown()
        ctx.ingestor.close()
        db.dispose()


class Gateway:
    """The listener(s) and the assembler, started and stopped from the calling thread.

    Parameters
    ----------
    gateway
        The gateway's settings (``port`` 0 picks a free port; see :attr:`port`).
    worklist
        The store and archive settings.
    assembler
        Run the polling study assembler here (listeners also assemble at release).
    in_process
        For tests only: one listener in a thread of this process, receiving to memory
        (``processes`` is ignored). ``triage serve`` and ``triage gateway`` never set it.
    """

    def __init__(
        self,
        gateway: GatewaySettings,
        worklist: WorklistSettings,
        *,
        assembler: bool = True,
        in_process: bool = False,
    ) -> None:
        self.gateway = gateway
        self.worklist = worklist
        self.run_assembler = assembler
        self.in_process = in_process
        self.processes = gateway.processes or os.cpu_count() or 1
        self._port = gateway.port
        self._tls_port = gateway.tls_port
        self._db: Database | None = None
        self._server: ThreadedAssociationServer | None = None
        self._tls_server: ThreadedAssociationServer | None = None
        self._ctx: HandlerContext | None = None
        self._children: list[multiprocessing.process.BaseProcess] = []
        self._stop_children: Any = None
        self._stop_assembler = threading.Event()
        self._share = 0
        self._assembler_thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The TCP port the listener is bound to (known after :meth:`start`)."""
        return self._port

    @property
    def tls_port(self) -> int | None:
        """The TCP port of the TLS listener (known after :meth:`start`; ``None``: no TLS)."""
        return self._tls_port

    def start(self) -> None:
        """Migrate the store, start the listener(s) and the assembler; return when listening."""
        try:  # max_memory_bytes split among the listener processes (fewer, with processes=0)
            self.processes, self._share = plan_processes(
                self.gateway.max_memory_bytes,
                self.gateway.processes,
                self.processes,
                in_process=self.in_process,
            )
        except ValueError as exc:
            raise GatewayError(str(exc)) from exc
        self._db = Database(self.worklist.effective_database_url)
        archive = Archive(self.worklist.effective_archive_dir)
        archive.sweep_temporary(older_than_s=STALE_TMP_S)  # others may share the archive
        allowed = self.gateway.allowed_calling_aets
        if allowed:
            logger.info("calling AE titles allowed: %s", ", ".join(allowed))
        else:
            logger.warning("no calling AE allow-list: associations from any AE title are accepted")
        if self.in_process:  # tests only: receiving to memory, in this process
            self._ctx = ctx = _context(self.gateway, self.worklist, self._db)
            ctx.budget = budget_for_process(self._share, _MIN_BUDGET_BYTES)
            try:
                self._start_in_process(ctx)
            except (OSError, Invalid) as exc:
                self._stop_servers()
                ctx.ingestor.close()
                self._db.dispose()
                raise GatewayError(f"cannot listen on {self.gateway.host}: {exc}") from exc
        else:
            try:
                self._start_children()
            except BaseException:
                self._db.dispose()
                raise
        logger.info(
            "DICOM listener %s on %s:%d (%s), archive %s",
            self.gateway.ae_title,
            self.gateway.host,
            self._port,
            "in this process"
            if self.in_process
            else "listener process(es) " + ", ".join(str(c.pid) for c in self._children),
            self.worklist.effective_archive_dir,
        )
        if self.run_assembler:
            assembler = Assembler(self._db, self.gateway)
            self._assembler_thread = threading.Thread(
                target=assembler.run, args=(self._stop_assembler,), name="Assembler", daemon=True
            )
            self._assembler_thread.start()

    def _start_in_process(self, ctx: HandlerContext) -> None:
        self._server = start_listener(self.gateway, ctx, port=self.gateway.port)
        self._port = int(self._server.server_address[1])
        if self.gateway.tls_port is not None:
            self._tls_server = start_listener(
                self.gateway, ctx, port=self.gateway.tls_port, tls=True
            )
            self._tls_port = int(self._tls_server.server_address[1])
            logger.info("DICOM TLS listener on %s:%d", self.gateway.host, self._tls_port)

    def _stop_servers(self) -> None:
        for server in (self._server, self._tls_server):
            if server is not None:
                server.shutdown()
        self._server = self._tls_server = None

    def _hold(self, port: int) -> socket.socket:
        """Bind ``port`` (not listening) so port 0 resolves once for every child."""
        holder = socket.socket(socket.AF_INET6 if ":" in self.gateway.host else socket.AF_INET)
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            holder.bind((self.gateway.host, port))
        except OSError as exc:
            holder.close()
            raise GatewayError(f"cannot bind {self.gateway.host}:{port}: {exc}") from exc
        return holder

    def _start_children(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        if self.gateway.tls_port is not None:
            listener_context(self.gateway)  # a missing or bad certificate: fail here, once
        holders = [self._hold(self.gateway.port)]
        self._port = int(holders[0].getsockname()[1])
        if self.gateway.tls_port is not None:
            try:
                holders.append(self._hold(self.gateway.tls_port))
            except GatewayError:
                holders[0].close()
                raise
            self._tls_port = int(holders[1].getsockname()[1])
        ready = ctx.Queue()
        stop_reader, self._stop_children = ctx.Pipe(duplex=False)
        try:
            for i in range(self.processes):
                child = ctx.Process(
                    target=_listener_process,
                    args=(
                        self.gateway,
                        self.worklist,
                        self._port,
                        self._tls_port,
                        self._share,
                        logging.getLogger().getEffectiveLevel(),
                        ready,
                        stop_reader,
                    ),
                    name=f"listener-{i}",
                    daemon=True,
                )
                with stop_signals_blocked():
                    child.start()
                self._children.append(child)
            _await_ready(ready, self._children)
        except BaseException:
            self._stop_listener_children()
            raise
        finally:
            for holder in holders:
                holder.close()
            stop_reader.close()

    def _stop_listener_children(self) -> None:
        if self._stop_children is not None:
            self._stop_children.close()  # EOF on every child's end of the pipe
            self._stop_children = None
        for child in self._children:
            child.join(timeout=10)
            if child.is_alive():
                logger.warning("listener process %s did not stop; terminating", child.pid)
                child.terminate()
                child.join(timeout=5)
        self._children = []

    def stop(self) -> None:
        """Stop accepting, finish the running associations' handlers, stop the assembler."""
        self._stop_assembler.set()
        self._stop_servers()
        if self._ctx is not None:
            self._ctx.ingestor.close()
            self._ctx = None
        self._stop_listener_children()
        if self._assembler_thread is not None:
            self._assembler_thread.join(timeout=10)
            self._assembler_thread = None
        if self._db is not None:
            self._db.dispose()
            self._db = None
        logger.info("DICOM listener stopped")

    def __enter__(self) -> Gateway:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_gateway(gateway: GatewaySettings, worklist: WorklistSettings, stop: StopEvent) -> None:
    """Run the listener(s) and the assembler until ``stop`` is set.

    Parameters
    ----------
    gateway
        The gateway's settings.
    worklist
        The store and archive settings.
    stop
        Set it (from a signal handler or another thread) to stop cleanly.
    """
    service = Gateway(gateway, worklist)
    service.start()
    try:
        while not stop.wait(0.5):
            pass
    finally:
        service.stop()
