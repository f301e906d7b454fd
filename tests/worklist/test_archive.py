from __future__ import annotations

import hashlib
import os
import stat
import threading
import time
from pathlib import Path

import pytest

from worklist.archive import (
    STALE_TMP_S,
    Archive,
    ArchiveFullError,
    InvalidUIDError,
    validate_uid,
)

STUDY, SERIES, SOP = "1.2.3", "1.2.3.4", "1.2.3.4.5"


@pytest.mark.parametrize(
    "uid",
    [
        "../../etc",
        "1.2/../../x",
        "",
        "1..2",
        ".1.2",
        "1.2.",
        "1.2.a",
        "/etc/passwd",
        "1" * 65,
        None,
        5,
    ],
)
def test_hostile_or_invalid_uids_are_refused(uid: object) -> None:
    with pytest.raises(InvalidUIDError):
        validate_uid(uid)


def test_valid_uid_padding_is_stripped() -> None:
    assert validate_uid("1.2.840.10008\x00") == "1.2.840.10008"
    assert validate_uid("1" * 64) == "1" * 64


def test_hostile_uid_never_builds_a_path(tmp_path: Path) -> None:
    archive = Archive(tmp_path / "a")
    with pytest.raises(InvalidUIDError):
        archive.relative_path("../../etc", SERIES, SOP)
    with pytest.raises(InvalidUIDError):
        archive.relative_path(STUDY, SERIES, "..")
    with pytest.raises(InvalidUIDError):
        archive.absolute("../outside.dcm")
    assert not (tmp_path / "etc").exists()


def test_write_is_complete_and_leaves_no_temporary(tmp_path: Path) -> None:
    archive = Archive(tmp_path / "a")
    rel = archive.relative_path(STUDY, SERIES, SOP)
    assert rel == f"{STUDY}/{SERIES}/{SOP}.dcm"
    data = b"DICM" * 1000
    stored = archive.write(rel, data)
    assert stored.size_bytes == len(data)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert archive.read(rel) == data
    assert list((tmp_path / "a").rglob("*.tmp")) == []
    # Overwrite atomically.
    archive.write(rel, b"new")
    assert archive.read(rel) == b"new"


def test_quota_and_min_free(tmp_path: Path) -> None:
    archive = Archive(tmp_path / "a", quota_bytes=1000)
    archive.check_space(400, used_bytes=500)
    with pytest.raises(ArchiveFullError, match="quota"):
        archive.check_space(600, used_bytes=500)
    huge = Archive(tmp_path / "b", min_free_bytes=1 << 62)
    with pytest.raises(ArchiveFullError, match="disk nearly full"):
        huge.check_space(1)


def test_sweep_removes_interrupted_writes(tmp_path: Path) -> None:
    archive = Archive(tmp_path / "a")
    leftover = tmp_path / "a" / STUDY / f".{SOP}.dcm.123.tmp"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"half")
    assert archive.sweep_temporary() == 1
    assert not leftover.exists()


def test_lock_serialises_the_same_uid(tmp_path: Path) -> None:
    archive = Archive(tmp_path / "a")
    inside = 0
    peak = 0
    guard = threading.Lock()

    def work() -> None:
        nonlocal inside, peak
        with archive.lock(SOP):
            with guard:
                inside += 1
                peak = max(peak, inside)
            time.sleep(0.02)
            with guard:
                inside -= 1

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak == 1


def test_sweep_keeps_a_write_in_progress_of_another_process(tmp_path: Path) -> None:
    archive = Archive(tmp_path / "a")
    folder = tmp_path / "a" / STUDY
    folder.mkdir(parents=True)
    writing = folder / f".{SOP}.dcm.123.tmp"  # another gateway on the shared archive, now
    writing.write_bytes(b"being written")
    crashed = folder / f".{SOP}.dcm.456.tmp"
    crashed.write_bytes(b"half")
    old = time.time() - STALE_TMP_S - 60
    os.utime(crashed, (old, old))
    assert archive.sweep_temporary(older_than_s=STALE_TMP_S) == 1
    assert writing.exists() and not crashed.exists()


def test_hash_while_writing_is_the_sha256_of_the_file_on_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checksum is taken chunk by chunk as the bytes are written, short writes included."""
    archive = Archive(tmp_path / "a")
    rel = archive.relative_path(STUDY, SERIES, SOP)
    data = bytes(range(256)) * 12_289  # 3 MiB and a bit: several chunks
    real_write = os.write
    calls: list[int] = []

    def short_write(fd: int, chunk: bytes | memoryview) -> int:
        calls.append(len(chunk))
        return real_write(fd, chunk[:700_001])  # the kernel may take less than asked

    real_sha256 = hashlib.sha256
    hashed: list[int] = []

    class Spy:
        def __init__(self, data: bytes = b"") -> None:
            self.inner = real_sha256(data)
            hashed.append(len(data))

        def update(self, chunk: bytes) -> None:
            hashed.append(len(chunk))
            self.inner.update(chunk)

        def hexdigest(self) -> str:
            return self.inner.hexdigest()

    monkeypatch.setattr(os, "write", short_write)
    monkeypatch.setattr(hashlib, "sha256", Spy)
    stored = archive.write(rel, data, sync=False)
    monkeypatch.undo()
    on_disk = (archive.root / rel).read_bytes()
    assert on_disk == data
    assert stored.sha256 == hashlib.sha256(on_disk).hexdigest()
    assert len(calls) > 4  # written in parts...
    assert [n for n in hashed if n] == [min(n, 700_001) for n in calls]  # ...each hashed once


def test_adopt_moves_a_received_file_into_place_durably(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = Archive(tmp_path / "a")
    received = archive.root / ".receiving" / "tmpabc.dcm"
    received.parent.mkdir()
    received.write_bytes(b"DICM" * 100)
    received.chmod(0o600)  # as NamedTemporaryFile creates it
    fsynced: list[int] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        fsynced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    rel = archive.relative_path(STUDY, SERIES, SOP)
    digest = hashlib.sha256(b"DICM" * 100).hexdigest()
    stored = archive.adopt(rel, received, digest, 400)
    assert not received.exists()
    assert archive.read(rel) == b"DICM" * 100
    assert (stored.path, stored.size_bytes, stored.sha256) == (rel, 400, digest)
    assert stat.S_IMODE((archive.root / rel).stat().st_mode) == 0o644
    # the file, its directory and the two new parents' entries
    assert len(fsynced) == 4
