"""Settings of the :mod:`worklist` package."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["WorklistSettings"]


class WorklistSettings(BaseSettings):
    """The store (database) and the archive (instance files).

    Read from the ``[worklist]`` table of the TOML file and ``TRIAGE_WORKLIST_*`` variables.
    """

    model_config = SettingsConfigDict(env_prefix="TRIAGE_WORKLIST_", extra="forbid")

    data_dir: Path = Field(default=Path("var"), description="Root of the embedded deployment.")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default: SQLite file triage.db in data_dir. "
        "PostgreSQL: postgresql+psycopg://user@host:port/db.",
    )
    archive_dir: Path | None = Field(default=None, description="Default: data_dir/archive.")
    quota_bytes: int | None = Field(
        default=None, ge=0, description="Refuse new instances once the archive holds this much."
    )
    min_free_bytes: int = Field(
        default=256 * 1024 * 1024, ge=0, description="Refuse new instances below this free space."
    )
    job_lease_s: float = Field(default=60.0, gt=0, description="How long a claimed job is held.")
    job_max_attempts: int = Field(default=3, ge=1, description="Attempts before a job fails.")

    @property
    def effective_database_url(self) -> str:
        """Return the database URL, defaulting to SQLite inside :attr:`data_dir`."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'triage.db').resolve()}"

    @property
    def effective_archive_dir(self) -> Path:
        """Return the archive directory, defaulting to ``data_dir/archive``."""
        return self.archive_dir if self.archive_dir is not None else self.data_dir / "archive"
