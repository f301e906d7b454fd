"""The DICOMweb benchmark on a tiny archive: both servers answer every request (no timing goal)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import dicomweb


@pytest.mark.slow
def test_tiny_run_measures_both_servers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "figures.json"
    assert (
        dicomweb.main(
            [
                "--instances",
                "6",
                "--per-study",
                "3",
                "--size",
                "32",
                "--requests",
                "4",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    figures = json.loads(out.read_text())
    for name in ("ours", "orthanc"):
        server = figures[name]
        assert server["stow_instances_per_s"] > 0
        assert 0 < server["qido_p50_ms"] <= server["qido_p99_ms"]
        assert set(server["retrieve_mb_per_s"]) == set(server["frames_per_s"]) == {"1", "8"}
        assert all(v > 0 for v in server["frames_per_s"].values())
    assert "ours/orthanc" in capsys.readouterr().out


def test_studies_are_built_as_asked() -> None:
    studies = dicomweb.build(7, 3, 16)
    assert [len(data) for _, data, _ in studies] == [3, 3, 1]
    assert len({uid for uid, _, _ in studies}) == 3
