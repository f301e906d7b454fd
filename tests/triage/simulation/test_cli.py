"""``triage simulate``: a small run writes its JSON, event log and plots, and prints the result."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from triage.cli import main

SMALL = """
days: 3
warmup_days: 1
replications: 2
grid: {sensitivities: [0.5, 0.9], loads: [0.8, 1.0], replications: 1, days: 2}
"""


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "sim.yaml"
    path.write_text(SMALL, encoding="utf-8")
    return path


def test_simulate_writes_json_events_and_plots(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    argv = [
        "simulate",
        "--config",
        str(_config(tmp_path)),
        "--sensitivity",
        "0.9",
        "--specificity",
        "0.9",
        "--seed",
        "5",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "urgent positives reported" in printed and "sooner than FIFO" in printed
    assert "longest routine wait" in printed and "goal" in printed
    doc = json.loads((out / "simulation.json").read_text(encoding="utf-8"))
    assert doc["schema"] == "ics-triage/simulation" and doc["schema_version"] == 1
    assert doc["settings"]["seed"] == 5 and doc["settings"]["replications"] == 2
    assert set(doc["policies"]) == {"fifo", "ai", "ai_capped"}
    assert doc["comparison"]["ai"]["urgent_sooner_pct"]["n"] == 2
    assert doc["model"]["kind"] == "rates"
    grid = doc["grid"]
    for key in ("urgent_sooner_pct", "routine_max_growth_pct", "goal_met"):
        assert len(grid[key]) == 2 and all(len(row) == 2 for row in grid[key])
    # Each cell's verdict is the goal applied to that cell's means.
    for sooner_row, growth_row, met_row in zip(
        grid["urgent_sooner_pct"], grid["routine_max_growth_pct"], grid["goal_met"], strict=True
    ):
        for sooner, growth, met in zip(sooner_row, growth_row, met_row, strict=True):
            assert sooner["n"] == 1 and growth["n"] == 1
            expected = (
                sooner["mean"] is not None
                and growth["mean"] is not None
                and sooner["mean"] >= 60.0
                and growth["mean"] <= 20.0
            )
            assert met is expected
    # The offered load grows with the volume: load x the scenario's own utilisation.
    base = doc["offered_load"]["utilisation"]
    assert grid["utilisation"] == pytest.approx([0.8 * base, 1.0 * base], rel=1e-3)
    assert "grid (ai, 1 replications of 2 days per cell): goal met in" in printed
    assert "grows without end" not in printed  # 0.8 and 1.0 x the default: well below 100%
    plots = {"turnaround.png", "backlog.png", "missed_positives.png", "gain_grid.png"}
    assert set(doc["files"]["plots"]) == plots
    for name in plots:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with (out / "events.csv").open(encoding="utf-8") as fh:
        events = list(csv.DictReader(fh))
    assert {e["replication"] for e in events} == {"0"}
    assert {e["policy"] for e in events} == {"fifo", "ai", "ai_capped"}
    # A rerun gives the same JSON (a seeded simulation).
    again = tmp_path / "again"
    assert main([*argv[:-1], str(again)]) == 0
    assert (again / "simulation.json").read_text() == (out / "simulation.json").read_text()


def test_simulate_takes_a_benchmarks_predictions(tmp_path: Path) -> None:
    labels = ("pneumothorax", "pleural_effusion", "nodule_mass", "cardiomegaly", "consolidation")
    path = tmp_path / "predictions.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["image", *labels, *(f"{n}_score" for n in labels)])
        for i in range(40):
            truth = [int((i + j) % 4 == 0) for j in range(len(labels))]
            writer.writerow([f"i{i}", *truth, *(0.9 if t else 0.1 for t in truth)])
    out = tmp_path / "out"
    argv = [
        "simulate",
        "--config",
        str(_config(tmp_path)),
        "--predictions",
        str(path),
        "--no-grid",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    doc = json.loads((out / "simulation.json").read_text(encoding="utf-8"))
    assert doc["model"]["kind"] == "predictions" and doc["model"]["rows"] == 40
    assert doc["grid"] is None and "gain_grid.png" not in doc["files"]["plots"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "give --predictions or --sensitivity"),
        (["--sensitivity", "0.9"], "together"),
    ],
)
def test_simulate_needs_a_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    argv = ["simulate", "--config", str(_config(tmp_path)), "--out", str(tmp_path / "o"), *extra]
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o" / "simulation.json").exists()


def test_simulate_passes_the_roster_name_to_the_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The named rosters themselves are checked in test_inputs.py; a full run costs seconds.
    argv = ["simulate", "--config", str(_config(tmp_path)), "--out", str(tmp_path / "out")]
    rates = ["--sensitivity", "0.9", "--specificity", "0.9"]
    assert main([*argv, *rates, "--roster", "nights-only"]) != 0
    assert "unknown roster 'nights-only'" in capsys.readouterr().err


def test_grid_cells_of_a_list_that_grows_without_end_are_marked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "sim.yaml"
    config.write_text(SMALL.replace("loads: [0.8, 1.0]", "loads: [1.0, 2.5]"), encoding="utf-8")
    argv = ["simulate", "--config", str(config), "--sensitivity", "0.9", "--specificity", "0.9"]
    assert main([*argv, "--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    doc = json.loads((tmp_path / "out" / "simulation.json").read_text(encoding="utf-8"))
    assert doc["grid"]["utilisation"][0] < 1 <= doc["grid"]["utilisation"][1]
    assert "at load 2.5 the list grows without end" in printed
