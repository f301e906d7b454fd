"""Write sets of phantoms in our generic layout or in public datasets' published layouts.

One module per layout; :func:`write_dataset` dispatches to them. The readers of the same
layouts are in :mod:`models.datasets`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Literal

from models.phantoms.core import PhantomError
from models.phantoms.layouts.chexpert import write_chexpert
from models.phantoms.layouts.common import Progress, SetSpec, display_image, phantom_seed
from models.phantoms.layouts.generic import GENERIC_COLUMNS, write_generic
from models.phantoms.layouts.mimic import write_mimic
from models.phantoms.layouts.nih import NIH_COLUMNS, NIH_NAMES, write_nih
from models.phantoms.layouts.padchest import write_padchest
from models.phantoms.layouts.rsna import RSNA_COLUMNS, write_rsna
from models.phantoms.layouts.siim import write_siim
from models.phantoms.layouts.vindr import write_vindr
from models.phantoms.names import LAYOUTS

__all__ = [
    "GENERIC_COLUMNS",
    "LAYOUTS",
    "NIH_COLUMNS",
    "NIH_NAMES",
    "RSNA_COLUMNS",
    "Layout",
    "display_image",
    "phantom_seed",
    "write_dataset",
]

logger = logging.getLogger(__name__)

Layout = Literal["generic", "nih", "rsna", "chexpert", "mimic", "siim", "vindr", "padchest"]

WRITERS: dict[str, Callable[[Path, SetSpec], Path]] = {
    "generic": write_generic,
    "nih": write_nih,
    "rsna": write_rsna,
    "chexpert": write_chexpert,
    "mimic": write_mimic,
    "siim": write_siim,
    "vindr": write_vindr,
    "padchest": write_padchest,
}
"""The writer of each layout of :data:`LAYOUTS`."""


def write_dataset(
    out_dir: Path | str,
    n: int,
    seed: int,
    layout: Layout | str = "generic",
    *,
    findings: Iterable[str] | None = None,
    priority: str = "ROUTINE",
    size: int | tuple[int, int] | None = None,
    progress: Progress | None = None,
) -> Path:
    """Generate ``n`` phantoms and write them in a dataset layout.

    Image ``i`` is generated from :func:`phantom_seed` ``(seed, i)`` in every layout. Layouts
    of datasets with several studies per patient and several images per study group the images
    into patients and studies drawn from ``seed``; the images of a study share its findings
    (the first image's) unless ``findings`` is given, and official splits keep each patient on
    one side.

    Parameters
    ----------
    out_dir
        Directory to write into (created).
    n
        Number of images.
    seed
        Seed of the set; image ``i`` uses :func:`phantom_seed` ``(seed, i)``.
    layout
        ``generic``: ``dicom/*.dcm`` and ``labels.csv`` (``path`` relative to the CSV,
        ``study_instance_uid``, ``sop_instance_uid``, one 0/1 column per finding).
        ``nih``: NIH ChestX-ray14, ``images/*.png``, ``Data_Entry_2017.csv``,
        ``train_val_list.txt`` and ``test_list.txt``.
        ``rsna``: RSNA Pneumonia Detection, ``stage_2_train_images/<patientId>.dcm``,
        ``stage_2_train_labels.csv`` (Target 1 with a box per consolidation) and
        ``stage_2_detailed_class_info.csv``.
        ``chexpert``: CheXpert-v1.0-small, ``train.csv``, ``valid.csv`` and JPEGs.
        ``mimic``: MIMIC-CXR-JPG 2.0.0, the gzipped chexpert, metadata and split tables and
        ``files/pXX/pSUBJECT/sSTUDY/DICOM_ID.jpg``.
        ``siim``: SIIM-ACR Pneumothorax, ``train-rle.csv`` and ``dicom-images-train/``.
        ``vindr``: VinDr-CXR, ``annotations/image_labels_{train,test}.csv`` and
        ``{train,test}/<image_id>.dicom``.
        ``padchest``: PadChest, its labels CSV and 16-bit PNGs in ``<ImageDir>/``.
    findings
        Findings for every image; ``None`` draws them per image (per study where a layout has
        studies).
    priority
        Requested Procedure Priority of every image.
    size
        Matrix size of every image; ``None`` draws it per image.
    progress
        Called with the number of images written so far.

    Returns
    -------
    pathlib.Path
        The (main) labels CSV that was written.

    Raises
    ------
    PhantomError
        For an unknown layout or a negative ``n``.
    """
    if layout not in LAYOUTS:
        raise PhantomError(f"layout must be one of {', '.join(LAYOUTS)}, not {layout!r}")
    if n < 0:
        raise PhantomError(f"n must be non-negative, not {n}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    wanted = None if findings is None else tuple(findings)
    spec = SetSpec(seed, n, wanted, priority, size, progress)
    path = WRITERS[layout](out, spec)
    logger.info("wrote %d phantoms (%s layout) to %s", n, layout, out)
    return path
