"""Fixtures of the models tests: a models directory with tiny ONNX models, settings for it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from models.registry import ModelRegistry
from models.settings import ModelsSettings
from tests.builders.onnx import cpu_settings, point_cli_at, write_tiny_models


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    """A models directory holding ``tiny@1.0.0`` and ``tiny@1.2.0`` (5 labels, 32x32, heatmap)."""
    return write_tiny_models(tmp_path / "models")


@pytest.fixture
def settings(models_dir: Path) -> ModelsSettings:
    """Settings for :func:`models_dir`, on CPU, one thread."""
    return cpu_settings(models_dir)


@pytest.fixture
def registry(settings: ModelsSettings) -> Iterator[ModelRegistry]:
    """A registry of :func:`models_dir`, closed afterwards."""
    reg = ModelRegistry(settings)
    yield reg
    reg.close()


@pytest.fixture
def cli_env(models_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the ``triage`` command at :func:`models_dir` (CPU, one thread)."""
    return point_cli_at(models_dir, monkeypatch)
