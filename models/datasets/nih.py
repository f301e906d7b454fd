"""NIH ChestX-ray14 as released: ``Data_Entry_2017*.csv``, ``images*/``, the official lists.

Layout (NIH Clinical Center box release and its Kaggle mirror)::

    Data_Entry_2017_v2020.csv   (or Data_Entry_2017.csv)
    train_val_list.txt          official split, patient-wise: one image name a line
    test_list.txt
    images/00000001_000.png     (box tarballs)   or   images_001/images/00000001_000.png (Kaggle)

``Finding Labels`` is ``|``-separated (``No Finding`` when none). The header's bracketed names
contain commas, so ``OriginalImage[Width,Height]`` and ``OriginalImagePixelSpacing[x,y]`` are two
fields each; the reader needs neither. No uncertainty; no site.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

from models.datasets.base import ALL, DatasetReader, ImageCheck, ReadOptions, Record
from models.datasets.tables import Table
from models.datasets.values import parse_age, parse_sex, parse_view
from models.errors import DatasetError

__all__ = ["LABELS", "READER", "REQUIRED", "SPLIT_FILES"]

logger = logging.getLogger(__name__)

TITLE = "NIH ChestX-ray14"

LABELS: tuple[str, ...] = (
    "Atelectasis",
    "Cardiomegaly",
    "Consolidation",
    "Edema",
    "Effusion",
    "Emphysema",
    "Fibrosis",
    "Hernia",
    "Infiltration",
    "Mass",
    "Nodule",
    "Pleural_Thickening",
    "Pneumonia",
    "Pneumothorax",
    "No Finding",
)
"""The 14 findings and ``No Finding``, as spelled in ``Finding Labels``."""

REQUIRED: tuple[str, ...] = (
    "Image Index",
    "Finding Labels",
    "Patient ID",
    "Patient Age",
    "Patient Gender",
    "View Position",
)

SPLIT_FILES: dict[str, str] = {"train_val": "train_val_list.txt", "test": "test_list.txt"}
"""Official split name -> the list that holds its images."""


def _entries(root: Path) -> Path:
    found = sorted(p for p in root.glob("Data_Entry_2017*.csv") if p.is_file())
    if not found:
        raise DatasetError(f"{TITLE}: file Data_Entry_2017*.csv not found in {root}")
    newest = [p for p in found if "v2020" in p.name]
    return (newest or found)[-1]


def _image_index(root: Path) -> dict[str, Path]:
    index: dict[str, Path] = {}
    for folder in sorted(p for p in root.glob("images*") if p.is_dir()):
        for where in (folder, folder / "images"):
            if not where.is_dir():
                continue
            with os.scandir(where) as entries:
                for entry in entries:
                    if entry.name.endswith(".png"):
                        index.setdefault(entry.name, Path(entry.path))
    return index


def _splits(root: Path, needed: bool) -> dict[str, str] | None:
    paths = {name: root / file for name, file in SPLIT_FILES.items()}
    absent = [str(path) for path in paths.values() if not path.is_file()]
    if absent:
        if needed:
            raise DatasetError(f"{TITLE}: official split file {', '.join(absent)} not found")
        logger.info("%s: no official split lists in %s; records carry no split", TITLE, root)
        return None
    splits: dict[str, str] = {}
    for name, path in paths.items():
        for line in path.read_text("utf-8").splitlines():
            if line.strip():
                splits[line.strip()] = name
    return splits


def _read(root: Path, options: ReadOptions) -> Iterator[Record]:
    table = Table(_entries(root), REQUIRED)
    splits = _splits(root, needed=options.split != ALL)
    images = _image_index(root)
    check = ImageCheck(TITLE, table.path, options)
    for row in table:
        name = row["Image Index"].strip()
        split = splits.get(name) if splits is not None else None
        if not options.wants(split):
            continue
        image = images.get(name, root / "images" / name)
        if not check(image):
            continue
        names = [label.strip() for label in row["Finding Labels"].split("|") if label.strip()]
        findings = dict.fromkeys(names, 1)
        followup = row.get("Follow-up #", "").strip()
        patient = row["Patient ID"].strip()
        yield Record(
            dataset="nih",
            image_id=name,
            image=image,
            patient=patient,
            study=f"{patient}/{followup}" if followup else None,
            labels=options.label_map.apply(findings, options.uncertainty),
            findings=findings,
            sex=parse_sex(row["Patient Gender"]),
            age=parse_age(row["Patient Age"]),
            view=parse_view(row["View Position"]),
            split=split,
        )
    check.report()


READER = DatasetReader(
    name="nih",
    title=TITLE,
    function=_read,
    splits=tuple(SPLIT_FILES),
    evaluation_split="test",
    vocabulary=LABELS,
)
