"""SIIM-ACR Pneumothorax: ``train-rle.csv`` and ``dicom-images-train/<study>/<series>/<id>.dcm``.

Patients have one to three studies of one image, sharing a UUID Patient ID, sex and age in the
DICOM header. ``train-rle.csv`` keeps the release's header with its space (``ImageId,
EncodedPixels``): an image without pneumothorax has one row `` -1``; an image with one has the
run-length encoding of the drawn pneumothorax, split in an upper and a lower region (two rows)
for every other positive image.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from models.phantoms.layouts.common import SetSpec, Slot, plan, write_csv

__all__ = ["SIIM_COLUMNS", "SIIM_IMAGES", "encode_rle", "write_siim"]

logger = logging.getLogger(__name__)

SIIM_COLUMNS: tuple[str, ...] = ("ImageId", " EncodedPixels")
"""The header as released, with the space before ``EncodedPixels``."""

SIIM_IMAGES = "dicom-images-train"


def encode_rle(mask: NDArray[np.bool_]) -> str:
    """Encode a mask as the challenge did: column-major runs, each start relative to the last end.

    Parameters
    ----------
    mask
        ``(rows, cols)`` booleans.

    Returns
    -------
    str
        ``"start length start length ..."`` where the first start counts pixels from the top
        left down the columns, and every later start counts from the end of the previous run.
    """
    flat = np.concatenate([[0], mask.T.reshape(-1).astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(flat))
    starts, ends = edges[0::2], edges[1::2]
    previous_ends = np.concatenate([[0], ends[:-1]])
    pairs = np.stack([starts - previous_ends, ends - starts], axis=1).reshape(-1)
    return " ".join(str(int(v)) for v in pairs)


def _regions(mask: NDArray[np.bool_], split: bool) -> list[NDArray[np.bool_]]:
    rows = np.flatnonzero(mask.any(axis=1))
    if not split or rows.size < 2:
        return [mask]
    middle = int(rows[rows.size // 2])
    upper, lower = mask.copy(), mask.copy()
    upper[middle:], lower[:middle] = False, False
    return [region for region in (upper, lower) if region.any()]


def _patient_id(seed: int, slot: Slot) -> str:
    digest = hashlib.sha256(f"ics-triage-siim:{seed}:{slot.patient}".encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def write_siim(out: Path, spec: SetSpec) -> Path:
    """Write the DICOM tree and ``train-rle.csv``; return the CSV."""
    rows: list[list[object]] = []
    patients: dict[int, tuple[str, str]] = {}
    positives = 0
    slots = plan(spec.seed, spec.n, max_views=1)
    for slot, ph in spec.studies(slots, lambda slot: _patient_id(spec.seed, slot)):
        ds = ph.dataset
        ds.PatientSex, ds.PatientAge = patients.setdefault(
            slot.patient, (str(ds.PatientSex), str(ds.PatientAge))
        )
        path = out / SIIM_IMAGES / ds.StudyInstanceUID / ds.SeriesInstanceUID
        path.mkdir(parents=True, exist_ok=True)
        ds.save_as(path / f"{ds.SOPInstanceUID}.dcm", enforce_file_format=True)
        mask = ph.masks.get("pneumothorax")
        if not ph.labels["pneumothorax"] or mask is None or not mask.any():
            rows.append([ds.SOPInstanceUID, " -1"])
            continue
        for region in _regions(mask, split=positives % 2 == 1):
            rows.append([ds.SOPInstanceUID, f" {encode_rle(region)}"])
        positives += 1
    return write_csv(out / "train-rle.csv", SIIM_COLUMNS, rows)
