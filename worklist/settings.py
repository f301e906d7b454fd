"""Settings of the :mod:`worklist` package."""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import Field, SecretStr, model_validator
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
    # The web app (``triage web``).
    web_session_secret: str | None = Field(
        default=None,
        description="Key that signs session cookies; default: generated once and kept in "
        "data_dir/web_session_secret (mode 0600).",
    )
    web_cookie_secure: bool = Field(
        default=False,
        description="Send the session cookie only over HTTPS, whatever the request came over. "
        "Requests that arrive over HTTPS (web_tls_certificate, or X-Forwarded-Proto: https "
        "from a proxy of web_forwarded_allow_ips) get Secure cookies without it; off by "
        "default so plain-http localhost works.",
    )
    web_tls_certificate: Path | None = Field(
        default=None,
        description="PEM certificate (chain) of the web app: set, it serves HTTPS only "
        "(uvicorn's TLS, TLS 1.2+ with the BCP 195 suites). None: plain HTTP.",
    )
    web_tls_private_key: Path | None = Field(
        default=None,
        description="PEM private key of web_tls_certificate (None: it is in the certificate file).",
    )
    web_tls_private_key_password: SecretStr | None = Field(
        default=None,
        description="Password of an encrypted web_tls_private_key (better given as "
        "TRIAGE_WORKLIST_WEB_TLS_PRIVATE_KEY_PASSWORD than in the settings file).",
    )
    web_tls_ca_bundle: Path | None = Field(
        default=None,
        description="PEM CA certificates that sign clients' certificates (with "
        "web_tls_require_client_certificate).",
    )
    web_tls_require_client_certificate: bool = Field(
        default=False,
        description="Refuse HTTPS clients without a certificate signed by web_tls_ca_bundle "
        "(mutual TLS, e.g. for machine clients of /dicom-web; browsers need one installed).",
    )
    web_hsts_max_age_s: int = Field(
        default=365 * 24 * 3600,
        ge=0,
        description="max-age of Strict-Transport-Security, sent on responses to HTTPS requests "
        "only (one year by default; 0 tells browsers to forget it).",
    )
    web_hsts_include_subdomains: bool = Field(
        default=False, description="Add includeSubDomains to Strict-Transport-Security."
    )
    web_hsts_preload: bool = Field(
        default=False,
        description="Add preload to Strict-Transport-Security (only for a host name meant for "
        "browsers' preload lists, which is hard to undo).",
    )
    web_forwarded_allow_ips: list[str] = Field(
        default_factory=list,
        description="Addresses (or CIDR networks) of reverse proxies whose X-Forwarded-For and "
        "X-Forwarded-Proto are trusted; empty (default): forwarded headers are ignored and the "
        "client is the socket's peer. Set it to the proxy's address behind a reverse proxy.",
    )
    web_login_max_failures: int = Field(
        default=5, ge=1, description="Failed logins per username and per IP within the window."
    )
    web_login_window_s: float = Field(
        default=60.0, gt=0, description="Window of the login rate limit (then 429)."
    )
    web_max_query_params: int = Field(
        default=100,
        ge=1,
        description="Most parameters one query string may have (more: 422 before any parsing).",
    )
    web_max_param_repeats: int = Field(
        default=20,
        ge=1,
        description="Most times one query parameter (a list filter) may repeat (more: 422).",
    )
    web_max_image_pixels: int = Field(
        default=36_000_000,
        ge=1,
        description="Most pixels (Rows x Columns) of one frame the web app decodes (key image, "
        "rendered, thumbnail, frames; also PIL's MAX_IMAGE_PIXELS); larger: 422, not decoded.",
    )
    web_max_decoded_bytes: int = Field(
        default=512 * 1024 * 1024,
        ge=1,
        description="Most bytes one web request may decode: a deflated dataset inflated, or the "
        "frames decoded (Rows x Columns x Samples x bytes x frames); more: 422, not decoded.",
    )
    web_stow_max_request_bytes: int = Field(
        default=2 * 1024**3,
        ge=1,
        description="Largest STOW-RS request body (after any Content-Encoding is undone), "
        "streamed to an unnamed temporary file in archive_dir/.stow, never held in memory; "
        "larger: 413 as soon as Content-Length or the bytes received pass it.",
    )
    web_stow_max_instance_bytes: int = Field(
        default=512 * 1024**2,
        ge=1,
        description="Largest instance (body part) of a STOW-RS request; larger: refused with "
        "0xA700, not read. Parts stored at once hold at most this much memory between them.",
    )
    web_stow_max_inflated_bytes: int = Field(
        default=512 * 1024**2,
        ge=1,
        description="Largest inflated dataset of a STOW-RS instance in Deflated Explicit VR "
        "Little Endian (inflated in 1 MiB steps to count); larger: refused with 0xA700.",
    )
    web_stow_max_parts: int = Field(
        default=10_000,
        ge=1,
        description="Most body parts (instances) in one STOW-RS request; more: 413 before any "
        "is stored (a body of tiny parts would otherwise cost a refusal each, and a response "
        "listing them all). Larger studies are sent in several requests.",
    )
    web_page_size: int = Field(default=50, ge=1, le=500, description="Worklist rows per page.")
    web_poll_s: float = Field(default=5.0, gt=0, description="Worklist page refresh interval.")
    web_list_cache_s: float = Field(
        default=1.0,
        ge=0,
        description="Reuse a computed worklist page (API) for this long; 0 turns it off.",
    )
    web_viewer_dir: Path | None = Field(
        default=None,
        description="Where scripts/install-viewer.sh put the OHIF viewer served at /viewer; "
        "default: worklist/web/viewer_dist.",
    )
    web_cors_origins: list[str] = Field(
        default_factory=list,
        description="Origins allowed to call /dicom-web from a browser (CORS); empty: off. "
        '["*"] allows any origin (without cookies: use a bearer token).',
    )

    # Production monitoring of models (the web app's /admin/monitoring, docs/web.md).
    monitoring_window_days: int = Field(
        default=7, ge=1, le=365, description="Days of findings a model is monitored over."
    )
    monitoring_reference_days: int = Field(
        default=14,
        ge=1,
        le=365,
        description="Without a reference_predictions.csv beside the model's card, the reference "
        "is the model's first this many days in production.",
    )
    monitoring_bins: int = Field(
        default=10, ge=2, le=100, description="PSI bins: this many quantiles of the reference."
    )
    monitoring_psi_bound: float = Field(
        default=0.2, gt=0, description="Alert when a label's population stability index exceeds it."
    )
    monitoring_ks_p_bound: float = Field(
        default=0.01,
        gt=0,
        lt=1,
        description="Alert when the two-sample KS test's p-value is below it.",
    )
    monitoring_min_n: int = Field(
        default=50,
        ge=1,
        description="Scores needed in both the reference and the window before drift is judged.",
    )

    @model_validator(mode="after")
    def _tls_complete(self) -> Self:
        """Refuse TLS settings that name a key, CA or client check without a certificate."""
        if self.web_tls_certificate is None:
            orphans = [
                name
                for name in (
                    "web_tls_private_key",
                    "web_tls_private_key_password",
                    "web_tls_ca_bundle",
                )
                if getattr(self, name) is not None
            ]
            if self.web_tls_require_client_certificate:
                orphans.append("web_tls_require_client_certificate")
            if orphans:
                raise ValueError(f"{', '.join(orphans)} set without web_tls_certificate")
        if self.web_tls_require_client_certificate and self.web_tls_ca_bundle is None:
            raise ValueError("web_tls_require_client_certificate needs web_tls_ca_bundle")
        return self

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
