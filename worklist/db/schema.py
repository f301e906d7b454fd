"""SQLAlchemy 2 models of the shared store.

Every part of the pipeline meets here (see ``../shared/DESIGN.md``): the gateway writes studies,
series and instances; the assembler and the web app write jobs; workers claim jobs and write
findings and priorities; the web app writes claims, reports, feedback and the audit log.
Changing a table means a new Alembic revision in ``worklist/db/migrations/versions``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from worklist.db.types import UTCDateTime, utcnow

__all__ = [
    "ApiToken",
    "Association",
    "Base",
    "Event",
    "ExportedInstance",
    "Feedback",
    "Finding",
    "Instance",
    "Job",
    "Series",
    "Study",
    "User",
]

UID = String(64)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base with stable constraint names (needed by migrations)."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON()}  # noqa: RUF012


def _due_at_of_insert(context: Any) -> datetime | None:
    """Column default of ``order_at``: the row's ``due_at`` (a study not raised by waiting)."""
    value: datetime | None = context.get_current_parameters().get("due_at")
    return value


class Study(Base):
    """One study as the ICS worklist sees it."""

    __tablename__ = "studies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_instance_uid: Mapped[str] = mapped_column(UID, unique=True)
    patient_id: Mapped[str] = mapped_column(String(64), default="")
    patient_name: Mapped[str] = mapped_column(String(324), default="")
    patient_birth_date: Mapped[str] = mapped_column(String(8), default="")
    patient_sex: Mapped[str] = mapped_column(String(16), default="")
    accession_number: Mapped[str] = mapped_column(String(16), default="")
    study_date: Mapped[str] = mapped_column(String(8), default="")
    study_time: Mapped[str] = mapped_column(String(16), default="")
    study_description: Mapped[str] = mapped_column(String(64), default="")
    modalities: Mapped[str] = mapped_column(String(64), default="", doc="Backslash-separated.")
    site: Mapped[str] = mapped_column(
        String(64), default="", doc="Sending site: the calling AE title of the first instance."
    )
    referral_priority: Mapped[str] = mapped_column(
        String(16), default="", doc="Requested Procedure Priority / Priority as received."
    )
    clinical_priority: Mapped[str] = mapped_column(String(2), default="P3")
    clinical_priority_source: Mapped[str] = mapped_column(
        String(16), default="default", doc="referral, default or api."
    )
    priority: Mapped[str] = mapped_column(String(2), default="P3", index=True)
    priority_explanation: Mapped[list[Any]] = mapped_column(JSON, default=list)
    state: Mapped[str] = mapped_column(String(16), default="receiving", index=True)
    ai_status: Mapped[str] = mapped_column(String(16), default="pending")
    ai_reason: Mapped[str] = mapped_column(Text, default="")
    read_status: Mapped[str] = mapped_column(String(16), default="unread", index=True)
    claimed_by: Mapped[str | None] = mapped_column(String(64), default=None)
    claimed_at: Mapped[datetime | None] = mapped_column(default=None)
    reported_by: Mapped[str | None] = mapped_column(String(64), default=None)
    reported_at: Mapped[datetime | None] = mapped_column(default=None)
    instance_count: Mapped[int] = mapped_column(Integer, default=0)
    first_received_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    completed_at: Mapped[datetime | None] = mapped_column(default=None)
    triaged_at: Mapped[datetime | None] = mapped_column(default=None)
    due_at: Mapped[datetime | None] = mapped_column(
        default=None, index=True, doc="When the study breaches its priority's target."
    )
    order_at: Mapped[datetime | None] = mapped_column(
        default=_due_at_of_insert,
        doc="What orders the study within its class: due_at, or when escalation by waiting "
        "raised it into its class if that came first (triage.policy.ordering_deadline). "
        "An insert that does not set it takes due_at.",
    )
    version: Mapped[int] = mapped_column(Integer, default=0)

    series: Mapped[list[Series]] = relationship(back_populates="study")
    findings: Mapped[list[Finding]] = relationship(back_populates="study")

    __table_args__ = (Index("ix_studies_worklist", "read_status", "priority", "order_at"),)


class Series(Base):
    """One series of a study."""

    __tablename__ = "series"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    series_instance_uid: Mapped[str] = mapped_column(UID, unique=True)
    modality: Mapped[str] = mapped_column(String(16), default="")
    body_part: Mapped[str] = mapped_column(String(64), default="")
    series_number: Mapped[str] = mapped_column(String(12), default="")
    series_description: Mapped[str] = mapped_column(String(64), default="")

    study: Mapped[Study] = relationship(back_populates="series")
    instances: Mapped[list[Instance]] = relationship(back_populates="series")


class Association(Base):
    """One DICOM association that delivered instances (drives study assembly)."""

    __tablename__ = "associations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, doc="UUID4 text.")
    calling_aet: Mapped[str] = mapped_column(String(16), default="")
    called_aet: Mapped[str] = mapped_column(String(16), default="")
    peer: Mapped[str] = mapped_column(String(64), default="", doc="host:port of the peer.")
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(default=None, index=True)
    outcome: Mapped[str] = mapped_column(String(16), default="open", doc="open/released/aborted")


class Instance(Base):
    """One stored SOP instance: its place in the archive and its checksum."""

    __tablename__ = "instances"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    series_id: Mapped[int] = mapped_column(ForeignKey("series.id", ondelete="CASCADE"), index=True)
    sop_instance_uid: Mapped[str] = mapped_column(UID, unique=True)
    sop_class_uid: Mapped[str] = mapped_column(UID)
    transfer_syntax_uid: Mapped[str] = mapped_column(UID, default="")
    instance_number: Mapped[str] = mapped_column(String(12), default="")
    view_position: Mapped[str] = mapped_column(String(16), default="")
    path: Mapped[str] = mapped_column(String(512), doc="Relative to the archive root.")
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    association_id: Mapped[str | None] = mapped_column(
        ForeignKey("associations.id", ondelete="SET NULL"), default=None, index=True
    )
    calling_aet: Mapped[str] = mapped_column(String(16), default="")
    received_at: Mapped[datetime] = mapped_column(default=utcnow)

    series: Mapped[Series] = relationship(back_populates="instances")


class Job(Base):
    """A unit of work claimed by a worker under a lease."""

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    study_id: Mapped[int | None] = mapped_column(
        ForeignKey("studies.id", ondelete="CASCADE"), default=None, index=True
    )
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(16), default="queued")
    priority: Mapped[int] = mapped_column(Integer, default=3, doc="Lower runs first.")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    lease_owner: Mapped[str | None] = mapped_column(String(128), default=None)
    lease_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    available_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (Index("ix_jobs_claim", "state", "priority", "available_at"),)


class ExportedInstance(Base):
    """One instance a destination acknowledged (C-STORE Success): it is never sent there again."""

    __tablename__ = "exported_instances"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    destination: Mapped[str] = mapped_column(String(64), doc="The export destination's name.")
    sop_instance_uid: Mapped[str] = mapped_column(UID)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[int | None] = mapped_column(Integer, default=None, doc="The export job.")
    attempt: Mapped[int] = mapped_column(Integer, default=1, doc="The job attempt that sent it.")
    sent_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("destination", "sop_instance_uid"),)


class Finding(Base):
    """One label's result from one model on one image (IHE AIR / TID 4019 identity)."""

    __tablename__ = "findings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[int | None] = mapped_column(
        ForeignKey("jobs.id", ondelete="SET NULL"), default=None
    )
    sop_instance_uid: Mapped[str] = mapped_column(UID)
    model_name: Mapped[str] = mapped_column(String(128))
    model_version: Mapped[str] = mapped_column(String(64))
    model_uid: Mapped[str] = mapped_column(UID, default="")
    model_creator: Mapped[str] = mapped_column(String(128), default="")
    model_sha256: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(64))
    concept_scheme: Mapped[str] = mapped_column(String(16), default="")
    concept_code: Mapped[str] = mapped_column(String(64), default="")
    concept_meaning: Mapped[str] = mapped_column(String(128), default="")
    probability: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    crossed: Mapped[bool] = mapped_column(Boolean)
    category: Mapped[str] = mapped_column(String(2), default="P3")
    shadow: Mapped[bool] = mapped_column(Boolean, default=False)
    preprocess_ms: Mapped[float] = mapped_column(Float, default=0.0)
    inference_ms: Mapped[float] = mapped_column(Float, default=0.0)
    heatmap_path: Mapped[str] = mapped_column(
        String(512), default="", doc="Heatmap (.npy, float32 in [0, 1]) relative to the archive."
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    study: Mapped[Study] = relationship(back_populates="findings")


class Feedback(Base):
    """A radiologist's word on the AI: agree, disagree or a missed finding."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    finding_id: Mapped[int | None] = mapped_column(
        ForeignKey("findings.id", ondelete="SET NULL"), default=None
    )
    username: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16), doc="agree, disagree or missed.")
    label: Mapped[str] = mapped_column(String(64), default="")
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Event(Base):
    """The event and audit log: who did what, when, from where."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    category: Mapped[str] = mapped_column(String(16), doc="audit, ingest or system.")
    action: Mapped[str] = mapped_column(String(64), index=True)
    actor: Mapped[str] = mapped_column(String(64), default="", doc="Username or AE title.")
    source: Mapped[str] = mapped_column(String(64), default="", doc="IP address or peer.")
    study_instance_uid: Mapped[str] = mapped_column(UID, default="", index=True)
    sop_instance_uid: Mapped[str] = mapped_column(UID, default="")
    outcome: Mapped[str] = mapped_column(String(16), default="success")
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class User(Base):
    """A local user of the web app."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16))
    site: Mapped[str] = mapped_column(String(64), default="", doc="For radiographers.")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiToken(Base):
    """A bearer token of a machine client; only its hash is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
