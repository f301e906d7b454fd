from __future__ import annotations

import csv
import io
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.uid import (
    ComputedRadiographyImageStorage,
    DigitalXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
)

from models.errors import TriageError
from models.phantoms import (
    FINDINGS,
    PhantomError,
    display_image,
    generate_phantom,
    write_dataset,
)
from tests.builders.peers import dcmtk, free_port, wait_for_port
from triage.cli import main

SIZE = 256


def _bytes(ds: pydicom.Dataset) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _image(
    seed: int, findings: list[str]
) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, Any]]:
    ph = generate_phantom(seed, findings, size=SIZE)
    return display_image(ph.dataset).astype(np.float64), ph.masks, ph.details


def test_findings_are_the_demo_card_labels() -> None:
    assert FINDINGS == (
        "pneumothorax",
        "pleural_effusion",
        "nodule_mass",
        "cardiomegaly",
        "consolidation",
    )


def test_same_seed_same_bytes_other_seed_other_image() -> None:
    a = generate_phantom(11)
    b = generate_phantom(11)
    c = generate_phantom(12)
    assert _bytes(a.dataset) == _bytes(b.dataset)
    assert a.labels == b.labels
    assert a.dataset.SOPInstanceUID != c.dataset.SOPInstanceUID
    assert a.dataset.StudyInstanceUID != c.dataset.StudyInstanceUID
    assert a.dataset.PixelData != c.dataset.PixelData


def test_labels_follow_the_findings_asked_for() -> None:
    normal = generate_phantom(3, [], size=128)
    assert set(normal.labels.values()) == {0} and normal.findings == ()
    both = generate_phantom(3, ["cardiomegaly", "pneumothorax"], size=128)
    assert both.findings == ("pneumothorax", "cardiomegaly")
    assert "pneumothorax" in str(both.dataset.ImageComments)
    drawn = [generate_phantom(s, size=64).labels for s in range(60)]
    rates = np.mean([[d[name] for name in FINDINGS] for d in drawn], axis=0)
    assert np.all(rates > 0.1) and np.all(rates < 0.6)  # drawn at random, p = 0.3 each
    with pytest.raises(PhantomError, match="unknown findings"):
        generate_phantom(3, ["fracture"])
    with pytest.raises(TriageError, match="priority"):
        generate_phantom(3, [], priority="WHENEVER")
    with pytest.raises(PhantomError):
        generate_phantom(-1)


@pytest.mark.parametrize("seed", [1, 2, 5])
def test_pneumothorax_rim_is_darker_on_its_side(seed: int) -> None:
    img, masks, details = _image(seed, ["pneumothorax"])
    rim = masks["pneumothorax"]
    assert rim.sum() > 0.005 * rim.size
    # the rim lies in the lung of the side that was drawn (patient right = image left)
    lung = masks["lung_right"] if details["pneumothorax_side"] == "right" else masks["lung_left"]
    assert (rim & lung).sum() > 0.9 * rim.sum()
    normal, _, _ = _image(seed, [])
    # same anatomy without the finding: the rim region is darker with the pneumothorax, and
    # darker than the same band of the other lung
    assert img[rim].mean() < normal[rim].mean() - 5
    assert img[rim].mean() < img[rim[:, ::-1]].mean() - 5


@pytest.mark.parametrize("seed", [1, 4])
def test_effusion_nodule_consolidation_add_opacity_where_drawn(seed: int) -> None:
    normal, _, _ = _image(seed, [])
    for finding in ("pleural_effusion", "nodule_mass", "consolidation"):
        img, masks, details = _image(seed, [finding])
        region = masks[finding]
        assert region.any(), finding
        assert img[region].mean() > normal[region].mean() + 10, finding
    img, masks, details = _image(seed, ["pleural_effusion"])
    # blunted costophrenic angle: the lowest lung rows on the effusion side are opaque
    side = masks["lung_right"] if details["effusion_side"] == "right" else masks["lung_left"]
    rows = np.nonzero(side.any(axis=1))[0]
    base = side & (np.arange(SIZE)[:, None] > rows.max() - 0.1 * (rows.max() - rows.min()))
    assert img[base].mean() > normal[base].mean() + 20


def _ctr(masks: dict[str, np.ndarray]) -> float:
    heart_cols = np.nonzero(masks["heart"].any(axis=0))[0]
    lung_cols = np.nonzero((masks["lung_right"] | masks["lung_left"]).any(axis=0))[0]
    return float((np.ptp(heart_cols) + 1) / (np.ptp(lung_cols) + 1))


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_cardiomegaly_gives_a_cardiothoracic_ratio_above_half(seed: int) -> None:
    big = generate_phantom(seed, ["cardiomegaly"], size=SIZE)
    small = generate_phantom(seed, [], size=SIZE)
    assert _ctr(big.masks) > 0.52
    assert _ctr(small.masks) < 0.49
    # and the heart shadow is wider in the image: more bright columns at mid-heart height
    row = int(np.nonzero(big.masks["heart"].any(axis=1))[0].mean())
    assert big.masks["heart"][row].sum() > small.masks["heart"][row].sum()


@pytest.mark.parametrize(
    ("modality", "sop_class", "photometric"),
    [
        ("DX", DigitalXRayImageStorageForPresentation, "MONOCHROME1"),
        ("CR", ComputedRadiographyImageStorage, "MONOCHROME2"),
    ],
)
def test_dataset_is_a_valid_part10_file(
    tmp_path: Path, modality: str, sop_class: str, photometric: str
) -> None:
    ph = generate_phantom(
        21,
        ["nodule_mass"],
        priority="STAT",
        modality=modality,
        photometric=photometric,
        size=(320, 288),
        bits_stored=12,
    )
    path = tmp_path / "x.dcm"
    ph.dataset.save_as(path, enforce_file_format=True)
    ds = pydicom.dcmread(path)
    assert path.read_bytes()[128:132] == b"DICM"
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert ds.file_meta.MediaStorageSOPClassUID == ds.SOPClassUID == sop_class
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    for uid in (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID):
        assert uid.is_valid
    assert ds.Modality == modality and ds.BodyPartExamined == "CHEST"
    assert ds.ViewPosition in {"PA", "AP"}
    assert ds.RequestAttributesSequence[0].RequestedProcedurePriority == "STAT"
    assert "SYNTHETIC PHANTOM - NOT FOR CLINICAL USE" in ds.ImageComments
    assert "NOT FOR CLINICAL USE" in ds.StudyDescription
    assert str(ds.PatientName).startswith("PHANTOM^")
    assert ds.PhotometricInterpretation == photometric
    assert (ds.Rows, ds.Columns) == (320, 288) and ds.pixel_array.shape == (320, 288)
    assert ds.BitsStored == 12 and ds.pixel_array.max() < 2**12
    assert float(ds.WindowWidth) > 0
    # the window shows the body: lungs darker than the spine in the displayed image
    shown = display_image(ds)
    lungs = ph.masks["lung_right"] | ph.masks["lung_left"]
    assert shown[lungs].mean() + 40 < shown[:, 140:148].mean()


def test_defaults_vary_matrix_bits_and_photometric() -> None:
    seen = [generate_phantom(s, []).dataset for s in range(12)]
    assert all(384 <= ds.Rows <= 1024 and 384 <= ds.Columns <= 1024 for ds in seen)
    assert len({ds.Rows for ds in seen}) > 3
    assert {ds.PhotometricInterpretation for ds in seen} == {"MONOCHROME1", "MONOCHROME2"}
    assert {int(ds.BitsStored) for ds in seen} <= set(range(12, 17))
    assert len({int(ds.BitsStored) for ds in seen}) > 2
    assert {ds.RequestAttributesSequence[0].RequestedProcedurePriority for ds in seen} == {
        "ROUTINE"
    }


def _read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    return rows[0], rows[1:]


def test_generic_layout(tmp_path: Path) -> None:
    labels_csv = write_dataset(tmp_path / "g", 6, seed=9, layout="generic", size=128)
    header, rows = _read_csv(labels_csv)
    assert header == ["path", "study_instance_uid", "sop_instance_uid", *FINDINGS]
    assert len(rows) == 6
    for row in rows:
        ds = pydicom.dcmread(labels_csv.parent / row[0])
        assert ds.StudyInstanceUID == row[1] and ds.SOPInstanceUID == row[2]
        drawn = {name for name, v in zip(FINDINGS, row[3:], strict=True) if v == "1"}
        assert all(v in {"0", "1"} for v in row[3:])
        assert all((name in ds.ImageComments) == (name in drawn) for name in FINDINGS)


def test_nih_and_rsna_layouts_agree_with_generic_labels(tmp_path: Path) -> None:
    n, seed = 12, 4
    _, generic = _read_csv(write_dataset(tmp_path / "g", n, seed, "generic", size=128))
    truth = [
        {name for name, v in zip(FINDINGS, row[3:], strict=True) if v == "1"} for row in generic
    ]

    nih_csv = write_dataset(tmp_path / "n", n, seed, "nih", size=128)
    assert nih_csv.name == "Data_Entry_2017.csv"
    header_line = nih_csv.read_text().splitlines()[0]
    assert header_line == (
        "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,"
        "View Position,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]"
    )
    _, nih = _read_csv(nih_csv)
    nih_names = {
        "pneumothorax": {"Pneumothorax"},
        "pleural_effusion": {"Effusion"},
        "nodule_mass": {"Nodule", "Mass"},
        "cardiomegaly": {"Cardiomegaly"},
        "consolidation": {"Consolidation"},
    }
    for row, drawn in zip(nih, truth, strict=True):
        assert len(row) == 11
        with Image.open(nih_csv.parent / "images" / row[0]) as png:
            assert png.mode == "L" and png.size == (int(row[7]), int(row[8]))
        found = set(row[1].split("|"))
        if not drawn:
            assert found == {"No Finding"}
        else:
            assert len(found) == len(drawn)
            assert all(found & nih_names[name] for name in drawn)
        assert row[6] in {"PA", "AP"} and row[5] in {"M", "F"} and int(row[4]) >= 18

    rsna_csv = write_dataset(tmp_path / "r", n, seed, "rsna", size=128)
    header, rsna = _read_csv(rsna_csv)
    assert header == ["patientId", "x", "y", "width", "height", "Target"]
    images = rsna_csv.parent / "stage_2_train_images"
    ids = list(dict.fromkeys(row[0] for row in rsna))
    assert len(ids) == n
    for pid, drawn in zip(ids, truth, strict=True):
        ds = pydicom.dcmread(images / f"{pid}.dcm")
        assert ds.PatientID == pid
        boxes = [row for row in rsna if row[0] == pid]
        if "consolidation" in drawn:
            assert all(row[5] == "1" for row in boxes)
            for row in boxes:
                x, y, w, h = (float(v) for v in row[1:5])
                assert x >= 0 and x + w <= ds.Columns and y >= 0 and y + h <= ds.Rows
        else:
            assert boxes == [[pid, "", "", "", "", "0"]]
    assert (rsna_csv.parent / "stage_2_detailed_class_info.csv").exists()


def test_unknown_layout_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PhantomError, match="layout"):
        write_dataset(tmp_path, 1, 0, "kaggle")


def test_cli_generate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "set"
    args = ["phantoms", "generate", "--out", str(out), "--n", "3", "--seed", "2"]
    assert main([*args, "--size", "96", "--finding", "pneumothorax", "--priority", "HIGH"]) == 0
    _, rows = _read_csv(out / "labels.csv")
    assert [row[3] for row in rows] == ["1", "1", "1"]
    assert all(row[4:] == ["0"] * 4 for row in rows)
    ds = pydicom.dcmread(out / rows[0][0])
    assert ds.RequestAttributesSequence[0].RequestedProcedurePriority == "HIGH"
    assert "wrote 3 phantoms" in capsys.readouterr().out
    assert main([*args, "--layout", "kaggle"]) == 2


@pytest.mark.dcmtk
def test_storescu_sends_a_phantom(tmp_path: Path) -> None:
    path = tmp_path / "ph.dcm"
    generate_phantom(5, size=128, modality="DX").dataset.save_as(path, enforce_file_format=True)
    received = tmp_path / "in"
    received.mkdir()
    port = free_port()
    scp = subprocess.Popen([dcmtk("storescp"), "-od", str(received), str(port)])
    try:
        wait_for_port(port)
        sent = subprocess.run(
            [dcmtk("storescu"), "127.0.0.1", str(port), str(path)], capture_output=True, timeout=30
        )
        assert sent.returncode == 0, sent.stderr
    finally:
        scp.terminate()
        scp.wait(timeout=10)
    (stored,) = received.iterdir()
    assert pydicom.dcmread(stored).SOPInstanceUID == pydicom.dcmread(path).SOPInstanceUID


def test_the_phantom_package_reexports_its_names_from_the_light_modules() -> None:
    from models import phantoms
    from models.phantoms import dicom, layouts, names, render

    assert phantoms.FINDINGS is render.FINDINGS is names.FINDINGS
    assert phantoms.PRIORITIES is dicom.PRIORITIES is names.PRIORITIES
    assert phantoms.LAYOUTS is layouts.LAYOUTS is names.LAYOUTS
