"""What the listener supports, as data.

The source of both the AE's presentation contexts and the README's DICOM conformance statement
(a test keeps the two equal).
"""

from __future__ import annotations

import logging

from pydicom.uid import (
    JPEG2000,
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)
from pynetdicom import AllStoragePresentationContexts, VerificationPresentationContexts

from dicom_gateway.statuses import (
    CANNOT_UNDERSTAND,
    DATASET_MISMATCH,
    OUT_OF_RESOURCES,
    PROCESSING_FAILURE,
    SUCCESS,
    status_name,
)

__all__ = [
    "STATUSES",
    "TRANSFER_SYNTAXES",
    "render_conformance",
    "storage_sop_classes",
    "verification_sop_class",
]

logger = logging.getLogger(__name__)

#: Transfer syntaxes accepted for every storage SOP class, in order of preference.
TRANSFER_SYNTAXES: tuple[UID, ...] = (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    JPEG2000Lossless,
    JPEG2000,
    RLELossless,
)

#: Statuses a C-STORE may be answered with, and when.
STATUSES: tuple[tuple[int, str], ...] = (
    (SUCCESS, "stored (fsynced) and recorded; also a duplicate, see the duplicate policy"),
    (OUT_OF_RESOURCES, "archive over its quota, or the disk below its minimum free space/full"),
    (DATASET_MISMATCH, "the dataset's SOP Class UID differs from the negotiated one"),
    (
        CANNOT_UNDERSTAND,
        "undecodable or truncated dataset; missing or invalid SOP Instance, Study, Series UID "
        "or one that differs from the command's",
    ),
    (PROCESSING_FAILURE, "an unexpected error while storing or recording (logged)"),
)


def storage_sop_classes() -> list[UID]:
    """Return every storage SOP class the listener accepts (pynetdicom's full list)."""
    return [UID(str(cx.abstract_syntax)) for cx in AllStoragePresentationContexts]


def verification_sop_class() -> UID:
    """Return the Verification SOP class (C-ECHO)."""
    return UID(str(VerificationPresentationContexts[0].abstract_syntax))


def render_conformance(ae_title: str) -> str:
    """Return the DICOM conformance statement as Markdown (the README's section).

    Parameters
    ----------
    ae_title
        The listener's default AE title.
    """
    lines = [
        "## DICOM conformance statement",
        "",
        f"- **AE title**: `{ae_title}` (setting `gateway.ae_title`); role: SCP only "
        "(C-ECHO, C-STORE). The calling AE title is checked against `gateway.allowed_calling_aets` "
        "(empty: any); any called AE title is accepted.",
        "- **Duplicate policy** (`gateway.duplicate_policy`): the same SOP Instance UID with "
        "identical bytes is answered Success and stored once. With different bytes, "
        "`keep_first` (default) keeps the stored copy, answers Success and logs a warning; "
        "`replace` durably replaces the stored copy. Both are recorded as `instance.duplicate` "
        "events.",
        "- Success is returned only after the file is fsynced in the archive and its row "
        "is committed in the store.",
        "",
        "### Statuses returned to C-STORE",
        "",
        "| status | meaning | when |",
        "|---|---|---|",
    ]
    for code, when in STATUSES:
        lines.append(f"| `0x{code:04X}` | {status_name(code)} | {when} |")
    lines += [
        "",
        "### Transfer syntaxes (accepted for every SOP class below)",
        "",
        "| UID | name |",
        "|---|---|",
    ]
    lines += [f"| `{ts}` | {ts.name} |" for ts in TRANSFER_SYNTAXES]
    verification = verification_sop_class()
    lines += [
        "",
        "### SOP classes (SCP)",
        "",
        "| UID | name |",
        "|---|---|",
        f"| `{verification}` | {verification.name} |",
    ]
    lines += [f"| `{uid}` | {uid.name} |" for uid in storage_sop_classes()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # python -m dicom_gateway.conformance > section.md
    from dicom_gateway.settings import GatewaySettings

    print(render_conformance(GatewaySettings().ae_title), end="")
