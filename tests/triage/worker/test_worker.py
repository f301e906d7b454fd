from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select

from models.card import ModelStatus, load_card
from tests.builders.onnx import write_worker_model
from tests.builders.store import add_study, study
from tests.builders.worker import WorkerFactory, drain, load
from triage.policy import load_policy
from triage.routing import load_routing
from triage.worker import ModelPool, Worker, WorkerOptions
from triage.worker.pool import Entry
from worklist.db.engine import Database
from worklist.db.schema import Event, Finding, Job, Study
from worklist.domain import AIStatus, JobKind, JobState, StudyState

ENABLED, SHADOW = ModelStatus.ENABLED, ModelStatus.SHADOW


class Counting:
    """Wraps a model and records the batch sizes it was asked to predict."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.card = inner.card
        self.batches: list[int] = []

    def preprocess(self, ds: Any) -> Any:
        return self.inner.preprocess(ds)

    def predict(self, batch: Any) -> Any:
        self.batches.append(len(batch))
        return self.inner.predict(batch)

    def postprocess(self, prediction: Any) -> Any:
        return self.inner.postprocess(prediction)


def findings(db: Database, sid: int) -> list[Finding]:
    with db.read() as s:
        rows = list(s.scalars(select(Finding).where(Finding.study_id == sid).order_by(Finding.id)))
        s.expunge_all()
        return rows


def test_findings_priority_and_heatmaps_written(
    db: Database, archive: Path, models_dir: Path, make_worker: WorkerFactory
) -> None:
    model = Counting(load(write_worker_model(models_dir, "chest", n_labels=2)))
    hot, _ = add_study(db, archive, brights=(0.9, 0.8))
    cold, _ = add_study(db, archive, brights=(0.1,), referral="HIGH")
    worker = make_worker(db, [(model, ENABLED)])
    assert drain(worker) == 2
    assert model.batches == [3]  # the images of both studies in one batch

    s_hot, s_cold = study(db, hot), study(db, cold)
    assert (s_hot.priority, s_hot.state, s_hot.ai_status) == ("P1", StudyState.TRIAGED, "done")
    assert s_hot.clinical_priority == "P3" and s_hot.clinical_priority_source == "default"
    assert s_hot.triaged_at is not None and s_hot.due_at is not None
    assert (s_hot.due_at - s_hot.first_received_at).total_seconds() == 3600
    rules = [e["rule"] for e in s_hot.priority_explanation]
    assert rules == ["global_default", "ai_finding", "result"]
    ai = s_hot.priority_explanation[1]
    assert ai["finding"] == "pneumothorax" and ai["model"] == "chest@1.0"
    assert ai["probability"] >= 0.8 and ai["threshold"] == 0.5

    # The cold study: nothing crossed for pneumothorax, nodule (1 - mean) crossed -> P2 = referral.
    assert (s_cold.priority, s_cold.clinical_priority, s_cold.ai_status) == ("P2", "P2", "done")
    assert s_cold.clinical_priority_source == "referral"

    rows = findings(db, hot)
    assert len(rows) == 4  # 2 images x 2 labels
    card = model.card
    for f in rows:
        assert f.model_sha256 == card.identity.sha256 and f.model_uid == card.identity.uid
        assert (f.model_name, f.model_version, f.model_creator) == ("chest", "1.0", "Test")
        assert f.inference_ms > 0 and f.preprocess_ms > 0 and not f.shadow
        assert f.job_id is not None and f.concept_scheme == "SCT"
        assert f.category == {"pneumothorax": "P1", "nodule": "P2"}[f.label]
        if f.crossed:
            assert f.heatmap_path.startswith(f"derived/{s_hot.study_instance_uid}/")
            heat = np.load(archive / f.heatmap_path)
            assert heat.dtype == np.float32 and heat.shape == (16, 16)
            assert heat.min() >= 0.0 and heat.max() <= 1.0
        else:
            assert f.heatmap_path == ""
    assert {f.label for f in rows if f.crossed} == {"pneumothorax"}
    with db.read() as s:
        assert set(s.scalars(select(Job.state))) == {JobState.DONE}
        actions = list(s.scalars(select(Event.action).where(Event.category == "system")))
        assert actions.count("study.triaged") == 2


def check_not_available(db: Database, sid: int, *needles: str) -> Study:
    row = study(db, sid)
    assert row.state == StudyState.TRIAGED
    assert row.ai_status == AIStatus.NOT_AVAILABLE
    assert row.priority == row.clinical_priority == "P2"  # the referral's HIGH
    for needle in needles:
        assert needle in row.ai_reason
    rules = [e["rule"] for e in row.priority_explanation]
    assert "ai_not_available" in rules
    with db.read() as s:
        jobs = s.scalars(select(Job).where(Job.study_id == sid)).all()
        assert {(j.kind, j.state) for j in jobs} == {
            (JobKind.TRIAGE, JobState.DONE),
            (JobKind.PUBLISH, JobState.DONE),  # published without AI: exports still go
        }
        ev = s.scalars(select(Event).where(Event.action == "ai.not_available")).all()
        assert any(
            e.study_instance_uid == row.study_instance_uid and e.outcome == "failure" for e in ev
        )
    return row


def test_model_that_raises(
    db: Database, archive: Path, models_dir: Path, make_worker: WorkerFactory
) -> None:
    # The graph reshapes its input to a size that does not fit: ONNX Runtime raises.
    model = load(write_worker_model(models_dir, "broken", "raise"))
    sid, _ = add_study(db, archive, referral="HIGH")
    drain(make_worker(db, [(model, ENABLED)]))
    check_not_available(db, sid, "model broken@1.0 failed", "inference failed")
    assert findings(db, sid) == []


def test_model_that_cannot_be_loaded(sqlite_db: Database, archive: Path, models_dir: Path) -> None:
    # The graph declares 8x8 input; the card gives 16x16: the runtime refuses to load it.
    directory = write_worker_model(models_dir, "mismatch", declared_size=8)
    entry = Entry(load_card(directory), ENABLED)
    pool = ModelPool(lambda: [entry], lambda card: load(directory))
    assert pool.active == [] and list(pool.broken) == ["mismatch@1.0"]
    sid, _ = add_study(sqlite_db, archive, referral="HIGH")
    worker = Worker(sqlite_db, pool, load_routing(), load_policy(), WorkerOptions(archive))
    drain(worker)
    check_not_available(sqlite_db, sid, "mismatch@1.0 could not be loaded", "axis 2")


def test_model_that_returns_nan(
    db: Database, archive: Path, models_dir: Path, make_worker: WorkerFactory
) -> None:
    model = load(write_worker_model(models_dir, "nan", "nan"))
    sid, _ = add_study(db, archive, referral="HIGH")
    drain(make_worker(db, [(model, ENABLED)]))
    check_not_available(db, sid, "nan@1.0", "invalid output")


def test_model_that_hangs_past_the_timeout(
    archive: Path, models_dir: Path, make_worker: WorkerFactory, sqlite_db: Database
) -> None:
    model = load(
        write_worker_model(models_dir, "slow", "slow", size=256, slow_layers=30, channels=32),
        timeout_s=0.2,
    )
    sid, _ = add_study(sqlite_db, archive, referral="HIGH")
    drain(make_worker(sqlite_db, [(model, ENABLED)]))
    check_not_available(sqlite_db, sid, "slow@1.0", "timed out")


def test_unreadable_pixels_and_no_applicable_model(
    db: Database, archive: Path, models_dir: Path, make_worker: WorkerFactory
) -> None:
    model = load(write_worker_model(models_dir, "chest"))
    broken, _ = add_study(db, archive, referral="HIGH", corrupt=True)
    mr, _ = add_study(db, archive, referral="HIGH", modality="MR")
    drain(make_worker(db, [(model, ENABLED)]))
    check_not_available(db, broken, "cannot be read")
    check_not_available(db, mr, "no applicable model")


def test_shadow_model_is_recorded_but_never_changes_priority(
    db: Database, archive: Path, models_dir: Path, make_worker: WorkerFactory
) -> None:
    shadow = load(write_worker_model(models_dir, "candidate"))
    enabled = load(write_worker_model(models_dir, "chest", modalities=("DX",)))
    sid, _ = add_study(db, archive, brights=(0.95,))  # CR: only the shadow model applies
    drain(make_worker(db, [(shadow, SHADOW), (enabled, ENABLED)]))
    row = study(db, sid)
    assert row.priority == "P3"
    assert row.ai_status == AIStatus.NOT_AVAILABLE and "no applicable model" in row.ai_reason
    rows = findings(db, sid)
    assert len(rows) == 1 and rows[0].shadow and rows[0].crossed
    assert "candidate" not in str(row.priority_explanation)


def test_shadow_beside_enabled(
    db: Database, archive: Path, models_dir: Path, make_worker: WorkerFactory
) -> None:
    shadow = load(write_worker_model(models_dir, "candidate"))
    enabled = load(write_worker_model(models_dir, "chest", n_labels=2))
    # bright 0.6: candidate says pneumothorax (P1); chest also does. 0.3: only nodule (P2).
    sid, _ = add_study(db, archive, brights=(0.3,))
    drain(make_worker(db, [(shadow, SHADOW), (enabled, ENABLED)]))
    row = study(db, sid)
    assert (row.priority, row.ai_status) == ("P2", "done")
    assert {(f.model_name, f.shadow) for f in findings(db, sid)} == {
        ("candidate", True),
        ("chest", False),
    }
