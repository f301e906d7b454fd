"""The bootstrap benchmark on tiny sizes: both paths agree (correctness only, no timing)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks import bootstrap


def test_both_paths_compute_the_same_replicates() -> None:
    result = bootstrap.run(images=300, patients=100, replicates=40, reference_replicates_n=40)
    assert result.reference_replicates == 40
    assert result.max_abs_diff < 1e-12
    assert result.vectorised_s > 0 and result.reference_s_per_replicate > 0
    assert result.ratio > 0


def test_synthetic_data_has_every_patient_and_both_classes() -> None:
    y, scores, patients = bootstrap.synthetic(500, 120, 0.2, seed=1)
    assert np.array_equal(np.unique(patients), np.arange(120))
    assert 0 < y.mean() < 1 and np.all((scores > 0) & (scores < 1))


def test_main_prints_the_ratio_and_writes_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bootstrap.json"
    code = bootstrap.main(
        ["--images", "200", "--patients", "60", "--replicates", "30", "--reference-replicates",
         "5", "--json", str(out)]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "ratio reference/vectorised" in printed and "goal" not in printed
    record = json.loads(out.read_text())
    assert record["replicates"] == 30 and record["max_abs_diff"] < 1e-12
    assert bootstrap.main(["--images", "10", "--patients", "20"]) == 2
