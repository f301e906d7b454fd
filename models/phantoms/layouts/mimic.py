"""MIMIC-CXR-JPG 2.0.0: three gzipped tables and ``files/pXX/pSUBJECT/sSTUDY/DICOM_ID.jpg``.

Patients (``subject_id`` 1xxxxxxx) have one to three studies (``study_id`` 5xxxxxxx) of one or
two images (``dicom_id``, five dash-separated groups of eight hex digits). The CheXpert table
has a row per study, coded as the labeller's (see
:func:`models.phantoms.layouts.chexpert.labeller_codes`); the split table puts every patient on
one side: of every five patients, three in ``train``, one in ``validate``, one in ``test``.
Dates are shifted into the future, as MIMIC's are.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from models.datasets.chexpert import LABELS as CHEXPERT_LABELS
from models.datasets.mimic import LABELS, METADATA, PREFIX, SPLITS
from models.phantoms.core import Phantom
from models.phantoms.layouts.chexpert import labeller_codes
from models.phantoms.layouts.common import (
    SetSpec,
    Slot,
    plan,
    rng_for,
    save_jpeg,
    split_of,
    write_csv,
)

__all__ = ["MIMIC_FILES", "write_mimic"]

logger = logging.getLogger(__name__)

MIMIC_FILES: dict[str, str] = {
    "chexpert": f"{PREFIX}chexpert.csv.gz",
    "metadata": f"{PREFIX}metadata.csv.gz",
    "split": f"{PREFIX}split.csv.gz",
}

_DATE_SHIFT_YEARS = 156
_VIEW_MEANINGS = {"PA": "postero-anterior", "AP": "antero-posterior"}
_ORIENTATION = {"PA": "Erect", "AP": "Recumbent"}


def _identifiers(seed: int, slots: list[Slot]) -> tuple[dict[int, str], dict[tuple[int, int], str]]:
    subjects: dict[int, str] = {}
    studies: dict[tuple[int, int], str] = {}
    for slot in slots:
        if slot.patient not in subjects:
            rng = rng_for("mimic-subject", seed, slot.patient)
            subjects[slot.patient] = str(int(rng.integers(10_000_000, 20_000_000)))
        if slot.study_key not in studies:
            rng = rng_for("mimic-study", seed, *slot.study_key)
            studies[slot.study_key] = str(int(rng.integers(50_000_000, 60_000_000)))
    return subjects, studies


def _dicom_id(seed: int, index: int) -> str:
    digest = hashlib.sha256(f"ics-triage-mimic-dicom:{seed}:{index}".encode()).hexdigest()
    return "-".join(digest[i : i + 8] for i in range(0, 40, 8))


def _metadata(dicom_id: str, subject: str, study: str, ph: Phantom, first: Phantom) -> list[object]:
    ds, shown = ph.dataset, first.dataset  # a study's date and time are its first image's
    view = str(ds.ViewPosition)
    date = f"{int(str(shown.StudyDate)[:4]) + _DATE_SHIFT_YEARS}{str(shown.StudyDate)[4:]}"
    return [
        dicom_id,
        subject,
        study,
        "CHEST (PA AND LAT)",
        view,
        int(ds.Rows),
        int(ds.Columns),
        date,
        f"{shown.StudyTime}.000",
        "CHEST (PA AND LAT)",
        _VIEW_MEANINGS[view],
        _ORIENTATION[view],
    ]


def write_mimic(out: Path, spec: SetSpec) -> Path:
    """Write the JPEGs and the chexpert, metadata and split tables; return the chexpert one."""
    slots = plan(spec.seed, spec.n)
    subjects, studies = _identifiers(spec.seed, slots)
    metadata: list[list[object]] = []
    splits: list[list[object]] = []
    labels: list[list[object]] = []
    firsts: dict[tuple[int, int], Phantom] = {}
    for slot, ph in spec.studies(slots):
        subject, study = subjects[slot.patient], studies[slot.study_key]
        dicom_id = _dicom_id(spec.seed, slot.index)
        save_jpeg(
            ph, out / "files" / f"p{subject[:2]}" / f"p{subject}" / f"s{study}" / f"{dicom_id}.jpg"
        )
        first = firsts.setdefault(slot.study_key, ph)
        metadata.append(_metadata(dicom_id, subject, study, ph, first))
        splits.append([dicom_id, study, subject, split_of(slot.patient, SPLITS)])
        if first is ph:
            rng = rng_for("mimic-labels", spec.seed, *slot.study_key)
            codes = dict(zip(CHEXPERT_LABELS, labeller_codes(rng, ph, uncertain=True), strict=True))
            labels.append([subject, study, *(codes[name] for name in LABELS)])
    write_csv(out / MIMIC_FILES["metadata"], METADATA, metadata)
    write_csv(out / MIMIC_FILES["split"], ("dicom_id", "study_id", "subject_id", "split"), splits)
    return write_csv(out / MIMIC_FILES["chexpert"], ("subject_id", "study_id", *LABELS), labels)
