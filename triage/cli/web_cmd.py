"""``triage web``: serve the worklist web app and its JSON API."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from triage.cli.app import app, config_from, stop_on_signals
from triage.cli.options import (
    ConfigOption,
    DatabaseUrlOption,
    DataDirOption,
    ModelsDirOption,
    WebTlsCaOption,
    WebTlsCertificateOption,
    WebTlsKeyOption,
    WebTlsRequireClientOption,
    web_tls_overrides,
)

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
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=1,
            help="uvicorn worker processes (one per core; 1: a single process).",
        ),
    ] = 1,
    tls_cert: WebTlsCertificateOption = None,
    tls_key: WebTlsKeyOption = None,
    tls_ca: WebTlsCaOption = None,
    tls_require_client_cert: WebTlsRequireClientOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
    models_dir: ModelsDirOption = None,
    config_file: ConfigOption = None,
) -> None:
    """Serve the web app (worklist, study, site status, admin pages and /api/v1)."""
    from worklist.web.app import run_web
    from worklist.web.processes import serve_workers

    config = config_from(
        ctx, worklist=web_tls_overrides(tls_cert, tls_key, tls_ca, tls_require_client_cert)
    )
    if workers > 1:
        serve_workers(
            config.worklist,
            config.models,
            host or config.triage.http_host,
            port if port is not None else config.triage.http_port,
            workers,
            log_level=config.triage.log_level,
        )
        return
    stop = stop_on_signals()
    run_web(
        config.worklist,
        config.models,
        host or config.triage.http_host,
        port if port is not None else config.triage.http_port,
        stop,
    )
