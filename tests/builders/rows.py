"""What a worklist row shows, in the store: findings and DICOM dates on studies already seeded.

Used with :func:`tests.builders.store.seed_study` (which adds at most one finding and no date).
"""

from __future__ import annotations

from sqlalchemy import select

from worklist.db.engine import Database
from worklist.db.schema import Finding, Study


def set_study_datetime(db: Database, study_instance_uid: str, da: str, tm: str) -> None:
    """Give a study its DICOM Study Date (DA) and Study Time (TM), stored as received.

    Parameters
    ----------
    db : worklist.db.engine.Database
        The store.
    study_instance_uid : str
        The study.
    da, tm : str
        The raw DA and TM values (blank, partial or odd ones too).
    """
    with db.write() as session:
        row = session.scalars(
            select(Study).where(Study.study_instance_uid == study_instance_uid)
        ).one()
        row.study_date, row.study_time = da, tm


def add_finding(
    db: Database,
    study_instance_uid: str,
    label: str,
    probability: float,
    *,
    threshold: float = 0.5,
    model_name: str = "demo-cxr",
    model_version: str = "1.0.0",
) -> None:
    """Add one finding to a study (crossed when ``probability >= threshold``).

    Parameters
    ----------
    db : worklist.db.engine.Database
        The store.
    study_instance_uid : str
        The study.
    label : str
        The finding's label.
    probability, threshold : float
        Its probability and its threshold.
    model_name, model_version : str, optional
        The model that made it.
    """
    with db.write() as session:
        row = session.scalars(
            select(Study).where(Study.study_instance_uid == study_instance_uid)
        ).one()
        session.add(
            Finding(
                study_id=row.id,
                sop_instance_uid="",
                model_name=model_name,
                model_version=model_version,
                model_sha256="cd" * 32,
                label=label,
                concept_meaning=label.capitalize(),
                probability=probability,
                threshold=threshold,
                crossed=probability >= threshold,
                category="P2",
            )
        )
