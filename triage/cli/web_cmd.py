"""``triage web``: serve the worklist web app and its JSON API."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import Annotated

import typer

from triage.cli.app import app, config_from
from worklist.web.app import run_web

__all__ = ["web"]

logger = logging.getLogger(__name__)


@app.command("web")
def web(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option("--host", help="Address to listen on (default: http_host).")
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", help="Port to listen on (default: http_port).")
    ] = None,
) -> None:
    """Serve the web app (worklist, study, site status, admin pages and /api/v1)."""
    config = config_from(ctx)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        logger.info("signal %d: stopping the web app", signum)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    run_web(
        config.worklist,
        config.models,
        host or config.triage.http_host,
        port if port is not None else config.triage.http_port,
        stop,
    )
