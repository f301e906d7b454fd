"""Export destinations as data: where to send, which studies, what, and the retry schedule.

They are the ``[[triage.exports]]`` tables of the settings file (see ``docs/exports.md``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from worklist.domain import AIStatus, Priority

__all__ = ["ExportDestination", "SendKind", "StudyFacts", "matching"]

SendKind = Literal["sr", "key_image", "originals"]
"""What a destination receives: the TID 1500 SR, the key image, the study's own images."""

_DEFAULT_SEND: list[SendKind] = ["sr", "key_image"]


class StudyFacts(Protocol):
    """What the filters read of a study (a :class:`worklist.db.schema.Study` row has it)."""

    site: str
    modalities: str
    priority: str
    ai_status: str


class ExportDestination(BaseModel):
    """One DICOM peer that receives exports (a PACS, a reporting system).

    An empty filter list matches every study.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=64, description="Unique name, kept per export.")
    ae_title: str = Field(min_length=1, max_length=16, description="The peer's called AE title.")
    host: str
    port: int = Field(ge=1, le=65535)
    calling_aet: str = Field(default="ICS_TRIAGE", min_length=1, max_length=16)
    sites: list[str] = Field(default_factory=list, description="Sending sites (calling AETs).")
    modalities: list[str] = Field(default_factory=list, description="Any of the study's.")
    priorities: list[Priority] = Field(default_factory=list, description="After triage.")
    ai_statuses: list[AIStatus] = Field(default_factory=list, description="done, not_available.")
    send: list[SendKind] = Field(default_factory=lambda: _DEFAULT_SEND.copy())
    attempts: int = Field(default=5, ge=1, le=100, description="Attempts before exhausted.")
    first_delay_s: float = Field(default=30.0, ge=0, description="Wait after the first failure.")
    backoff: float = Field(
        default=2.0, ge=1.0, description="Each further wait is this times longer."
    )
    max_delay_s: float = Field(default=3600.0, ge=0, description="The longest wait.")
    timeout_s: float = Field(default=30.0, gt=0, description="Association and DIMSE timeouts.")
    tls: bool = Field(default=False, description="DICOM TLS (PS3.15 B.9, BCP 195).")
    tls_ca_bundle: Path | None = Field(default=None, description="CAs of the peer's certificate.")
    tls_certificate: Path | None = Field(default=None, description="Our client certificate.")
    tls_private_key: Path | None = Field(default=None, description="Our client key.")
    tls_check_hostname: bool = Field(default=True, description="Peer certificate names host.")

    def delay_after(self, attempt: int) -> float:
        """Return the wait after failed attempt ``attempt`` (1-based): exponential, capped."""
        return float(
            min(self.first_delay_s * self.backoff ** max(attempt - 1, 0), self.max_delay_s)
        )

    def matches(self, study: StudyFacts) -> bool:
        """Say whether this destination takes ``study`` (its site, modalities, priority, AI)."""
        if self.sites and study.site not in self.sites:
            return False
        modalities = {m for m in study.modalities.split("\\") if m}
        if self.modalities and not modalities & set(self.modalities):
            return False
        if self.priorities and study.priority not in self.priorities:
            return False
        return not self.ai_statuses or study.ai_status in self.ai_statuses


def matching(
    destinations: Sequence[ExportDestination], study: StudyFacts
) -> list[ExportDestination]:
    """Return the destinations that take ``study``, in their configured order."""
    return [d for d in destinations if d.matches(study)]
