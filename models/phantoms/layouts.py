"""Write sets of phantoms in our generic layout or in public datasets' published layouts."""

from __future__ import annotations

import csv
import hashlib
import logging
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from PIL import Image
from pydicom.dataset import Dataset

from models.phantoms.core import FINDINGS, Phantom, PhantomError, generate_phantom
from models.phantoms.names import LAYOUTS

__all__ = [
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

Layout = Literal["generic", "nih", "rsna"]

NIH_NAMES: dict[str, str] = {
    "pneumothorax": "Pneumothorax",
    "pleural_effusion": "Effusion",
    "nodule_mass": "Nodule",
    "cardiomegaly": "Cardiomegaly",
    "consolidation": "Consolidation",
}
"""Our labels as NIH ChestX-ray14 finding names (a nodule >= 30 mm is written ``Mass``)."""

# The header of Data_Entry_2017.csv as published: the bracketed names contain commas, so the
# file has 11 fields per row (width and height, then x and y spacing, in their own fields).
NIH_COLUMNS: tuple[str, ...] = (
    "Image Index",
    "Finding Labels",
    "Follow-up #",
    "Patient ID",
    "Patient Age",
    "Patient Gender",
    "View Position",
    "OriginalImage[Width",
    "Height]",
    "OriginalImagePixelSpacing[x",
    "y]",
)
RSNA_COLUMNS: tuple[str, ...] = ("patientId", "x", "y", "width", "height", "Target")
GENERIC_COLUMNS: tuple[str, ...] = ("path", "study_instance_uid", "sop_instance_uid", *FINDINGS)

Progress = Callable[[int], None]


def phantom_seed(seed: int, index: int) -> int:
    """Return the seed of image ``index`` of a set generated with ``seed``.

    Parameters
    ----------
    seed
        The set's seed.
    index
        The image's position in the set.

    Returns
    -------
    int
        A 63-bit seed; sets with different seeds do not share images.
    """
    digest = hashlib.sha256(f"ics-triage-phantom-set:{seed}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def _rsna_patient_id(sub_seed: int) -> str:
    digest = hashlib.sha256(f"ics-triage-rsna:{sub_seed}".encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def display_image(ds: Dataset) -> NDArray[np.uint8]:
    """Render a phantom dataset as an 8-bit image: VOI window applied, bone white.

    Parameters
    ----------
    ds
        A phantom dataset (MONOCHROME1 or MONOCHROME2, with WindowCenter/WindowWidth).

    Returns
    -------
    numpy.ndarray
        ``(rows, cols)`` uint8.
    """
    pixels = ds.pixel_array.astype(np.float32)
    center, width = float(ds.WindowCenter), float(ds.WindowWidth)
    scaled = np.clip((pixels - (center - width / 2)) / width, 0.0, 1.0)
    if ds.PhotometricInterpretation == "MONOCHROME1":
        scaled = 1.0 - scaled
    out: NDArray[np.uint8] = np.rint(scaled * 255).astype(np.uint8)
    return out


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
        ``nih``: NIH ChestX-ray14, ``images/*.png`` and ``Data_Entry_2017.csv``.
        ``rsna``: RSNA Pneumonia Detection, ``stage_2_train_images/<patientId>.dcm``,
        ``stage_2_train_labels.csv`` (Target 1 with a box per consolidation) and
        ``stage_2_detailed_class_info.csv``.
    findings
        Findings for every image; ``None`` draws them per image.
    priority
        Requested Procedure Priority of every image.
    size
        Matrix size of every image; ``None`` draws it per image.
    progress
        Called with the number of images written so far.

    Returns
    -------
    pathlib.Path
        The labels CSV that was written.

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
    writer = {"generic": _write_generic, "nih": _write_nih, "rsna": _write_rsna}[layout]

    def phantoms() -> Iterable[tuple[int, Phantom]]:
        for i in range(n):
            sub_seed = phantom_seed(seed, i)
            patient_id = _rsna_patient_id(sub_seed) if layout == "rsna" else None
            yield (
                i,
                generate_phantom(
                    sub_seed, wanted, priority=priority, size=size, patient_id=patient_id
                ),
            )
            if progress is not None:
                progress(i + 1)

    path = writer(out, phantoms())
    logger.info("wrote %d phantoms (%s layout) to %s", n, layout, out)
    return path


def _write_generic(out: Path, phantoms: Iterable[tuple[int, Phantom]]) -> Path:
    (out / "dicom").mkdir(exist_ok=True)
    csv_path = out / "labels.csv"
    with csv_path.open("w", newline="") as fh:
        rows = csv.writer(fh)
        rows.writerow(GENERIC_COLUMNS)
        for i, ph in phantoms:
            rel = Path("dicom") / f"phantom_{i:06d}.dcm"
            ph.dataset.save_as(out / rel, enforce_file_format=True)
            ds = ph.dataset
            labels = [ph.labels[name] for name in FINDINGS]
            rows.writerow([rel.as_posix(), ds.StudyInstanceUID, ds.SOPInstanceUID, *labels])
    return csv_path


def _nih_labels(ph: Phantom) -> str:
    names = []
    for name in FINDINGS:
        if not ph.labels[name]:
            continue
        nih = NIH_NAMES[name]
        if name == "nodule_mass":
            spacing = float(ph.dataset.PixelSpacing[0])
            biggest = max((r for _, _, r in ph.details.get("nodules", [])), default=0.0)
            nih = "Mass" if 2 * biggest * spacing >= 30.0 else "Nodule"
        names.append(nih)
    return "|".join(sorted(names)) or "No Finding"


def _write_nih(out: Path, phantoms: Iterable[tuple[int, Phantom]]) -> Path:
    (out / "images").mkdir(exist_ok=True)
    csv_path = out / "Data_Entry_2017.csv"
    with csv_path.open("w", newline="") as fh:
        rows = csv.writer(fh)
        rows.writerow(NIH_COLUMNS)
        for i, ph in phantoms:
            ds = ph.dataset
            name = f"{i + 1:08d}_000.png"
            Image.fromarray(display_image(ds)).save(out / "images" / name, optimize=False)
            spacing = float(ds.PixelSpacing[1])
            rows.writerow(
                [
                    name,
                    _nih_labels(ph),
                    0,
                    i + 1,
                    int(str(ds.PatientAge).rstrip("Y")),
                    ds.PatientSex,
                    ds.ViewPosition,
                    ds.Columns,
                    ds.Rows,
                    f"{spacing:.3f}",
                    f"{spacing:.3f}",
                ]
            )
    return csv_path


def _write_rsna(out: Path, phantoms: Iterable[tuple[int, Phantom]]) -> Path:
    images = out / "stage_2_train_images"
    images.mkdir(exist_ok=True)
    csv_path = out / "stage_2_train_labels.csv"
    with (
        csv_path.open("w", newline="") as fh,
        (out / "stage_2_detailed_class_info.csv").open("w", newline="") as fh_class,
    ):
        rows, classes = csv.writer(fh), csv.writer(fh_class)
        rows.writerow(RSNA_COLUMNS)
        classes.writerow(("patientId", "class"))
        for _, ph in phantoms:
            patient_id = str(ph.dataset.PatientID)
            ph.dataset.save_as(images / f"{patient_id}.dcm", enforce_file_format=True)
            boxes = ph.details.get("consolidation_boxes", []) if ph.labels["consolidation"] else []
            for x, y, w, h in boxes:
                rows.writerow([patient_id, float(x), float(y), float(w), float(h), 1])
                classes.writerow([patient_id, "Lung Opacity"])
            if not boxes:
                rows.writerow([patient_id, "", "", "", "", 0])
                other = any(ph.labels.values())
                classes.writerow(
                    [patient_id, "No Lung Opacity / Not Normal" if other else "Normal"]
                )
    return csv_path
