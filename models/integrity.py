"""The sha256 of a model's ONNX file, checked against its card before any session is made."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from models.card import ModelCard
from models.errors import IntegrityError

__all__ = ["read_verified_onnx", "sha256_bytes", "sha256_file"]

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20


def sha256_bytes(data: bytes) -> str:
    """Return the hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    """Return the hex sha256 of a file, read in chunks.

    Parameters
    ----------
    path
        The file.

    Returns
    -------
    str
        64 lowercase hexadecimal digits.
    """
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def read_verified_onnx(card: ModelCard, directory: Path) -> bytes:
    """Read a model's ONNX file and check it is the one its card names.

    The bytes returned are the bytes checked, so the session is built from exactly what was
    verified.

    Parameters
    ----------
    card
        The model's card.
    directory
        The model's version directory.

    Returns
    -------
    bytes
        The ONNX file's content.

    Raises
    ------
    IntegrityError
        If the file is missing or unreadable, or its sha256 differs from the card's.
    """
    path = directory / card.identity.onnx_file
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise IntegrityError(
            f"model {card.ref}: cannot read {path}: {exc.strerror or exc}"
        ) from exc
    actual = sha256_bytes(data)
    if actual != card.identity.sha256:
        raise IntegrityError(
            f"model {card.ref}: {path} has sha256 {actual} but the card says "
            f"{card.identity.sha256}; refusing to load it"
        )
    return data
