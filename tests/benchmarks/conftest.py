"""Fixtures of the benchmarks' tests: the tiny ONNX models of the models tests, on CPU."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from models.registry import ModelRegistry
from models.settings import ModelsSettings
from tests.builders.onnx import cpu_settings, write_tiny_models


@pytest.fixture
def settings(tmp_path: Path) -> ModelsSettings:
    """Settings for a models directory of ``tiny@1.0.0`` and ``tiny@1.2.0``, on CPU."""
    return cpu_settings(write_tiny_models(tmp_path / "models"))


@pytest.fixture
def registry(settings: ModelsSettings) -> Iterator[ModelRegistry]:
    """A registry of :func:`settings`' models directory, closed afterwards."""
    reg = ModelRegistry(settings)
    yield reg
    reg.close()
