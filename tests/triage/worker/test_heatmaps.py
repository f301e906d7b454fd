from __future__ import annotations

from pathlib import Path

import numpy as np

from triage.worker.heatmaps import heatmap_relpath, to_unit_range, write_heatmap


def test_relpath_and_durable_write(tmp_path: Path) -> None:
    rel = heatmap_relpath("1.2", "1.2.3", "chest@1.0", "pleural effusion")
    assert rel == "derived/1.2/1.2.3/chest@1.0.pleural_effusion.npy"
    heat = np.linspace(0, 1, 16, dtype=np.float32).reshape(4, 4)
    path = write_heatmap(tmp_path, rel, heat)
    assert path == tmp_path / rel
    np.testing.assert_array_equal(np.load(path), heat)
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left


def test_unit_range() -> None:
    inside = np.array([[0.0, 0.5], [1.0, np.nan]])
    np.testing.assert_array_equal(to_unit_range(inside), [[0.0, 0.5], [1.0, 0.0]])
    logits = np.array([[-2.0, 0.0], [2.0, 6.0]])
    out = to_unit_range(logits)
    assert out.dtype == np.float32 and out.min() == 0.0 and out.max() == 1.0
    np.testing.assert_allclose(out, [[0.0, 0.25], [0.5, 1.0]])
    np.testing.assert_array_equal(to_unit_range(np.full((2, 2), 7.0)), np.zeros((2, 2)))
