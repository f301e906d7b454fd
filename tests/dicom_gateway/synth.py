"""Generate small synthetic DICOM instances for the gateway tests (no real patient data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

CT = "1.2.840.10008.5.1.4.1.1.2"
DX = "1.2.840.10008.5.1.4.1.1.1.1"
MR = "1.2.840.10008.5.1.4.1.1.4"
SOP_CLASS = {"CT": CT, "DX": DX, "CR": "1.2.840.10008.5.1.4.1.1.1", "MR": MR}


def make_dataset(
    *,
    study_uid: str,
    series_uid: str | None = None,
    sop_uid: str | None = None,
    modality: str = "CT",
    size: int = 16,
    seed: int = 0,
    patient_id: str = "SYNTH001",
    series_number: int = 1,
    instance_number: int = 1,
) -> Dataset:
    """Return a complete little instance with random 16-bit pixels."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    sop_class = SOP_CLASS[modality]
    sop_uid = sop_uid or generate_uid()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.PatientID = patient_id
    ds.PatientName = "Synthetic^Patient"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.AccessionNumber = "ACC1"
    ds.StudyDate = "20260101"
    ds.StudyTime = "120000"
    ds.StudyDescription = "Synthetic study"
    ds.Modality = modality
    ds.BodyPartExamined = "CHEST"
    ds.SeriesNumber = series_number
    ds.InstanceNumber = instance_number
    if modality in ("DX", "CR"):
        ds.ViewPosition = "PA"
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 4096, size=(size, size), dtype=np.uint16)
    ds.Rows = size
    ds.Columns = size
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.PixelData = pixels.tobytes()
    return ds


def write(ds: Dataset, path: Path) -> Path:
    """Write ``ds`` as a DICOM file (with preamble and file meta)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def make_study(
    folder: Path, *, modality: str = "CT", series: int = 3, per_series: int = 2, size: int = 16
) -> tuple[str, list[Path]]:
    """Write one study of ``series`` series x ``per_series`` instances; return (UID, files)."""
    study_uid = generate_uid()
    files: list[Path] = []
    for s in range(series):
        series_uid = generate_uid()
        for i in range(per_series):
            ds = make_dataset(
                study_uid=study_uid,
                series_uid=series_uid,
                modality=modality,
                size=size,
                seed=s * 100 + i,
                series_number=s + 1,
                instance_number=i + 1,
            )
            files.append(write(ds, folder / f"s{s}_i{i}.dcm"))
    return study_uid, files
