"""VinDr-CXR: ``annotations/image_labels_{train,test}.csv`` and ``{train,test}/<id>.dicom``.

Every image is its own patient, as released (the DICOM header carries no Patient ID or name,
only sex and age); every third image is in ``test``. A training image has three rows, one per
radiologist (three of ``R1``..``R17``), each of whom marks a drawn finding with probability 0.8
and an absent one with probability 0.03, so some findings are split votes; the test rows are
the consensus (the truth). ``No finding`` is 1 in a row that marks nothing else.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np

from models.datasets.vindr import LABEL_FILES, LABELS
from models.phantoms.core import Phantom
from models.phantoms.layouts.common import SetSpec, rng_for, split_of, write_csv

__all__ = ["VINDR_NAMES", "write_vindr"]

logger = logging.getLogger(__name__)

VINDR_NAMES: dict[str, str] = {
    "pneumothorax": "Pneumothorax",
    "pleural_effusion": "Pleural effusion",
    "nodule_mass": "Nodule/Mass",
    "cardiomegaly": "Cardiomegaly",
    "consolidation": "Consolidation",
}
"""Our labels as VinDr-CXR findings."""

RADIOLOGISTS = tuple(f"R{i}" for i in range(1, 18))


def _marks(truth: dict[str, int], rng: np.random.Generator | None) -> list[int]:
    """One row's 28 marks: the truth when ``rng`` is None, else one radiologist's reading."""
    marked: dict[str, int] = {}
    for ours, name in VINDR_NAMES.items():
        if rng is None:
            marked[name] = int(truth[ours])
        else:
            marked[name] = int(rng.random() < (0.8 if truth[ours] else 0.03))
    marked["No finding"] = int(not any(marked.values()))
    return [marked.get(name, 0) for name in LABELS]


def _anonymise(ph: Phantom) -> None:
    ds = ph.dataset
    ds.PatientID = ""
    ds.PatientName = ""
    ds.PatientBirthDate = ""


def write_vindr(out: Path, spec: SetSpec) -> Path:
    """Write the DICOM files and both image-label tables; return the training table."""
    rows: dict[str, list[list[object]]] = {split: [] for split in LABEL_FILES}
    for i, ph in spec.numbered():
        split = split_of(i, tuple(LABEL_FILES))
        image_id = hashlib.sha256(f"ics-triage-vindr:{spec.seed}:{i}".encode()).hexdigest()[:32]
        _anonymise(ph)
        (out / split).mkdir(parents=True, exist_ok=True)
        ph.dataset.save_as(out / split / f"{image_id}.dicom", enforce_file_format=True)
        if split == "test":
            rows[split].append([image_id, *_marks(ph.labels, None)])
            continue
        rng = rng_for("vindr", spec.seed, i)
        for rad in rng.choice(len(RADIOLOGISTS), size=3, replace=False):
            rows[split].append([image_id, RADIOLOGISTS[int(rad)], *_marks(ph.labels, rng)])
    write_csv(out / LABEL_FILES["test"], ("image_id", *LABELS), rows["test"])
    return write_csv(out / LABEL_FILES["train"], ("image_id", "rad_id", *LABELS), rows["train"])
