"""Rows in the store: studies for the worker and the web app, users, instances.

The studies' files are written to the archive as well, images of
:mod:`tests.builders.images`: a known mean intensity for :func:`add_study` (the worker tests),
a disc for :func:`seed_study` (the web tests).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import ComputedRadiographyImageStorage, generate_uid

from tests.builders.dicom import encode
from tests.builders.images import write_bright_dicom, write_disc_dicom
from worklist.accounts.tokens import issue_token
from worklist.accounts.users import add_user
from worklist.db.engine import Database
from worklist.db.schema import Feedback, Finding, Instance, Series, Study
from worklist.db.types import utcnow
from worklist.domain import JobKind, Role, StudyState
from worklist.ingest.header import parse_instance
from worklist.ingest.recorder import Ingestor, IngestResult
from worklist.jobs import enqueue

PASSWORD = "correct-horse"
"""The password of every user :func:`add_users` adds."""

ROLES = ("radiographer", "radiologist", "admin", "ml_engineer")
"""The roles, in the order :func:`add_users` adds their users."""


def store_instance(
    ingestor: Ingestor,
    ds: Dataset,
    *,
    association_id: str | None = None,
    calling_aet: str = "",
    source: str = "",
) -> tuple[IngestResult, bytes]:
    """Encode ``ds`` and store it through ``ingestor``, as the gateway does on a C-STORE.

    Parameters
    ----------
    ingestor : worklist.ingest.recorder.Ingestor
        The door into the archive and the store.
    ds : pydicom.dataset.Dataset
        The instance, with ``file_meta``.
    association_id, calling_aet, source : str, optional
        Passed on to :meth:`~worklist.ingest.recorder.Ingestor.store`.

    Returns
    -------
    tuple of (IngestResult, bytes)
        The outcome and the bytes stored.
    """
    data = encode(ds)
    header, _ = parse_instance(data)
    result = ingestor.store(
        data, header, association_id=association_id, calling_aet=calling_aet, source=source
    )
    return result, data


def add_study(
    db: Database,
    archive: Path,
    *,
    brights: tuple[float, ...] = (0.9,),
    referral: str = "",
    site: str = "CDC_A",
    modality: str = "CR",
    corrupt: bool = False,
    enqueue_job: bool = True,
    max_attempts: int = 3,
) -> tuple[int, str]:
    """Insert a complete study (rows and files, one series) and enqueue its triage job.

    Parameters
    ----------
    db : worklist.db.engine.Database
        The store.
    archive : pathlib.Path
        The archive folder its files go to (:func:`write_bright_dicom`).
    brights : tuple of float, optional
        One image per value, whose mean intensity it is.
    referral, site, modality : str, optional
        The referral priority, sending site and modality.
    corrupt : bool, optional
        Write files that are not DICOM.
    enqueue_job : bool, optional
        Enqueue its triage job.
    max_attempts : int, optional
        The job's attempts.

    Returns
    -------
    tuple of (int, str)
        The study's row id and its Study Instance UID.
    """
    study_uid, series_uid = generate_uid(), generate_uid()
    now = utcnow()
    with db.write() as s:
        study = Study(
            study_instance_uid=study_uid,
            site=site,
            referral_priority=referral,
            modalities=modality,
            state=StudyState.QUEUED,
            first_received_at=now,
            last_received_at=now,
            completed_at=now,
            instance_count=len(brights),
        )
        s.add(study)
        s.flush()
        series = Series(
            study_id=study.id, series_instance_uid=series_uid, modality=modality, body_part="CHEST"
        )
        s.add(series)
        s.flush()
        for i, bright in enumerate(brights, start=1):
            sop_uid = generate_uid()
            rel = f"{study_uid}/{series_uid}/{sop_uid}.dcm"
            if corrupt:
                (archive / rel).parent.mkdir(parents=True, exist_ok=True)
                (archive / rel).write_bytes(b"not dicom at all")
            else:
                write_bright_dicom(
                    archive / rel,
                    study_uid=study_uid,
                    series_uid=series_uid,
                    sop_uid=sop_uid,
                    bright=bright,
                    modality=modality,
                    referral=referral,
                )
            s.add(
                Instance(
                    study_id=study.id,
                    series_id=series.id,
                    sop_instance_uid=sop_uid,
                    sop_class_uid=ComputedRadiographyImageStorage,
                    instance_number=str(i),
                    view_position="PA",
                    path=rel,
                    size_bytes=1,
                    sha256="0" * 64,
                    calling_aet=site,
                )
            )
        if enqueue_job:
            enqueue(s, JobKind.TRIAGE, study_id=study.id, max_attempts=max_attempts)
        return study.id, study_uid


def seed_study(
    db: Database,
    archive: Path,
    *,
    priority: str = "P3",
    clinical_priority: str = "P3",
    due_in_min: float | None = 60.0,
    received_min_ago: float = 10.0,
    crossed: bool | None = None,
    heatmap: bool = False,
    site: str = "CDC1",
    modality: str = "CR",
    name: str = "TEST^PATIENT",
    with_image: bool = True,
) -> str:
    """Add a triaged study (with a DICOM file, optionally a finding and heatmap); return its UID.

    Parameters
    ----------
    db : worklist.db.engine.Database
        The store.
    archive : pathlib.Path
        The archive folder its image goes to (:func:`write_disc_dicom`).
    priority, clinical_priority : str, optional
        Its priority and clinical priority.
    due_in_min, received_min_ago : float, optional
        When it is due (``None``: no due time) and when it arrived, in minutes from now.
    crossed : bool or None, optional
        ``None`` adds no finding; ``True`` or ``False`` one pneumothorax finding, crossed or not.
    heatmap : bool, optional
        Give the finding a heatmap.
    site, modality, name : str, optional
        The sending site, modality and patient name.
    with_image : bool, optional
        Add one instance and its file.

    Returns
    -------
    str
        The Study Instance UID.
    """
    now = datetime.now(UTC)
    uid = generate_uid()
    sop = generate_uid()
    rel = f"{uid}/{sop}.dcm"
    series_uid = str(generate_uid())
    if with_image:
        write_disc_dicom(archive / rel, study_uid=uid, sop_uid=sop)
        # The row names the file's series (WADO-RS finds the file by study, series, instance).
        series_uid = str(dcmread(archive / rel, stop_before_pixels=True).SeriesInstanceUID)
    with db.write() as session:
        study = Study(
            study_instance_uid=uid,
            patient_id="PID" + uid[-6:],
            patient_name=name,
            accession_number="ACC" + uid[-5:],
            study_description="Chest PA",
            modalities=modality,
            site=site,
            clinical_priority=clinical_priority,
            priority=priority,
            priority_explanation=[{"text": f"priority {priority} by test"}],
            state="triaged",
            ai_status="done" if crossed is not None else "not_available",
            ai_reason="" if crossed is not None else "no model applies",
            instance_count=1 if with_image else 0,
            first_received_at=now - timedelta(minutes=received_min_ago),
            last_received_at=now - timedelta(minutes=received_min_ago),
            due_at=now + timedelta(minutes=due_in_min) if due_in_min is not None else None,
        )
        session.add(study)
        session.flush()
        if with_image:
            series = Series(study_id=study.id, series_instance_uid=series_uid, modality=modality)
            session.add(series)
            session.flush()
            session.add(
                Instance(
                    study_id=study.id,
                    series_id=series.id,
                    sop_instance_uid=sop,
                    sop_class_uid=ComputedRadiographyImageStorage,
                    path=rel,
                    size_bytes=(archive / rel).stat().st_size,
                    sha256="0" * 64,
                )
            )
        if crossed is not None:
            heat_rel = ""
            if heatmap:
                heat_rel = f"heatmaps/{uid}.npy"
                (archive / "heatmaps").mkdir(parents=True, exist_ok=True)
                yy, xx = np.mgrid[0:16, 0:16]
                heat = np.exp(-((yy - 8.0) ** 2 + (xx - 8.0) ** 2) / 20.0).astype(np.float32)
                np.save(archive / heat_rel, heat)
            session.add(
                Finding(
                    study_id=study.id,
                    sop_instance_uid=sop,
                    model_name="demo-cxr",
                    model_version="1.0.0",
                    model_sha256="ab" * 32,
                    label="pneumothorax",
                    concept_meaning="Pneumothorax",
                    probability=0.93 if crossed else 0.12,
                    threshold=0.5,
                    crossed=crossed,
                    category="P1",
                    heatmap_path=heat_rel,
                )
            )
    return uid


def study(db: Database, study_id: int) -> Study:
    """Return the study row of this id, detached from its session.

    Parameters
    ----------
    db : worklist.db.engine.Database
        The store.
    study_id : int
        The row's id, as :func:`add_study` returns it.

    Returns
    -------
    worklist.db.schema.Study
        The row.
    """
    with db.read() as s:
        row = s.get(Study, study_id)
        assert row is not None
        s.expunge(row)
        return row


def add_users(db: Database, site: str = "CDC1") -> dict[str, str]:
    """Add one user per role (named after it) and return an API token per role.

    Parameters
    ----------
    db : worklist.db.engine.Database
        The store.
    site : str, optional
        The radiographer's site.

    Returns
    -------
    dict of str to str
        The token of each role's user.
    """
    tokens: dict[str, str] = {}
    with db.write() as session:
        for role in ROLES:
            add_user(
                session, role, PASSWORD, Role(role), site=site if role == "radiographer" else ""
            )
            tokens[role] = issue_token(session, role).secret
    return tokens


def add_scored_findings(
    db: Database,
    scores: Sequence[float],
    *,
    at: datetime,
    model: str = "demo-cxr@1.0.0",
    label: str = "pneumothorax",
    site: str = "CDC1",
    threshold: float = 0.5,
) -> list[tuple[int, int]]:
    """Add one triaged study per score, each with one finding of ``model`` made at ``at``.

    Parameters
    ----------
    db : worklist.db.engine.Database
        The store.
    scores : sequence of float
        The findings' probabilities (crossed where at least ``threshold``).
    at : datetime.datetime
        When the findings (and studies) were made.
    model, label, site : str, optional
        ``NAME@VERSION`` of the model, the finding's label and the studies' site.
    threshold : float, optional
        The findings' threshold.

    Returns
    -------
    list of tuple of (int, int)
        ``(study id, finding id)`` per score.
    """
    name, _, version = model.partition("@")
    made: list[tuple[int, int]] = []
    with db.write() as session:
        for score in scores:
            row = Study(
                study_instance_uid=generate_uid(),
                site=site,
                state="triaged",
                first_received_at=at,
                last_received_at=at,
            )
            session.add(row)
            session.flush()
            finding = Finding(
                study_id=row.id,
                sop_instance_uid=generate_uid(),
                model_name=name,
                model_version=version,
                model_sha256="ab" * 32,
                label=label,
                probability=float(score),
                threshold=threshold,
                crossed=float(score) >= threshold,
                created_at=at,
            )
            session.add(finding)
            session.flush()
            made.append((row.id, finding.id))
    return made


def add_feedback(
    db: Database, study_id: int, kind: str, *, finding_id: int | None = None, at: datetime
) -> None:
    """Add a radiologist's feedback row (``agree``, ``disagree``, ``missed``) made at ``at``."""
    label = "pneumothorax" if kind == "missed" else ""
    with db.write() as session:
        session.add(
            Feedback(
                study_id=study_id,
                finding_id=finding_id,
                username="radiologist",
                kind=kind,
                label=label,
                created_at=at,
            )
        )
