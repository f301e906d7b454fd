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
import socket
import threading
from typing import Any

from pynetdicom.transport import ThreadedAssociationServer

from dicom_gateway.assembler import Assembler
from dicom_gateway.handlers import HandlerContext
from dicom_gateway.listeners import (
    MIN_BUDGET_BYTES,
    GatewayError,
    await_ready,
    handler_context,
    listener_process,
)
from dicom_gateway.memory import budget_for_process, plan_processes
from dicom_gateway.scp import start_listener
from dicom_gateway.settings import GatewaySettings
from dicom_gateway.tls import listener_context
from models.errors import Invalid
from worklist.archive import STALE_TMP_S, Archive
from worklist.children import stop_signals_blocked
from worklist.db.engine import Database
from worklist.settings import WorklistSettings

__all__ = ["Gateway", "GatewayError", "run_gateway"]

logger = logging.getLogger(__name__)

StopEvent = threading.Event | multiprocessing.synchronize.Event


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
            self._ctx = ctx = handler_context(self.gateway, self.worklist, self._db)
            ctx.budget = budget_for_process(self._share, MIN_BUDGET_BYTES)
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
                    target=listener_process,
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
            await_ready(ready, self._children)
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
