"""Settings of the :mod:`dicom_gateway` package."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from dicom_gateway.watchdog import ConnectionLimits

BCP195_CIPHERS = (
    "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:!aNULL:!eNULL:!MD5:!SHA1:!RC4:!3DES:!DES:!EXPORT:!PSK"
)
"""TLS 1.2 cipher suites of the BCP 195 profile (RFC 9325): forward secret, AEAD only; no RC4,
3DES, export or anonymous suites. TLS 1.3's suites all qualify and are left to OpenSSL."""

__all__ = [
    "BCP195_CIPHERS",
    "DuplicatePolicy",
    "GatewaySettings",
    "MoveDestination",
    "connection_limits",
]


class DuplicatePolicy(StrEnum):
    """What to do when a SOP Instance UID arrives again with different bytes."""

    KEEP_FIRST = "keep_first"
    REPLACE = "replace"


class MoveDestination(BaseModel):
    """Where a C-MOVE to one AE title sends its instances."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(min_length=1)
    port: int = Field(ge=1, le=65535)


class GatewaySettings(BaseSettings):
    """The DICOM listener and the study assembler.

    Read from the ``[gateway]`` table of the TOML file and ``TRIAGE_GATEWAY_*`` variables.
    """

    model_config = SettingsConfigDict(env_prefix="TRIAGE_GATEWAY_", extra="forbid")

    ae_title: str = Field(default="ICS_TRIAGE", min_length=1, max_length=16)
    host: str = Field(default="127.0.0.1", description="Address the listener binds.")
    port: int = Field(default=11112, ge=0, le=65535)
    allowed_calling_aets: list[str] = Field(
        default_factory=list, description="Calling AE titles allowed; empty allows all (logged)."
    )
    max_associations: int = Field(default=16, ge=1, description="Per listener process.")
    max_associations_per_peer: int = Field(
        default=8,
        ge=1,
        description="Connections at once from one peer address, per listener process; more "
        "are closed at accept (logged).",
    )
    association_setup_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="From the TCP accept to a complete A-ASSOCIATE-RQ; then the connection "
        "is closed (logged).",
    )
    pdu_read_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="From the first byte of a PDU to its last; then the connection is closed "
        "(a stalled or trickling peer, logged).",
    )
    max_pdu_length: int = Field(
        default=1024 * 1024,
        ge=4096,
        description="Maximum PDU length announced to peers; a PDU announcing more closes the "
        "connection.",
    )
    processes: int = Field(
        default=0, ge=0, description="Listener processes sharing the port; 0 = one per CPU core."
    )
    acse_timeout_s: float = Field(default=30.0, gt=0)
    dimse_timeout_s: float = Field(default=60.0, gt=0)
    network_timeout_s: float = Field(default=60.0, gt=0)
    max_nesting_depth: int = Field(
        default=32,
        ge=1,
        le=64,
        description="Deepest sequence nesting accepted, for defined and undefined lengths alike "
        "(a top-level sequence is depth 1); deeper: 0xC000 Cannot Understand.",
    )
    max_instance_bytes: int = Field(
        default=512 * 1024 * 1024,
        ge=0,
        description="Largest instance accepted (file meta and dataset as received); larger: "
        "0xA700 Out of Resources with the reason. 0: no limit.",
    )
    receive_to_file: bool = Field(
        default=True,
        description="Write each received dataset to a temporary file in "
        "archive_dir/.receiving as it arrives, not to memory (in-process listeners too).",
    )
    max_memory_bytes: int = Field(
        default=1024 * 1024 * 1024,
        ge=64 * 1024 * 1024,
        description="Resident memory of the whole listener (all its processes). Each listener "
        "process holds instances being stored within its share (a byte budget); an instance "
        "that cannot fit: 0xA700 Out of Resources with the reason.",
    )
    refusal_log_per_peer: int = Field(
        default=20,
        ge=1,
        description="Refusals of one peer address logged (and recorded) in full per "
        "refusal_log_window_s; the rest are counted in one summary line.",
    )
    refusal_log_window_s: float = Field(
        default=60.0, gt=0, description="The window of refusal_log_per_peer, in seconds."
    )
    max_inflated_bytes: int = Field(
        default=512 * 1024 * 1024,
        gt=0,
        description="Largest dataset of Deflated Explicit VR Little Endian once inflated (checked "
        "in bounded steps before parsing); larger: 0xA700 Out of Resources with the reason.",
    )
    duplicate_policy: DuplicatePolicy = DuplicatePolicy.KEEP_FIRST
    group_commit: bool = Field(
        default=True,
        description="Make concurrently received instances durable and record them together "
        "(one archive sync and one transaction per batch); each is still answered only once "
        "it is on disk and recorded.",
    )
    idle_s: dict[str, float] = Field(
        default_factory=lambda: {"CR": 0.0, "DX": 0.0, "MG": 0.0, "CT": 5.0, "MR": 5.0},
        description="Per-modality idle time after release before a study is complete.",
    )
    default_idle_s: float = Field(default=5.0, ge=0, description="For modalities not in idle_s.")
    assembler_interval_s: float = Field(default=0.2, gt=0, description="Assembler poll period.")
    tls_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="Port of the DICOM TLS listener beside the plain one (PS3.15 B.9, BCP 195); "
        "None: no TLS listener; 0: any free port.",
    )
    tls_certificate: Path | None = Field(
        default=None, description="The listener's certificate with its chain (PEM)."
    )
    tls_private_key: Path | None = Field(
        default=None, description="The listener's private key (PEM, unencrypted; mode 0600)."
    )
    tls_ca_bundle: Path | None = Field(
        default=None, description="CAs whose client certificates are trusted (PEM)."
    )
    tls_require_client_certificate: bool = Field(
        default=True,
        description="Refuse TLS clients without a certificate signed by tls_ca_bundle.",
    )
    tls_min_version: Literal["1.2", "1.3"] = Field(default="1.2", description="BCP 195: 1.2+.")
    tls_ciphers: str = Field(
        default=BCP195_CIPHERS,
        min_length=1,
        description="OpenSSL cipher string for TLS 1.2 (ECDHE with AES-GCM/ChaCha20).",
    )
    tls_aet_subjects: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Calling AE title -> client certificate subjects (CN or subjectAltName) "
        "allowed to use it. When set, the TLS listener refuses AE titles not listed or from "
        "another certificate, and the plain listener refuses the listed AE titles.",
    )
    move_destinations: dict[str, MoveDestination] = Field(
        default_factory=dict,
        description="C-MOVE destinations: AE title -> host and port. A C-MOVE to any other AE "
        "title is refused with Move Destination Unknown (0xA801).",
    )


def connection_limits(settings: GatewaySettings) -> ConnectionLimits:
    """Return the watchdog's deadlines and limits from the gateway's settings.

    Parameters
    ----------
    settings
        The gateway's settings.

    Returns
    -------
    ConnectionLimits
        Setup and PDU deadlines, the per-peer limit and the maximum PDU length.
    """
    return ConnectionLimits(
        setup_s=settings.association_setup_timeout_s,
        pdu_s=settings.pdu_read_timeout_s,
        per_peer=settings.max_associations_per_peer,
        max_pdu=settings.max_pdu_length,
    )
