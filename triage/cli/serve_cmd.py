"""``triage serve``: every part on one machine, in one command.

The DICOM listener (one process per core, SO_REUSEPORT) and the study assembler, a triage worker
(its own process, so inference never stalls the web app) and the web app, on the embedded store
(SQLite) and archive under ``--data-dir``. The parts meet only in the store, as in the scaled
deployment where they run as ``triage gateway``, ``triage worker`` and ``triage web``.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.context
import multiprocessing.process
import os
import threading
import time
from typing import TYPE_CHECKING, Annotated

import typer

from triage.cli.app import app, config_from, stop_on_signals
from triage.cli.options import (
    ConfigOption,
    DataDirOption,
    ModelsDirOption,
    WebTlsCaOption,
    WebTlsCertificateOption,
    WebTlsKeyOption,
    WebTlsRequireClientOption,
    web_tls_overrides,
)
from worklist.children import ignore_stop_signals, stop_signals_blocked

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from triage.settings import AppConfig

# The parts (gateway, worker, web app, store) are imported where they start, so that importing
# the command line for any other subcommand does not pay for them.

__all__ = ["serve"]

logger = logging.getLogger(__name__)

_WORKER_RESTART_S = 5.0


def _worker_process(config: AppConfig, stop_reader: Connection) -> None:
    """Body of the worker child: run until the parent closes its end of the pipe, or dies.

    The parent handles SIGTERM and Ctrl-C, also when they reach the whole process group, so the
    child ignores them and stops between jobs (a job cut short would only be retried anyway).
    """
    from triage.cli.app import setup_logging
    from triage.worker.service import run_worker

    ignore_stop_signals()  # started with them blocked: they cannot kill it half-started
    setup_logging(config.triage.log_level)
    stop = threading.Event()
    parent = os.getppid()

    def watch() -> None:
        while not stop_reader.poll(0.5):
            if os.getppid() != parent:
                logger.warning("parent process gone; worker stopping")
                break
        stop.set()

    threading.Thread(target=watch, name="stop-watcher", daemon=True).start()
    run_worker(config, stop)


def _start_worker(
    mp: multiprocessing.context.SpawnContext, config: AppConfig
) -> tuple[multiprocessing.process.BaseProcess, Connection]:
    stop_reader, stop_writer = mp.Pipe(duplex=False)
    worker = mp.Process(target=_worker_process, args=(config, stop_reader), name="worker")
    with stop_signals_blocked():
        worker.start()
    stop_reader.close()  # only the child holds the read end; closing ours lets it see EOF
    return worker, stop_writer


@app.command("serve")
def serve(
    ctx: typer.Context,
    data_dir: DataDirOption = None,
    dicom_port: Annotated[int | None, typer.Option("--dicom-port", help="DICOM port.")] = None,
    http_port: Annotated[int | None, typer.Option("--http-port", help="Web app port.")] = None,
    host: Annotated[
        str | None, typer.Option("--host", help="Address both listeners bind (127.0.0.1).")
    ] = None,
    tls_cert: WebTlsCertificateOption = None,
    tls_key: WebTlsKeyOption = None,
    tls_ca: WebTlsCaOption = None,
    tls_require_client_cert: WebTlsRequireClientOption = None,
    models_dir: ModelsDirOption = None,
    config_file: ConfigOption = None,
) -> int:
    """Start the DICOM listener, the assembler, a worker and the web app until SIGTERM/Ctrl-C."""
    from dicom_gateway.service import Gateway
    from worklist.db.engine import Database
    from worklist.web.app import run_web
    from worklist.web.transport import url_scheme

    config = config_from(
        ctx,
        gateway={"port": dicom_port, "host": host},
        triage={"http_port": http_port, "http_host": host},
        worklist=web_tls_overrides(tls_cert, tls_key, tls_ca, tls_require_client_cert),
    )
    stop = stop_on_signals()
    # Create or migrate the store once, before the parts open it concurrently.
    Database(config.worklist.effective_database_url).dispose()

    mp = multiprocessing.get_context("spawn")
    gateway = Gateway(config.gateway, config.worklist)
    web_ready = threading.Event()
    web = threading.Thread(
        target=run_web,
        args=(config.worklist, config.models, config.triage.http_host, config.triage.http_port),
        kwargs={"stop": stop, "ready": web_ready},
        name="web",
        daemon=True,
    )
    worker, worker_stop = _start_worker(mp, config)
    restart_at: float | None = None
    try:
        web.start()
        gateway.start()
        if web_ready.wait(60):
            logger.info(
                "serving: DICOM %s@%s:%d, web %s://%s:%d, data %s",
                config.gateway.ae_title,
                config.gateway.host,
                gateway.port,
                url_scheme(config.worklist),
                config.triage.http_host,
                config.triage.http_port,
                config.worklist.data_dir,
            )
        while not stop.wait(0.5):
            if not worker.is_alive():
                # Studies wait in the store meanwhile; nothing is lost while the worker is down.
                now = time.monotonic()
                if restart_at is None:
                    restart_at = now + _WORKER_RESTART_S
                    logger.error(
                        "the worker stopped (exit %s); restarting it in %.0f s",
                        worker.exitcode,
                        _WORKER_RESTART_S,
                    )
                elif now >= restart_at:
                    restart_at = None
                    worker_stop.close()
                    worker, worker_stop = _start_worker(mp, config)
            if not web.is_alive():
                logger.error("the web app stopped; shutting down")
                break
    finally:
        stop.set()
        gateway.stop()
        worker_stop.close()  # EOF: the worker finishes the jobs in hand and stops
        worker.join(timeout=30)
        if worker.is_alive():
            worker.terminate()
            worker.join(timeout=5)
        web.join(timeout=10)
    return 0
