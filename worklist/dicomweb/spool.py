"""The body of a STOW-RS request, streamed to an unnamed temporary file with its size capped.

The body never sits whole in memory: each chunk the server receives is decoded (when the
request has ``Content-Encoding: gzip`` or ``deflate``, inflated in steps of at most
:data:`STEP_BYTES`) and appended to an unnamed temporary file (``O_TMPFILE`` where the
filesystem has it, so nothing is left behind by a crash) in the archive's filesystem. A body
that announces (``Content-Length``), sends or inflates to more than the limit is refused with
:class:`~worklist.dicomweb.errors.RequestTooLargeError` (HTTP 413) at once: before reading it
for an announced length, as soon as the limit is passed otherwise, keeping nothing.
"""

from __future__ import annotations

import logging
import tempfile
import zlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import BinaryIO

from anyio import to_thread

from worklist.dicomweb.errors import (
    RequestTooLargeError,
    UnsupportedMediaTypeError,
    WrongQueryError,
)

__all__ = ["ENCODINGS", "SPOOL_DIR", "STEP_BYTES", "check_announced", "spool_body"]

logger = logging.getLogger(__name__)

SPOOL_DIR = ".stow"
"""Folder of the archive where request bodies are spooled (unnamed files: it stays empty)."""

STEP_BYTES = 1024 * 1024
"""Most bytes one inflate step produces, and bytes gathered before each write."""

ENCODINGS = ("identity", "gzip", "x-gzip", "deflate")
"""The Content-Encoding values a STOW-RS request may carry (others: 415)."""


def _too_large(what: str, limit: int) -> RequestTooLargeError:
    return RequestTooLargeError(f"the request body {what} more than {limit} bytes (the limit)")


def check_announced(content_length: str | None, encoding: str, limit: int) -> None:
    """Refuse, before reading the body, one announced past ``limit`` or in an unknown coding.

    Parameters
    ----------
    content_length
        The request's Content-Length header (``None``: absent, e.g. chunked).
    encoding
        The request's Content-Encoding header ('' if none).
    limit
        Most bytes of the body.

    Raises
    ------
    RequestTooLargeError
        If Content-Length exceeds ``limit``.
    UnsupportedMediaTypeError
        If the Content-Encoding is not one of :data:`ENCODINGS`.
    """
    codings = [c.strip().lower() for c in encoding.split(",") if c.strip()]
    if len(codings) > 1 or any(c not in ENCODINGS for c in codings):
        raise UnsupportedMediaTypeError(
            f"Content-Encoding {encoding!r} is not served (gzip, deflate or none)"
        )
    announced = (content_length or "").strip()
    if announced.isdigit() and int(announced) > limit:
        raise _too_large("announces", limit)


class _Inflater:
    """Undo a Content-Encoding in bounded steps (``deflate`` with or without its zlib header)."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding.strip().lower()
        self.inflater: zlib._Decompress | None = None
        if self.encoding in ("gzip", "x-gzip"):
            self.inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Yield the decoded bytes of ``data``, at most :data:`STEP_BYTES` at a time."""
        if self.encoding in ("", "identity"):
            yield data
            return
        if self.inflater is None:  # deflate: RFC 9110 says zlib format; some send raw deflate
            zlib_header = (
                len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0
            )
            self.inflater = zlib.decompressobj(zlib.MAX_WBITS if zlib_header else -zlib.MAX_WBITS)
        pending = data
        try:
            while pending and not self.inflater.eof:
                yield self.inflater.decompress(pending, STEP_BYTES)
                pending = self.inflater.unconsumed_tail
        except zlib.error as exc:
            raise WrongQueryError(
                f"the {self.encoding} request body does not inflate: {exc}"
            ) from exc

    def finish(self) -> None:
        """Refuse an encoded body that ended before its compressed stream did."""
        if self.inflater is not None and not self.inflater.eof:
            raise WrongQueryError(f"the {self.encoding} request body is truncated")


async def spool_body(
    chunks: AsyncIterator[bytes], *, encoding: str, limit: int, directory: Path
) -> BinaryIO:
    """Stream a request body to an unnamed temporary file, decoded and capped at ``limit``.

    Parameters
    ----------
    chunks
        The body as the server receives it (Starlette's ``request.stream()``).
    encoding
        The request's Content-Encoding ('' if none; checked by :func:`check_announced`).
    limit
        Most bytes received, and most bytes decoded.
    directory
        Where the file is made (created if missing): the archive's ``.stow`` folder.

    Returns
    -------
    BinaryIO
        The decoded body, flushed; the caller closes it (which frees it).

    Raises
    ------
    RequestTooLargeError
        As soon as more than ``limit`` bytes arrive or decode; nothing more is read.
    WrongQueryError
        If an encoded body does not inflate.
    """
    directory.mkdir(parents=True, exist_ok=True)
    handle: BinaryIO = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115  (returned open)
    inflater = _Inflater(encoding)
    received = written = 0
    pending: list[bytes] = []
    pending_bytes = 0
    try:
        async for chunk in chunks:
            received += len(chunk)
            if received > limit:
                raise _too_large("sends", limit)
            for piece in inflater.feed(chunk):
                written += len(piece)
                if written > limit:
                    raise _too_large("inflates to", limit)
                pending.append(piece)
                pending_bytes += len(piece)
                if pending_bytes >= STEP_BYTES:
                    await to_thread.run_sync(handle.write, b"".join(pending))
                    pending, pending_bytes = [], 0
        inflater.finish()
        if pending:
            await to_thread.run_sync(handle.write, b"".join(pending))
        await to_thread.run_sync(handle.flush)
    except BaseException:
        handle.close()
        raise
    logger.debug("STOW-RS body spooled: %d bytes received, %d decoded", received, written)
    return handle
