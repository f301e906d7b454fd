"""A triaged study is published (SR, key image, notification) even if its worker dies right
after the triage commit: the commit queues a publish job in the same transaction, and any
worker carries it out; an attempt cut short is resumed, not repeated."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from pydicom.uid import Comprehensive3DSRStorage, SecondaryCaptureImageStorage
from sqlalchemy import select, update

from models.card import ModelStatus
from tests.builders.onnx import write_worker_model
from tests.builders.outputs import output_rows
from tests.builders.store import add_study, study
from tests.builders.worker import WorkerFactory, drain, load
from triage.webhooks import Webhook
from triage.worker.inference import StudyWork
from triage.worker.loop import Worker
from triage.worker.publish import load_triaged
from worklist.db.engine import Database
from worklist.db.schema import Job
from worklist.db.types import utcnow
from worklist.domain import JobKind, JobState
from worklist.jobs import claim

SR, SC = Comprehensive3DSRStorage, SecondaryCaptureImageStorage


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIAGE_TEST_PUBLISH_SECRET", "0123456789abcdef0123456789abcdef")


def _worker(db: Database, make_worker: WorkerFactory, models_dir: Path) -> Worker:
    model = load(write_worker_model(models_dir, "chest", n_labels=2))
    hook = Webhook.model_validate(
        {"name": "pager", "url": "http://127.0.0.1:9/", "secret_env": "TRIAGE_TEST_PUBLISH_SECRET"}
    )
    return make_worker(db, [(model, ModelStatus.ENABLED)], webhooks=[hook])


def _jobs(db: Database, kind: JobKind) -> list[tuple[str, int | None]]:
    with db.read() as s:
        rows = s.execute(select(Job.state, Job.study_id).where(Job.kind == kind)).all()
    return [(state, sid) for state, sid in rows]


def test_a_worker_dead_after_the_commit_leaves_the_publishing_to_another(
    sqlite_db: Database, archive: Path, models_dir: Path, make_worker: WorkerFactory
) -> None:
    db = sqlite_db
    sid, uid = add_study(db, archive, brights=(0.9,))  # the model raises it to P1
    first = _worker(db, make_worker, models_dir)
    # The first worker commits the triage and dies holding the publish job it had just claimed.
    first.run_publish = lambda: len(claim(db, "dead", kinds=[JobKind.PUBLISH], lease_s=30).jobs)  # type: ignore[method-assign]
    assert first.run_once() == 2
    assert study(db, sid).priority == "P1"
    assert output_rows(db, uid, SR) == [] and output_rows(db, uid, SC) == []
    assert _jobs(db, JobKind.PUBLISH) == [(JobState.RUNNING, sid)]
    assert _jobs(db, JobKind.WEBHOOK) == []  # nothing queued yet: it died before that

    second = _worker(db, make_worker, models_dir)
    assert drain(second) == 0  # its lease still runs: nobody takes it over yet
    with db.write() as s:
        s.execute(update(Job).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
    drain(second)
    assert len(output_rows(db, uid, SR)) == 1 and len(output_rows(db, uid, SC)) == 1
    assert _jobs(db, JobKind.PUBLISH) == [(JobState.DONE, sid)]
    assert [sid for _, sid in _jobs(db, JobKind.WEBHOOK)] == [sid]  # the P1 notification


def test_an_attempt_cut_short_is_resumed_not_repeated(
    sqlite_db: Database, archive: Path, models_dir: Path, make_worker: WorkerFactory
) -> None:
    db = sqlite_db
    sid, uid = add_study(db, archive, brights=(0.9,))
    worker = _worker(db, make_worker, models_dir)
    real = worker.publisher.run

    def dies_after_the_outputs(job: object) -> bool:
        assert worker.publisher.outputs is not None
        work, triage_job = _loaded(db, sid)
        worker.publisher.outputs.write(work, triage_job)  # stored; then the worker is killed
        raise RuntimeError("killed")

    worker.publisher.run = dies_after_the_outputs  # type: ignore[method-assign]
    worker.run_once()
    assert len(output_rows(db, uid, SR)) == 1
    assert [s for s, _ in _jobs(db, JobKind.PUBLISH)] == [JobState.QUEUED]  # to retry
    worker.publisher.run = real  # type: ignore[method-assign]
    with db.write() as s:
        s.execute(update(Job).values(available_at=utcnow() - timedelta(seconds=1)))
    drain(worker)
    assert len(output_rows(db, uid, SR)) == 1 and len(output_rows(db, uid, SC)) == 1
    assert [s for s, _ in _jobs(db, JobKind.PUBLISH)] == [JobState.DONE]
    assert len(_jobs(db, JobKind.WEBHOOK)) == 1


def _loaded(db: Database, sid: int) -> tuple[StudyWork, int | None]:
    with db.read() as s:
        loaded = load_triaged(s, sid)
    assert loaded is not None
    return loaded
