"""Fixtures of the triage tests: an archive, an empty models directory, a worker factory."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.builders.worker import WorkerFactory, worker_factory


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    """An empty archive folder."""
    path = tmp_path / "archive"
    path.mkdir()
    return path


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    """An empty models directory."""
    path = tmp_path / "models"
    path.mkdir()
    return path


@pytest.fixture
def make_worker(archive: Path) -> WorkerFactory:
    """Workers on :func:`archive` with the bundled routing rules and policy."""
    return worker_factory(archive)
