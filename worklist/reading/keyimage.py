"""Render a study's key image as PNG, with the AI's heatmap overlaid when there is one.

The key image is the instance of the most probable crossed (non-shadow) finding that has a
heatmap; failing that, of the most probable finding; failing that, the study's first instance.
Pixels go through the Modality LUT and the VOI LUT / window of the file (pydicom), are scaled
to 8 bits (MONOCHROME1 inverted), and the heatmap (float32 in [0, 1], any size) is resized to the
image and blended as a semi-transparent red-to-yellow map whose opacity grows with the value.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from numpy.typing import NDArray
from PIL import Image
from pydicom.pixels.processing import apply_modality_lut, apply_voi_lut
from pydicom.pixels.utils import pixel_array
from sqlalchemy.orm import Session

from models.errors import Invalid, NotFound, TriageError
from worklist.db.schema import Finding, Instance, Study
from worklist.reading.imagelimits import ImageLimits, is_decoder_panic, read_image
from worklist.reading.queries import findings_for, instances_of

__all__ = [
    "KeyImage",
    "KeyImageError",
    "KeyImageNotFoundError",
    "UnreadableKeyImageError",
    "choose_key_image",
    "render_png",
    "render_rgb",
    "window_to_uint8",
]

logger = logging.getLogger(__name__)

MAX_SIDE = 1024
MAX_ALPHA = 0.55


class KeyImageError(TriageError):
    """The key image cannot be rendered (the base; it carries no meaning)."""


class KeyImageNotFoundError(KeyImageError, NotFound):
    """The key image's DICOM file is not in the archive."""


class UnreadableKeyImageError(KeyImageError, Invalid):
    """The key image's DICOM file has no pixels that can be read and windowed."""


@dataclass(frozen=True)
class KeyImage:
    """Where the key image and its heatmap are, relative to the archive."""

    path: str
    heatmap_path: str
    label: str


def choose_key_image(session: Session, study: Study) -> KeyImage | None:
    """Choose the instance (and heatmap) to show for a study, or ``None`` without instances."""
    findings: list[Finding] = findings_for(session, [study.id])[study.id]
    chosen: Finding | None = None
    crossed = [f for f in findings if f.crossed]
    for candidates in ([f for f in crossed if f.heatmap_path], crossed, findings):
        if candidates:
            chosen = candidates[0]
            break
    instances: list[Instance] = instances_of(session, study.id)
    if chosen is not None:
        for inst in instances:
            if inst.sop_instance_uid == chosen.sop_instance_uid:
                heatmap = chosen.heatmap_path if chosen.crossed else ""
                return KeyImage(inst.path, heatmap, chosen.label)
    if not instances:
        return None
    return KeyImage(instances[0].path, "", "")


def window_to_uint8(ds: pydicom.Dataset) -> NDArray[np.uint8]:
    """Return the first frame of ``ds`` windowed for display as 8-bit grey (the key image's way).

    Modality LUT, then the VOI LUT or window of the file, then the 0.5-99.5 percentile range
    scaled to 0-255; MONOCHROME1 is inverted and colour shown as grey.
    """
    arr = pixel_array(ds, index=0)  # decode the first frame only
    if arr.ndim == 3 and ds.get("SamplesPerPixel", 1) == 1:
        arr = arr[0]  # first frame of a multi-frame image
    if arr.ndim == 3:  # colour: show as grey
        arr = arr[..., :3].mean(axis=-1)
    data = apply_modality_lut(arr, ds)
    if "WindowCenter" in ds or "VOILUTSequence" in ds:
        data = apply_voi_lut(data, ds)
    data = np.asarray(data, dtype=np.float64)
    lo, hi = float(np.percentile(data, 0.5)), float(np.percentile(data, 99.5))
    if hi <= lo:
        hi = lo + 1.0
    scaled = np.clip((data - lo) / (hi - lo), 0.0, 1.0)
    if str(ds.get("PhotometricInterpretation", "")) == "MONOCHROME1":
        scaled = 1.0 - scaled
    return np.asarray(np.round(scaled * 255), dtype=np.uint8)


def _colour_map(heat: NDArray[np.float32]) -> NDArray[np.uint8]:
    """Red (low) to yellow (high) with opacity growing with the value."""
    h = np.clip(heat, 0.0, 1.0)
    rgba = np.zeros((*h.shape, 4), dtype=np.float32)
    rgba[..., 0] = 1.0
    rgba[..., 1] = h
    rgba[..., 3] = np.where(h > 0.1, MAX_ALPHA * h, 0.0)
    return np.asarray(np.round(rgba * 255), dtype=np.uint8)


def render_rgb(
    archive_dir: Path,
    key: KeyImage,
    max_side: int | None = MAX_SIDE,
    limits: ImageLimits | None = None,
) -> Image.Image:
    """Render the key image (and its heatmap, if any) as an RGB PIL image.

    Parameters
    ----------
    archive_dir
        The archive root (``key``'s paths are relative to it).
    key
        The image and heatmap to render.
    max_side
        Shrink the image so that its longer side is at most this many pixels; ``None`` keeps
        the image's own size.
    limits
        Refuse, before decoding, an image larger than these (default: :class:`ImageLimits`).

    Returns
    -------
    PIL.Image.Image
        An ``RGB`` image.

    Raises
    ------
    KeyImageNotFoundError
        The DICOM file is missing.
    UnreadableKeyImageError
        The DICOM file has no readable pixels.
    ImageTooLargeError
        The image is larger than ``limits`` (nothing decoded).
    """
    path = archive_dir / key.path
    try:
        ds = read_image(path, limits or ImageLimits())
        grey = window_to_uint8(ds)
    except FileNotFoundError as exc:
        raise KeyImageNotFoundError(f"{key.path} is not in the archive") from exc
    except TriageError:
        raise
    except Exception as exc:  # pydicom's readers raise many kinds (struct.error: fuzz-found)
        raise UnreadableKeyImageError(f"cannot render {key.path}: {exc}") from exc
    except BaseException as exc:
        if not is_decoder_panic(exc):
            raise
        raise UnreadableKeyImageError(f"cannot render {key.path}: {exc}") from exc
    base = Image.fromarray(grey)
    if max_side is not None and max(base.size) > max_side:  # shrink first: blend fewer pixels
        base.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    image = base.convert("RGBA")
    if key.heatmap_path:
        try:
            heat = np.load(archive_dir / key.heatmap_path, allow_pickle=False)
            heat = np.squeeze(np.asarray(heat, dtype=np.float32))
            if heat.ndim != 2:
                raise ValueError(f"heatmap has shape {heat.shape}, not 2-D")
            resized = Image.fromarray(heat).resize(image.size, Image.Resampling.BILINEAR)
            overlay = Image.fromarray(_colour_map(np.asarray(resized)))
            image = Image.alpha_composite(image, overlay)
        except (OSError, ValueError) as exc:
            logger.warning("heatmap %s not shown: %s", key.heatmap_path, exc)
    return image.convert("RGB")


def render_png(archive_dir: Path, key: KeyImage, limits: ImageLimits | None = None) -> bytes:
    """Render the key image (and its heatmap, if any) as PNG bytes (:func:`render_rgb`).

    Raises
    ------
    KeyImageNotFoundError
        The DICOM file is missing.
    UnreadableKeyImageError
        The DICOM file has no readable pixels.
    ImageTooLargeError
        The image is larger than ``limits``.
    """
    image = render_rgb(archive_dir, key, limits=limits)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=False)
    return out.getvalue()
