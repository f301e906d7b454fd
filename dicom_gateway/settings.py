"""Settings of the :mod:`dicom_gateway` package."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from dicom_gateway.watchdog import ConnectionLimits

__all__ = ["DuplicatePolicy", "GatewaySettings", "MoveDestination", "connection_limits"]


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
        description="Listener processes (processes other than 1) write each received dataset "
        "to a temporary file in archive_dir/.receiving as it arrives, not to memory.",
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
