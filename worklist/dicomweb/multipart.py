"""``multipart/related`` (RFC 2387) bodies: written as a stream, read from memory.

A retrieve streams each archived file in chunks (never the whole file in memory); a STOW-RS
request body is split into its parts. Media-type parameters are parsed with the standard
library's header parser.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

__all__ = [
    "CHUNK_BYTES",
    "Part",
    "media_type",
    "new_boundary",
    "split_parts",
    "stream_bytes",
    "stream_files",
]

logger = logging.getLogger(__name__)

CHUNK_BYTES = 256 * 1024


@dataclass(frozen=True)
class Part:
    """One body part: its headers (lower-case names) and content."""

    headers: dict[str, str]
    content: bytes

    @property
    def content_type(self) -> str:
        """The part's media type without parameters, lower case ('' if none)."""
        return media_type(self.headers.get("content-type", ""))[0]


def media_type(value: str) -> tuple[str, dict[str, str]]:
    """Split a Content-Type value into its media type (lower case) and parameters."""
    message = Message()
    message["content-type"] = value
    params = message.get_params(failobj=[])
    if not params:
        return "", {}
    main = value.split(";", 1)[0].strip().lower()
    return main, {str(k).lower(): str(v) for k, v in params[1:]}


def new_boundary() -> str:
    """Return a fresh random boundary."""
    return f"dicomweb-{secrets.token_hex(16)}"


def _part_head(boundary: str, content_type: str, first: bool, location: str = "") -> bytes:
    lines = [f"--{boundary}", f"Content-Type: {content_type}"]
    if location:
        lines.append(f"Content-Location: {location}")
    head = "\r\n".join(lines) + "\r\n\r\n"
    return (head if first else "\r\n" + head).encode("ascii")


def stream_files(
    boundary: str, files: Iterable[tuple[Path, str, str]], chunk: int = CHUNK_BYTES
) -> Iterator[bytes]:
    """Yield a multipart body of files read in chunks.

    Parameters
    ----------
    boundary
        The boundary of the Content-Type header.
    files
        ``(path, content type, content location)`` of each part.
    chunk
        Bytes read at a time.

    Yields
    ------
    bytes
        The body, piece by piece.
    """
    first = True
    for path, content_type, location in files:
        yield _part_head(boundary, content_type, first, location)
        first = False
        with path.open("rb") as handle:
            while block := handle.read(chunk):
                yield block
    yield f"\r\n--{boundary}--\r\n".encode("ascii")


def stream_bytes(boundary: str, parts: Iterable[tuple[bytes, str]]) -> Iterator[bytes]:
    """Yield a multipart body of in-memory parts ``(content, content type)``."""
    first = True
    for content, content_type in parts:
        yield _part_head(boundary, content_type, first)
        first = False
        yield content
    yield f"\r\n--{boundary}--\r\n".encode("ascii")


def _headers(block: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in block.decode("latin-1").split("\r\n"):
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return headers


def split_parts(body: bytes, boundary: str) -> list[Part]:
    """Split a multipart body into its parts.

    Parameters
    ----------
    body
        The whole request body.
    boundary
        From the request's Content-Type.

    Returns
    -------
    list of Part
        The parts, in order (preamble and epilogue dropped).
    """
    delimiter = b"\r\n--" + boundary.encode("latin-1")
    data = body if body.startswith(b"\r\n") else b"\r\n" + body
    chunks = data.split(delimiter)
    parts: list[Part] = []
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break
        _padding, _, rest = chunk.partition(b"\r\n")
        if rest.startswith(b"\r\n"):  # a part without headers
            head, content = b"", rest[2:]
        else:
            head, sep, content = rest.partition(b"\r\n\r\n")
            if not sep:
                head, content = b"", rest
        parts.append(Part(_headers(head), content))
    return parts
