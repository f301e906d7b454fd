"""Received datasets: files of associations that ended mid-transfer are swept; those being
written stay; files are received where the archive can rename them into place."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import pytest
from pynetdicom import _config

from dicom_gateway.receiving import sweep_stale, use_receive_dir
from worklist.archive import Archive


def test_sweep_removes_only_files_untouched_for_longer_than_an_association_may_idle(
    tmp_path: Path,
) -> None:
    stale, fresh, other = tmp_path / "tmpa.dcm", tmp_path / "tmpb.dcm", tmp_path / "keep.txt"
    for path in (stale, fresh, other):
        path.write_bytes(b"x")
    old = time.time() - 120
    os.utime(stale, (old, old))
    os.utime(other, (old, old))
    assert sweep_stale(tmp_path, older_than_s=90) == 1
    assert not stale.exists() and fresh.exists() and other.exists()


def test_files_are_received_where_the_archive_can_adopt_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a relative data directory (the default ``var``), the temporary files pynetdicom
    creates are still inside the archive's resolved root, so they are renamed, not copied."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tempfile, "tempdir", tempfile.tempdir)  # restored afterwards
    monkeypatch.setattr(_config, "STORE_RECV_CHUNKED_DATASET", False)
    archive = Archive(Path("var/archive"))
    directory = use_receive_dir(Path("var/archive"))
    assert _config.STORE_RECV_CHUNKED_DATASET
    with tempfile.NamedTemporaryFile(suffix=".dcm") as received:  # as pynetdicom makes them
        assert Path(received.name).is_relative_to(archive.root)
        assert Path(received.name).parent == directory
