from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

from pydicom.uid import generate_uid
from sqlalchemy import select

from dicom_gateway.assembler import Assembler
from dicom_gateway.settings import GatewaySettings
from tests.builders.dicom import make_dataset
from tests.builders.store import store_instance
from worklist.archive import Archive
from worklist.db.engine import Database
from worklist.db.schema import Job, Study
from worklist.db.types import utcnow
from worklist.domain import JobKind, StudyState
from worklist.ingest.recorder import Ingestor, close_association, open_association


def _setup(db: Database, tmp_path: Path) -> tuple[Ingestor, Assembler]:
    settings = GatewaySettings(idle_s={"DX": 0.0, "CT": 5.0}, default_idle_s=2.0)
    return Ingestor(db, Archive(tmp_path / "archive")), Assembler(db, settings)


def _state(db: Database, study_id: int) -> str:
    with db.read() as s:
        study = s.get(Study, study_id)
        assert study is not None
        return study.state


def _jobs(db: Database, study_id: int) -> list[tuple[str, str]]:
    with db.read() as s:
        return [(j.kind, j.state) for j in s.scalars(select(Job).where(Job.study_id == study_id))]


def test_chest_radiograph_is_complete_at_release(db: Database, tmp_path: Path) -> None:
    ingestor, assembler = _setup(db, tmp_path)
    open_association(db, "a", calling_aet="CDC", called_aet="ICS", peer="p")
    r, _ = store_instance(
        ingestor, make_dataset(study_uid=generate_uid(), modality="DX"), association_id="a"
    )
    assert assembler.run_once() == []  # association still open
    assert _state(db, r.study_id) == StudyState.RECEIVING
    ids = close_association(db, "a", "released")
    assert assembler.run_once(study_ids=ids) == [r.study_id]
    assert _state(db, r.study_id) == StudyState.QUEUED
    jobs = _jobs(db, r.study_id)
    assert jobs == [(JobKind.TRIAGE, "queued")]
    assert assembler.run_once() == []  # never twice


def test_ct_waits_for_its_idle_time(db: Database, tmp_path: Path) -> None:
    ingestor, assembler = _setup(db, tmp_path)
    r, _ = store_instance(ingestor, make_dataset(study_uid=generate_uid(), modality="CT"))
    now = utcnow()
    assert assembler.run_once(now=now + timedelta(seconds=4)) == []
    assert assembler.run_once(now=now + timedelta(seconds=5.5)) == [r.study_id]


def test_mixed_modalities_take_the_longest_idle(db: Database, tmp_path: Path) -> None:
    _ingestor, assembler = _setup(db, tmp_path)
    assert assembler.idle_for("DX\\CT") == 5.0
    assert assembler.idle_for("US") == 2.0
    assert assembler.idle_for("") == 2.0


def test_dead_association_does_not_block_forever(db: Database, tmp_path: Path) -> None:
    ingestor, assembler = _setup(db, tmp_path)
    open_association(db, "dead", calling_aet="CDC", called_aet="ICS", peer="p")
    r, _ = store_instance(
        ingestor, make_dataset(study_uid=generate_uid(), modality="DX"), association_id="dead"
    )
    assert assembler.run_once() == []
    later = utcnow() + timedelta(seconds=assembler.stale_s + 1)
    assert assembler.run_once(now=later) == [r.study_id]


def test_reopened_study_is_queued_again(db: Database, tmp_path: Path) -> None:
    ingestor, assembler = _setup(db, tmp_path)
    study_uid = generate_uid()
    r, _ = store_instance(ingestor, make_dataset(study_uid=study_uid, modality="DX"))
    assert assembler.run_once() == [r.study_id]
    with db.write() as s:  # the worker took the job and triaged the study
        for job in s.scalars(select(Job)):
            job.state = "done"
        study = s.get(Study, r.study_id)
        assert study is not None
        study.state = StudyState.TRIAGED
    store_instance(ingestor, make_dataset(study_uid=study_uid, modality="DX", seed=3))
    assert _state(db, r.study_id) == StudyState.RECEIVING
    assert assembler.run_once() == [r.study_id]
    assert sorted(state for _, state in _jobs(db, r.study_id)) == ["done", "queued"]


def test_concurrent_assemblers_queue_once(db: Database, tmp_path: Path) -> None:
    ingestor, _ = _setup(db, tmp_path)
    ids = [
        store_instance(ingestor, make_dataset(study_uid=generate_uid(), modality="DX", seed=i))[
            0
        ].study_id
        for i in range(6)
    ]
    settings = GatewaySettings(idle_s={"DX": 0.0})
    copies = [Assembler(db, settings) for _ in range(3)]
    done: list[list[int]] = [[] for _ in copies]
    barrier = threading.Barrier(len(copies))

    def run(i: int) -> None:
        barrier.wait()
        done[i] = copies[i].run_once()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(copies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(sid for d in done for sid in d) == sorted(ids)
    for sid in ids:
        assert len(_jobs(db, sid)) == 1
