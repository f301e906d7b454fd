"""Recording instances: the archive, the study, series and instance rows, events, quotas."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom.uid import generate_uid
from sqlalchemy import select

from tests.builders.dicom import make_dataset
from tests.builders.store import store_instance
from worklist.archive import Archive, ArchiveFullError, sha256_hex
from worklist.db.engine import Database
from worklist.db.schema import Association, Event, Instance, Series, Study
from worklist.domain import StudyState
from worklist.ingest.recorder import (
    Ingestor,
    IngestOutcome,
    close_association,
    open_association,
    record_refusal,
)


@pytest.fixture
def archive(tmp_path: Path) -> Archive:
    return Archive(tmp_path / "archive")


@pytest.fixture(params=[False, True], ids=["per-instance-commit", "group-commit"])
def new_ingestor(request: pytest.FixtureRequest) -> Iterator[Callable[..., Ingestor]]:
    """Build Ingestors with and without group commit: the semantics must be the same."""
    made: list[Ingestor] = []

    def make(db: Database, archive: Archive, **kw: Any) -> Ingestor:
        made.append(Ingestor(db, archive, group_commit=request.param, **kw))
        return made[-1]

    yield make
    for ingestor in made:
        ingestor.close()


def test_store_records_study_series_instance(
    db: Database, archive: Archive, new_ingestor: Callable[..., Ingestor]
) -> None:
    ingestor = new_ingestor(db, archive)
    study_uid = generate_uid()
    open_association(db, "a1", calling_aet="CDC_A", called_aet="ICS", peer="127.0.0.1:1")
    ds1 = make_dataset(study_uid=study_uid, modality="CT", series_number=1)
    ds2 = make_dataset(study_uid=study_uid, modality="MR", series_number=2, seed=1)
    r1, data1 = store_instance(ingestor, ds1, association_id="a1", calling_aet="CDC_A")
    r2, _ = store_instance(ingestor, ds2, association_id="a1", calling_aet="CDC_B")
    assert r1.outcome is IngestOutcome.STORED and r2.outcome is IngestOutcome.STORED
    assert r1.study_id == r2.study_id
    assert archive.read(r1.path) == data1
    with db.read() as s:
        study = s.scalars(select(Study)).one()
        assert study.study_instance_uid == study_uid
        assert study.instance_count == 2
        assert study.modalities == "CT\\MR"
        assert study.site == "CDC_A"
        assert study.patient_id == "SYNTH001"
        assert study.state == StudyState.RECEIVING
        assert study.priority == "P3"
        assert study.first_received_at <= study.last_received_at
        assert len(s.scalars(select(Series)).all()) == 2
        inst = s.scalars(select(Instance).where(Instance.id == r1.instance_id)).one()
        assert inst.sha256 == sha256_hex(data1)
        assert inst.size_bytes == len(data1)
        assert inst.association_id == "a1"
        assert inst.calling_aet == "CDC_A"
        assert inst.path == r1.path
    assert close_association(db, "a1", "released") == [r1.study_id]
    with db.read() as s:
        assoc = s.get(Association, "a1")
        assert assoc is not None and assoc.outcome == "released" and assoc.ended_at is not None


def test_duplicates_identical_and_keep_first(
    db: Database, archive: Archive, new_ingestor: Callable[..., Ingestor]
) -> None:
    ingestor = new_ingestor(db, archive, replace_duplicates=False)
    ds = make_dataset(study_uid=generate_uid())
    first, data = store_instance(ingestor, ds, calling_aet="A")
    again, _ = store_instance(ingestor, ds, calling_aet="A")
    assert again.outcome is IngestOutcome.IDENTICAL
    ds.PatientID = "CHANGED"
    kept, _ = store_instance(ingestor, ds, calling_aet="A")
    assert kept.outcome is IngestOutcome.KEPT_FIRST
    assert archive.read(first.path) == data
    with db.read() as s:
        assert len(s.scalars(select(Instance)).all()) == 1
        assert s.scalars(select(Study)).one().instance_count == 1
        events = s.scalars(select(Event).where(Event.action == "instance.duplicate")).all()
        assert sorted(e.details["policy_outcome"] for e in events) == ["identical", "kept_first"]


def test_duplicate_replace_policy(
    db: Database, archive: Archive, new_ingestor: Callable[..., Ingestor]
) -> None:
    ingestor = new_ingestor(db, archive, replace_duplicates=True)
    ds = make_dataset(study_uid=generate_uid())
    first, _ = store_instance(ingestor, ds)
    ds.PatientID = "CORRECTED"
    replaced, data2 = store_instance(ingestor, ds)
    assert replaced.outcome is IngestOutcome.REPLACED
    assert replaced.path != first.path
    assert not archive.absolute(first.path).exists()
    assert archive.read(replaced.path) == data2
    with db.read() as s:
        inst = s.scalars(select(Instance)).one()
        assert inst.sha256 == sha256_hex(data2) and inst.path == replaced.path
        event = s.scalars(select(Event).where(Event.action == "instance.duplicate")).one()
        assert event.details["policy_outcome"] == "replaced"


def test_instance_after_completion_reopens(
    db: Database, archive: Archive, new_ingestor: Callable[..., Ingestor]
) -> None:
    ingestor = new_ingestor(db, archive)
    study_uid = generate_uid()
    r, _ = store_instance(ingestor, make_dataset(study_uid=study_uid))
    with db.write() as s:
        study = s.get(Study, r.study_id)
        assert study is not None
        study.state = StudyState.TRIAGED
    store_instance(ingestor, make_dataset(study_uid=study_uid, seed=5))
    with db.read() as s:
        study = s.get(Study, r.study_id)
        assert study is not None
        assert study.state == StudyState.RECEIVING and study.instance_count == 2
        assert s.scalars(select(Event).where(Event.action == "study.reopened")).one()


def test_quota_refuses_and_records_nothing(
    db: Database, tmp_path: Path, new_ingestor: Callable[..., Ingestor]
) -> None:
    archive = Archive(tmp_path / "q", quota_bytes=3000)
    ingestor = new_ingestor(db, archive)
    store_instance(ingestor, make_dataset(study_uid=generate_uid(), size=16))
    with pytest.raises(ArchiveFullError):
        store_instance(ingestor, make_dataset(study_uid=generate_uid(), size=32))
    with db.read() as s:
        assert len(s.scalars(select(Instance)).all()) == 1


def test_refusal_event(db: Database) -> None:
    record_refusal(
        db, reason="bad", status=0xC000, calling_aet="X", study_uid="../x", sop_uid="1.2.3"
    )
    with db.read() as s:
        e = s.scalars(select(Event)).one()
        assert e.action == "instance.refused" and e.outcome == "failure"
        assert e.details == {"reason": "bad", "status": 0xC000, "status_hex": "0xC000"}
        assert e.study_instance_uid == "" and e.sop_instance_uid == "1.2.3"
