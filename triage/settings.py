"""Settings of the :mod:`triage` package and the composed application configuration."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from dicom_gateway.settings import GatewaySettings
from models.settings import ModelsSettings
from worklist.settings import WorklistSettings

__all__ = ["AppConfig", "TriageSettings"]


class TriageSettings(BaseSettings):
    """The command line and the services it starts.

    Read from the ``[triage]`` table of the TOML file and ``TRIAGE_TRIAGE_*`` variables.
    """

    model_config = SettingsConfigDict(env_prefix="TRIAGE_TRIAGE_", extra="forbid")

    log_level: str = Field(default="INFO", description="Python logging level name.")
    http_host: str = Field(default="127.0.0.1")
    http_port: int = Field(default=8080, ge=0, le=65535)


@dataclass(frozen=True)
class AppConfig:
    """Every package's settings, composed by the command line and passed down."""

    triage: TriageSettings
    gateway: GatewaySettings
    worklist: WorklistSettings
    models: ModelsSettings
