"""Group commit: concurrent instances share one sync and one transaction, each keeps its outcome.

Crash safety (nothing acknowledged is lost on SIGKILL) is proved end to end by
``tests/dicom_gateway/test_crash.py``, which runs the gateway with group commit (the default).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from pydicom.uid import generate_uid
from sqlalchemy import select
from sqlalchemy.orm import Session

import worklist.archive as archive_module
from tests.builders.dicom import encode, make_dataset
from worklist.archive import Archive, sha256_hex
from worklist.audit import EventCategory, record_event
from worklist.db.engine import Database
from worklist.db.schema import Event, Instance, Study
from worklist.domain import StoreError
from worklist.ingest.group_commit import GroupCommitter
from worklist.ingest.header import parse_instance
from worklist.ingest.recorder import Ingestor, IngestOutcome


def _encode(study_uid: str, seed: int) -> bytes:
    return encode(make_dataset(study_uid=study_uid, seed=seed, instance_number=seed + 1))


def _event(action: str, fail: bool = False) -> Callable[[Session], str]:
    def record(session: Session) -> str:
        record_event(session, EventCategory.SYSTEM, action)
        session.flush()
        if fail:
            raise ValueError(f"{action} is bad")
        return action

    return record


def _actions(db: Database) -> list[str]:
    with db.read() as s:
        return sorted(e.action for e in s.scalars(select(Event)).all())


def test_concurrent_stores_are_all_durable_and_recorded(db: Database, tmp_path: Path) -> None:
    archive = Archive(tmp_path / "archive")
    ingestor = Ingestor(db, archive, group_commit=True)
    study_uid = generate_uid()
    blobs = [_encode(study_uid, i) for i in range(24)]

    def store(data: bytes) -> IngestOutcome:
        header, _ = parse_instance(data)
        return ingestor.store(data, header, calling_aet="CDC").outcome

    try:
        with ThreadPoolExecutor(8) as pool:
            outcomes = list(pool.map(store, blobs))
        assert outcomes == [IngestOutcome.STORED] * len(blobs)
        assert ingestor.group is not None and 1 <= ingestor.group.batches <= len(blobs)
    finally:
        ingestor.close()
    with db.read() as s:
        rows = s.scalars(select(Instance)).all()
        assert sorted(r.sha256 for r in rows) == sorted(sha256_hex(b) for b in blobs)
        assert all(
            archive.read(r.path) == b for r in rows for b in blobs if r.sha256 == sha256_hex(b)
        )
        assert s.scalars(select(Study)).one().instance_count == len(blobs)
    assert not list(archive.root.rglob("*.tmp"))


def test_waiters_queued_during_a_flush_share_the_next_batch(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = Archive(tmp_path / "archive")
    committer = GroupCommitter(db, archive)
    first_sync_entered, release_first = threading.Event(), threading.Event()
    synced: list[list[str]] = []
    real = archive.make_durable

    def make_durable(paths: list[str]) -> None:
        synced.append(list(paths))
        if len(synced) == 1:
            first_sync_entered.set()
            assert release_first.wait(10)
        real(paths)

    monkeypatch.setattr(archive, "make_durable", make_durable)
    with ThreadPoolExecutor(6) as pool:
        first = pool.submit(committer.submit, "a", _event("a"))
        assert first_sync_entered.wait(10)
        rest = [pool.submit(committer.submit, p, _event(p)) for p in "bcdef"]
        while len(committer._queue) < 5:  # all five wait behind the first flush
            threading.Event().wait(0.01)
        assert not any(f.done() for f in [first, *rest])  # nobody is answered before the sync
        release_first.set()
        assert [f.result(10) for f in [first, *rest]] == list("abcdef")
    committer.close()
    assert synced == [["a"], list("bcdef")]
    assert committer.batches == 2
    assert _actions(db) == list("abcdef")


def test_a_failing_instance_does_not_fail_the_others(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = Archive(tmp_path / "archive")
    committer = GroupCommitter(db, archive)
    in_first, release_first = threading.Event(), threading.Event()
    batches: list[list[str]] = []
    real = archive.make_durable

    def make_durable(paths: list[str]) -> None:
        batches.append(list(paths))
        if len(batches) == 1:
            in_first.set()
            assert release_first.wait(10)
        real(paths)

    monkeypatch.setattr(archive, "make_durable", make_durable)
    with ThreadPoolExecutor(4) as pool:
        warmup = pool.submit(committer.submit, "warmup", _event("warmup"))
        assert in_first.wait(10)
        futures = {
            name: pool.submit(committer.submit, name, _event(name, fail=name == "bad"))
            for name in ("good1", "bad", "good2")
        }
        while len(committer._queue) < 3:
            threading.Event().wait(0.01)
        release_first.set()
        assert warmup.result(10) == "warmup"
        assert futures["good1"].result(10) == "good1"
        assert futures["good2"].result(10) == "good2"
        with pytest.raises(ValueError, match="bad is bad"):
            futures["bad"].result(10)
    committer.close()
    assert batches == [["warmup"], ["good1", "bad", "good2"]]  # one shared transaction
    assert _actions(db) == ["good1", "good2", "warmup"]  # the bad one's row was rolled back


def test_sync_failure_fails_the_whole_batch_and_records_nothing(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = Archive(tmp_path / "archive")
    committer = GroupCommitter(db, archive)

    def broken(paths: list[str]) -> None:
        raise StoreError("cannot sync the archive: EIO")

    monkeypatch.setattr(archive, "make_durable", broken)
    with pytest.raises(StoreError, match="EIO"):
        committer.submit("x", _event("x"))
    committer.close()
    assert _actions(db) == []


def test_make_durable_without_syncfs_fsyncs_files_and_directories(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = Archive(tmp_path / "archive")
    first = archive.relative_path("1.2", "1.2.3", "1.2.3.4")
    second = archive.relative_path("1.2", "1.2.5", "1.2.5.6")
    for relative in (first, second):
        archive.write(relative, b"DICM" * 10, sync=False)
    fsynced: list[int] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        fsynced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(archive_module, "_syncfs", None)
    monkeypatch.setattr(os, "fsync", spy)
    archive.make_durable([first, second])
    # two files, their two series directories, the study directory and the root
    assert len(fsynced) == 6
    assert archive.read(first) == b"DICM" * 10


@pytest.mark.skipif(archive_module._syncfs is None, reason="syncfs(2) is Linux-only")
def test_make_durable_uses_syncfs_on_linux(tmp_path: Path) -> None:
    archive = Archive(tmp_path / "archive")
    relative = archive.relative_path("1.2", "1.2.3", "1.2.3.4")
    archive.write(relative, b"x" * 100, sync=False)
    archive.make_durable([relative])  # returns 0: no write-back error
    assert archive.read(relative) == b"x" * 100


def test_a_batch_records_in_key_order(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Row locks are taken in one global order (study/series), whatever the arrival order."""
    archive = Archive(tmp_path / "archive")
    committer = GroupCommitter(db, archive)
    in_first, release_first = threading.Event(), threading.Event()
    real = archive.make_durable
    order: list[str] = []

    def make_durable(paths: list[str]) -> None:
        if not in_first.is_set():
            in_first.set()
            assert release_first.wait(10)
        real(paths)

    def recorder(name: str) -> Callable[[Session], str]:
        def record(session: Session) -> str:
            order.append(name)
            return name

        return record

    monkeypatch.setattr(archive, "make_durable", make_durable)
    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(committer.submit, "0", recorder("first"), key="0")
        assert in_first.wait(10)
        later = [pool.submit(committer.submit, k, recorder(f"k{k}"), key=f"2.{k}/1") for k in "312"]
        while len(committer._queue) < 3:
            threading.Event().wait(0.01)
        release_first.set()
        assert first.result(10) == "first"
        assert sorted(f.result(10) for f in later) == ["k1", "k2", "k3"]
    committer.close()
    assert order == ["first", "k1", "k2", "k3"]
