"""What the listener supports, as data.

The source of the AE's presentation contexts (:func:`dicom_gateway.scp.build_ae`) and of the
statuses listed in the DICOM conformance statement (:mod:`dicom_gateway.statement` renders
``docs/conformance.md`` from both; a test keeps it true).
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
from pynetdicom import sop_class as _sop

from dicom_gateway.statuses import (
    CANCEL,
    CANNOT_UNDERSTAND,
    DATASET_MISMATCH,
    IDENTIFIER_MISMATCH,
    MOVE_DESTINATION_UNKNOWN,
    OUT_OF_RESOURCES,
    PENDING,
    PENDING_WARNING,
    PROCESSING_FAILURE,
    SUCCESS,
    UNABLE_TO_PROCESS,
)

__all__ = [
    "QR_SOP_CLASSES",
    "QR_STATUSES",
    "QR_TRANSFER_SYNTAXES",
    "STATUSES",
    "TRANSFER_SYNTAXES",
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
    (SUCCESS, "stored durably and recorded; also a duplicate, see the duplicate policy"),
    (
        OUT_OF_RESOURCES,
        "archive over its quota, or the disk below its minimum free space/full; an instance "
        "larger than `max_instance_bytes`, or a deflated dataset inflating beyond "
        "`max_inflated_bytes`; an instance whose storing would take the listener past its "
        "memory cap `max_memory_bytes` (too large for it, or for what is free for a few "
        "seconds: retry later); the store or the archive unreachable for now (database "
        "restarting or locked, an I/O error: retry later)",
    ),
    (DATASET_MISMATCH, "the dataset's SOP Class UID differs from the negotiated one"),
    (
        CANNOT_UNDERSTAND,
        "undecodable or truncated dataset; missing or invalid SOP Instance, Study, Series UID "
        "or one that differs from the command's; an empty or invalid (e.g. over 64 characters) "
        "Affected SOP Instance UID in the command; sequences nested deeper than "
        "`max_nesting_depth` (defined or undefined lengths alike)",
    ),
    (PROCESSING_FAILURE, "an unexpected error while storing or recording (logged)"),
)


#: The Query/Retrieve SOP classes (SCP): Study Root C-FIND, C-MOVE and C-GET.
QR_SOP_CLASSES: tuple[UID, ...] = (
    UID(str(_sop.StudyRootQueryRetrieveInformationModelFind)),  # type: ignore[attr-defined]
    UID(str(_sop.StudyRootQueryRetrieveInformationModelMove)),  # type: ignore[attr-defined]
    UID(str(_sop.StudyRootQueryRetrieveInformationModelGet)),  # type: ignore[attr-defined]
)

#: Transfer syntaxes accepted for the Query/Retrieve SOP classes (identifiers only).
QR_TRANSFER_SYNTAXES: tuple[UID, ...] = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)

#: Statuses the Query/Retrieve handlers return, the services they answer, and when.
QR_STATUSES: tuple[tuple[int, str, str], ...] = (
    (SUCCESS, "C-FIND, C-MOVE, C-GET", "every match sent; every sub-operation succeeded"),
    (PENDING, "C-FIND, C-MOVE, C-GET", "one more match, or one more sub-operation"),
    (PENDING_WARNING, "C-FIND", "one more match; a key of the identifier is not supported"),
    (CANCEL, "C-FIND, C-MOVE, C-GET", "the peer sent C-CANCEL"),
    (
        IDENTIFIER_MISMATCH,
        "C-FIND, C-MOVE, C-GET",
        "no or an unsupported QueryRetrieveLevel, a key below the level, a malformed range",
    ),
    (MOVE_DESTINATION_UNKNOWN, "C-MOVE", "the move destination is not in the settings"),
    (UNABLE_TO_PROCESS, "C-FIND, C-MOVE, C-GET", "an unexpected error (logged)"),
)


def storage_sop_classes() -> list[UID]:
    """Return every storage SOP class the listener accepts (pynetdicom's full list)."""
    return [UID(str(cx.abstract_syntax)) for cx in AllStoragePresentationContexts]


def verification_sop_class() -> UID:
    """Return the Verification SOP class (C-ECHO)."""
    return UID(str(VerificationPresentationContexts[0].abstract_syntax))
