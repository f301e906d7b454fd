"""DICOM images of chosen pixels: a known mean intensity for the worker, a disc for the viewer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.uid import ComputedRadiographyImageStorage

from tests.builders.dicom import dicom_dataset, write_dicom_file


def write_bright_dicom(
    path: Path,
    *,
    study_uid: str,
    series_uid: str,
    sop_uid: str,
    bright: float,
    modality: str = "CR",
    size: int = 16,
    referral: str = "",
) -> Path:
    """Write a chest image whose top ``bright`` fraction of rows is white.

    Its mean intensity after min-max scaling, the score of a ``mean`` model, is ``bright``.

    Parameters
    ----------
    path : pathlib.Path
        Where to write it.
    study_uid, series_uid, sop_uid : str
        The instance's UIDs.
    bright : float
        Fraction of white rows, in [0, 1].
    modality, referral : str, optional
        ``Modality`` (the SOP class is CR storage whatever it is) and
        ``RequestedProcedurePriority`` (left out when empty).
    size : int, optional
        Rows and columns.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    pixels = np.zeros((size, size), dtype=np.uint16)
    pixels[: round(bright * size), :] = 4095
    pixels[-1, -1] = 0  # keep a dark pixel so min-max scaling has a range
    pixels[0, 0] = 4095
    ds = dicom_dataset(
        pixels,
        modality=modality,
        sop_class_uid=ComputedRadiographyImageStorage,
        sop_uid=sop_uid,
        study_uid=study_uid,
        series_uid=series_uid,
        patient_id="P1",
        patient_name="Test^Phantom",
        body_part="CHEST",
        view_position="PA",
        RequestedProcedurePriority=referral or None,
    )
    return write_dicom_file(ds, path)


def write_disc_dicom(path: Path, *, study_uid: str, sop_uid: str, size: int = 64) -> Path:
    """Write a CR image of a horizontal gradient with a bright disc in the middle.

    Parameters
    ----------
    path : pathlib.Path
        Where to write it.
    study_uid, sop_uid : str
        ``StudyInstanceUID`` and ``SOPInstanceUID``.
    size : int, optional
        Rows and columns.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    yy, xx = np.mgrid[0:size, 0:size]
    img = (xx * 4095 // (size - 1)).astype(np.uint16)
    img[(yy - size // 2) ** 2 + (xx - size // 2) ** 2 < (size // 5) ** 2] = 3500
    ds = dicom_dataset(
        img,
        modality="CR",
        sop_uid=sop_uid,
        study_uid=study_uid,
        patient_name="SYNTHETIC^PHANTOM",
        WindowCenter=2048,
        WindowWidth=4096,
    )
    return write_dicom_file(ds, path)
