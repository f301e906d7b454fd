"""Studies with AI findings for the FHIR tests: rows only (series, instances, findings of a card).

The findings carry the card's identity and concepts as the triage worker writes them; a label is
crossed when its probability reaches the card's threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from pydicom.uid import ComputedRadiographyImageStorage, generate_uid
from sqlalchemy import select

from models.card import ModelCard
from worklist.db.engine import Database
from worklist.db.schema import Finding, Instance, Series, Study


def add_ai_study(
    db: Database,
    card: ModelCard,
    probabilities: Sequence[float],
    *,
    patient_id: str = "PAT-1",
    patient_name: str = "DOE^JANE",
    n_series: int = 2,
    per_series: int = 2,
    shadow: ModelCard | None = None,
    received_min_ago: float = 10.0,
) -> str:
    """Add a triaged CR study with the findings of ``card`` (and of a shadow model); return its UID.

    Parameters
    ----------
    db : worklist.db.engine.Database
        The store.
    card : models.card.ModelCard
        The model whose findings the study gets, one per label, on its first instance.
    probabilities : sequence of float
        One probability per label of ``card``, in output order.
    patient_id, patient_name : str, optional
        The patient.
    n_series, per_series : int, optional
        How many series, and instances in each.
    shadow : models.card.ModelCard or None, optional
        A model in shadow mode whose findings (probability 0.99 each) the study also gets.
    received_min_ago : float, optional
        When the study arrived, in minutes before now.

    Returns
    -------
    str
        The Study Instance UID.
    """
    uid = generate_uid()
    now = datetime.now(UTC)
    with db.write() as session:
        study = Study(
            study_instance_uid=uid,
            patient_id=patient_id,
            patient_name=patient_name,
            accession_number="ACC" + uid[-6:],
            study_date="20261201",
            study_time="101530.25",
            study_description="Chest PA",
            modalities="CR",
            site="CDC1",
            state="triaged",
            ai_status="done",
            instance_count=n_series * per_series,
            first_received_at=now - timedelta(minutes=received_min_ago),
            last_received_at=now - timedelta(minutes=received_min_ago),
        )
        session.add(study)
        session.flush()
        sops: list[str] = []
        for number in range(1, n_series + 1):
            series = Series(
                study_id=study.id,
                series_instance_uid=generate_uid(),
                modality="CR",
                body_part="CHEST",
                series_number=str(number),
                series_description=f"series {number}",
            )
            session.add(series)
            session.flush()
            for index in range(1, per_series + 1):
                sop = generate_uid()
                sops.append(sop)
                session.add(
                    Instance(
                        study_id=study.id,
                        series_id=series.id,
                        sop_instance_uid=sop,
                        sop_class_uid=ComputedRadiographyImageStorage,
                        instance_number=str(index),
                        path=f"{uid}/{sop}.dcm",
                        size_bytes=1,
                        sha256="0" * 64,
                    )
                )
        runs = [(card, list(probabilities), False)]
        if shadow is not None:
            runs.append((shadow, [0.99] * len(shadow.outputs.labels), True))
        for model, probs, in_shadow in runs:
            ident = model.identity
            for label, probability in zip(model.outputs.labels, probs, strict=True):
                session.add(
                    Finding(
                        study_id=study.id,
                        sop_instance_uid=sops[0],
                        model_name=ident.name,
                        model_version=ident.version,
                        model_uid=ident.uid,
                        model_creator=ident.creator,
                        model_sha256=ident.sha256,
                        label=label.name,
                        concept_scheme=label.concept.scheme,
                        concept_code=label.concept.code,
                        concept_meaning=label.concept.meaning,
                        probability=probability,
                        threshold=label.threshold,
                        crossed=probability >= label.threshold,
                        category=label.category,
                        shadow=in_shadow,
                    )
                )
    return uid


def findings_of(db: Database, uid: str, *, shadow: bool = False) -> list[Finding]:
    """Return a study's findings (not in shadow mode unless told), detached, by id.

    Parameters
    ----------
    db : worklist.db.engine.Database
        The store.
    uid : str
        The Study Instance UID.
    shadow : bool, optional
        Return the shadow model's findings instead.

    Returns
    -------
    list of worklist.db.schema.Finding
        The rows.
    """
    with db.read() as session:
        rows = list(
            session.scalars(
                select(Finding)
                .join(Study, Study.id == Finding.study_id)
                .where(Study.study_instance_uid == uid, Finding.shadow.is_(shadow))
                .order_by(Finding.id)
            )
        )
        session.expunge_all()
    return rows
