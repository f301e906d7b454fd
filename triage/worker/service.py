"""``run_worker``: the worker as a service (for ``triage worker`` and ``triage serve``)."""

from __future__ import annotations

import logging
import threading

from triage.policy import load_policy
from triage.routing import load_routing
from triage.settings import AppConfig
from triage.worker.loop import Worker, WorkerOptions
from triage.worker.pool import ModelPool, registry_source
from worklist.db.engine import Database

__all__ = ["build_worker", "options_from", "run_worker"]

logger = logging.getLogger(__name__)


def options_from(config: AppConfig) -> WorkerOptions:
    """Collect the worker's options from the composed settings."""
    return WorkerOptions(
        archive_dir=config.worklist.effective_archive_dir,
        lease_s=config.worklist.job_lease_s,
        poll_s=config.triage.worker_poll_s,
        batch_jobs=config.triage.worker_batch_jobs,
        batch_size=config.models.batch_size,
        sweep_s=config.triage.worker_sweep_s,
        heatmaps=config.triage.worker_heatmaps,
        outputs=config.triage.worker_outputs,
        archive_quota_bytes=config.worklist.quota_bytes,
        archive_min_free_bytes=config.worklist.min_free_bytes,
        exports=tuple(config.triage.exports),
        webhooks=tuple(config.triage.webhooks),
    )


def build_worker(config: AppConfig, db: Database) -> Worker:
    """Load the rules, the policy and the models (once), and build a worker.

    Parameters
    ----------
    config
        The composed settings.
    db
        The store.

    Returns
    -------
    Worker
        Ready to :meth:`~triage.worker.loop.Worker.run`.

    Raises
    ------
    triage.routing.RoutingError, triage.policy.PolicyError
        If the rule files are invalid.
    """
    from models.registry import ModelRegistry  # the registry loads ONNX Runtime; import late

    routing = load_routing(config.triage.routing_file)
    policy = load_policy(config.triage.policy_file)
    source, loader = registry_source(ModelRegistry(config.models))
    pool = ModelPool(source, loader, refresh_s=config.triage.worker_model_refresh_s)
    return Worker(db, pool, routing, policy, options_from(config), owner=config.triage.worker_id)


def run_worker(config: AppConfig, stop: threading.Event) -> None:
    """Run a triage worker until ``stop`` is set (blocking).

    Parameters
    ----------
    config
        The composed settings: store and archive (``worklist``), models (``models``), rule
        files, polling, batching and sweep (``triage``).
    stop
        Set it to stop the worker after the jobs in hand.
    """
    db = Database(config.worklist.effective_database_url)
    try:
        worker = build_worker(config, db)
        try:
            worker.run(stop)
        finally:
            worker.pool.close()
    finally:
        db.dispose()
