"""The domain errors of DICOMweb, each with the meaning the web app maps to a status."""

from __future__ import annotations

from models.errors import Invalid, NotFound, TriageError

__all__ = [
    "DicomWebError",
    "NotAcceptableError",
    "RequestTooLargeError",
    "ResourceNotFoundError",
    "UndecodableImageError",
    "UnsupportedMediaTypeError",
    "WrongQueryError",
]


class DicomWebError(TriageError):
    """A DICOMweb request cannot be answered (the base; it carries no meaning)."""


class ResourceNotFoundError(DicomWebError, NotFound):
    """No study, series, instance or frame has the UIDs or number asked for."""


class WrongQueryError(DicomWebError, Invalid):
    """A query parameter, frame list or UID in the request is malformed."""


class UndecodableImageError(DicomWebError, Invalid):
    """A stored instance's pixel data cannot be decoded (its header misleads the decoder)."""


class NotAcceptableError(DicomWebError):
    """No representation the request's Accept allows can be produced (HTTP 406)."""


class UnsupportedMediaTypeError(DicomWebError):
    """A STOW-RS request is not ``multipart/related; type="application/dicom"`` (HTTP 415)."""


class RequestTooLargeError(DicomWebError):
    """A STOW-RS request body (announced, received or inflated) passes the limit (HTTP 413)."""
