"""CheXpert-v1.0-small: ``train.csv``, ``valid.csv``, ``<split>/patientN/studyN/viewN_frontal.jpg``.

Patients have one to three studies of one or two frontal views; a study's images share its
labels. Every third patient is in ``valid`` (numbered from 64541, as released), the others in
``train``. Training labels are coded as the CheXpert labeller's: each finding of the study is
``1.0`` or, one time in five, ``-1.0`` (uncertain); an absent finding is blank (not mentioned),
``0.0`` or, one time in ten, ``-1.0``. Validation labels are the radiologists' ``1.0``/``0.0``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from models.datasets.chexpert import LABELS, SPLIT_FILES
from models.phantoms.core import Phantom
from models.phantoms.layouts.common import (
    SetSpec,
    Slot,
    plan,
    rng_for,
    save_jpeg,
    split_of,
    write_csv,
)

__all__ = ["CHEXPERT_COLUMNS", "CHEXPERT_FOLDER", "CHEXPERT_NAMES", "write_chexpert"]

logger = logging.getLogger(__name__)

CHEXPERT_FOLDER = "CheXpert-v1.0-small"
"""The release's folder name, which starts every ``Path``."""

CHEXPERT_COLUMNS: tuple[str, ...] = ("Path", "Sex", "Age", "Frontal/Lateral", "AP/PA", *LABELS)

CHEXPERT_NAMES: dict[str, str] = {
    "pneumothorax": "Pneumothorax",
    "pleural_effusion": "Pleural Effusion",
    "nodule_mass": "Lung Lesion",
    "cardiomegaly": "Cardiomegaly",
    "consolidation": "Consolidation",
}
"""Our labels as CheXpert observations."""

_FIRST_NUMBER = {"train": 1, "valid": 64541}
_SEX = {"F": "Female", "M": "Male"}


def labeller_codes(rng: np.random.Generator, ph: Phantom, uncertain: bool) -> list[str]:
    """Return the 14 label cells of a study, in :data:`LABELS` order.

    Parameters
    ----------
    rng
        The study's generator.
    ph
        The study's first image (its labels are the study's).
    uncertain
        ``True`` for the labeller's codes (blank, -1.0), ``False`` for radiologists' 1.0/0.0.

    Returns
    -------
    list[str]
        ``"1.0"``, ``"0.0"``, ``"-1.0"`` or ``""`` per observation.
    """
    ours = {CHEXPERT_NAMES[name]: value for name, value in ph.labels.items()}
    cells: dict[str, str] = {}
    for name in LABELS:
        positive = bool(ours.get(name, 0))
        draw = rng.random(2)
        if not uncertain:
            cells[name] = "1.0" if positive else "0.0"
        elif name in ours and draw[0] < (0.2 if positive else 0.1):
            cells[name] = "-1.0"
        elif positive:
            cells[name] = "1.0"
        else:
            cells[name] = "" if draw[1] < 0.6 or name not in ours else "0.0"
    normal = not any(ph.labels.values()) and "-1.0" not in cells.values()
    cells["No Finding"] = "1.0" if normal else ("" if uncertain else "0.0")
    return [cells[name] for name in LABELS]


def write_chexpert(out: Path, spec: SetSpec) -> Path:
    """Write the JPEGs, ``train.csv`` and ``valid.csv``; return ``train.csv``."""
    rows: dict[str, list[list[object]]] = {split: [] for split in SPLIT_FILES}
    numbers: dict[int, int] = {}
    counters = dict(_FIRST_NUMBER)
    patients: dict[int, tuple[str, int]] = {}
    codes: dict[tuple[int, int], list[str]] = {}
    for slot, ph in spec.studies(plan(spec.seed, spec.n)):
        split = split_of(slot.patient, tuple(SPLIT_FILES))
        if slot.patient not in numbers:
            numbers[slot.patient] = counters[split]
            counters[split] += 1
        ds = ph.dataset
        sex, age = patients.setdefault(
            slot.patient, (_SEX[str(ds.PatientSex)], int(str(ds.PatientAge).rstrip("Y")))
        )
        rel = _relative(split, numbers[slot.patient], slot)
        save_jpeg(ph, out / rel)
        if slot.study_key not in codes:
            rng = rng_for("chexpert", spec.seed, slot.patient, slot.study)
            codes[slot.study_key] = labeller_codes(rng, ph, uncertain=split == "train")
        row = [f"{CHEXPERT_FOLDER}/{rel}", sex, age, "Frontal", str(ds.ViewPosition)]
        rows[split].append([*row, *codes[slot.study_key]])
    for split, file in SPLIT_FILES.items():
        write_csv(out / file, CHEXPERT_COLUMNS, rows[split])
    return out / SPLIT_FILES["train"]


def _relative(split: str, number: int, slot: Slot) -> str:
    return f"{split}/patient{number:05d}/study{slot.study + 1}/view{slot.view + 1}_frontal.jpg"
