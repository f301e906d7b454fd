"""Fixtures of the triage tests: an archive, models on disk, a worker factory."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

import pytest

from models.card import ModelStatus, load_card
from models.runtime import LoadedModel
from models.settings import ModelsSettings
from triage.policy import load_policy
from triage.routing import load_routing
from triage.worker import ModelPool, RunnableModel, Worker, WorkerOptions
from worklist.db.engine import Database
from worklist.db.types import utcnow

WorkerFactory = Callable[..., Worker]


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    path = tmp_path / "archive"
    path.mkdir()
    return path


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    path = tmp_path / "models"
    path.mkdir()
    return path


def load(directory: Path, timeout_s: float = 30.0) -> RunnableModel:
    """Load a model from its directory with the real runtime (CPU, one thread)."""
    settings = ModelsSettings(
        models_dir=directory.parent.parent,
        providers=["CPUExecutionProvider"],
        intra_op_threads=1,
        timeout_s=timeout_s,
    )
    return LoadedModel(load_card(directory), directory, settings)


@pytest.fixture
def make_worker(archive: Path) -> WorkerFactory:
    def factory(
        db: Database,
        models: Sequence[tuple[RunnableModel, ModelStatus]],
        *,
        owner: str = "test-worker",
        lease_s: float = 30.0,
        clock: Callable[[], datetime] = utcnow,
        **opts: object,
    ) -> Worker:
        options = WorkerOptions(archive_dir=archive, lease_s=lease_s, **opts)  # type: ignore[arg-type]
        return Worker(
            db,
            ModelPool.of(models),
            load_routing(),
            load_policy(),
            options,
            owner=owner,
            clock=clock,
        )

    return factory


def drain(worker: Worker, rounds: int = 10) -> int:
    total = 0
    for _ in range(rounds):
        n = worker.run_once()
        if not n:
            break
        total += n
    return total
