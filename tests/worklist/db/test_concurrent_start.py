"""Processes of a region started at once on an empty PostgreSQL store all come up.

Every ``triage gateway``, ``worker`` and ``web`` process migrates the store when it opens it; a
region's process manager starts them together at boot. Without a lock across processes, two
Alembic upgrades of an empty database race (both create the same tables) and all but one fail.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from sqlalchemy import inspect

from tests.builders import REPO
from tests.builders.peers import fresh_postgres_db
from worklist.db.engine import Database

pytestmark = pytest.mark.postgres

OPEN = "import sys; from worklist.db.engine import Database; Database(sys.argv[1]).dispose()"


def test_processes_opening_an_empty_store_at_once_all_succeed(postgres_url: str) -> None:
    url = fresh_postgres_db(postgres_url)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN, url],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    failed = [out[-2000:] for p, out in zip(procs, outputs, strict=True) if p.returncode != 0]
    assert not failed, failed
    db = Database(url, create=False)
    try:
        assert inspect(db.engine).has_table("studies")
    finally:
        db.dispose()
