"""Dataset layouts for the reader tests: the set drawn (seed, size), its truth, and CSV edits.

The truth of image ``i`` is read from the generic layout written with the same seed (its
``labels.csv`` and DICOM headers), not from the layout writers: a layout whose images share a
study's findings takes the study's first image's labels, grouped by the public
:func:`models.phantoms.layouts.common.plan`.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import pydicom

from models.phantoms import FINDINGS
from models.phantoms.layouts.common import Slot, plan, split_of

SEED = 20261202
N = 30
SIZE = 64

STUDY_LAYOUTS = ("chexpert", "mimic", "padchest")
"""Layouts whose images are grouped into studies that share labels."""


@dataclass(frozen=True)
class Truth:
    """What was drawn for each image index of the set, from the generic layout."""

    labels: list[dict[str, int]]
    sex: list[str]
    age: list[float]
    view: list[str]

    def of_study(self, layout: str) -> list[dict[str, int]]:
        """Each image's labels as the layout writes them: its study's first image's."""
        if layout not in STUDY_LAYOUTS:
            return self.labels
        first: dict[tuple[int, int], int] = {}
        out = []
        for slot in plan(SEED, N):
            out.append(self.labels[first.setdefault(slot.study_key, slot.index)])
        return out


def slots(layout: str) -> list[Slot]:
    """The patient and study of each image index in ``layout``."""
    return plan(SEED, N, max_views=1 if layout == "siim" else 2)


def patient_first(layout: str) -> list[int]:
    """The index of the first image of each image's patient."""
    first: dict[int, int] = {}
    return [first.setdefault(slot.patient, slot.index) for slot in slots(layout)]


def reader_order(layout: str) -> list[int]:
    """Image indices in the order the layout's reader yields them (files, then rows)."""
    if layout == "chexpert":
        sides = [split_of(slot.patient, ("train", "valid")) for slot in slots(layout)]
        return [i for side in ("train", "valid") for i in range(N) if sides[i] == side]
    if layout == "vindr":
        sides = [split_of(i, ("train", "test")) for i in range(N)]
        return [i for side in ("train", "test") for i in range(N) if sides[i] == side]
    return list(range(N))


def rewrite_header(path: Path, old: str, new: str) -> None:
    """Rename a column in a CSV's header line, leaving the rows as they are."""
    header, _, rest = path.read_text().partition("\n")
    assert old in header.split(",") or old in header, (old, header)
    path.write_text(header.replace(old, new, 1) + "\n" + rest)


def read_truth(phantom_root: Path) -> Truth:
    """Read the labels, sex, age and view of each image index from the generic layout."""
    generic = phantom_root / "generic"
    with (generic / "labels.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    headers = [pydicom.dcmread(generic / row["path"], stop_before_pixels=True) for row in rows]
    return Truth(
        labels=[{name: int(row[name]) for name in FINDINGS} for row in rows],
        sex=[str(ds.PatientSex) for ds in headers],
        age=[float(str(ds.PatientAge).rstrip("Y")) for ds in headers],
        view=[str(ds.ViewPosition) for ds in headers],
    )
