"""Fill a store with many triaged studies for the worklist load benchmark (bulk inserts)."""

from __future__ import annotations

import logging
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, text

from worklist.accounts.users import add_user
from worklist.db.engine import Database
from worklist.db.schema import Finding, Study

__all__ = ["PASSWORD", "fill"]

logger = logging.getLogger(__name__)

PASSWORD = "load-test-password"
CHUNK = 5000
TARGET_MIN = {"P1": 60, "P2": 24 * 60, "P3": 7 * 24 * 60}


def fill(db: Database, n: int, seed: int = 1) -> list[str]:
    """Insert ``n`` triaged studies with findings in bulk; return the UIDs of the 1000 first."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    uids: list[str] = []
    study_rows: list[dict[str, Any]] = []
    finding_rows: list[dict[str, Any]] = []
    fid = 0  # finding ids run on across flushes
    for i in range(1, n + 1):
        study = _study_row(rng, now, seed, i)
        if i <= 1000:
            uids.append(study["study_instance_uid"])
        study_rows.append(study)
        findings = _finding_rows(rng, study, first_id=fid + 1)
        fid += len(findings)
        finding_rows.extend(findings)
        if len(study_rows) >= CHUNK:
            _flush(db, study_rows, finding_rows)
    _flush(db, study_rows, finding_rows)
    _finish(db)
    return uids


def _study_row(rng: random.Random, now: datetime, seed: int, i: int) -> dict[str, Any]:
    """Draw the row of the ``i``-th study (same draws, in the same order, for a seed)."""
    priority = rng.choices(["P1", "P2", "P3"], weights=[1, 2, 7])[0]
    status = rng.choices(["unread", "claimed", "reported"], weights=[16, 1, 3])[0]
    received = now - timedelta(minutes=rng.uniform(0, 14 * 24 * 60))
    return {
        "id": i,
        "study_instance_uid": f"2.25.{seed}.{i}",
        "patient_id": f"P{i:07d}",
        "patient_name": f"LOAD^PATIENT{i}",
        "accession_number": f"A{i:09d}",
        "study_description": "Chest PA",
        "modalities": rng.choice(["CR", "DX"]),
        "site": rng.choice(["CDC_NORTH", "CDC_SOUTH", "HUB"]),
        "clinical_priority": "P3",
        "priority": priority,
        "priority_explanation": [{"text": f"{priority} by load fill"}],
        "state": "triaged",
        "ai_status": "done",
        "read_status": status,
        "claimed_by": "someone" if status == "claimed" else None,
        "instance_count": 1,
        "first_received_at": received,
        "last_received_at": received,
        "completed_at": received,
        "triaged_at": received,
        "due_at": received + timedelta(minutes=TARGET_MIN[priority]),
        "order_at": received + timedelta(minutes=TARGET_MIN[priority]),
    }


def _finding_rows(rng: random.Random, study: dict[str, Any], first_id: int) -> list[dict[str, Any]]:
    """Draw one or two findings of ``study``, numbered from ``first_id``."""
    uid, received = study["study_instance_uid"], study["first_received_at"]
    rows: list[dict[str, Any]] = []
    for label in rng.sample(["pneumothorax", "effusion", "nodule"], k=rng.randint(1, 2)):
        p = rng.random()
        rows.append(
            {
                "id": first_id + len(rows),
                "study_id": study["id"],
                "sop_instance_uid": f"{uid}.1",
                "model_name": "demo-cxr",
                "model_version": "1.0.0",
                "model_sha256": "ab" * 32,
                "label": label,
                "probability": p,
                "threshold": 0.5,
                "crossed": p >= 0.5,
                "category": "P1",
                "shadow": False,
                "heatmap_path": "",
                "created_at": received,
            }
        )
    return rows


def _flush(
    db: Database, study_rows: list[dict[str, Any]], finding_rows: list[dict[str, Any]]
) -> None:
    """Insert the pending rows in one transaction and empty both lists."""
    with db.write() as session:
        if study_rows:
            session.execute(insert(Study), study_rows)
        if finding_rows:
            session.execute(insert(Finding), finding_rows)
    study_rows.clear()
    finding_rows.clear()


def _finish(db: Database) -> None:
    """Move PostgreSQL's sequences past the explicit ids, add the load user, refresh stats."""
    if not db.is_sqlite:  # explicit ids: move the sequences past them
        with db.write() as session:
            for table in ("studies", "findings"):
                session.execute(
                    text(f"SELECT setval('{table}_id_seq', (SELECT max(id) FROM {table}))")
                )
    with db.write() as session:
        add_user(session, "loadrad", PASSWORD, "radiologist")
        if not db.is_sqlite:
            session.execute(text("ANALYZE"))
    if db.is_sqlite:
        with db.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
