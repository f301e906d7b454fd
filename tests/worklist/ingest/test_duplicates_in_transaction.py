"""The duplicate check is the INSERT's conflict, inside the write transaction.

Two receivers that share the store but not a lock (two gateways with their own archive
folders, or a lock lost with its host) can both find no stored copy of one SOP instance and
both write it. The copy recorded second must then be answered as a duplicate, its file
removed and its rows rolled back, not fail with an integrity error or count twice.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from pydicom.uid import generate_uid
from sqlalchemy import func, select

from tests.builders.dicom import encode, make_dataset
from worklist.archive import Archive, StoredFile
from worklist.db.engine import Database
from worklist.db.schema import Instance, Study
from worklist.ingest.header import parse_instance
from worklist.ingest.recorder import Ingestor, IngestOutcome


@pytest.fixture(params=[False, True], ids=["per-instance-commit", "group-commit"])
def new_ingestor(request: pytest.FixtureRequest) -> Iterator[Callable[..., Ingestor]]:
    made: list[Ingestor] = []

    def make(db: Database, archive: Archive) -> Ingestor:
        made.append(Ingestor(db, archive, group_commit=request.param))
        return made[-1]

    yield make
    for ingestor in made:
        ingestor.close()


def _counts(db: Database, sop_uid: str) -> tuple[int, int]:
    with db.read() as s:
        rows = s.scalar(select(func.count()).where(Instance.sop_instance_uid == sop_uid))
        count = s.scalar(select(func.max(Study.instance_count)))
    return int(rows or 0), int(count or 0)


def test_a_copy_recorded_meanwhile_makes_the_second_a_duplicate(
    db: Database,
    tmp_path: Path,
    new_ingestor: Callable[..., Ingestor],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = encode(make_dataset(study_uid=generate_uid()))
    header, _ = parse_instance(data)
    first = new_ingestor(db, Archive(tmp_path / "gateway-a"))
    second_archive = Archive(tmp_path / "gateway-b")
    second = new_ingestor(db, second_archive)
    written, first_done = threading.Event(), threading.Event()
    real_write = second_archive.write

    def write_then_wait(*args: Any, **kwargs: Any) -> StoredFile:
        stored = real_write(*args, **kwargs)
        written.set()
        assert first_done.wait(30)  # the other gateway records its copy meanwhile
        return stored

    monkeypatch.setattr(second_archive, "write", write_then_wait)
    with ThreadPoolExecutor(1) as pool:
        late = pool.submit(second.store, data, header, calling_aet="CDC_B")
        assert written.wait(30)
        assert first.store(data, header, calling_aet="CDC_A").outcome == IngestOutcome.STORED
        first_done.set()
        result = late.result(30)
    assert result.outcome == IngestOutcome.IDENTICAL
    assert _counts(db, header.sop_uid) == (1, 1)  # one row; the study counted it once
    assert not any(p.suffix == ".dcm" for p in second_archive.root.rglob("*"))  # removed


def test_concurrent_copies_of_one_instance_are_recorded_once(
    db: Database, tmp_path: Path, new_ingestor: Callable[..., Ingestor]
) -> None:
    data = encode(make_dataset(study_uid=generate_uid()))
    header, _ = parse_instance(data)
    ingestors = [new_ingestor(db, Archive(tmp_path / f"gateway-{i}")) for i in range(4)]
    start = threading.Barrier(len(ingestors))

    def store(ingestor: Ingestor) -> IngestOutcome:
        start.wait(30)
        return ingestor.store(data, header, calling_aet="CDC").outcome

    with ThreadPoolExecutor(len(ingestors)) as pool:
        outcomes = sorted(pool.map(store, ingestors))
    assert outcomes.count(IngestOutcome.STORED) == 1
    assert set(outcomes) <= {IngestOutcome.STORED, IngestOutcome.IDENTICAL}
    assert _counts(db, header.sop_uid) == (1, 1)


def test_a_new_instance_needs_no_read_before_its_write_transaction(
    db: Database, tmp_path: Path, new_ingestor: Callable[..., Ingestor],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    ingestor = new_ingestor(db, Archive(tmp_path / "archive"))
    data = encode(make_dataset(study_uid=generate_uid()))
    header, _ = parse_instance(data)

    def no_read() -> None:
        raise AssertionError("a separate read session was opened")

    monkeypatch.setattr(db, "read", no_read)
    assert ingestor.store(data, header, calling_aet="CDC").outcome == IngestOutcome.STORED
    monkeypatch.undo()
    assert _counts(db, header.sop_uid) == (1, 1)
