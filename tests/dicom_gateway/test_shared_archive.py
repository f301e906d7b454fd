"""A gateway starting on an archive that other gateways share leaves their writes alone."""

from __future__ import annotations

import os
import time
from pathlib import Path

from tests.builders.gateway import GatewayFactory
from worklist.archive import STALE_TMP_S


def test_start_keeps_another_gateways_write_in_progress(
    tmp_path: Path, gateway_factory: GatewayFactory
) -> None:
    archive = tmp_path / "shared-archive"
    folder = archive / "1.2.3" / "1.2.3.4"
    folder.mkdir(parents=True)
    writing = folder / ".1.2.3.4.5.dcm.999.tmp"  # the other gateway renames it in a moment
    writing.write_bytes(b"being written")
    crashed = folder / ".1.2.3.4.6.dcm.998.tmp"  # left by a gateway killed long ago
    crashed.write_bytes(b"half")
    old = time.time() - STALE_TMP_S - 60
    os.utime(crashed, (old, old))
    gateway_factory(worklist={"archive_dir": archive})
    assert writing.exists()
    assert not crashed.exists()
