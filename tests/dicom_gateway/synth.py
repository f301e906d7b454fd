"""Generate small synthetic DICOM instances for the gateway tests (no real patient data)."""

from __future__ import annotations

from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from tests.dicom_factory import SOP_CLASS as SOP_CLASS
from tests.dicom_factory import dicom_dataset, write_dicom_file


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
    return dicom_dataset(
        modality=modality,
        sop_uid=sop_uid,
        study_uid=study_uid,
        series_uid=series_uid,
        patient_id=patient_id,
        patient_name="Synthetic^Patient",
        body_part="CHEST",
        view_position="PA" if modality in ("DX", "CR") else None,
        size=size,
        seed=seed,
        PatientBirthDate="19700101",
        PatientSex="O",
        AccessionNumber="ACC1",
        StudyDate="20260101",
        StudyTime="120000",
        StudyDescription="Synthetic study",
        SeriesNumber=series_number,
        InstanceNumber=instance_number,
    )


write = write_dicom_file  # write ``ds`` as a DICOM file (with preamble and file meta)


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
