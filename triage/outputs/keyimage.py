"""The AI result as a picture any PACS shows: a Secondary Capture key image (highdicom).

The key image of a model run (:func:`~triage.outputs.runs.key_finding`) is rendered as the
reading room renders it (:func:`worklist.reading.keyimage.render_rgb`: the image windowed to 8
bits with the finding's heatmap blended over it), and a banner is burned in above it: the
finding, its probability against the card's threshold, the model, and that this is AI decision
support, not a diagnosis. The SC (RGB, ``BurnedInAnnotation`` YES) references the original in
its Source Image Sequence and goes into its own series of the study.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import highdicom as hd
import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont
from pydicom import Dataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import ExplicitVRLittleEndian

from triage.outputs.runs import DISCLAIMER, MANUFACTURER, ModelRun
from worklist.reading.keyimage import MAX_SIDE, KeyImage, render_rgb

if TYPE_CHECKING:  # the worker imports this package: no import back at run time
    from triage.worker.inference import FindingRecord

__all__ = [
    "SC_SERIES_DESCRIPTION",
    "SC_SERIES_NUMBER",
    "SCOptions",
    "banner_lines",
    "build_key_image",
    "render_key_image",
]

SC_SERIES_NUMBER = 9902
SC_SERIES_DESCRIPTION = f"AI key image - {DISCLAIMER}"

MIN_WIDTH = 512
"""Smaller images are enlarged to this width so that the banner can be read."""

_BANNER_BG = (0, 0, 0)
_TEXT = (255, 255, 255)
_ALERT = (255, 210, 0)


@dataclass(frozen=True)
class SCOptions:
    """Where one key image goes."""

    series_uid: str
    sop_uid: str
    instance_number: int


def banner_lines(run: ModelRun, finding: FindingRecord) -> list[str]:
    """Return the banner's lines: the disclaimer, the finding and its probability, the model."""
    what = finding.concept_meaning or finding.label
    verdict = "PRESENT" if finding.crossed else "absent"
    return [
        DISCLAIMER.upper(),
        f"{what}: {verdict} - probability {finding.probability:.3f} "
        f"(threshold {finding.threshold:.3f})",
        f"Model {run.name} {run.version} ({run.creator})",
    ]


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _fitted_font(lines: list[str], width: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Return the largest font (up to width/28) in which every line fits ``width``."""
    size = max(10, width // 28)
    while size > 8:
        font = _font(size)
        if all(font.getlength(line) <= width - size for line in lines):
            return font
        size -= 1
    return _font(size)


def _with_banner(image: Image.Image, lines: list[str]) -> Image.Image:
    width = image.width
    font = _fitted_font(lines, width)
    size = int(getattr(font, "size", 10))
    line_h = int(size * 1.35)
    pad = max(4, size // 2)
    banner_h = pad * 2 + line_h * len(lines)
    canvas = Image.new("RGB", (width, image.height + banner_h), _BANNER_BG)
    canvas.paste(image, (0, banner_h))
    draw = ImageDraw.Draw(canvas)
    for i, line in enumerate(lines):
        colour = _ALERT if i == 0 else _TEXT
        draw.text((pad, pad + i * line_h), line, fill=colour, font=font)
    return canvas


def render_key_image(
    archive_dir: Path, image_path: str, run: ModelRun, finding: FindingRecord
) -> NDArray[np.uint8]:
    """Render the key image of a finding with its heatmap and the burned-in banner.

    Parameters
    ----------
    archive_dir
        The archive root.
    image_path
        The finding's image, relative to the archive root.
    run
        The model run (for the banner).
    finding
        The finding shown; its heatmap is blended in when it crossed its threshold.

    Returns
    -------
    numpy.ndarray
        ``(rows, columns, 3)`` ``uint8`` RGB pixels.

    Raises
    ------
    worklist.reading.keyimage.KeyImageError
        If the image cannot be read.
    """
    heatmap = finding.heatmap_path if finding.crossed else ""
    image = render_rgb(archive_dir, KeyImage(image_path, heatmap, finding.label), MAX_SIDE)
    if image.width < MIN_WIDTH:
        height = max(1, round(image.height * MIN_WIDTH / image.width))
        image = image.resize((MIN_WIDTH, height), Image.Resampling.BILINEAR)
    banner = _with_banner(image, banner_lines(run, finding))
    return np.ascontiguousarray(np.asarray(banner, dtype=np.uint8))


def build_key_image(
    run: ModelRun,
    finding: FindingRecord,
    source: Dataset,
    pixels: NDArray[np.uint8],
    options: SCOptions,
) -> hd.sc.SCImage:
    """Build the Secondary Capture of a key image.

    Parameters
    ----------
    run
        The model run.
    finding
        The finding shown.
    source
        The original image (its header is enough): patient, study, Source Image Sequence.
    pixels
        From :func:`render_key_image`.
    options
        The SC's series and instance.

    Returns
    -------
    highdicom.sc.SCImage
        The SC, ready to encode.
    """
    orientation = source.get("PatientOrientation")
    sc = hd.sc.SCImage.from_ref_dataset(
        ref_dataset=source,
        pixel_array=pixels,
        photometric_interpretation=hd.PhotometricInterpretationValues.RGB,
        bits_allocated=8,
        coordinate_system=hd.CoordinateSystemNames.PATIENT,
        series_instance_uid=options.series_uid,
        series_number=SC_SERIES_NUMBER,
        sop_instance_uid=options.sop_uid,
        instance_number=options.instance_number,
        manufacturer=MANUFACTURER,
        patient_orientation=("L", "F"),  # required by highdicom; replaced below
        series_description=SC_SERIES_DESCRIPTION,
        transfer_syntax_uid=ExplicitVRLittleEndian,
    )
    # Scaling and a banner above the image keep its orientation: copy the original's (any
    # valid value, compound ones too), empty (Type 2) when the original has none.
    sc.PatientOrientation = [str(v) for v in orientation] if orientation else []
    sc.BurnedInAnnotation = "YES"
    if "RecognizableVisualFeatures" in source:  # the banner adds no identifying text
        sc.RecognizableVisualFeatures = source.RecognizableVisualFeatures
    sc.ImageType = ["DERIVED", "SECONDARY"]
    sc.DerivationDescription = (
        f"{finding.concept_meaning or finding.label} heatmap and banner by {run.ref}; {DISCLAIMER}"
    )[:1024]
    sc.ImageComments = DISCLAIMER
    if "Laterality" not in sc:
        sc.Laterality = source.get("Laterality", "")
    ref = Dataset()
    ref.ReferencedSOPClassUID = source.SOPClassUID
    ref.ReferencedSOPInstanceUID = source.SOPInstanceUID
    sc.SourceImageSequence = DicomSequence([ref])
    return sc
