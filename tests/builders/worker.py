"""Triage workers for the worker tests: real models loaded from disk, a factory, a drain loop."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from models.card import ModelStatus, load_card
from models.runtime import LoadedModel
from tests.builders.onnx import cpu_settings
from triage.policy import load_policy
from triage.routing import load_routing
from triage.worker import ModelPool, RunnableModel, Worker, WorkerOptions
from worklist.db.engine import Database
from worklist.db.types import utcnow

WorkerFactory = Callable[..., Worker]
"""``make(db, models, *, owner, lease_s, clock, **options)``: a worker of the bundled rules."""


def load(directory: Path, timeout_s: float = 30.0) -> RunnableModel:
    """Load a model from its directory with the real runtime (CPU, one thread).

    Parameters
    ----------
    directory : pathlib.Path
        ``models_dir/NAME/VERSION``, such as :func:`tests.builders.onnx.write_worker_model`
        returns.
    timeout_s : float, optional
        The inference timeout.

    Returns
    -------
    triage.worker.RunnableModel
        The loaded model.
    """
    settings = cpu_settings(directory.parent.parent, timeout_s=timeout_s)
    return LoadedModel(load_card(directory), directory, settings)


def worker_factory(archive: Path) -> WorkerFactory:
    """Return a factory of workers on ``archive`` with the bundled routing rules and policy.

    Parameters
    ----------
    archive : pathlib.Path
        The archive the workers read the studies' files from.

    Returns
    -------
    WorkerFactory
        ``make(db, models, *, owner="test-worker", lease_s=30.0, clock=utcnow, **options)``,
        where ``models`` are ``(model, status)`` pairs and ``options`` further
        :class:`~triage.worker.WorkerOptions`.
    """

    def make(
        db: Database,
        models: Sequence[tuple[RunnableModel, ModelStatus]],
        *,
        owner: str = "test-worker",
        lease_s: float = 30.0,
        clock: Callable[[], datetime] = utcnow,
        **opts: Any,
    ) -> Worker:
        options = WorkerOptions(archive_dir=archive, lease_s=lease_s, **opts)
        return Worker(
            db,
            ModelPool.of(models),
            load_routing(),
            load_policy(),
            options,
            owner=owner,
            clock=clock,
        )

    return make


def drain(worker: Worker, rounds: int = 10) -> int:
    """Run the worker until it finds no job, at most ``rounds`` times.

    Parameters
    ----------
    worker : triage.worker.Worker
        The worker.
    rounds : int, optional
        The most rounds.

    Returns
    -------
    int
        How many jobs it did besides publishing (every triage queues a publish job, and the
        tests count what the triage did).
    """
    total, published = 0, worker.published
    for _ in range(rounds):
        n = worker.run_once()
        if not n:
            break
        total += n
    return total - (worker.published - published)
