"""Fixtures of the command line's tests: the ``triage`` command pointed at tiny models."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.builders.onnx import point_cli_at, write_tiny_models


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point ``triage`` at a models directory of ``tiny@1.0.0`` and ``tiny@1.2.0`` (CPU)."""
    return point_cli_at(write_tiny_models(tmp_path / "models"), monkeypatch)
