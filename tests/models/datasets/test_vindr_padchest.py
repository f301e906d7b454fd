"""VinDr-CXR (three radiologists' votes, consensus test labels) and PadChest (16-bit PNG)."""

from __future__ import annotations

import ast
import csv
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from models.datasets import READERS, DatasetError
from models.phantoms import FINDINGS, generate_phantom, phantom_seed
from tests.builders.datasets import SEED, SIZE, Truth, slots

VINDR_LABELS = (
    "Aortic enlargement,Atelectasis,Calcification,Cardiomegaly,Clavicle fracture,Consolidation,"
    "Edema,Emphysema,Enlarged PA,ILD,Infiltration,Lung Opacity,Lung cavity,Lung cyst,"
    "Mediastinal shift,Nodule/Mass,Pleural effusion,Pleural thickening,Pneumothorax,"
    "Pulmonary fibrosis,Rib fracture,Other lesion,COPD,Lung tumor,Pneumonia,Tuberculosis,"
    "Other diseases,No finding"
)
PADCHEST_HEADER = (
    "ImageID,ImageDir,StudyDate_DICOM,StudyID,PatientID,PatientBirth,PatientSex_DICOM,"
    "ViewPosition_DICOM,Projection,MethodProjection,Pediatric,Modality_DICOM,Manufacturer_DICOM,"
    "PhotometricInterpretation_DICOM,PixelRepresentation_DICOM,PixelAspectRatio_DICOM,"
    "SpatialResolution_DICOM,BitsStored_DICOM,WindowCenter_DICOM,WindowWidth_DICOM,Rows_DICOM,"
    "Columns_DICOM,XRayTubeCurrent_DICOM,Exposure_DICOM,ExposureInuAs_DICOM,ExposureTime,"
    "RelativeXRayExposure_DICOM,ReportID,Report,MethodLabel,Labels,Localizations,"
    "LabelsLocalizationsBySentence,labelCUIS,LocalizationsCUIS"
)
PADCHEST_CSV = "PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv"


def _dicts(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_vindr_tables_have_the_published_headers(phantom_root: Path) -> None:
    annotations = phantom_root / "vindr" / "annotations"
    train = (annotations / "image_labels_train.csv").read_text().splitlines()[0]
    test = (annotations / "image_labels_test.csv").read_text().splitlines()[0]
    assert train == f"image_id,rad_id,{VINDR_LABELS}" and test == f"image_id,{VINDR_LABELS}"


@pytest.mark.parametrize(
    ("policy", "split_vote"), [("ignore", None), ("negative", 0), ("positive", 1)]
)
def test_vindr_split_votes_follow_the_uncertainty_policy(
    phantom_root: Path, policy: str, split_vote: int | None
) -> None:
    votes: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in _dicts(phantom_root / "vindr" / "annotations" / "image_labels_train.csv"):
        votes[row["image_id"]].append(row)
    assert all(len({r["rad_id"] for r in rows}) == 3 for rows in votes.values())
    records = {
        r.image_id: r for r in READERS["vindr"].read(phantom_root / "vindr", uncertainty=policy)
    }
    split_seen = 0
    for image_id, rows in votes.items():
        record = records[image_id]
        assert record.split == "train" and record.patient == image_id
        for label, column in (("pneumothorax", "Pneumothorax"), ("nodule_mass", "Nodule/Mass")):
            marks = {r[column] for r in rows}
            if marks == {"1"}:
                assert record.labels[label] == 1 and record.findings[column] == 1
            elif marks == {"0"}:
                assert record.labels[label] == 0 and column not in record.findings
            else:
                split_seen += 1
                assert record.labels[label] == split_vote and record.findings[column] == -1
    assert split_seen > 0


def test_vindr_test_labels_are_the_consensus(phantom_root: Path) -> None:
    rows = _dicts(phantom_root / "vindr" / "annotations" / "image_labels_test.csv")
    records = list(READERS["vindr"].read(phantom_root / "vindr", split="official"))
    assert [r.image_id for r in records] == [row["image_id"] for row in rows]
    for record, row in zip(records, rows, strict=True):
        assert record.split == "test" and record.image.suffix == ".dicom"
        assert record.labels["cardiomegaly"] == int(row["Cardiomegaly"])
        assert -1 not in record.findings.values()


def test_vindr_refuses_a_mark_other_than_0_or_1(copy_of: Callable[[str], Path]) -> None:
    root = copy_of("vindr")
    path = root / "annotations" / "image_labels_test.csv"
    header, first, *rest = path.read_text().splitlines()
    path.write_text("\n".join([header, first.replace(",0,", ",-1,", 1), *rest]) + "\n")
    with pytest.raises(
        DatasetError, match=r"image_labels_test\.csv: .* is not a label code \(0, 1 or blank\)"
    ):
        READERS["vindr"].read(root, split="test")


def test_padchest_table_and_16_bit_images(phantom_root: Path) -> None:
    root = phantom_root / "padchest"
    assert (root / PADCHEST_CSV).read_text().splitlines()[0] == PADCHEST_HEADER
    rows = _dicts(root / PADCHEST_CSV)
    records = list(READERS["padchest"].read(root))
    assert len({row["ImageDir"] for row in rows}) > 1
    for record, row in zip(records, rows, strict=True):
        assert record.image == root / row["ImageDir"] / row["ImageID"]
        assert record.findings == dict.fromkeys(ast.literal_eval(row["Labels"]), 1)
        assert record.age == int(row["StudyDate_DICOM"][:4]) - float(row["PatientBirth"])
        assert record.sex == row["PatientSex_DICOM"] and record.patient == row["PatientID"]
        assert record.view == {"AP_horizontal": "AP"}.get(row["Projection"], row["Projection"])
    assert {row["Projection"] for row in rows} >= {"PA", "AP_horizontal"}
    with Image.open(records[0].image) as png:
        assert png.mode == "I;16"
        assert np.asarray(png).max() > 255


def test_padchest_labels_spaces_empty_and_malformed(copy_of: Callable[[str], Path]) -> None:
    root = copy_of("padchest")
    path = root / PADCHEST_CSV
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    column = rows[0].index("Labels")
    rows[1][column] = "['mass', ' loculated pleural effusion', 'kyphosis']"
    rows[2][column] = ""
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    first, second = list(READERS["padchest"].read(root))[:2]
    assert first.labels["nodule_mass"] == first.labels["pleural_effusion"] == 1
    assert first.findings == {"mass": 1, "loculated pleural effusion": 1, "kyphosis": 1}
    assert set(second.labels.values()) == {None} and second.findings == {}
    rows[2][column] = "pleural effusion"
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    with pytest.raises(DatasetError, match=r"column 'Labels'.* is not a list of labels"):
        list(READERS["padchest"].read(root))


def test_padchest_images_of_a_study_show_its_findings(phantom_root: Path, truth: Truth) -> None:
    records = list(READERS["padchest"].read(phantom_root / "padchest"))
    study_labels = truth.of_study("padchest")
    later = [i for i, slot in enumerate(slots("padchest")) if slot.view > 0]
    assert later
    for index in later:
        drawn = [name for name in FINDINGS if study_labels[index][name]]
        ds = generate_phantom(phantom_seed(SEED, index), drawn, size=SIZE).dataset
        stored = ds.pixel_array.astype(np.int64)
        if ds.PhotometricInterpretation == "MONOCHROME1":
            stored = 2 ** int(ds.BitsStored) - 1 - stored
        with Image.open(records[index].image) as png:
            assert np.array_equal(np.asarray(png, dtype=np.int64), stored), index
