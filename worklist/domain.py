"""Domain values of the shared worklist, in DICOM's and the ICS's own terms."""

from __future__ import annotations

from enum import StrEnum

from models.errors import TriageError, Unavailable

__all__ = [
    "AIStatus",
    "JobKind",
    "JobState",
    "Priority",
    "ReadStatus",
    "Role",
    "StoreError",
    "StoreUnavailableError",
    "StudyState",
]


class StoreError(TriageError):
    """The store or the archive could not do what was asked (the base; it carries no meaning)."""


class StoreUnavailableError(StoreError, Unavailable):
    """The store or the archive cannot be used: no schema, or a write or sync failed."""


class Priority(StrEnum):
    """Reporting priority classes, most urgent first (``P1 < P2 < P3`` sorts by urgency)."""

    P1 = "P1"  # urgent
    P2 = "P2"  # soon
    P3 = "P3"  # routine

    @property
    def rank(self) -> int:
        """Return 1 for P1 (most urgent) to 3 for P3."""
        return int(self.value[1])

    @classmethod
    def rank_of(cls, value: str | None) -> int:
        """Return the rank of a stored priority (a job's claim order); 3 if it is not one."""
        return cls(value).rank if value is not None and value in cls.__members__ else 3

    def more_urgent(self, other: Priority) -> Priority:
        """Return the more urgent of ``self`` and ``other``."""
        return self if self.rank <= other.rank else other


class StudyState(StrEnum):
    """Where a study is in processing."""

    RECEIVING = "receiving"  # instances arriving; not yet complete
    QUEUED = "queued"  # complete; a triage job is queued or running
    TRIAGED = "triaged"  # the worker has written a priority (with or without AI)


class AIStatus(StrEnum):
    """What the AI did for a study."""

    PENDING = "pending"
    DONE = "done"
    NOT_AVAILABLE = "not_available"


class ReadStatus(StrEnum):
    """Where a study is in reporting."""

    UNREAD = "unread"
    CLAIMED = "claimed"
    REPORTED = "reported"


class JobState(StrEnum):
    """The life of a job row."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class JobKind(StrEnum):
    """What a job asks a worker to do."""

    TRIAGE = "triage"  # run the models on a complete study and set its priority
    REPRIORITISE = "reprioritise"  # recompute the priority (clinical priority changed via the API)
    EXPORT = "export"  # C-STORE a triaged study's outputs (and originals) to one destination
    WEBHOOK = "webhook"  # POST a signed notification of an urgent AI result to one webhook
    PUBLISH = "publish"  # a triaged study's SR and key images, then queue exports/notifications


class Role(StrEnum):
    """Roles of users of the web app."""

    RADIOGRAPHER = "radiographer"
    RADIOLOGIST = "radiologist"
    ADMIN = "admin"
    ML_ENGINEER = "ml_engineer"
