"""The time-to-SR benchmark with one study: the SR reaches Orthanc after the priority (no goal)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import time_to_sr

pytestmark = [pytest.mark.dcmtk, pytest.mark.slow, pytest.mark.orthanc]


def test_one_study_reaches_orthanc_as_sr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "figures.json"
    assert time_to_sr.main(["--n", "1", "--timeout", "120", "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert figures["n"] == 1 and figures["missing"] == 0
    assert 0 < figures["send_p50_ms"] <= figures["priority_p50_ms"] <= figures["sr_p50_ms"]
    assert figures["sr_p50_over_goal"] == pytest.approx(figures["sr_p50_ms"] / 2000)
    printed = capsys.readouterr().out
    assert "time to priority" in printed and "time to SR" in printed and "of it" in printed
