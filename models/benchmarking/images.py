"""From an image file of a dataset to the model's input tensor, in a decoding process.

DICOM files go through :func:`models.preprocess.preprocess_dataset`, the function the worker's
:meth:`models.runtime.LoadedModel.preprocess` calls. Other images (PNG, JPEG: the published
form of NIH ChestX-ray14, CheXpert, MIMIC-CXR-JPG, PadChest) are decoded with Pillow: a grey
image keeps its stored values (8 or 16 bits), a colour one becomes luminance
``0.299 R + 0.587 G + 0.114 B``; they are display-ready, so no Modality LUT, VOI LUT, window or
MONOCHROME1 inversion applies; then :func:`models.preprocess.preprocess_plane` does the card's
resize, scaling to [0, 1], normalisation and channels, exactly as for DICOM.

Each image is identified by the sha256 of its file's bytes (the cache key).
"""

from __future__ import annotations

import hashlib
import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from models.card import InputSpec, Preprocessing
from models.errors import PreprocessError

__all__ = ["DecodeSpec", "Decoded", "decode_file", "image_tensor", "is_dicom"]

logger = logging.getLogger(__name__)

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
_DICOM_SUFFIXES = frozenset({".dcm", ".dicom", ".dic"})


@dataclass(frozen=True)
class DecodeSpec:
    """What a decoding process needs: the card's preprocessing and input, and the images done.

    Attributes
    ----------
    preprocessing, input
        The card's blocks.
    cached
        sha256 of the images whose predictions are cached: they are hashed, not decoded.
    """

    preprocessing: Preprocessing
    input: InputSpec
    cached: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Decoded:
    """One image read: its sha256 and its tensor (``None`` when cached or unreadable).

    ``error`` says why an image could not be read or preprocessed (its path named); its
    ``sha256`` is empty when the file itself could not be read.
    """

    path: Path
    sha256: str
    tensor: npt.NDArray[np.float32] | None
    error: str | None = None


def is_dicom(data: bytes, path: Path) -> bool:
    """Return whether a file is DICOM: the ``DICM`` preamble marker, or a DICOM suffix.

    Parameters
    ----------
    data
        The file's bytes.
    path
        The file's path.

    Returns
    -------
    bool
        True for DICOM.
    """
    return data[128:132] == b"DICM" or path.suffix.lower() in _DICOM_SUFFIXES


def _grey_plane(data: bytes, path: Path) -> npt.NDArray[np.float32]:
    from PIL import Image, UnidentifiedImageError

    try:
        # Pillow refuses images over twice Image.MAX_IMAGE_PIXELS (about 179 million pixels)
        # before decoding them (DecompressionBombError, not an OSError).
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            if image.mode in ("L", "I", "F") or image.mode.startswith("I;16"):
                pixels: npt.NDArray[Any] = np.asarray(image)
                return pixels.astype(np.float32)
            if image.mode == "1":
                return np.asarray(image.convert("L"), dtype=np.float32)
            rgb = np.asarray(image.convert("RGB"), dtype=np.float32)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as exc:
        raise PreprocessError(f"{path}: not an image Pillow can read: {exc}") from exc
    plane: npt.NDArray[np.float32] = rgb @ _LUMA
    return plane


def image_tensor(
    data: bytes, path: Path, preprocessing: Preprocessing, input_spec: InputSpec
) -> npt.NDArray[np.float32]:
    """Turn one image file's bytes into the model's ``(C, H, W)`` float32 input.

    Parameters
    ----------
    data
        The file's bytes.
    path
        The file (for its suffix and for error messages).
    preprocessing, input_spec
        The card's preprocessing and input blocks.

    Returns
    -------
    numpy.ndarray
        The tensor.

    Raises
    ------
    PreprocessError
        If the file cannot be decoded or preprocessed; the message names it.
    """
    from models.preprocess import preprocess_dataset, preprocess_plane

    if is_dicom(data, path):
        import pydicom
        from pydicom.errors import InvalidDicomError

        try:
            ds = pydicom.dcmread(io.BytesIO(data))
        except (InvalidDicomError, OSError, ValueError, EOFError) as exc:
            raise PreprocessError(f"{path}: not a readable DICOM file: {exc}") from exc
        try:
            return preprocess_dataset(ds, preprocessing, input_spec)
        except PreprocessError as exc:
            raise PreprocessError(f"{path}: {exc}") from exc
    return preprocess_plane(_grey_plane(data, path), False, preprocessing, input_spec, str(path))


def decode_file(path: Path, spec: DecodeSpec) -> Decoded:
    """Read, hash and (unless cached) preprocess one image file.

    Parameters
    ----------
    path
        The image.
    spec
        The card's blocks and the cached hashes.

    Returns
    -------
    Decoded
        Its sha256 and tensor (``None`` when its prediction is cached), or the error that
        kept it from being read or preprocessed (the caller decides whether that stops a run).
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        return Decoded(path, "", None, f"{path}: cannot be read: {exc.strerror or exc}")
    digest = hashlib.sha256(data).hexdigest()
    if digest in spec.cached:
        return Decoded(path, digest, None)
    try:
        tensor = image_tensor(data, path, spec.preprocessing, spec.input)
    except PreprocessError as exc:
        return Decoded(path, digest, None, str(exc))
    return Decoded(path, digest, tensor)


_SPEC: DecodeSpec | None = None


def init_process(spec: DecodeSpec) -> None:
    """Initialise a decoding process (the pool's initializer): keep ``spec`` for its tasks."""
    global _SPEC  # one spec per decoding process, set once
    _SPEC = spec


def decode_chunk(paths: list[Path]) -> list[Decoded]:
    """Decode a chunk of files in a process set up by :func:`init_process`."""
    if _SPEC is None:
        raise RuntimeError("decode_chunk runs in a process set up by init_process")
    return [decode_file(path, _SPEC) for path in paths]
