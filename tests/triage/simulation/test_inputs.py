"""Settings, rosters, read times and the model's behaviour (rates and predictions.csv)."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np
import pytest

from triage.policy import load_policy
from triage.simulation.behaviour import load_behaviour, read_predictions
from triage.simulation.priorities import escalation_steps
from triage.simulation.settings import (
    MAX_STUDIES,
    ModelSettings,
    ReadTime,
    Shift,
    SimulationError,
    SimulationSettings,
    load_settings,
)
from triage.simulation.workload import draw_read_times, offered_load, reader_intervals
from worklist.domain import Priority

LABELS = ("pneumothorax", "pleural_effusion", "nodule_mass", "cardiomegaly", "consolidation")


def _write_predictions(path: Path, rows: list[dict[str, object]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _row(image: str, truth: dict[str, object], score: float = 0.0) -> dict[str, object]:
    row: dict[str, object] = {"image": image}
    for name in LABELS:
        row[name] = truth.get(name, 0)
        row[f"{name}_score"] = score if truth.get(name) == 1 else 0.01
    return row


def test_yaml_settings_resolve_paths_beside_the_file_and_take_overrides(tmp_path: Path) -> None:
    (tmp_path / "sim.yaml").write_text(
        "days: 10\nwarmup_days: 2\nmodel:\n  predictions: preds.csv\n"
        "roster:\n  - {name: a, start: '22:00', end: '06:00', readers: 2}\n",
        encoding="utf-8",
    )
    settings = load_settings(tmp_path / "sim.yaml", replications=3)
    assert settings.model.predictions == tmp_path / "preds.csv"
    assert settings.replications == 3 and settings.days == 10
    assert settings.roster[0].span() == (1320.0, 1800.0)
    # Rates on the command line replace the file's predictions.
    rates = load_settings(tmp_path / "sim.yaml", model={"sensitivity": 0.9, "specificity": 0.8})
    assert rates.model.predictions is None and rates.model.sensitivity == 0.9
    # A nested section given as an override is merged into the file's.
    assert (
        load_settings(None, grid={"enabled": False}).grid.loads == SimulationSettings().grid.loads
    )


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("days: 3\nwarmup_days: 5\n", "warmup_days must be shorter"),
        ("policies: [ai]\n", "fifo is the baseline"),
        ("roster:\n  - {name: a, start: '25:00', end: '06:00', readers: 1}\n", "roster.0.start"),
        ("sources:\n  - {name: A, daily_volume: 5, referral_mix: {STAT: 0.5}}\n", "sum to 1"),
        ("model: {sensitivity: 0.9}\n", "go together"),
        ("nonsense: 1\n", "nonsense"),
        ("- a list\n", "must be a mapping"),
        ("roster: nights-only\n", "unknown roster 'nights-only'; named rosters: network, day-only"),
    ],
)
def test_invalid_settings_say_what_is_wrong(tmp_path: Path, text: str, where: str) -> None:
    path = tmp_path / "sim.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SimulationError, match=where):
        load_settings(path)


def test_a_missing_settings_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SimulationError, match="cannot read"):
        load_settings(tmp_path / "absent.yaml")


def test_reader_intervals_follow_the_roster_and_merge_touching_shifts() -> None:
    always = Shift(name="r", start="00:00", end="24:00", readers=2)
    names, intervals = reader_intervals((always,), 3)
    assert names == ("r-1", "r-2")
    assert intervals == [[(0.0, 3 * 1440.0)]] * 2
    # Friday and Saturday nights, 20:00 to 02:00, from a Monday start.
    late = Shift(name="late", weekdays=(4, 5), start="20:00", end="02:00", readers=1)
    _, [spans] = reader_intervals((late,), 8)
    assert spans == [
        (4 * 1440.0 + 1200.0, 5 * 1440.0 + 120.0),
        (5 * 1440 + 1200.0, 6 * 1440.0 + 120),
    ]
    # Started on a Wednesday, the first Friday is day 2.
    _, [spans] = reader_intervals((late,), 3, start_weekday=2)
    assert spans == [(2 * 1440.0 + 1200.0, 3 * 1440.0 + 120.0)]


def _uncovered_minutes(roster: tuple[Shift, ...]) -> list[float]:
    """Minutes of days 1 to 7 (a whole week, after a Monday day 0) with nobody on duty."""
    _, intervals = reader_intervals(roster, 9)
    spans = [span for reader in intervals for span in reader]
    return [
        t for t in np.arange(1440.0, 8 * 1440.0, 1.0) if not any(on <= t < off for on, off in spans)
    ]


def test_the_default_roster_has_a_reader_at_every_hour_and_day_only_has_none_at_night() -> None:
    # The decision of 2026-12-02 (defaults.py): the ICS's network reports out of hours.
    assert _uncovered_minutes(SimulationSettings().roster) == []
    day_only = load_settings(None, roster="day-only").roster
    assert [s.name for s in day_only] == ["day", "evening", "weekend"]
    gaps = _uncovered_minutes(day_only)
    # Weeknights 22:00-08:00 (09:00 into Saturday and Sunday) and weekend evenings from 17:00.
    assert len(gaps) == (5 * 10 + 2 * 11 + 2 * 5) * 60
    assert 1440.0 + 22 * 60 in gaps and 1440.0 + 7 * 60 + 59 in gaps
    assert 1440.0 + 12 * 60 not in gaps


@pytest.mark.parametrize("distribution", ["lognormal", "gamma", "exponential", "fixed"])
def test_read_times_have_the_mean_and_spread_asked_for(distribution: str) -> None:
    spec = ReadTime.model_validate({"distribution": distribution, "mean_min": 3.0, "cv": 0.6})
    x = draw_read_times(spec, np.random.default_rng(1), 400_000)
    assert x.mean() == pytest.approx(3.0, rel=0.01)
    cv = {"exponential": 1.0, "fixed": 0.0}.get(distribution, 0.6)
    assert x.std() / x.mean() == pytest.approx(cv, abs=0.01)
    assert (x > 0).all()


def test_the_default_scenario_is_below_its_roster_capacity() -> None:
    load = offered_load(SimulationSettings())
    assert load["studies_per_week"] == pytest.approx(450 * 7)
    assert 0.5 < load["utilisation"] < 1.0


def test_escalation_steps_come_from_the_policy_file() -> None:
    policy = load_policy()
    steps = escalation_steps(policy)
    minutes = {p: policy.target(p).total_seconds() / 60 for p in Priority}
    p2 = policy.escalation[Priority.P2]
    p3 = policy.escalation[Priority.P3]
    assert steps[0] == ()
    assert steps[1] == ((p2.after * minutes[Priority.P2], 1),)
    # The bundled policy caps waiting routines at P2.
    assert steps[2] == ((p3.after * minutes[Priority.P3], 2),)


def test_rates_draw_the_prevalence_sensitivity_and_specificity_asked_for() -> None:
    behaviour = load_behaviour(ModelSettings(sensitivity=0.8, specificity=0.95))
    assert [lab.name for lab in behaviour.labels] == list(LABELS)
    truth, crossed = behaviour.draw(np.random.default_rng(0), 300_000)
    for j in range(len(LABELS)):
        t, c = truth[:, j], crossed[:, j]
        # Four standard errors of each proportion.
        assert t.mean() == pytest.approx(behaviour.prevalence[j], abs=4 * (0.25 / t.size) ** 0.5)
        assert c[t].mean() == pytest.approx(0.8, abs=4 * (0.16 / t.sum()) ** 0.5)
        assert (~c[~t]).mean() == pytest.approx(0.95, abs=4 * (0.0475 / (~t).sum()) ** 0.5)


def test_predictions_are_read_at_the_cards_thresholds(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rows = [
        _row("a", {"pneumothorax": 1}, score=0.9),
        _row("b", {"pleural_effusion": 1}, score=0.3),  # below the card's 0.4626: missed
        _row("c", {}),
        {**_row("d", {}), "cardiomegaly": ""},  # uncertain: left out
    ]
    for row in rows:
        row.pop("consolidation_score")  # consolidation has no score column: not modelled
    path = _write_predictions(tmp_path / "predictions.csv", rows)
    labels = load_behaviour(ModelSettings(sensitivity=0.5, specificity=0.5)).labels
    with caplog.at_level(logging.WARNING):
        used, truth, scores = read_predictions(path, labels)
    assert [lab.name for lab in used] == list(LABELS[:4])
    assert "consolidation" in caplog.text and "1 rows" in caplog.text
    assert truth.tolist() == [
        [True, False, False, False],
        [False, True, False, False],
        [False, False, False, False],
    ]
    assert scores[0, 0] == 0.9
    behaviour = load_behaviour(ModelSettings(predictions=path, reweight_predictions=False))
    assert behaviour.sensitivity[0] == 1.0 and behaviour.sensitivity[1] == 0.0


def test_resampled_predictions_keep_each_rows_truth_with_its_scores(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    rows = []
    for i in range(200):
        flags: dict[str, object] = {name: int(rng.random() < 0.3) for name in LABELS}
        rows.append(_row(f"i{i}", flags, score=float(rng.random())))
    path = _write_predictions(tmp_path / "predictions.csv", rows)
    behaviour = load_behaviour(ModelSettings(predictions=path))
    assert behaviour.truth_rows is not None and behaviour.crossed_rows is not None
    pairs = {
        (tuple(t), tuple(c))
        for t, c in zip(behaviour.truth_rows.tolist(), behaviour.crossed_rows.tolist(), strict=True)
    }
    truth, crossed = behaviour.draw(np.random.default_rng(0), 50_000)
    drawn = {(tuple(t), tuple(c)) for t, c in zip(truth.tolist(), crossed.tolist(), strict=True)}
    assert drawn <= pairs
    # Reweighted to the settings' prevalence (NIH ChestX-ray14's by default).
    wanted = ModelSettings().prevalence
    for j, name in enumerate(LABELS):
        assert behaviour.prevalence[j] == pytest.approx(wanted[name], abs=1e-6)
        assert truth[:, j].mean() == pytest.approx(wanted[name], abs=0.01)


def test_predictions_without_usable_columns_or_values_are_clear_errors(tmp_path: Path) -> None:
    empty = _write_predictions(tmp_path / "none.csv", [{"image": "a", "label": 1}])
    with pytest.raises(SimulationError, match="none of the card's labels"):
        load_behaviour(ModelSettings(predictions=empty))
    bad = _write_predictions(tmp_path / "bad.csv", [{**_row("a", {}), "pneumothorax": "maybe"}])
    with pytest.raises(SimulationError, match=r"bad.csv:2: truth 'maybe'"):
        load_behaviour(ModelSettings(predictions=bad))
    one_sided = _write_predictions(tmp_path / "neg.csv", [_row("a", {}), _row("b", {})])
    with pytest.raises(SimulationError, match="cannot reweight"):
        load_behaviour(ModelSettings(predictions=one_sided))
    with pytest.raises(SimulationError, match="give --predictions or --sensitivity"):
        load_behaviour(ModelSettings())


def test_a_run_too_large_to_hold_in_memory_is_refused_before_it_starts(tmp_path: Path) -> None:
    defaults = SimulationSettings()
    per_day = sum(s.daily_volume for s in defaults.sources)
    fits = int(MAX_STUDIES // per_day)  # days that just fit (grid off)
    load_settings(None, days=fits, grid={"enabled": False})
    with pytest.raises(SimulationError, match=r"studies per replication \(days x daily volume"):
        load_settings(None, days=fits + 2, grid={"enabled": False})
    # The grid's longest cell counts too (its days x its largest load).
    with pytest.raises(SimulationError, match="the grid's days"):
        load_settings(None, days=fits, grid={"days": fits, "loads": [1.0, 2.0]})
    # The command line says so and exits 2 without simulating anything.
    from triage.cli import main

    argv = ["simulate", "--sensitivity", "0.9", "--specificity", "0.9", "--days", "5000000"]
    assert main([*argv, "--out", str(tmp_path / "out")]) == 2
    assert not (tmp_path / "out").exists()


def test_worker_processes_never_outnumber_the_cpus_or_the_replications(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from triage.simulation.runner import pool_size

    with caplog.at_level(logging.WARNING, logger="triage.simulation.runner"):
        assert pool_size(4, 10, cpus=8) == 4
        assert pool_size(8, 3, cpus=8) == 3
        assert pool_size(2, 1, cpus=8) == 1
        assert not caplog.records
        assert pool_size(64, 50, cpus=2) == 2
    assert "64 worker processes asked for, 2 CPUs usable: using 2" in caplog.text
