"""Fixtures of the models tests: a models directory with tiny ONNX models, settings for it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from models.registry import ModelRegistry
from models.settings import ModelsSettings
from tests.models.builders import classifier_onnx, write_model


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    """A models directory holding ``tiny@1.0.0`` and ``tiny@1.2.0`` (5 labels, 32x32, heatmap)."""
    root = tmp_path / "models"
    write_model(root, classifier_onnx(seed=0), version="1.0.0")
    write_model(root, classifier_onnx(seed=1), version="1.2.0")
    return root


@pytest.fixture
def settings(models_dir: Path) -> ModelsSettings:
    """Settings for :func:`models_dir`, on CPU, one thread."""
    return ModelsSettings(
        models_dir=models_dir,
        providers=["CPUExecutionProvider"],
        intra_op_threads=1,
        inter_op_threads=1,
        timeout_s=30.0,
    )


@pytest.fixture
def registry(settings: ModelsSettings) -> Iterator[ModelRegistry]:
    """A registry of :func:`models_dir`, closed afterwards."""
    reg = ModelRegistry(settings)
    yield reg
    reg.close()


@pytest.fixture
def cli_env(models_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the ``triage`` command at :func:`models_dir` (CPU, one thread)."""
    monkeypatch.setenv("TRIAGE_MODELS_MODELS_DIR", str(models_dir))
    monkeypatch.setenv("TRIAGE_MODELS_PROVIDERS", '["CPUExecutionProvider"]')
    monkeypatch.setenv("TRIAGE_MODELS_INTRA_OP_THREADS", "1")
    monkeypatch.delenv("TRIAGE_CONFIG", raising=False)
    monkeypatch.chdir(models_dir.parent)
    return models_dir
