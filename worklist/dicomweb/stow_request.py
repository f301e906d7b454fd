"""What a STOW-RS request must be before its instances are stored (PS3.18 10.5).

Its Content-Type (``multipart/related; type="application/dicom"`` with a boundary), its number
of body parts (at most ``web_stow_max_parts``, counted before any is stored so that a request
is refused whole), and each part as a PS3.10 file (the preamble added where a writer left it out).
"""

from __future__ import annotations

from typing import BinaryIO

from worklist.dicomweb.errors import (
    RequestTooLargeError,
    UnsupportedMediaTypeError,
    WrongQueryError,
)
from worklist.dicomweb.multipart import locate_parts, media_type

__all__ = ["boundary_of", "check_part_count", "file_format"]


def boundary_of(content_type: str) -> str:
    """Return the boundary of a STOW-RS request's Content-Type.

    Raises
    ------
    UnsupportedMediaTypeError
        If it is not ``multipart/related; type="application/dicom"``.
    WrongQueryError
        If it has no boundary.
    """
    main, params = media_type(content_type)
    root = params.get("type", "application/dicom").lower()
    if main != "multipart/related" or root != "application/dicom":
        raise UnsupportedMediaTypeError(
            f'STOW-RS takes multipart/related; type="application/dicom", not {content_type!r}'
        )
    boundary = params.get("boundary", "")
    if not boundary:
        raise WrongQueryError("the multipart/related Content-Type has no boundary")
    return boundary


def check_part_count(body: BinaryIO, boundary: str, limit: int) -> None:
    """Refuse a body of more than ``limit`` parts, counting no further than ``limit + 1``.

    Parameters
    ----------
    body
        The spooled body, a seekable file (its position is moved).
    boundary
        From the request's Content-Type.
    limit
        The most parts allowed (``web_stow_max_parts``).

    Raises
    ------
    RequestTooLargeError
        If there are more (a body of millions of tiny parts would otherwise cost a refusal
        each, and a response listing them all).
    """
    for count, _ in enumerate(locate_parts(body, boundary), start=1):
        if count > limit:
            raise RequestTooLargeError(
                f"the request has more than {limit} body parts (the limit); "
                "send the instances in several requests"
            )


def file_format(data: bytes) -> bytes:
    """Return ``data`` with the 128-byte preamble and ``DICM`` prefix if it starts at the meta.

    Writers such as ``pydicom.dcmwrite`` without ``enforce_file_format`` send the File Meta
    Information without the preamble; the archive keeps PS3.10 files, so one is added.
    """
    if data[128:132] != b"DICM" and data[:2] == b"\x02\x00":
        return bytes(128) + b"DICM" + data
    return data
