"""Fixtures of the export tests: an empty models directory, and a PACS folder."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    """An empty models directory."""
    path = tmp_path / "models"
    path.mkdir()
    return path
