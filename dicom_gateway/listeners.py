"""The listener child processes of the gateway: their store context, memory budget and body.

A production gateway (:class:`dicom_gateway.service.Gateway`) runs its SCP in child processes
started with ``spawn``, each with its share of ``max_memory_bytes``, all on one port with
``SO_REUSEPORT``. This module is what runs in each child (:func:`listener_process`), what the
parent waits for (:func:`await_ready`) and the store context both the children and the tests'
in-process listener use (:func:`handler_context`).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import threading
import time
from pathlib import Path
from typing import Any

from pynetdicom.transport import ThreadedAssociationServer

from dicom_gateway.assembler import Assembler
from dicom_gateway.handlers import HandlerContext
from dicom_gateway.memory import budget_for_process, resident_bytes
from dicom_gateway.receiving import start_sweeper, use_receive_dir
from dicom_gateway.refusals import RefusalLog
from dicom_gateway.scp import ListenerServer, start_listener
from dicom_gateway.settings import DuplicatePolicy, GatewaySettings
from models.errors import Unavailable
from worklist.archive import Archive
from worklist.children import ignore_stop_signals
from worklist.db.engine import Database
from worklist.ingest.recorder import Ingestor
from worklist.logsafe import protect
from worklist.settings import WorklistSettings

__all__ = [
    "MIN_BUDGET_BYTES",
    "GatewayError",
    "await_ready",
    "handler_context",
    "listener_process",
]

logger = logging.getLogger(__name__)

_START_TIMEOUT_S = 60.0
MIN_BUDGET_BYTES = 64 * 1024 * 1024
"""The least memory budget of a listener (the tests' in-process one: its process holds more)."""


class GatewayError(Unavailable):
    """The gateway could not start (port in use, a listener process failed)."""


def handler_context(
    gateway: GatewaySettings, worklist: WorklistSettings, db: Database
) -> HandlerContext:
    """Return the store, archive and limits a listener's C-STORE handler works with."""
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
    if ctx.budget.capacity < MIN_BUDGET_BYTES:
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


def await_ready(ready: Any, children: list[multiprocessing.process.BaseProcess]) -> None:
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


def listener_process(
    gateway: GatewaySettings,
    worklist: WorklistSettings,
    port: int,
    tls_port: int | None,
    share: int,
    log_level: int,
    ready: Any,
    stop: Any,
) -> None:
    """Run one listener child process until the parent stops it or dies.

    Parameters
    ----------
    gateway, worklist
        The settings.
    port, tls_port
        The ports the parent bound (held, not listening), shared with ``SO_REUSEPORT``.
    share
        This process's share of ``max_memory_bytes``.
    log_level
        The parent's log level.
    ready
        A queue: ``("ok", pid)`` once listening, or ``("error", reason)``.
    stop
        The read end of a pipe whose write end only the parent holds.

    Notes
    -----
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
    ctx = handler_context(gateway, worklist, db)
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
