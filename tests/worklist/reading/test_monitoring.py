"""Production monitoring on the store: drift alerts, positive rates per site, agreement."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from models.settings import ModelsSettings
from tests.builders.monitoring import scores, write_reference
from tests.builders.store import add_feedback, add_scored_findings
from worklist.db.engine import Database
from worklist.reading.monitoring import (
    MonitoringRefError,
    NoFindingsError,
    ReferenceFileError,
    load_reference,
    model_report,
    monitored_models,
)
from worklist.settings import WorklistSettings

NOW = datetime(2026, 6, 30, 12, 0, tzinfo=UTC)
MODEL = "demo-cxr@1.0.0"


def _settings(tmp_path: Path) -> tuple[WorklistSettings, ModelsSettings]:
    worklist = WorklistSettings(data_dir=tmp_path / "data")
    return worklist, ModelsSettings(models_dir=tmp_path / "models")


@pytest.mark.parametrize(("shifted", "alerts"), [(True, {"psi", "ks_pvalue"}), (False, set())])
def test_shifted_scores_raise_the_drift_alert(
    sqlite_db: Database, tmp_path: Path, shifted: bool, alerts: set[str]
) -> None:
    worklist, models = _settings(tmp_path)
    write_reference(models.models_dir, MODEL, {"pneumothorax": scores(600, seed=10)})
    window = scores(200, seed=11, a=5.0, b=2.0) if shifted else scores(200, seed=11)
    add_scored_findings(sqlite_db, window, at=NOW - timedelta(days=2))
    report = model_report(sqlite_db, worklist, models, MODEL, now=NOW)
    assert {a.measure for a in report.alerts} == alerts
    assert all(a.label == "pneumothorax" and a.model == MODEL for a in report.alerts)
    (label,) = report.drift
    assert (label.label, label.n_reference, label.n_current) == ("pneumothorax", 600, 200)
    assert label.status == ("drift" if shifted else "ok")
    assert label.psi is not None and label.ks_pvalue is not None
    if shifted:
        assert label.psi > worklist.monitoring_psi_bound
    else:
        assert label.psi < worklist.monitoring_psi_bound
        assert label.ks_pvalue > worklist.monitoring_ks_p_bound
    assert report.reference_source.startswith("file")


def test_without_a_file_the_reference_is_the_first_days_in_production(
    sqlite_db: Database, tmp_path: Path
) -> None:
    worklist, models = _settings(tmp_path)
    add_scored_findings(sqlite_db, scores(300, seed=12), at=NOW - timedelta(days=40))
    add_scored_findings(sqlite_db, scores(100, seed=13), at=NOW - timedelta(days=10))  # neither
    add_scored_findings(sqlite_db, scores(150, seed=14, a=5, b=2), at=NOW - timedelta(days=1))
    report = model_report(sqlite_db, worklist, models, MODEL, now=NOW)
    assert report.reference_source.startswith("production")
    assert (report.drift[0].n_reference, report.drift[0].n_current) == (300, 150)
    assert {a.measure for a in report.alerts} == {"psi", "ks_pvalue"}


def test_no_reference_or_too_few_scores_judge_nothing(sqlite_db: Database, tmp_path: Path) -> None:
    worklist, models = _settings(tmp_path)
    shifted = scores(100, seed=15, a=5, b=2)
    add_scored_findings(sqlite_db, shifted, at=NOW - timedelta(days=1))
    report = model_report(sqlite_db, worklist, models, MODEL, now=NOW)
    assert report.reference_source.startswith("none")
    assert (report.drift[0].status, report.alerts) == ("no_reference", [])
    write_reference(models.models_dir, MODEL, {"pneumothorax": scores(30, seed=16)})
    report = model_report(sqlite_db, worklist, models, MODEL, now=NOW)
    assert (report.drift[0].status, report.drift[0].n_reference) == ("insufficient", 30)
    assert report.alerts == []
    assert sum(report.drift[0].current_histogram) == pytest.approx(1.0)


def test_positive_rate_per_site_and_day(db: Database, tmp_path: Path) -> None:
    worklist, models = _settings(tmp_path)
    day1, day2 = NOW - timedelta(days=2), NOW - timedelta(days=1)
    add_scored_findings(db, [0.9, 0.1, 0.2, 0.3], at=day1, site="CDC_A")
    add_scored_findings(db, [0.9, 0.8, 0.1], at=day2, site="CDC_A")
    add_scored_findings(db, [0.6, 0.4], at=day2, site="CDC_B")
    add_scored_findings(db, [0.9], at=day2, site="CDC_B", model="other@2")
    add_scored_findings(db, [0.9], at=NOW - timedelta(days=9), site="CDC_B")  # outside
    report = model_report(db, worklist, models, MODEL, now=NOW)
    got = {(r.site, r.period): (r.positives, r.studies) for r in report.positive_rate}
    assert got == {
        ("CDC_A", day1.date().isoformat()): (1, 4),
        ("CDC_A", day2.date().isoformat()): (2, 3),
        ("CDC_B", day2.date().isoformat()): (1, 2),
    }
    for r in report.positive_rate:
        assert r.rate == r.positives / r.studies
        assert r.low <= r.rate <= r.high
    assert (report.findings, report.studies) == (9, 9)
    weekly = model_report(db, worklist, models, MODEL, now=NOW, bucket="week")
    # 28 June 2026 is a Sunday (ISO week 26), 29 June a Monday (week 27).
    assert {r.period for r in weekly.positive_rate} == {"2026-W26", "2026-W27"}
    assert monitored_models(db, worklist, now=NOW) == [MODEL, "other@2"]


def test_agreement_counts_feedback_on_the_models_findings(db: Database, tmp_path: Path) -> None:
    worklist, models = _settings(tmp_path)
    at = NOW - timedelta(days=1)
    mine = add_scored_findings(db, [0.9, 0.8, 0.7, 0.2, 0.1], at=at)
    theirs = add_scored_findings(db, [0.9], at=at, model="other@2")
    for (study_id, finding_id), kind in zip(mine[:3], ["agree", "agree", "disagree"], strict=True):
        add_feedback(db, study_id, kind, finding_id=finding_id, at=at)
    add_feedback(db, mine[3][0], "agree", at=at)  # on the study, no finding
    add_feedback(db, mine[4][0], "missed", at=at)
    add_feedback(db, theirs[0][0], "disagree", finding_id=theirs[0][1], at=at)  # another model
    add_feedback(db, mine[0][0], "disagree", at=NOW - timedelta(days=30))  # outside the window
    report = model_report(db, worklist, models, MODEL, now=NOW)
    g = report.agreement
    assert (g.agree, g.disagree, g.missed) == (3, 1, 1)
    assert g.rate == pytest.approx(3 / 5)
    assert 0.0 < g.low < 0.6 < g.high < 1.0


def test_unknown_or_malformed_models(sqlite_db: Database, tmp_path: Path) -> None:
    worklist, models = _settings(tmp_path)
    with pytest.raises(MonitoringRefError):
        model_report(sqlite_db, worklist, models, "no-version", now=NOW)
    with pytest.raises(NoFindingsError, match="no finding"):
        model_report(sqlite_db, worklist, models, "absent@1", now=NOW)
    assert load_reference(models, "../../etc@passwd") is None


def test_reference_file_reads_score_columns_only(tmp_path: Path) -> None:
    _, models = _settings(tmp_path)
    write_reference(models.models_dir, MODEL, {"effusion": [0.25, 0.5], "pneumothorax": [0.75]})
    assert load_reference(models, MODEL) == {"effusion": [0.25, 0.5], "pneumothorax": [0.75]}


def test_a_broken_reference_file_is_reported_not_fatal(sqlite_db: Database, tmp_path: Path) -> None:
    worklist, models = _settings(tmp_path)
    path = write_reference(models.models_dir, MODEL, {"pneumothorax": scores(100, seed=17)})
    path.write_text("image,pneumothorax_true\nimg1.png,1\n", encoding="utf-8")
    with pytest.raises(ReferenceFileError, match="no <label>_score column"):
        load_reference(models, MODEL)
    add_scored_findings(sqlite_db, scores(80, seed=18), at=NOW - timedelta(days=1))
    report = model_report(sqlite_db, worklist, models, MODEL, now=NOW)
    assert report.reference_source.startswith("none:")
    assert "no <label>_score column" in report.reference_source
    assert report.drift[0].status == "no_reference"
    path.write_bytes(b"image,pneumothorax_score\nimg1.png,0.5\n\xff\xfe\n")
    with pytest.raises(ReferenceFileError, match="cannot be read"):
        load_reference(models, MODEL)


def test_reference_skips_blank_and_non_finite_cells(tmp_path: Path) -> None:
    _, models = _settings(tmp_path)
    path = write_reference(models.models_dir, MODEL, {"effusion": [0.5]})
    path.write_text(
        "image,effusion,effusion_score\na.png,1,0.25\nb.png,0,\nc.png,1,nan\nd.png,0,x\n"
        "e.png,1,inf\nf.png,0,0.75\n",
        encoding="utf-8",
    )
    assert load_reference(models, MODEL) == {"effusion": [0.25, 0.75]}
