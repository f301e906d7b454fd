"""The inference benchmark's measuring code on a tiny model (the benchmark is not a test)."""

from __future__ import annotations

from benchmarks.inference import bench_model, synthetic_datasets
from models.registry import ModelRegistry
from models.settings import ModelsSettings


def test_bench_model_measures_both_paths(registry: ModelRegistry, settings: ModelsSettings) -> None:
    model = registry.load("tiny")
    datasets = synthetic_datasets(4, 64)
    rows = bench_model("tiny", model, settings, datasets, [1, 4], iterations=2)
    assert [row.batch for row in rows] == [1, 4]
    for row in rows:
        assert row.pipeline_images_per_s > 0 and row.bare_images_per_s > 0
        assert abs(row.ratio - row.pipeline_images_per_s / row.bare_images_per_s) < 1e-9
        assert row.max_abs_diff < 1e-6  # identical inputs give identical scores
        assert row.provider == "CPUExecutionProvider"
        assert row.bare_cpu_ms_per_image > 0 and row.preprocess_cpu_ms_per_image > 0
        assert 0 < row.ceiling < 1
