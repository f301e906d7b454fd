"""RSNA Pneumonia Detection: ``stage_2_train_images/<patientId>.dcm`` and two label tables."""

from __future__ import annotations

import csv
import hashlib
import logging
import uuid
from pathlib import Path

from models.phantoms.layouts.common import SetSpec

__all__ = ["RSNA_COLUMNS", "write_rsna"]

logger = logging.getLogger(__name__)

RSNA_COLUMNS: tuple[str, ...] = ("patientId", "x", "y", "width", "height", "Target")


def rsna_patient_id(sub_seed: int) -> str:
    """Return the UUID-like ``patientId`` of the phantom with seed ``sub_seed``."""
    digest = hashlib.sha256(f"ics-triage-rsna:{sub_seed}".encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def write_rsna(out: Path, spec: SetSpec) -> Path:
    """Write the DICOM files, ``stage_2_train_labels.csv`` (a row per box) and the classes."""
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
        for _, ph in spec.numbered(rsna_patient_id):
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
