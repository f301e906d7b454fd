"""Fixtures of the dataset reader tests: tiny phantom copies of every layout, once per session."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from models.phantoms import LAYOUTS, write_dataset
from tests.builders.datasets import SEED, SIZE, N, Truth, read_truth


@pytest.fixture(scope="session")
def phantom_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with one tiny copy of every layout (``<root>/<layout>``); do not modify."""
    root = tmp_path_factory.mktemp("layouts")
    for layout in LAYOUTS:
        write_dataset(root / layout, N, SEED, layout, size=SIZE)
    return root


@pytest.fixture(scope="session")
def truth(phantom_root: Path) -> Truth:
    """The labels, sex, age and view of each image index."""
    return read_truth(phantom_root)


@pytest.fixture
def copy_of(phantom_root: Path, tmp_path: Path) -> Callable[[str], Path]:
    """Return a function that copies one layout into ``tmp_path`` (for tests that alter it)."""

    def copy(layout: str) -> Path:
        return Path(shutil.copytree(phantom_root / layout, tmp_path / layout))

    return copy
