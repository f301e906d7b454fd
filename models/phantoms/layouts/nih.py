"""NIH ChestX-ray14: ``images/*.png``, ``Data_Entry_2017.csv`` and the official split lists."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

from PIL import Image

from models.phantoms.core import FINDINGS, Phantom
from models.phantoms.layouts.common import SetSpec, display_image, is_mass, split_of

__all__ = ["NIH_COLUMNS", "NIH_NAMES", "NIH_SPLIT_FILES", "write_nih"]

logger = logging.getLogger(__name__)

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

NIH_SPLIT_FILES: dict[str, str] = {"train_val": "train_val_list.txt", "test": "test_list.txt"}
"""The official split lists; every third patient is on the test side."""


def _nih_labels(ph: Phantom) -> str:
    names = []
    for name in FINDINGS:
        if not ph.labels[name]:
            continue
        nih = NIH_NAMES[name]
        if name == "nodule_mass":
            nih = "Mass" if is_mass(ph) else "Nodule"
        names.append(nih)
    return "|".join(sorted(names)) or "No Finding"


def write_nih(out: Path, spec: SetSpec) -> Path:
    """Write ``images/*.png``, ``Data_Entry_2017.csv`` and the split lists; return the CSV."""
    (out / "images").mkdir(exist_ok=True)
    csv_path = out / "Data_Entry_2017.csv"
    lists: dict[str, list[str]] = {name: [] for name in NIH_SPLIT_FILES}
    with csv_path.open("w", newline="") as fh:
        rows = csv.writer(fh)
        rows.writerow(NIH_COLUMNS)
        for i, ph in spec.numbered():
            ds = ph.dataset
            name = f"{i + 1:08d}_000.png"
            Image.fromarray(display_image(ds)).save(out / "images" / name, optimize=False)
            lists[split_of(i, tuple(NIH_SPLIT_FILES))].append(name)
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
    for split, file in NIH_SPLIT_FILES.items():
        (out / file).write_text("".join(f"{name}\n" for name in lists[split]))
    return csv_path
