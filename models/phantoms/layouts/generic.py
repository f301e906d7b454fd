"""Our own layout: ``dicom/*.dcm`` and ``labels.csv`` with one 0/1 column per finding."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

from models.phantoms.core import FINDINGS
from models.phantoms.layouts.common import SetSpec

__all__ = ["GENERIC_COLUMNS", "write_generic"]

logger = logging.getLogger(__name__)

GENERIC_COLUMNS: tuple[str, ...] = ("path", "study_instance_uid", "sop_instance_uid", *FINDINGS)


def write_generic(out: Path, spec: SetSpec) -> Path:
    """Write ``dicom/phantom_NNNNNN.dcm`` and ``labels.csv``; return the CSV's path."""
    (out / "dicom").mkdir(exist_ok=True)
    csv_path = out / "labels.csv"
    with csv_path.open("w", newline="") as fh:
        rows = csv.writer(fh)
        rows.writerow(GENERIC_COLUMNS)
        for i, ph in spec.numbered():
            rel = Path("dicom") / f"phantom_{i:06d}.dcm"
            ph.dataset.save_as(out / rel, enforce_file_format=True)
            ds = ph.dataset
            labels = [ph.labels[name] for name in FINDINGS]
            rows.writerow([rel.as_posix(), ds.StudyInstanceUID, ds.SOPInstanceUID, *labels])
    return csv_path
