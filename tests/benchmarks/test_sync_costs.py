"""The sync-costs benchmark runs and prints every step it times (not their speed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.sync_costs import main


def test_sync_costs_prints_each_step(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--dir", str(tmp_path), "--n", "3", "--rounds", "1", "--size-kib", "4"]) == 0
    out = capsys.readouterr().out
    for step in ("commit FULL", "commit NORMAL", "file + syncfs", "file + fsync"):
        assert f"  {step}" in out
    assert "one sync instead of two" in out
    assert list(tmp_path.iterdir()) == []  # its files are removed
