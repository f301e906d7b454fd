"""WADO-RS frames and rendered images of one instance.

Frames are returned in the transfer syntax the Accept header asks for, in its order of
preference: ``transfer-syntax=*`` or the stored syntax gives the stored frames unchanged
(compressed frames as their fragments); ``application/octet-stream`` without a syntax, or with
Explicit VR Little Endian, gives native pixels (decoded if stored compressed); RLE Lossless,
JPEG-LS Lossless and JPEG 2000 Lossless are produced by transcoding when asked for.
Rendered images and thumbnails are windowed exactly as the key image is
(:func:`worklist.reading.keyimage.window_to_uint8`) and sent as JPEG or PNG.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path

from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import generate_frames
from pydicom.errors import InvalidDicomError
from pydicom.pixels.utils import pixel_array
from pydicom.uid import (
    UID,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
)

from models.errors import TriageError
from worklist.dicomweb.errors import (
    NotAcceptableError,
    ResourceNotFoundError,
    UndecodableImageError,
    WrongQueryError,
)
from worklist.dicomweb.wado import Wanted
from worklist.reading.imagelimits import ImageLimits, check_header, is_decoder_panic, read_image
from worklist.reading.keyimage import window_to_uint8

__all__ = ["Frames", "frame_numbers", "frames", "render"]

logger = logging.getLogger(__name__)

OCTET = "application/octet-stream"
MEDIA_OF_SYNTAX = {
    "1.2.840.10008.1.2.4.50": "image/jpeg",
    "1.2.840.10008.1.2.4.51": "image/jpeg",
    "1.2.840.10008.1.2.4.57": "image/jpeg",
    "1.2.840.10008.1.2.4.70": "image/jpeg",
    "1.2.840.10008.1.2.4.80": "image/jls",
    "1.2.840.10008.1.2.4.81": "image/jls",
    "1.2.840.10008.1.2.4.90": "image/jp2",
    "1.2.840.10008.1.2.4.91": "image/jp2",
    "1.2.840.10008.1.2.4.201": "image/jphc",
    "1.2.840.10008.1.2.4.202": "image/jphc",
    "1.2.840.10008.1.2.4.203": "image/jphc",
    "1.2.840.10008.1.2.5": "image/dicom-rle",
}
TRANSCODE_TO = {
    str(RLELossless): "image/dicom-rle",
    str(JPEGLSLossless): "image/jls",
    str(JPEG2000Lossless): "image/jp2",
}
"""Syntaxes this server encodes on request, and their media types."""
RENDER_MEDIA = {"image/jpeg": "JPEG", "image/png": "PNG"}
THUMBNAIL_SIDE = 128


@dataclass(frozen=True)
class Frames:
    """Frames of one instance in one representation."""

    media: str
    transfer_syntax: str
    data: list[bytes]

    @property
    def content_type(self) -> str:
        """The Content-Type of each body part."""
        return f"{self.media}; transfer-syntax={self.transfer_syntax}"


def frame_numbers(text: str) -> list[int]:
    """Parse a frame list (``1`` or ``1,3,5``; numbers from 1).

    Raises
    ------
    WrongQueryError
        If an item is not a positive integer.
    """
    try:
        numbers = [int(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise WrongQueryError(f"frame list {text!r} is not a list of integers") from None
    if not numbers or min(numbers) < 1:
        raise WrongQueryError("frame numbers start at 1")
    return numbers


def _count(ds: Dataset) -> int:
    try:
        return max(1, int(ds.get("NumberOfFrames", 1) or 1))
    except (TypeError, ValueError):
        return 1


def _stored(ds: Dataset, syntax: UID, numbers: list[int]) -> list[bytes]:
    count = _count(ds)
    if syntax.is_encapsulated:
        stored = list(generate_frames(ds.PixelData, number_of_frames=count))
        return [stored[n - 1] for n in numbers]
    size = len(ds.PixelData) // count
    return [bytes(ds.PixelData[(n - 1) * size : n * size]) for n in numbers]


def _native(ds: Dataset, syntax: UID, numbers: list[int]) -> list[bytes]:
    if not syntax.is_encapsulated and syntax.is_little_endian and ds.BitsAllocated % 8 == 0:
        return _stored(ds, syntax, numbers)
    return [pixel_array(ds, index=n - 1).tobytes() for n in numbers]


def _transcode(ds: Dataset, target: str, numbers: list[int], limits: ImageLimits) -> list[bytes]:
    check_header(ds, limits, frames=None)  # transcoding decodes every frame
    copy = ds.copy()
    copy.file_meta = FileMetaDataset(ds.file_meta)
    if UID(str(ds.file_meta.TransferSyntaxUID)).is_encapsulated:
        copy.decompress()
    copy.compress(UID(target))
    return _stored(copy, UID(target), numbers)


def _read(path: Path, limits: ImageLimits, frames: int | None) -> Dataset:
    """Read an instance once its size passes ``limits`` (:func:`read_image`)."""
    try:
        return read_image(path, limits, frames=frames)
    except (OSError, InvalidDicomError) as exc:
        raise ResourceNotFoundError(f"instance file cannot be read: {exc}") from exc


def _try(
    ds: Dataset, syntax: UID, want: Wanted, numbers: list[int], limits: ImageLimits
) -> Frames | None:
    stored_media = MEDIA_OF_SYNTAX.get(str(syntax), OCTET)
    ts = want.transfer_syntax
    if ts == "*" or ts == str(syntax) or (ts is None and want.media == stored_media != OCTET):
        return Frames(stored_media, str(syntax), _stored(ds, syntax, numbers))
    if want.media in (OCTET, "*/*") and ts in (None, str(ExplicitVRLittleEndian)):
        return Frames(OCTET, str(ExplicitVRLittleEndian), _native(ds, syntax, numbers))
    target = ts or next((t for t, m in TRANSCODE_TO.items() if m == want.media), None)
    if target in TRANSCODE_TO and want.media in (TRANSCODE_TO[target], "*/*"):
        try:
            return Frames(TRANSCODE_TO[target], target, _transcode(ds, target, numbers, limits))
        except (RuntimeError, ValueError, NotImplementedError, AttributeError) as exc:
            logger.info("cannot transcode to %s: %s", target, exc)
    return None


def frames(
    path: Path, numbers: list[int], accept: list[Wanted], limits: ImageLimits | None = None
) -> Frames:
    """Return frames of an archived instance in the first representation ``accept`` allows.

    Parameters
    ----------
    path
        The instance's file.
    numbers
        Frame numbers (from 1).
    accept
        The acceptable representations, preferred first.
    limits
        Refuse, before decoding, an instance larger than these (default: :class:`ImageLimits`).

    Returns
    -------
    Frames
        The frames, their media type and transfer syntax.

    Raises
    ------
    ResourceNotFoundError
        If the instance has no pixel data or fewer frames.
    NotAcceptableError
        If no acceptable representation can be produced.
    ImageTooLargeError
        If the instance is larger than ``limits`` (nothing decoded).
    UndecodableImageError
        If its pixel data cannot be decoded.
    """
    limits = limits or ImageLimits()
    ds = _read(path, limits, len(numbers))  # a frame asked for twice is sent twice
    if "PixelData" not in ds:
        raise ResourceNotFoundError("the instance has no pixel data")
    if max(numbers) > _count(ds):
        raise ResourceNotFoundError(f"the instance has {_count(ds)} frame(s)")
    syntax = UID(str(ds.file_meta.TransferSyntaxUID))
    for want in accept:
        try:
            found = _try(ds, syntax, want, numbers, limits)
        except TriageError:
            raise
        except Exception as exc:  # pydicom's decoders raise many kinds on a misleading header
            raise _undecodable(path, exc) from exc
        except BaseException as exc:
            if not is_decoder_panic(exc):
                raise
            raise _undecodable(path, exc) from exc
        if found is not None:
            return found
    raise NotAcceptableError(
        f"frames are available as stored ({syntax}), as {OCTET} (Explicit VR Little Endian) "
        f"or transcoded to {', '.join(TRANSCODE_TO)}"
    )


def render(
    path: Path,
    accept: list[str],
    *,
    thumbnail: bool,
    viewport: str = "",
    limits: ImageLimits | None = None,
) -> tuple[bytes, str]:
    """Render the first frame of an instance as JPEG or PNG.

    Parameters
    ----------
    path
        The instance's file.
    accept
        Acceptable media types, preferred first (``image/jpeg`` when none fits).
    thumbnail
        Fit in 128 x 128 unless ``viewport`` says otherwise.
    viewport
        ``width,height`` to fit the image in.
    limits
        Refuse, before decoding, an instance larger than these (default: :class:`ImageLimits`).

    Returns
    -------
    tuple of bytes and str
        The image and its media type.

    Raises
    ------
    ImageTooLargeError
        If the instance is larger than ``limits`` (nothing decoded).
    UndecodableImageError
        If its pixel data cannot be decoded.
    """
    media = next((m for m in accept if m in RENDER_MEDIA), "image/jpeg")
    ds = _read(path, limits or ImageLimits(), 1)
    if "PixelData" not in ds:
        raise ResourceNotFoundError("the instance has no pixel data to render")
    try:
        image = Image.fromarray(window_to_uint8(ds))
    except Exception as exc:  # pydicom's decoders raise many kinds on a misleading header
        raise _undecodable(path, exc) from exc
    except BaseException as exc:
        if not is_decoder_panic(exc):
            raise
        raise _undecodable(path, exc) from exc
    box = _viewport(viewport) or ((THUMBNAIL_SIDE, THUMBNAIL_SIDE) if thumbnail else None)
    if box is not None:
        image.thumbnail(box, Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format=RENDER_MEDIA[media])
    return out.getvalue(), media


def _undecodable(path: Path, exc: BaseException) -> UndecodableImageError:
    """Log why a stored instance did not decode; return the error the web app answers 422."""
    logger.warning("instance %s not decoded: %s: %s", path, type(exc).__name__, exc)
    return UndecodableImageError(f"the instance's pixel data cannot be decoded: {exc}")


def _viewport(text: str) -> tuple[int, int] | None:
    if not text:
        return None
    try:
        width, height = (int(v) for v in text.split(",")[:2])
    except ValueError:
        raise WrongQueryError(f"viewport {text!r} is not width,height") from None
    if width < 1 or height < 1:
        raise WrongQueryError("viewport sides must be positive")
    return width, height
