from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import select, update

from worklist.db.engine import Database
from worklist.db.schema import Job, Study
from worklist.db.types import utcnow
from worklist.domain import JobKind, JobState
from worklist.jobs import any_claimable, claim, complete, enqueue, fail, heartbeat


def _study(db: Database, uid: str = "1.2.3") -> int:
    with db.write() as s:
        study = Study(study_instance_uid=uid)
        s.add(study)
        s.flush()
        return study.id


def test_enqueue_is_idempotent_while_queued(db: Database) -> None:
    sid = _study(db)
    with db.write() as s:
        a = enqueue(s, JobKind.TRIAGE, study_id=sid)
        b = enqueue(s, JobKind.TRIAGE, study_id=sid, priority=1)
        assert a.id == b.id and b.priority == 1
    with db.read() as s:
        assert len(s.scalars(select(Job)).all()) == 1


def test_claim_complete(db: Database) -> None:
    sid = _study(db)
    with db.write() as s:
        enqueue(s, JobKind.TRIAGE, study_id=sid)
    got = claim(db, "w1", limit=5)
    assert [j.study_id for j in got.jobs] == [sid]
    assert got.jobs[0].attempts == 1
    assert claim(db, "w2").jobs == []  # held
    assert heartbeat(db, [got.jobs[0].id], "w2") == []  # not the owner
    assert heartbeat(db, [got.jobs[0].id], "w1") == [got.jobs[0].id]
    with db.write() as s:
        assert complete(s, got.jobs[0].id, "w1")
    with db.read() as s:
        assert s.scalars(select(Job.state)).one() == JobState.DONE


def test_expired_lease_is_retried_then_exhausted(db: Database) -> None:
    sid = _study(db)
    with db.write() as s:
        enqueue(s, JobKind.TRIAGE, study_id=sid, max_attempts=2)

    def expire() -> None:
        with db.write() as s:
            s.execute(update(Job).values(lease_expires_at=utcnow() - timedelta(seconds=1)))

    first = claim(db, "dead-1")
    expire()
    second = claim(db, "w2")
    assert second.jobs and second.jobs[0].attempts == 2 and second.jobs[0].id == first.jobs[0].id
    expire()
    third = claim(db, "w3")
    assert third.jobs == [] and [j.id for j in third.exhausted] == [first.jobs[0].id]
    with db.read() as s:
        job = s.scalars(select(Job)).one()
        assert job.state == JobState.FAILED and "lease expired" in job.last_error
    # A dead worker cannot complete a job it lost.
    with db.write() as s:
        assert not complete(s, first.jobs[0].id, "dead-1")


def test_fail_requeues_with_backoff_then_fails(db: Database) -> None:
    sid = _study(db)
    with db.write() as s:
        enqueue(s, JobKind.TRIAGE, study_id=sid, max_attempts=2)
    j = claim(db, "w").jobs[0]
    assert fail(db, j.id, "w", "boom", backoff_s=0) == JobState.QUEUED
    j = claim(db, "w").jobs[0]
    assert fail(db, j.id, "w", "boom again") == JobState.FAILED
    assert fail(db, j.id, "other", "x") == ""


def test_concurrent_claims_never_share_a_job(db: Database) -> None:
    ids = [_study(db, f"1.2.{i}") for i in range(40)]
    with db.write() as s:
        for sid in ids:
            enqueue(s, JobKind.TRIAGE, study_id=sid)
    taken: list[int] = []
    lock = threading.Lock()

    def worker(name: str) -> None:
        while True:
            got = claim(db, name, limit=3)
            if not got.jobs:
                return
            with lock:
                taken.extend(j.id for j in got.jobs)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(taken) == sorted(set(taken)) and len(taken) == 40


def test_any_claimable_sees_what_claim_would_take(db: Database) -> None:
    publish = [str(JobKind.PUBLISH)]
    assert not any_claimable(db, publish)
    sid = _study(db)
    with db.write() as s:
        enqueue(s, JobKind.TRIAGE, study_id=sid)
    assert not any_claimable(db, publish)  # another kind
    with db.write() as s:
        enqueue(s, JobKind.PUBLISH, study_id=sid)
    assert any_claimable(db, publish)
    assert claim(db, "w1", kinds=publish, lease_s=30).jobs
    assert not any_claimable(db, publish)  # held under a live lease
    with db.write() as s:
        s.execute(update(Job).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
    assert any_claimable(db, publish)  # its worker died: claimable again
