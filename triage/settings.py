"""Settings of the :mod:`triage` package and the composed application configuration."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from dicom_gateway.settings import GatewaySettings
from models.settings import ModelsSettings
from triage.exports.destinations import ExportDestination
from triage.webhooks.config import Webhook
from worklist.settings import WorklistSettings

__all__ = ["AppConfig", "HeatmapPolicy", "TriageSettings"]


class HeatmapPolicy(StrEnum):
    """Which labels' heatmaps the worker saves next to the archive."""

    CROSSED = "crossed"  # only labels whose threshold was crossed
    ALL = "all"
    NONE = "none"


class TriageSettings(BaseSettings):
    """The command line and the services it starts.

    Read from the ``[triage]`` table of the TOML file and ``TRIAGE_TRIAGE_*`` variables.
    """

    model_config = SettingsConfigDict(env_prefix="TRIAGE_TRIAGE_", extra="forbid")

    log_level: str = Field(default="INFO", description="Python logging level name.")
    http_host: str = Field(default="127.0.0.1")
    http_port: int = Field(default=8080, ge=0, le=65535)

    routing_file: Path | None = Field(
        default=None,
        description="Routing rules (YAML): which models run on which images; "
        "None uses the bundled triage/rules/routing.yaml.",
    )
    policy_file: Path | None = Field(
        default=None,
        description="Priority policy (YAML): classes, targets, referral mapping, site defaults, "
        "escalation; None uses the bundled triage/rules/policy.yaml.",
    )
    worker_id: str | None = Field(
        default=None, description="Name of this worker in job leases; default host:pid:random."
    )
    worker_poll_s: float = Field(
        default=0.15, gt=0, le=10, description="Sleep between job claims when the queue is idle."
    )
    worker_batch_jobs: int = Field(
        default=8, ge=1, description="Jobs claimed at once; their images are batched together."
    )
    worker_sweep_s: float = Field(
        default=60.0,
        gt=0,
        description="How often the worker re-applies the policy so waiting studies escalate.",
    )
    worker_model_refresh_s: float = Field(
        default=10.0, gt=0, description="How often the worker re-reads model statuses."
    )
    worker_heatmaps: HeatmapPolicy = Field(
        default=HeatmapPolicy.CROSSED, description="Which labels' heatmaps to save (.npy)."
    )
    worker_outputs: bool = Field(
        default=True,
        description="After triage, store a TID 1500 SR and a key image (Secondary Capture) per "
        "enabled model as instances of the study.",
    )
    exports: list[ExportDestination] = Field(
        default_factory=list,
        description="Export destinations (``[[triage.exports]]`` tables): the AI's outputs and "
        "optionally the images of triaged studies are sent there by C-STORE, with retry "
        "(see docs/exports.md).",
    )
    webhooks: list[Webhook] = Field(
        default_factory=list,
        description="Webhooks (``[[triage.webhooks]]`` tables) notified by a signed JSON POST "
        "when the AI raises a study to P1 (see docs/notifications.md).",
    )


@dataclass(frozen=True)
class AppConfig:
    """Every package's settings, composed by the command line and passed down."""

    triage: TriageSettings
    gateway: GatewaySettings
    worklist: WorklistSettings
    models: ModelsSettings
