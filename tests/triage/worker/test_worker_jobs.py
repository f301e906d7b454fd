from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from models.card import ModelStatus
from models.errors import InvalidOutput
from tests.builders.onnx import write_worker_model
from tests.builders.store import add_study, study
from tests.builders.worker import WorkerFactory, drain, load
from triage.policy import load_policy
from triage.worker import inference, loop
from triage.worker.store import commit_triage, facts_of, load_work
from triage.worker.sweep import sweep
from worklist.db.engine import Database
from worklist.db.schema import Event, Finding, Job, Study
from worklist.db.types import utcnow
from worklist.domain import AIStatus, JobKind, JobState, ReadStatus
from worklist.jobs import claim, enqueue

ENABLED = ModelStatus.ENABLED


def count_findings(db: Database, sid: int) -> int:
    with db.read() as s:
        return len(s.scalars(select(Finding.id).where(Finding.study_id == sid)).all())


class Picky:
    """Raises InvalidOutput for any batch holding a very bright image."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.card, self.calls = inner, inner.card, 0

    def preprocess(self, ds: Any) -> Any:
        return self.inner.preprocess(ds)

    def predict(self, batch: Any) -> Any:
        self.calls += 1
        if any(float(img.mean()) > 0.97 for img in batch):
            raise InvalidOutput("probabilities contain NaN")
        return self.inner.predict(batch)

    def postprocess(self, prediction: Any) -> Any:
        return self.inner.postprocess(prediction)


def test_a_failing_batch_is_split_so_other_studies_keep_their_results(
    sqlite_db: Database, archive: Path, models_dir: Path, make_worker: WorkerFactory
) -> None:
    model = Picky(load(write_worker_model(models_dir, "chest")))
    bad, _ = add_study(sqlite_db, archive, brights=(1.0,), referral="ROUTINE")
    good, _ = add_study(sqlite_db, archive, brights=(0.9,))
    drain(make_worker(sqlite_db, [(model, ENABLED)]))
    assert model.calls == 3  # the joint batch, then each study alone
    assert study(sqlite_db, good).priority == "P1"
    assert study(sqlite_db, good).ai_status == AIStatus.DONE
    row = study(sqlite_db, bad)
    assert (row.priority, row.ai_status) == ("P3", AIStatus.NOT_AVAILABLE)
    assert "invalid output" in row.ai_reason


def test_lost_lease_writes_nothing_and_the_retry_triages_once(
    db: Database, archive: Path, models_dir: Path, make_worker: WorkerFactory
) -> None:
    model = load(write_worker_model(models_dir, "chest"))
    sid, _ = add_study(db, archive, brights=(0.9,))
    first = make_worker(db, [(model, ENABLED)], owner="first")
    got = claim(db, "first", limit=1, lease_s=30)
    with db.read() as s:
        work = load_work(s, sid)
    assert work is not None
    inference.run_models([work], first.pool, first.routing, first.options.archive_dir)
    assert work.findings
    # The lease expires and another worker takes the job over before "first" commits.
    with db.write() as s:
        s.execute(update(Job).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
    second = make_worker(db, [(model, ENABLED)], owner="second")
    assert drain(second) == 1
    assert not commit_triage(db, "first", got.jobs[0].id, work, load_policy(), utcnow())
    assert count_findings(db, sid) == 1
    with db.read() as s:
        job = s.scalars(select(Job).where(Job.kind == JobKind.TRIAGE)).one()
        assert (job.state, job.attempts) == (JobState.DONE, 2)


def test_exhausted_job_leaves_the_study_on_the_worklist(
    db: Database, archive: Path, models_dir: Path, make_worker: WorkerFactory
) -> None:
    model = load(write_worker_model(models_dir, "chest"))
    sid, _ = add_study(db, archive, referral="HIGH", max_attempts=1)
    assert claim(db, "dead", lease_s=30).jobs  # its worker dies holding it
    with db.write() as s:
        s.execute(update(Job).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
    drain(make_worker(db, [(model, ENABLED)]))
    row = study(db, sid)
    assert (row.state, row.priority, row.ai_status) == ("triaged", "P2", "not_available")
    assert "gave up after 1 attempts" in row.ai_reason
    with db.read() as s:
        assert {tuple(r) for r in s.execute(select(Job.kind, Job.state))} == {
            (JobKind.TRIAGE, JobState.FAILED),
            (JobKind.PUBLISH, JobState.DONE),  # exported and notified without AI
        }
        assert s.scalars(select(Event.action).where(Event.outcome == "failure")).all() == [
            "triage.gave_up"
        ]


def test_unexpected_error_is_retried_then_the_study_is_kept(
    db: Database,
    archive: Path,
    models_dir: Path,
    make_worker: WorkerFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = load(write_worker_model(models_dir, "chest"))
    sid, _ = add_study(db, archive, referral="STAT", max_attempts=2)

    def broken(*_a: Any, **_k: Any) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(loop, "run_models", broken)
    worker = make_worker(db, [(model, ENABLED)])
    assert worker.run_once() == 1
    with db.read() as s:
        job = s.scalars(select(Job).where(Job.kind == JobKind.TRIAGE)).one()
        assert job.state == JobState.QUEUED and "disk on fire" in job.last_error
    with db.write() as s:
        s.execute(update(Job).values(available_at=utcnow() - timedelta(seconds=1)))
    assert worker.run_once() == 2  # the triage gave up, and the study was published without AI
    row = study(db, sid)
    assert (row.priority, row.ai_status, row.state) == ("P1", "not_available", "triaged")
    assert "failed after 2 attempts" in row.ai_reason and "disk on fire" in row.ai_reason


def test_reprioritise_job_recomputes_from_stored_findings(
    db: Database, archive: Path, models_dir: Path, make_worker: WorkerFactory
) -> None:
    model = load(write_worker_model(models_dir, "chest"))
    hot, _ = add_study(db, archive, brights=(0.9,))
    cold, _ = add_study(db, archive, brights=(0.1,))
    worker = make_worker(db, [(model, ENABLED)])
    drain(worker)
    assert (study(db, hot).priority, study(db, cold).priority) == ("P1", "P3")
    with db.write() as s:
        for sid, prio in ((hot, "P3"), (cold, "P2")):
            s.execute(
                update(Study)
                .where(Study.id == sid)
                .values(clinical_priority=prio, clinical_priority_source="api")
            )
            enqueue(s, JobKind.REPRIORITISE, study_id=sid)
    assert drain(worker) == 2
    h, c = study(db, hot), study(db, cold)
    assert (h.priority, h.clinical_priority, h.clinical_priority_source) == ("P1", "P3", "api")
    assert (c.priority, c.clinical_priority) == ("P2", "P2")
    assert c.priority_explanation[0]["rule"] == "api"
    assert [e["rule"] for e in h.priority_explanation][:2] == ["api", "ai_finding"]
    assert c.due_at is not None and (c.due_at - c.first_received_at) == timedelta(hours=24)
    assert count_findings(db, hot) == 1  # findings untouched


def test_api_priority_set_before_triage_is_honoured(
    db: Database, archive: Path, models_dir: Path, make_worker: WorkerFactory
) -> None:
    model = load(write_worker_model(models_dir, "chest"))
    sid, _ = add_study(db, archive, brights=(0.1,), referral="ROUTINE")
    with db.write() as s:
        s.execute(
            update(Study)
            .where(Study.id == sid)
            .values(clinical_priority="P1", clinical_priority_source="api")
        )
        enqueue(s, JobKind.REPRIORITISE, study_id=sid)
    drain(make_worker(db, [(model, ENABLED)]))
    row = study(db, sid)
    assert (row.priority, row.clinical_priority_source) == ("P1", "api")


def test_sweep_escalates_waiting_studies_once_and_skips_reported(
    db: Database, archive: Path, models_dir: Path, make_worker: WorkerFactory
) -> None:
    model = load(write_worker_model(models_dir, "chest"))
    ids = [add_study(db, archive, brights=(0.1,))[0] for _ in range(3)]
    drain(make_worker(db, [(model, ENABLED)]))
    long_ago = utcnow() - timedelta(weeks=4)
    with db.write() as s:
        s.execute(update(Study).where(Study.id.in_(ids[:2])).values(first_received_at=long_ago))
        s.execute(update(Study).where(Study.id == ids[1]).values(read_status=ReadStatus.REPORTED))
    policy = load_policy()
    assert sweep(db, policy, utcnow()) == 1
    escalated = study(db, ids[0])
    assert escalated.priority == "P2"
    assert escalated.due_at == long_ago + timedelta(weeks=6)
    assert "escalation" in [e["rule"] for e in escalated.priority_explanation]
    assert study(db, ids[1]).priority == "P3"  # reported: left alone
    assert study(db, ids[2]).priority == "P3"  # new
    assert sweep(db, policy, utcnow()) == 0  # nothing changes twice
    assert sweep(db, policy, utcnow() + timedelta(weeks=10)) == 1  # the new one, much later
    assert study(db, ids[0]).priority == "P2"  # capped
    with db.read() as s:
        assert len(s.scalars(select(Event).where(Event.action == "study.escalated")).all()) == 2


def test_worker_sweeps_periodically(
    sqlite_db: Database, archive: Path, models_dir: Path, make_worker: WorkerFactory
) -> None:
    model = load(write_worker_model(models_dir, "chest"))
    sid, _ = add_study(sqlite_db, archive, brights=(0.1,))
    worker = make_worker(sqlite_db, [(model, ENABLED)], sweep_s=3600.0)
    drain(worker)
    with sqlite_db.write() as s:
        s.execute(update(Study).values(first_received_at=utcnow() - timedelta(weeks=4)))
    assert worker.maybe_sweep() == 1
    assert worker.maybe_sweep() == 0  # not due again for an hour
    assert study(sqlite_db, sid).priority == "P2"


def test_a_reopened_study_is_triaged_again_with_one_set_of_findings(
    db: Database, archive: Path, models_dir: Path, make_worker: WorkerFactory
) -> None:
    model = load(write_worker_model(models_dir, "chest"))
    sid, _ = add_study(db, archive, brights=(0.9, 0.8))
    worker = make_worker(db, [(model, ENABLED)])
    drain(worker)
    assert count_findings(db, sid) == 2
    with db.write() as s:
        enqueue(s, JobKind.TRIAGE, study_id=sid)
    drain(worker)
    assert count_findings(db, sid) == 2
    with db.read() as s:
        ev = s.scalars(select(Event).where(Event.action == "study.triaged")).all()
        assert [e.details.get("replaced_findings") for e in ev] == [None, 2]


def test_a_study_reopened_during_triage_stays_receiving(
    sqlite_db: Database,
    archive: Path,
    models_dir: Path,
    make_worker: WorkerFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = load(write_worker_model(models_dir, "chest"))
    sid, _ = add_study(sqlite_db, archive, brights=(0.9,))
    real = inference.run_models  # the function the loop calls

    def and_an_instance_arrives(*a: Any, **k: Any) -> None:
        real(*a, **k)
        with sqlite_db.write() as s:
            s.execute(update(Study).where(Study.id == sid).values(state="receiving"))

    monkeypatch.setattr(loop, "run_models", and_an_instance_arrives)
    drain(make_worker(sqlite_db, [(model, ENABLED)]))
    row = study(sqlite_db, sid)
    assert (row.state, row.priority, row.ai_status) == ("receiving", "P1", "done")


def test_sweep_reevaluates_only_studies_whose_escalation_changed(
    sqlite_db: Database,
    archive: Path,
    models_dir: Path,
    make_worker: WorkerFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from triage.worker import sweep as sweep_module

    model = load(write_worker_model(models_dir, "chest"))
    ids = [add_study(sqlite_db, archive, brights=(0.1,))[0] for _ in range(3)]
    drain(make_worker(sqlite_db, [(model, ENABLED)]))
    long_ago = utcnow() - timedelta(weeks=4)
    with sqlite_db.write() as s:
        for sid in ids:
            row = s.get(Study, sid)
            assert row is not None
            row.first_received_at = long_ago
            row.due_at = long_ago + timedelta(weeks=6)  # as the worker would have written
    seen: list[int] = []
    real = facts_of  # the function the sweep calls

    def spy(study: Study, *a: Any, **k: Any) -> Any:
        seen.append(study.id)
        return real(study, *a, **k)

    monkeypatch.setattr(sweep_module, "facts_of", spy)
    policy = load_policy()
    assert sweep(sqlite_db, policy, utcnow()) == 3
    assert sorted(seen) == ids
    seen.clear()
    assert sweep(sqlite_db, policy, utcnow()) == 0
    assert seen == []  # at their cap (P2): not even re-evaluated
    with sqlite_db.write() as s:  # a due time the policy cannot explain: re-evaluated in full
        s.execute(update(Study).where(Study.id == ids[0]).values(due_at=utcnow()))
    assert sweep(sqlite_db, policy, utcnow()) == 1
    assert seen == [ids[0]]
    assert study(sqlite_db, ids[0]).due_at == long_ago + timedelta(weeks=6)


def test_run_loop_survives_a_store_error_and_stops_on_the_event(
    sqlite_db: Database,
    archive: Path,
    models_dir: Path,
    make_worker: WorkerFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import threading
    import time

    model = load(write_worker_model(models_dir, "chest"))
    sid, _ = add_study(sqlite_db, archive, brights=(0.9,))
    monkeypatch.setattr(loop, "_ERROR_BACKOFF_S", 0.05)
    real, calls = claim, {"n": 0}  # the function the loop calls

    def flaky(*a: Any, **k: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError("store unreachable")
        return real(*a, **k)

    monkeypatch.setattr(loop, "claim", flaky)
    worker = make_worker(sqlite_db, [(model, ENABLED)], poll_s=0.02)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while study(sqlite_db, sid).state != "triaged" and time.monotonic() < deadline:
        time.sleep(0.02)
    stop.set()
    thread.join(timeout=5)
    assert not thread.is_alive() and calls["n"] >= 2
    assert study(sqlite_db, sid).priority == "P1"
