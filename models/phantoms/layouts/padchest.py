"""PadChest: ``PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv`` and 16-bit PNGs.

Patients have one to three studies of one or two images; a study's rows share its ``Labels``
(a Python-list-like string of lower-case findings, ``['normal']`` when none). Images are 16-bit
greyscale PNGs of the stored values (MONOCHROME2) in numbered folders ``<ImageDir>/<ImageID>``.
The DICOM-derived columns are filled from the phantom's header; the columns PadChest fills from
its hospital's records (exposure, report text...) hold placeholders.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from models.datasets.padchest import CSV_NAME
from models.phantoms.core import FINDINGS, Phantom
from models.phantoms.layouts.common import SetSpec, Slot, is_mass, plan, save_png16, write_csv

__all__ = ["PADCHEST_COLUMNS", "PADCHEST_NAMES", "write_padchest"]

logger = logging.getLogger(__name__)

PADCHEST_COLUMNS: tuple[str, ...] = (
    "ImageID",
    "ImageDir",
    "StudyDate_DICOM",
    "StudyID",
    "PatientID",
    "PatientBirth",
    "PatientSex_DICOM",
    "ViewPosition_DICOM",
    "Projection",
    "MethodProjection",
    "Pediatric",
    "Modality_DICOM",
    "Manufacturer_DICOM",
    "PhotometricInterpretation_DICOM",
    "PixelRepresentation_DICOM",
    "PixelAspectRatio_DICOM",
    "SpatialResolution_DICOM",
    "BitsStored_DICOM",
    "WindowCenter_DICOM",
    "WindowWidth_DICOM",
    "Rows_DICOM",
    "Columns_DICOM",
    "XRayTubeCurrent_DICOM",
    "Exposure_DICOM",
    "ExposureInuAs_DICOM",
    "ExposureTime",
    "RelativeXRayExposure_DICOM",
    "ReportID",
    "Report",
    "MethodLabel",
    "Labels",
    "Localizations",
    "LabelsLocalizationsBySentence",
    "labelCUIS",
    "LocalizationsCUIS",
)
"""The header of the labels table as released."""

PADCHEST_NAMES: dict[str, str] = {
    "pneumothorax": "pneumothorax",
    "pleural_effusion": "pleural effusion",
    "nodule_mass": "nodule",
    "cardiomegaly": "cardiomegaly",
    "consolidation": "consolidation",
}
"""Our labels as PadChest findings (a nodule >= 30 mm is written ``mass``)."""

_FOLDERS = 3


def _digits(*parts: object, length: int) -> str:
    digest = hashlib.sha256(":".join(("ics-triage-padchest", *map(str, parts))).encode())
    return str(int(digest.hexdigest(), 16))[:length]


def _labels(ph: Phantom) -> list[str]:
    names = []
    for name in FINDINGS:
        if ph.labels[name]:
            names.append("mass" if name == "nodule_mass" and is_mass(ph) else PADCHEST_NAMES[name])
    return names or ["normal"]


def _projection(slot: Slot, view: str) -> str:
    return "AP_horizontal" if view == "AP" and slot.index % 2 else view


def _row(spec: SetSpec, slot: Slot, ph: Phantom, first: Phantom, image_id: str) -> list[object]:
    ds, study = ph.dataset, first.dataset  # a study's date, patient and labels are its first's
    year, age = int(str(study.StudyDate)[:4]), int(str(study.PatientAge).rstrip("Y"))
    labels = _labels(first)
    view = str(ds.ViewPosition)
    return [
        image_id,
        slot.index % _FOLDERS,
        study.StudyDate,
        _digits(spec.seed, "study", *slot.study_key, length=32),
        _digits(spec.seed, "patient", slot.patient, length=32),
        f"{year - age}.0",
        study.PatientSex,
        view,
        _projection(slot, view),
        "Manual review of DICOM fields",
        "No",
        ds.Modality,
        ds.Manufacturer,
        ds.PhotometricInterpretation,
        int(ds.PixelRepresentation),
        "",
        f"{float(ds.PixelSpacing[0]):.3f}",
        int(ds.BitsStored),
        ds.WindowCenter,
        ds.WindowWidth,
        int(ds.Rows),
        int(ds.Columns),
        "",
        "",
        "",
        "",
        "",
        _digits(spec.seed, "report", *slot.study_key, length=10),
        "synthetic phantom - not for clinical use",
        "Physician",
        repr(labels),
        "[]",
        repr([[label] for label in labels]),
        "[]",
        "[]",
    ]


def write_padchest(out: Path, spec: SetSpec) -> Path:
    """Write the PNGs and the labels table; return the table."""
    rows: list[list[object]] = []
    firsts: dict[tuple[int, int], Phantom] = {}
    patients: dict[int, Phantom] = {}
    for slot, ph in spec.studies(plan(spec.seed, spec.n)):
        first = firsts.setdefault(slot.study_key, ph)
        patient = patients.setdefault(slot.patient, ph)
        first.dataset.PatientSex = patient.dataset.PatientSex
        first.dataset.PatientAge = patient.dataset.PatientAge
        serial = f"00-{slot.index // 1000 % 1000:03d}-{slot.index % 1000:03d}"
        image_id = f"{_digits(spec.seed, 'image', slot.index, length=45)}_{serial}.png"
        save_png16(ph, out / str(slot.index % _FOLDERS) / image_id)
        rows.append(_row(spec, slot, ph, first, image_id))
    return write_csv(out / CSV_NAME, PADCHEST_COLUMNS, rows)
