"""``multipart/related`` (RFC 2387) bodies: written as a stream, read in bounded steps.

A retrieve streams each archived file in chunks (never the whole file in memory); a STOW-RS
request body, spooled to a file, is scanned for its parts in steps of :data:`CHUNK_BYTES`
(:func:`locate_parts`), so that only one part at a time need be read. Media-type parameters are
parsed with the standard library's header parser.
"""

from __future__ import annotations

import io
import logging
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "CHUNK_BYTES",
    "MAX_HEADER_BYTES",
    "FilePart",
    "Part",
    "locate_parts",
    "media_type",
    "new_boundary",
    "split_parts",
    "stream_bytes",
    "stream_files",
]

logger = logging.getLogger(__name__)

CHUNK_BYTES = 256 * 1024

MAX_HEADER_BYTES = 16 * 1024
"""A part's boundary line padding and headers must end within this many bytes of its boundary
(a part whose headers do not is read as a part without headers)."""

_SCAN_BYTES = 1024 * 1024


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


@dataclass(frozen=True)
class FilePart:
    """One body part located in a file: its headers and where its content lies."""

    headers: dict[str, str]
    offset: int
    length: int

    @property
    def content_type(self) -> str:
        """The part's media type without parameters, lower case ('' if none)."""
        return media_type(self.headers.get("content-type", ""))[0]


def _delimiters(handle: BinaryIO, boundary: bytes) -> Iterator[int]:
    """Yield the offset of each ``--boundary`` that starts the file or follows a CRLF."""
    delimiter = b"\r\n--" + boundary
    handle.seek(0)
    if handle.read(len(boundary) + 2) == b"--" + boundary:
        yield 0
    handle.seek(0)
    keep, position, tail = len(delimiter) - 1, 0, b""
    while block := handle.read(_SCAN_BYTES):
        buffer, base = tail + block, position - len(tail)
        found = buffer.find(delimiter)
        while found >= 0:
            yield base + found + 2
            found = buffer.find(delimiter, found + 1)
        tail = buffer[-keep:] if keep else b""
        position += len(block)


def _part_at(handle: BinaryIO, start: int, end: int) -> FilePart | None:
    """Read the part between ``start`` (after its boundary) and ``end``; ``None`` after the last."""
    handle.seek(start)
    window = handle.read(min(end - start, MAX_HEADER_BYTES))
    if window.startswith(b"--"):
        return None
    line_end = window.find(b"\r\n")
    if line_end < 0:  # no line after the boundary: an empty part
        return FilePart({}, end, 0)
    rest = line_end + 2
    if window.startswith(b"\r\n", rest):  # a part without headers
        head, content = b"", rest + 2
    else:
        head_end = window.find(b"\r\n\r\n", rest)
        head, content = (window[rest:head_end], head_end + 4) if head_end >= 0 else (b"", rest)
    content = min(start + content, end)
    return FilePart(_headers(head), content, end - content)


def locate_parts(handle: BinaryIO, boundary: str) -> Iterator[FilePart]:
    """Yield the parts of a multipart body held in a file, reading it in bounded steps.

    Parameters
    ----------
    handle
        The body, a seekable binary file (its position is moved).
    boundary
        From the request's Content-Type.

    Yields
    ------
    FilePart
        Each part in order (preamble and epilogue dropped): headers, and where its content is.
    """
    marker = boundary.encode("latin-1")
    size = handle.seek(0, io.SEEK_END)
    starts = _delimiters(handle, marker)
    current = next(starts, None)
    while current is not None:
        following = next(starts, None)
        # The content ends at the CRLF before the next delimiter (or at the end of the body).
        end = following - 2 if following is not None else size
        resume = handle.tell()
        part = _part_at(handle, current + 2 + len(marker), end)
        handle.seek(resume)
        if part is None:
            return
        yield part
        current = following


def split_parts(body: bytes, boundary: str) -> list[Part]:
    """Split a multipart body held in memory into its parts (as :func:`locate_parts`).

    Parameters
    ----------
    body
        The whole body.
    boundary
        From the Content-Type.

    Returns
    -------
    list of Part
        The parts, in order (preamble and epilogue dropped).
    """
    return [
        Part(p.headers, body[p.offset : p.offset + p.length])
        for p in locate_parts(io.BytesIO(body), boundary)
    ]
