"""``triage worker``: run a triage worker until SIGTERM or Ctrl-C."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from triage.cli.app import app, config_from, stop_on_signals
from triage.cli.options import ConfigOption, DatabaseUrlOption, DataDirOption, ModelsDirOption

__all__ = ["worker"]

logger = logging.getLogger(__name__)


@app.command("worker")
def worker(
    ctx: typer.Context,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
    models_dir: ModelsDirOption = None,
    worker_id: Annotated[
        str | None, typer.Option("--worker-id", help="Name in job leases (default host:pid).")
    ] = None,
    batch_jobs: Annotated[
        int | None, typer.Option("--batch-jobs", min=1, help="Jobs claimed at once.")
    ] = None,
    config_file: ConfigOption = None,
) -> None:
    """Claim triage jobs, run the models, and write findings and priorities."""
    from triage.worker import run_worker

    config = config_from(
        ctx,
        triage={"worker_id": worker_id, "worker_batch_jobs": batch_jobs},
    )
    stop = stop_on_signals()
    run_worker(config, stop)
