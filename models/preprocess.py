"""From a DICOM dataset to a model's input tensor.

The steps, in order, for one image (all vectorised numpy; no torch):

1. Decode the **first frame** through pydicom's pixel decoders (pylibjpeg and GDCM plugins for
   JPEG baseline/extended/lossless, JPEG-LS, JPEG 2000 and RLE). pydicom masks the unused high
   bits of each stored value and sign-extends signed data, so *Bits Stored* is respected. A
   multi-frame image is scored by its first frame; its Modality LUT and VOI attributes are taken
   from the per-frame functional groups of frame 1 when present, then from the shared ones, then
   from the top level.
2. Greyscale (MONOCHROME1/2): the Modality LUT or rescale (``modality_lut``), then the card's
   forced window, or else the dataset's VOI LUT or window (``voi_lut``), through pydicom's
   :func:`~pydicom.pixels.apply_modality_lut` and :func:`~pydicom.pixels.apply_voi_lut`.
   Colour (RGB, YBR_* converted to RGB by the decoder, PALETTE COLOR through its LUT): luminance
   ``0.299 R + 0.587 G + 0.114 B`` (ITU-R BT.601); LUTs and windows do not apply.
3. Resize to the card's size with Pillow (``nearest``, ``bilinear``, or ``area`` = box filter).
4. Scale to [0, 1] by the image's own minimum and maximum (a constant image becomes 0), then
   invert MONOCHROME1 (``1 - x``) so that dense tissue is always bright.
5. Normalise: ``minmax`` keeps [0, 1]; ``zscore`` applies ``(x - mean) / std`` with the card's
   values, or the image's own mean and deviation when the card gives none.
6. Replicate grey into three channels when the model wants three.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.pixels.decoders.base import get_decoder
from pydicom.pixels.processing import apply_color_lut, apply_modality_lut, apply_voi_lut
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from models.card import InputSpec, Interpolation, NormalisationKind, Preprocessing, Window
from models.errors import PreprocessError

__all__ = [
    "decode_first_frame",
    "is_decoder_panic",
    "preprocess_dataset",
    "preprocess_plane",
    "to_grey",
]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float32]

_RESAMPLE = {
    Interpolation.NEAREST: Image.Resampling.NEAREST,
    Interpolation.BILINEAR: Image.Resampling.BILINEAR,
    Interpolation.AREA: Image.Resampling.BOX,
}
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
_GREY = ("MONOCHROME1", "MONOCHROME2")

# Attributes of the Image Pixel, Modality LUT and VOI LUT modules that the LUT functions read.
_PIXEL_KEYWORDS = (
    "PhotometricInterpretation",
    "BitsAllocated",
    "BitsStored",
    "PixelRepresentation",
    "ModalityLUTSequence",
    "RescaleSlope",
    "RescaleIntercept",
    "RescaleType",
    "VOILUTSequence",
    "WindowCenter",
    "WindowWidth",
    "VOILUTFunction",
)
# Functional group macros (enhanced multi-frame) that carry the same attributes.
_GROUP_MACROS = ("PixelValueTransformationSequence", "FrameVOILUTSequence")


def _describe(ds: Dataset) -> str:
    uid = ds.get("SOPInstanceUID")
    return f"instance {uid}" if uid else "dataset"


def _transfer_syntax(ds: Dataset) -> UID:
    meta = getattr(ds, "file_meta", None)
    uid = meta.get("TransferSyntaxUID") if meta is not None else None
    if uid:
        return UID(str(uid))
    implicit, little = getattr(ds, "original_encoding", (None, None))
    if little is False:
        raise PreprocessError(f"{_describe(ds)}: big endian data without a transfer syntax")
    return ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian


def is_decoder_panic(exc: BaseException) -> bool:
    """Return whether ``exc`` is a Rust pixel decoder's panic (pyo3's ``PanicException``).

    pylibjpeg-rle panics on a malformed RLE segment, and pyo3 raises the panic as a
    ``BaseException``, which ``except Exception`` does not catch. Decoders of received images
    (the worker's preprocessing, the web app's images) treat it as any other decoding failure.

    Parameters
    ----------
    exc
        The exception raised by a decoder.

    Returns
    -------
    bool
        ``True`` for a decoder's panic.
    """
    return type(exc).__name__ == "PanicException"


def decode_first_frame(ds: Dataset) -> tuple[npt.NDArray[Any], str]:
    """Decode the first frame of a dataset's pixel data.

    Parameters
    ----------
    ds
        A dataset with *Pixel Data* in any transfer syntax a pydicom plugin can decode.

    Returns
    -------
    tuple of numpy.ndarray and str
        The frame (``(rows, columns)`` or ``(rows, columns, samples)``) and its photometric
        interpretation after decoding (YBR colour is converted to RGB).

    Raises
    ------
    PreprocessError
        If there is no pixel data, no plugin can decode it, or decoding fails.
    """
    if "PixelData" not in ds:
        raise PreprocessError(f"{_describe(ds)}: no Pixel Data (7FE0,0010)")
    tsyntax = _transfer_syntax(ds)
    try:
        decoder = get_decoder(tsyntax)
    except NotImplementedError as exc:
        raise PreprocessError(
            f"{_describe(ds)}: transfer syntax {tsyntax.name} ({tsyntax}) is not supported"
        ) from exc
    if not decoder.is_available:
        raise PreprocessError(
            f"{_describe(ds)}: no installed plugin decodes {tsyntax.name}; "
            "install pylibjpeg-libjpeg, pylibjpeg-openjpeg or python-gdcm"
        )
    try:
        arr, meta = decoder.as_array(ds, index=0)  # YBR is converted to RGB by default
    except BaseException as exc:  # decoders raise many types (a Rust one panics); one for callers
        if not isinstance(exc, Exception) and not is_decoder_panic(exc):
            raise  # KeyboardInterrupt, SystemExit: not a decoding failure
        raise PreprocessError(f"{_describe(ds)}: cannot decode {tsyntax.name}: {exc}") from exc
    return arr, str(meta.get("photometric_interpretation", ds.PhotometricInterpretation))


def _frame_dataset(ds: Dataset, photometric: str) -> Dataset:
    """Gather the LUT attributes of the first frame into a small dataset.

    pydicom's LUT functions read top-level attributes; enhanced multi-frame images keep them in
    functional groups. Building a separate dataset also keeps the caller's dataset unmodified.
    """
    frame = Dataset()
    _copy_pixel_keywords(ds, frame)
    for sequence in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        items = ds.get(sequence)  # per-frame values, read last, win over shared ones
        if items:
            for macro in _GROUP_MACROS:
                macro_items = items[0].get(macro)
                if macro_items:
                    _copy_pixel_keywords(macro_items[0], frame)
    frame.PhotometricInterpretation = photometric
    if hasattr(ds, "file_meta"):
        frame.file_meta = ds.file_meta
    return frame


def _copy_pixel_keywords(source: Dataset, frame: Dataset) -> None:
    """Copy the pixel and LUT attributes that ``source`` has onto ``frame``."""
    for keyword in _PIXEL_KEYWORDS:
        if keyword in source:
            setattr(frame, keyword, source[keyword].value)


def _forced_window(arr: npt.NDArray[Any], window: Window) -> FloatArray:
    """Apply the DICOM LINEAR window function (PS3.3 C.11.2.1.2.1), output in [0, 1]."""
    center = window.center - 0.5
    width = max(window.width - 1.0, 1e-6)
    out = (arr.astype(np.float32) - np.float32(center)) / np.float32(width) + np.float32(0.5)
    return np.clip(out, 0.0, 1.0, out=out)


def _first(value: Any) -> float:
    """Return the first value of a possibly multi-valued DS element."""
    if isinstance(value, MultiValue | list | tuple):
        return float(value[0])
    return float(value)


def _output_range(frame: Dataset) -> tuple[float, float]:
    """Return the windowing output range, as PS3.3 C.11.2.1.2 and pydicom define it."""
    if frame.get("ModalityLUTSequence"):
        depth = int(frame.ModalityLUTSequence[0].LUTDescriptor[2])
        y_min, y_max = 0.0, float(2**depth - 1)
    elif frame.get("PixelRepresentation", 0) == 0:
        y_min, y_max = 0.0, float(2 ** int(frame.BitsStored) - 1)
    else:
        y_min, y_max = (
            float(-(2 ** (int(frame.BitsStored) - 1))),
            float(2 ** (int(frame.BitsStored) - 1) - 1),
        )
    slope, intercept = frame.get("RescaleSlope"), frame.get("RescaleIntercept")
    if slope is not None and intercept is not None:
        y_min = y_min * float(slope) + float(intercept)
        y_max = y_max * float(slope) + float(intercept)
    return y_min, y_max


def _apply_voi(values: npt.NDArray[Any], frame: Dataset) -> npt.NDArray[Any]:
    """Apply the dataset's VOI LUT or window.

    LINEAR and LINEAR_EXACT windows are computed here in float32 with one clip, giving what
    :func:`pydicom.pixels.apply_voi_lut` gives (tested) about ten times faster on a full-size
    radiograph; VOI LUT tables and SIGMOID windows go to pydicom.
    """
    has_lut = bool(frame.get("VOILUTSequence"))
    has_window = frame.get("WindowCenter") is not None and frame.get("WindowWidth") is not None
    function = str(frame.get("VOILUTFunction", "LINEAR") or "LINEAR").upper()
    if has_lut or not has_window or function not in ("LINEAR", "LINEAR_EXACT"):
        return apply_voi_lut(values, frame)
    center, width = _first(frame.WindowCenter), _first(frame.WindowWidth)
    if function == "LINEAR":
        if width < 1:
            raise ValueError("Window Width must be at least 1 for a LINEAR window")
        center, width = center - 0.5, width - 1.0
    elif width <= 0:
        raise ValueError("Window Width must be positive for a LINEAR_EXACT window")
    y_min, y_max = _output_range(frame)
    x = values.astype(np.float32, copy=False)
    if width == 0:  # LINEAR with width 1: a step at the centre
        return np.where(x > center, np.float32(y_max), np.float32(y_min)).astype(np.float32)
    out = (x - np.float32(center)) * np.float32(1.0 / width) + np.float32(0.5)
    np.clip(out, 0.0, 1.0, out=out)
    out *= np.float32(y_max - y_min)
    out += np.float32(y_min)
    return out


def to_grey(ds: Dataset, spec: Preprocessing) -> tuple[FloatArray, bool]:
    """Decode the first frame and map it to one grey plane through the LUTs.

    Parameters
    ----------
    ds
        The dataset.
    spec
        The card's preprocessing block (which LUTs to apply, a forced window).

    Returns
    -------
    tuple of numpy.ndarray and bool
        The ``(rows, columns)`` float32 plane, and whether it is MONOCHROME1 (to invert).

    Raises
    ------
    PreprocessError
        If the pixels cannot be decoded, the photometric interpretation is not supported, or a
        LUT is malformed.
    """
    arr, photometric = decode_first_frame(ds)
    try:
        if photometric in _GREY:
            if arr.ndim != 2:
                raise PreprocessError(f"{_describe(ds)}: greyscale frame of shape {arr.shape}")
            frame = _frame_dataset(ds, photometric)
            values: npt.NDArray[Any] = arr
            if spec.modality_lut:
                values = apply_modality_lut(values, frame)
            if spec.window is not None:
                values = _forced_window(values, spec.window)
            elif spec.voi_lut:
                values = _apply_voi(values, frame)
            return values.astype(np.float32, copy=False), photometric == "MONOCHROME1"
        if photometric == "PALETTE COLOR":
            arr = apply_color_lut(arr, ds)
            photometric = "RGB"
        if photometric == "RGB" and arr.ndim == 3 and arr.shape[-1] == 3:
            return arr.astype(np.float32) @ _LUMA, False
    except PreprocessError:
        raise
    except (ValueError, TypeError, AttributeError, KeyError, IndexError) as exc:
        raise PreprocessError(f"{_describe(ds)}: cannot apply LUTs: {exc}") from exc
    raise PreprocessError(
        f"{_describe(ds)}: photometric interpretation {photometric!r} is not supported"
    )


def _resize(plane: FloatArray, size: tuple[int, int], interpolation: Interpolation) -> FloatArray:
    height, width = size
    if plane.shape == (height, width):
        return plane
    image = Image.fromarray(np.ascontiguousarray(plane, dtype=np.float32))
    resized = image.resize((width, height), resample=_RESAMPLE[interpolation])
    return np.asarray(resized, dtype=np.float32)


def preprocess_dataset(ds: Dataset, spec: Preprocessing, input_spec: InputSpec) -> FloatArray:
    """Turn a DICOM dataset into one input tensor ``(C, H, W)`` float32.

    Parameters
    ----------
    ds
        The dataset (pixel data included). It is not modified.
    spec
        The card's preprocessing block.
    input_spec
        The card's input block (channels, height, width).

    Returns
    -------
    numpy.ndarray
        A C-contiguous ``(C, H, W)`` float32 array of finite values.

    Raises
    ------
    PreprocessError
        If the image cannot be decoded or mapped, or yields values that are not finite.
    """
    plane, monochrome1 = to_grey(ds, spec)
    return preprocess_plane(plane, monochrome1, spec, input_spec, _describe(ds))


def preprocess_plane(
    plane: npt.NDArray[Any],
    monochrome1: bool,
    spec: Preprocessing,
    input_spec: InputSpec,
    source: str = "image",
) -> FloatArray:
    """Turn one grey plane into an input tensor ``(C, H, W)``: steps 3 to 6 above.

    :func:`preprocess_dataset` calls it after decoding and the LUTs; an image that is not DICOM
    (PNG, JPEG) enters here with its stored grey values.

    Parameters
    ----------
    plane
        The ``(rows, columns)`` grey values.
    monochrome1
        Whether low values are bright (inverted when the card says so).
    spec
        The card's preprocessing block.
    input_spec
        The card's input block (channels, height, width).
    source
        What the plane came from, for error messages.

    Returns
    -------
    numpy.ndarray
        A C-contiguous ``(C, H, W)`` float32 array of finite values.

    Raises
    ------
    PreprocessError
        If the plane is not two-dimensional or holds values that are not finite.
    """
    plane = np.asarray(plane, dtype=np.float32)
    if plane.ndim != 2 or plane.size == 0:
        raise PreprocessError(f"{source}: expected a grey plane, got shape {plane.shape}")
    if not np.isfinite(plane).all():
        raise PreprocessError(f"{source}: pixel values are not finite")
    plane = _resize(plane, input_spec.size, spec.resize.interpolation)
    low, high = float(plane.min()), float(plane.max())
    if high > low:
        plane = (plane - np.float32(low)) / np.float32(high - low)
    else:
        plane = np.zeros_like(plane)
    if monochrome1 and spec.invert_monochrome1:
        plane = np.float32(1.0) - plane
    norm = spec.normalisation
    if norm.kind is NormalisationKind.ZSCORE:
        if norm.mean is not None and norm.std is not None:
            mean, std = np.float32(norm.mean), np.float32(norm.std)
        else:
            mean, std = np.float32(plane.mean()), np.float32(plane.std())
        plane = (plane - mean) / std if std > 0 else plane - mean
    tensor = np.repeat(plane[np.newaxis], input_spec.channels, axis=0)
    return np.ascontiguousarray(tensor, dtype=np.float32)
