"""DICOMweb for the web tests: dicomweb-client on a live server, multipart bodies, instances.

Multipart bodies are read back with the standard library's MIME parser, independently of the
server's own :mod:`worklist.dicomweb.multipart`.
"""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage

from dicomweb_client import DICOMwebClient
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from tests.builders.dicom import encode, make_dataset

__all__ = [
    "client",
    "encode_multipart",
    "encoded",
    "make_instances",
    "read_multipart",
]


def client(base_url: str, token: str | None) -> DICOMwebClient:
    """Return a dicomweb-client for the server's ``/dicom-web`` root, with a bearer token.

    Parameters
    ----------
    base_url : str
        ``http://127.0.0.1:PORT`` (from :func:`tests.builders.web.live_server`).
    token : str or None
        The API token (``None``: anonymous).

    Returns
    -------
    dicomweb_client.DICOMwebClient
        The client.
    """
    headers = {"Authorization": f"Bearer {token}"} if token else None
    return DICOMwebClient(f"{base_url}/dicom-web", headers=headers)


def make_instances(
    count: int = 3, *, study_uid: str | None = None, size: int = 16
) -> list[Dataset]:
    """Return ``count`` CR instances of one study (one series), with file meta.

    Parameters
    ----------
    count : int, optional
        How many.
    study_uid : str or None, optional
        Their study (a fresh UID when ``None``).
    size : int, optional
        Rows and columns.

    Returns
    -------
    list of pydicom.dataset.Dataset
        The instances.
    """
    study = study_uid or generate_uid()
    series = generate_uid()
    return [
        make_dataset(
            study_uid=study,
            series_uid=series,
            modality="CR",
            size=size,
            seed=i,
            instance_number=i + 1,
        )
        for i in range(count)
    ]


def encode_multipart(
    parts: list[bytes], boundary: str = "test-boundary-42", part_type: str = "application/dicom"
) -> tuple[bytes, str]:
    """Return a ``multipart/related`` body of ``parts`` and its Content-Type.

    Parameters
    ----------
    parts : list of bytes
        The contents.
    boundary : str, optional
        The boundary.
    part_type : str, optional
        The ``type`` parameter and each part's Content-Type.

    Returns
    -------
    tuple of (bytes, str)
        The body and the Content-Type header value.
    """
    body = b"".join(
        f"--{boundary}\r\nContent-Type: {part_type}\r\n\r\n".encode() + part + b"\r\n"
        for part in parts
    )
    body += f"--{boundary}--\r\n".encode()
    return body, f'multipart/related; type="{part_type}"; boundary={boundary}'


def read_multipart(body: bytes, content_type: str) -> list[tuple[str, bytes]]:
    """Parse a ``multipart/related`` body with the standard library's MIME parser.

    Parameters
    ----------
    body : bytes
        The response body.
    content_type : str
        Its Content-Type header.

    Returns
    -------
    list of tuple of (str, bytes)
        Each part's Content-Type and content.
    """
    raw = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode() + body
    message = email.message_from_bytes(raw, policy=email.policy.HTTP)
    assert isinstance(message, EmailMessage)
    assert message.is_multipart(), content_type
    parts: list[tuple[str, bytes]] = []
    for part in message.iter_parts():
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        parts.append((str(part["content-type"]), payload))
    return parts


def encoded(ds: Dataset) -> bytes:
    """Return ``ds`` as a PS3.10 file (re-exported for the DICOMweb tests)."""
    return encode(ds)
