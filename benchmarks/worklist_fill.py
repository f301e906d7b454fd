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
    fid = 0

    def flush() -> None:
        with db.write() as session:
            if study_rows:
                session.execute(insert(Study), study_rows)
            if finding_rows:
                session.execute(insert(Finding), finding_rows)
        study_rows.clear()
        finding_rows.clear()

    for i in range(1, n + 1):
        priority = rng.choices(["P1", "P2", "P3"], weights=[1, 2, 7])[0]
        status = rng.choices(["unread", "claimed", "reported"], weights=[16, 1, 3])[0]
        received = now - timedelta(minutes=rng.uniform(0, 14 * 24 * 60))
        uid = f"2.25.{seed}.{i}"
        if i <= 1000:
            uids.append(uid)
        study_rows.append(
            {
                "id": i,
                "study_instance_uid": uid,
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
            }
        )
        for label in rng.sample(["pneumothorax", "effusion", "nodule"], k=rng.randint(1, 2)):
            fid += 1
            p = rng.random()
            finding_rows.append(
                {
                    "id": fid,
                    "study_id": i,
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
        if len(study_rows) >= CHUNK:
            flush()
    flush()
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
    return uids
