"""RSNA Pneumonia and SIIM-ACR Pneumothorax: several rows per image, DICOM headers, RLE."""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from models.datasets import READERS, DatasetError
from models.phantoms import generate_phantom, phantom_seed
from tests.builders.datasets import SEED, SIZE, Truth


def _rows(path: Path) -> list[list[str]]:
    with path.open(newline="") as fh:
        return list(csv.reader(fh))


def test_rsna_boxes_give_one_record_per_image_with_its_class(
    phantom_root: Path, truth: Truth
) -> None:
    root = phantom_root / "rsna"
    header, *rows = _rows(root / "stage_2_train_labels.csv")
    assert header == ["patientId", "x", "y", "width", "height", "Target"]
    assert _rows(root / "stage_2_detailed_class_info.csv")[0] == ["patientId", "class"]
    boxes = Counter(row[0] for row in rows)
    assert max(boxes.values()) >= 2  # an image with several opacities has several rows
    records = list(READERS["rsna"].read(root))
    assert [r.image_id for r in records] == list(boxes)
    for record, drawn in zip(records, truth.labels, strict=True):
        assert record.patient == record.image_id
        assert record.labels == {"consolidation": drawn["consolidation"]}
        normal = not any(drawn.values())
        assert record.findings.get("Normal", 0) == int(normal)
        assert record.findings.get("No Lung Opacity / Not Normal", 0) == int(
            not normal and not drawn["consolidation"]
        )


def test_rsna_needs_its_class_table(copy_of: Callable[[str], Path]) -> None:
    root = copy_of("rsna")
    (root / "stage_2_detailed_class_info.csv").unlink()
    with pytest.raises(DatasetError, match=r"stage_2_detailed_class_info\.csv not found"):
        READERS["rsna"].read(root)


def rle_to_mask(rle: str, width: int, height: int) -> np.ndarray:
    """The challenge's own decoder (mask_functions.rle2mask), transposed to (rows, cols)."""
    mask = np.zeros(width * height, dtype=bool)
    values = [int(v) for v in rle.split()]
    position = 0
    for start, length in zip(values[0::2], values[1::2], strict=True):
        position += start
        mask[position : position + length] = True
        position += length
    return mask.reshape(width, height).T


def test_siim_keeps_the_published_header_and_its_masks_decode(
    phantom_root: Path, truth: Truth
) -> None:
    root = phantom_root / "siim"
    assert (root / "train-rle.csv").read_text().splitlines()[0] == "ImageId, EncodedPixels"
    _header, *rows = _rows(root / "train-rle.csv")
    per_image: dict[str, list[str]] = {}
    for image_id, cell in rows:
        assert cell.startswith(" ")
        per_image.setdefault(image_id, []).append(cell.strip())
    assert max(len(v) for v in per_image.values()) == 2
    for index, (image_id, runs) in enumerate(per_image.items()):
        drawn = truth.labels[index]["pneumothorax"]
        assert (runs == ["-1"]) == (not drawn)
        if drawn:
            ph = generate_phantom(phantom_seed(SEED, index), size=SIZE)
            union = np.zeros((SIZE, SIZE), dtype=bool)
            for rle in runs:
                region = rle_to_mask(rle, SIZE, SIZE)
                assert region.any() and not (region & union).any()
                union |= region
            assert np.array_equal(union, ph.masks["pneumothorax"])
            assert ph.dataset.SOPInstanceUID == image_id


def test_siim_reads_patients_from_the_dicom_tree(phantom_root: Path, truth: Truth) -> None:
    root = phantom_root / "siim"
    records = list(READERS["siim"].read(root))
    for index, record in enumerate(records):
        assert record.labels == {"pneumothorax": truth.labels[index]["pneumothorax"]}
        study, series = record.image.relative_to(root / "dicom-images-train").parts[:2]
        assert study == record.study and record.image.name == f"{record.image_id}.dcm"
        assert len(series) > 10 and record.patient.count("-") == 4


def test_siim_also_reads_a_header_without_the_space(copy_of: Callable[[str], Path]) -> None:
    root = copy_of("siim")
    text = (root / "train-rle.csv").read_text()
    (root / "train-rle.csv").write_text(
        text.replace("ImageId, EncodedPixels", "ImageId,EncodedPixels")
    )
    assert len(list(READERS["siim"].read(root))) > 0
    (root / "dicom-images-train").rename(root / "elsewhere")
    with pytest.raises(DatasetError, match="dicom-images-train not found"):
        READERS["siim"].read(root)
