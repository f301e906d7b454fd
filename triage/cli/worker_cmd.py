"""``triage worker``: run a triage worker until SIGTERM or Ctrl-C."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from triage.cli.app import app, config_from, stop_on_signals

__all__ = ["worker"]

logger = logging.getLogger(__name__)


@app.command("worker")
def worker(
    ctx: typer.Context,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Root of the store and archive.")
    ] = None,
    database_url: Annotated[
        str | None, typer.Option("--database-url", help="SQLAlchemy URL of the store.")
    ] = None,
    models_dir: Annotated[
        Path | None, typer.Option("--models-dir", help="Directory of models (card + ONNX).")
    ] = None,
    worker_id: Annotated[
        str | None, typer.Option("--worker-id", help="Name in job leases (default host:pid).")
    ] = None,
    batch_jobs: Annotated[
        int | None, typer.Option("--batch-jobs", min=1, help="Jobs claimed at once.")
    ] = None,
) -> None:
    """Claim triage jobs, run the models, and write findings and priorities."""
    from triage.worker import run_worker

    config = config_from(
        ctx,
        worklist={"data_dir": data_dir, "database_url": database_url},
        models={"models_dir": models_dir},
        triage={"worker_id": worker_id, "worker_batch_jobs": batch_jobs},
    )
    stop = stop_on_signals()
    run_worker(config, stop)
