"""What the layout writers share: seeds, the set's options, patients and studies, image files.

A set of ``n`` phantoms uses seed :func:`phantom_seed` ``(seed, i)`` for image ``i`` whatever
the layout. Layouts whose datasets have patients with several studies and studies with several
images group the images by a :func:`plan` drawn from the set's seed; the images of one study
share its findings (the first image's), as a report's labels do, and each patient lies on one
side of an official split (:func:`split_of`).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image
from pydicom.dataset import Dataset

from models.phantoms.core import Phantom, generate_phantom

__all__ = [
    "Progress",
    "SetSpec",
    "Slot",
    "display_image",
    "is_mass",
    "phantom_seed",
    "plan",
    "rng_for",
    "save_jpeg",
    "save_png16",
    "split_of",
    "write_csv",
]

logger = logging.getLogger(__name__)

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


def rng_for(*parts: object) -> np.random.Generator:
    """Return a generator seeded from ``parts`` (layout name, set seed, patient...)."""
    text = ":".join(str(part) for part in ("ics-triage-layout", *parts))
    return np.random.default_rng(int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big"))


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


@dataclass(frozen=True)
class SetSpec:
    """The options of one set of phantoms (the arguments of ``write_dataset``)."""

    seed: int
    n: int
    findings: tuple[str, ...] | None = None
    priority: str = "ROUTINE"
    size: int | tuple[int, int] | None = None
    progress: Progress | None = None

    def phantom(
        self, index: int, findings: Sequence[str] | None = None, patient_id: str | None = None
    ) -> Phantom:
        """Generate image ``index``: the set's findings if given, else ``findings``, else drawn."""
        wanted = self.findings if self.findings is not None else findings
        return generate_phantom(
            phantom_seed(self.seed, index),
            wanted,
            priority=self.priority,
            size=self.size,
            patient_id=patient_id,
        )

    def numbered(
        self, patient_id: Callable[[int], str] | None = None
    ) -> Iterator[tuple[int, Phantom]]:
        """Yield ``(i, phantom)`` for every image, each its own patient and study."""
        for i in range(self.n):
            pid = patient_id(phantom_seed(self.seed, i)) if patient_id is not None else None
            yield i, self.phantom(i, patient_id=pid)
            if self.progress is not None:
                self.progress(i + 1)

    def studies(
        self, slots: Sequence[Slot], patient_id: Callable[[Slot], str] | None = None
    ) -> Iterator[tuple[Slot, Phantom]]:
        """Yield ``(slot, phantom)``; later images of a study get the first one's findings."""
        first: dict[tuple[int, int], tuple[str, ...]] = {}
        for slot in slots:
            pid = patient_id(slot) if patient_id is not None else None
            phantom = self.phantom(slot.index, first.get(slot.study_key), pid)
            first.setdefault(slot.study_key, phantom.findings)
            yield slot, phantom
            if self.progress is not None:
                self.progress(slot.index + 1)


@dataclass(frozen=True)
class Slot:
    """Where image ``index`` of a set belongs: its patient, the patient's study, its view."""

    index: int
    patient: int
    study: int
    view: int

    @property
    def study_key(self) -> tuple[int, int]:
        """``(patient, study)``: unique in the set."""
        return self.patient, self.study


def plan(seed: int, n: int, *, max_studies: int = 3, max_views: int = 2) -> list[Slot]:
    """Group ``n`` images into patients with 1..max_studies studies of 1..max_views images.

    Parameters
    ----------
    seed
        The set's seed (the grouping is drawn from it).
    n
        Number of images.
    max_studies, max_views
        The most studies per patient and images per study.

    Returns
    -------
    list[Slot]
        One slot per image, in index order; patients and studies numbered from 0.
    """
    rng = rng_for("plan", seed)
    slots: list[Slot] = []
    patient = 0
    while len(slots) < n:
        for study in range(int(rng.integers(1, max_studies + 1))):
            for view in range(int(rng.integers(1, max_views + 1))):
                if len(slots) < n:
                    slots.append(Slot(len(slots), patient, study, view))
        patient += 1
    return slots


_SPLIT_CYCLES: dict[int, tuple[int, ...]] = {2: (0, 0, 1), 3: (0, 0, 0, 1, 2)}


def split_of(patient: int, names: Sequence[str]) -> str:
    """Return the official split of a patient: a fixed cycle, so each side is never empty.

    Parameters
    ----------
    patient
        The patient's number in the set.
    names
        Two (train, evaluation) or three (train, validation, test) split names.

    Returns
    -------
    str
        One of ``names``: with two, every third patient is on the evaluation side; with three,
        patients 3 and 4 of every five are on the validation and test sides.
    """
    cycle = _SPLIT_CYCLES[len(names)]
    return names[cycle[patient % len(cycle)]]


def is_mass(ph: Phantom) -> bool:
    """Return whether the phantom's largest nodule is 30 mm or more across (a mass)."""
    spacing = float(ph.dataset.PixelSpacing[0])
    biggest = max((r for _, _, r in ph.details.get("nodules", [])), default=0.0)
    return bool(2 * biggest * spacing >= 30.0)


def save_jpeg(ph: Phantom, path: Path) -> None:
    """Write the phantom as an 8-bit greyscale JPEG (the JPEG datasets' form)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(display_image(ph.dataset)).save(path, format="JPEG", quality=95)


def save_png16(ph: Phantom, path: Path) -> None:
    """Write the phantom's stored values as a 16-bit greyscale PNG, MONOCHROME2 (PadChest)."""
    ds = ph.dataset
    pixels = ds.pixel_array.astype(np.uint16)
    if ds.PhotometricInterpretation == "MONOCHROME1":
        pixels = (2 ** int(ds.BitsStored) - 1 - pixels).astype(np.uint16)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, format="PNG")


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> Path:
    """Write a CSV with Unix line ends; gzipped (reproducibly, mtime 0) when it ends in .gz."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    data = buffer.getvalue().encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gz":
        with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
            gz.write(data)
    else:
        path.write_bytes(data)
    return path
