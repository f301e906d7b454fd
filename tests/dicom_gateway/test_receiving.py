"""Files of datasets whose association ended mid-transfer are swept; those being written stay."""

from __future__ import annotations

import os
import time
from pathlib import Path

from dicom_gateway.receiving import sweep_stale


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
