"""The ingest benchmark, tiny: every receiver gets and stores every instance (no timings)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import ingest

pytestmark = [pytest.mark.dcmtk, pytest.mark.slow, pytest.mark.orthanc]


def test_every_receiver_stores_every_instance_interleaved(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """About 25 s on the 2-core machine: four servers started once each for 6 instances."""
    out = tmp_path / "runs.json"
    argv = ["--n", "6", "--rounds", "1", "--senders", "2", "--json", str(out)]
    assert ingest.main([*argv, "--work-dir", str(tmp_path / "work")]) == 0
    runs = json.loads(out.read_text())["runs"]
    assert sorted(r["receiver"] for r in runs) == ["dcmtk", "orthanc", "ours", "pynetdicom"]
    assert all(r["stored"] == r["n"] == 6 and r["senders"] == 2 for r in runs)
    assert all(r["rate"] > 0 and r["cpu_ms"] >= 0 and r["rss_mb"][1] > 0 for r in runs)
    printed = capsys.readouterr().out
    for ratio in ("ours/orthanc", "ours/dcmtk", "ours/pynetdicom"):
        assert ratio in printed


@pytest.mark.postgres
def test_ours_on_a_throwaway_postgresql(tmp_path: Path) -> None:
    """About 10 s: the --db postgres path (a durable server started and stopped by the run)."""
    out = tmp_path / "runs.json"
    argv = ["--n", "4", "--rounds", "1", "--senders", "1", "--receivers", "ours"]
    assert ingest.main([*argv, "--db", "postgres", "--json", str(out)]) == 0
    (run,) = json.loads(out.read_text())["runs"]
    assert (run["receiver"], run["stored"]) == ("ours", 4)


def test_the_dul_poll_delay_knob_receiver_stores_every_instance(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The pynetdicom no-op with its DUL reactor's idle poll delay set, beside the default."""
    out = tmp_path / "runs.json"
    argv = ["--n", "4", "--rounds", "1", "--senders", "1", "--json", str(out)]
    receivers = ["--receivers", "pynetdicom", "pyn-dul", "--run-loop-delay", "0.0002"]
    assert ingest.main([*argv, *receivers, "--processes", "1"]) == 0
    runs = json.loads(out.read_text())["runs"]
    assert sorted((r["receiver"], r["stored"]) for r in runs) == [("pyn-dul", 4), ("pynetdicom", 4)]
    assert "idle poll delay 0.0002 s" in capsys.readouterr().out
