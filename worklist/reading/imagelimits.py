"""Size limits checked before the web app decodes an archived image.

A stored file can be hostile: a header that announces 60000 x 60000 pixels, or a dataset in
Deflated Explicit VR Little Endian that inflates to gigabytes. Decoding either would take the web
process down, so every decode of the web app (the key image, DICOMweb rendered images,
thumbnails and frames) reads the file through :func:`read_image`, which

1. inflates a deflated dataset in bounded steps, counting, and refuses it past
   ``max_decoded_bytes`` (pydicom itself inflates the whole dataset in one call);
2. reads the header without the pixel data and refuses an image whose one frame has more than
   ``max_pixels`` pixels, or whose decoded frames (Rows x Columns x Samples x bytes per sample
   x frames decoded) need more than ``max_decoded_bytes``.

A refused image raises :class:`ImageTooLargeError` (an :class:`~models.errors.Invalid`: the web
app answers 422) and is logged. PIL's own limit (``Image.MAX_IMAGE_PIXELS``) is set to
``max_pixels`` by the web app, for any PNG or JPEG it opens.
"""

from __future__ import annotations

import logging
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import DeflatedExplicitVRLittleEndian

from models.errors import Invalid
from models.preprocess import is_decoder_panic
from worklist.settings import WorklistSettings

__all__ = [
    "ImageLimits",
    "ImageTooLargeError",
    "check_header",
    "check_inflated",
    "image_limits",
    "is_decoder_panic",
    "read_image",
]

logger = logging.getLogger(__name__)

DEFAULT_MAX_PIXELS = 36_000_000
"""Pixels of one frame (6000 x 6000; a large mammogram has about 23 million)."""
DEFAULT_MAX_DECODED_BYTES = 512 * 1024 * 1024
"""Bytes one request may decode (inflated dataset, or decoded frames)."""
_CHUNK = 1024 * 1024


class ImageTooLargeError(Invalid):
    """An archived image is larger than the web app's decode limits (it is not decoded)."""


@dataclass(frozen=True)
class ImageLimits:
    """How large an image the web app decodes.

    Attributes
    ----------
    max_pixels
        Most pixels (Rows x Columns) of one frame.
    max_decoded_bytes
        Most bytes one decode may produce: an inflated dataset, or the frames decoded.
    """

    max_pixels: int = DEFAULT_MAX_PIXELS
    max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES


def image_limits(settings: WorklistSettings) -> ImageLimits:
    """Return the limits that ``web_max_image_pixels`` and ``web_max_decoded_bytes`` set."""
    return ImageLimits(settings.web_max_image_pixels, settings.web_max_decoded_bytes)


def _dataset_offset(head: bytes) -> int | None:
    """Return where the dataset starts after a preamble and a file meta with its group length."""
    if len(head) < 144 or head[128:132] != b"DICM" or head[132:138] != b"\x02\x00\x00\x00UL":
        return None
    (length,) = struct.unpack("<I", head[140:144])
    return 144 + int(length)


def check_inflated(path: Path, limits: ImageLimits) -> None:
    """Refuse a deflated dataset that inflates past ``limits.max_decoded_bytes``.

    Inflates in steps of 1 MiB, keeping none of it, so memory stays flat whatever the ratio.
    A file in any other transfer syntax passes untouched.

    Raises
    ------
    ImageTooLargeError
        If it inflates past the limit, or its file meta cannot be located to check it.
    """
    meta = pydicom.filereader.read_file_meta_info(path)
    if str(meta.get("TransferSyntaxUID", "")) != DeflatedExplicitVRLittleEndian:
        return
    with path.open("rb") as fh:
        offset = _dataset_offset(fh.read(144))
        if offset is None:
            raise _refused(path, "a deflated dataset without a File Meta group length")
        fh.seek(offset)
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        total = 0
        while chunk := fh.read(_CHUNK):
            data = inflater.decompress(chunk, _CHUNK)
            while True:
                total += len(data)
                if total > limits.max_decoded_bytes:
                    raise _refused(
                        path, f"its deflated dataset inflates past {limits.max_decoded_bytes} bytes"
                    )
                if not inflater.unconsumed_tail:
                    break
                data = inflater.decompress(inflater.unconsumed_tail, _CHUNK)


def _int(ds: Dataset, keyword: str, default: int) -> int:
    try:
        value = ds.get(keyword, default)
        return int(value if value not in (None, "") else default)
    except (TypeError, ValueError):
        return default


def check_header(
    ds: Dataset, limits: ImageLimits, *, frames: int | None = 1, name: str = ""
) -> None:
    """Refuse an image whose header announces more than ``limits`` allow, before decoding it.

    Parameters
    ----------
    ds
        The dataset (its pixel data need not be read).
    limits
        The limits.
    frames
        How many frames will be decoded; ``None``: all of them (Number of Frames).
    name
        What to call the image in the error and the log.

    Raises
    ------
    ImageTooLargeError
        If one frame has more than ``max_pixels`` pixels, or the frames decoded more than
        ``max_decoded_bytes`` bytes.
    """
    rows, columns = _int(ds, "Rows", 0), _int(ds, "Columns", 0)
    samples = max(1, _int(ds, "SamplesPerPixel", 1))
    bytes_per_sample = max(1, (_int(ds, "BitsAllocated", 16) + 7) // 8)
    count = max(1, _int(ds, "NumberOfFrames", 1)) if frames is None else max(1, frames)
    pixels = rows * columns
    if pixels > limits.max_pixels:
        raise _refused(name, f"{rows} x {columns} pixels exceed {limits.max_pixels} per frame")
    decoded = pixels * samples * bytes_per_sample * count
    if decoded > limits.max_decoded_bytes:
        raise _refused(
            name, f"{count} frame(s) decode to {decoded} bytes (at most {limits.max_decoded_bytes})"
        )


def read_image(
    path: Path, limits: ImageLimits, *, frames: int | None = 1, defer: bool = False
) -> Dataset:
    """Read an archived image for decoding, once its size passes ``limits``.

    Parameters
    ----------
    path
        The file.
    limits
        The limits.
    frames
        How many frames the caller will decode (``None``: all).
    defer
        Leave large values on disk until used.

    Returns
    -------
    pydicom.dataset.Dataset
        The whole dataset.

    Raises
    ------
    ImageTooLargeError
        If the file breaks the limits (nothing decoded).
    OSError, pydicom.errors.InvalidDicomError
        If it cannot be read.
    """
    check_inflated(path, limits)
    check_header(
        pydicom.dcmread(path, stop_before_pixels=True), limits, frames=frames, name=str(path)
    )
    return pydicom.dcmread(path, defer_size=1024 if defer else None)


def _refused(what: Path | str, reason: str) -> ImageTooLargeError:
    logger.warning("image %s not decoded: %s", what, reason)
    return ImageTooLargeError(f"the image is too large to decode: {reason}")
