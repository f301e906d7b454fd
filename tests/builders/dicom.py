"""Small synthetic DICOM instances, files and studies (no real patient data).

:func:`dicom_dataset` makes the file meta, the UIDs and the image pixel module of every instance
the tests build; the other builders choose the pixels and attributes their tests depend on.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    UID,
    ComputedRadiographyImageStorage,
    CTImageStorage,
    DigitalXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
    MRImageStorage,
    generate_uid,
)

SOP_CLASS: dict[str, UID] = {
    "CT": CTImageStorage,
    "DX": DigitalXRayImageStorageForPresentation,
    "CR": ComputedRadiographyImageStorage,
    "MR": MRImageStorage,
}
"""The storage SOP class used for each modality when none is given."""


def random_pixels(
    rows: int, columns: int | None = None, *, seed: int = 0, bits_stored: int = 12
) -> NDArray[np.uint16]:
    """Return seeded uniform random unsigned pixels, ``rows`` x ``columns``.

    Parameters
    ----------
    rows, columns : int
        Number of rows and of columns; ``columns=None`` (the default) makes a square image.
    seed : int, optional
        Seed of :func:`numpy.random.default_rng`; the same seed gives the same pixels.
    bits_stored : int, optional
        Pixel values are drawn from ``[0, 2**bits_stored)``.

    Returns
    -------
    numpy.ndarray
        A ``uint16`` array of shape ``(rows, columns)``.
    """
    rng = np.random.default_rng(seed)
    shape = (rows, rows if columns is None else columns)
    return rng.integers(0, 2**bits_stored, size=shape, dtype=np.uint16)


def dicom_dataset(
    pixels: NDArray[np.uint16] | None = None,
    *,
    modality: str = "CR",
    sop_class_uid: str | None = None,
    sop_uid: str | None = None,
    study_uid: str | None = None,
    series_uid: str | None = None,
    patient_id: str | None = None,
    patient_name: str | None = None,
    body_part: str | None = None,
    view_position: str | None = None,
    size: int = 16,
    seed: int = 0,
    photometric: str = "MONOCHROME2",
    bits_stored: int = 12,
    **attributes: object,
) -> Dataset:
    """Build a small valid single-frame DICOM instance with its file meta, ready to write.

    Every instance has the SOP common and identifying UIDs, ``Modality``, and an image pixel
    module of one unsigned 16-bit sample per pixel (Explicit VR Little Endian). Optional
    attributes are left out when their argument is ``None``.

    Parameters
    ----------
    pixels : numpy.ndarray or None, optional
        A 2-D ``uint16`` image; ``Rows`` and ``Columns`` follow its shape. ``None`` (the
        default) makes ``size`` x ``size`` random pixels from ``seed`` (:func:`random_pixels`).
    modality, sop_class_uid : str, optional
        ``Modality`` and ``SOPClassUID``; the class is :data:`SOP_CLASS` of the modality when
        ``sop_class_uid`` is ``None``.
    sop_uid, study_uid, series_uid : str or None, optional
        ``SOPInstanceUID`` (also ``MediaStorageSOPInstanceUID``), ``StudyInstanceUID`` and
        ``SeriesInstanceUID``; each is a fresh :func:`pydicom.uid.generate_uid` when ``None``
        or empty.
    patient_id, patient_name, body_part, view_position : str or None, optional
        ``PatientID``, ``PatientName``, ``BodyPartExamined`` and ``ViewPosition``; left out
        when ``None``.
    size, seed : int, optional
        Rows and columns, and seed, of the random image made when ``pixels`` is ``None``.
    photometric : str, optional
        ``PhotometricInterpretation`` (``MONOCHROME2`` or ``MONOCHROME1``).
    bits_stored : int, optional
        ``BitsStored``; ``HighBit`` is one less.
    **attributes : object
        Further attributes by DICOM keyword (``AccessionNumber="ACC1"``, ``WindowCenter=2048``);
        one whose value is ``None`` is left out.

    Returns
    -------
    pydicom.dataset.Dataset
        The instance, with ``file_meta`` set.

    Raises
    ------
    KeyError
        If ``sop_class_uid`` is not given and :data:`SOP_CLASS` has no entry for ``modality``.
    ValueError
        If ``pixels`` is not a 2-D ``uint16`` array, or a keyword in ``attributes`` is not a
        DICOM keyword.
    """
    if pixels is None:
        pixels = random_pixels(size, seed=seed, bits_stored=bits_stored)
    if pixels.ndim != 2 or pixels.dtype != np.uint16:
        raise ValueError(f"pixels must be a 2-D uint16 array, not {pixels.dtype} {pixels.shape}")
    unknown = [keyword for keyword in attributes if tag_for_keyword(keyword) is None]
    if unknown:
        raise ValueError(f"not DICOM keywords: {', '.join(unknown)}")
    sop_class = UID(sop_class_uid or SOP_CLASS[modality])
    sop_instance = UID(sop_uid or generate_uid())

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = sop_instance
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_instance
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.Modality = modality
    optional: dict[str, object] = {
        "PatientID": patient_id,
        "PatientName": patient_name,
        "BodyPartExamined": body_part,
        "ViewPosition": view_position,
        **attributes,
    }
    for keyword, value in optional.items():
        if value is not None:
            setattr(ds, keyword, value)
    ds.Rows, ds.Columns = (int(n) for n in pixels.shape)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = 16
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 0
    ds.PixelData = pixels.tobytes()
    return ds


def write_dicom_file(ds: Dataset, path: Path) -> Path:
    """Write ``ds`` as a DICOM file (preamble and file meta), making its folder if needed.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        An instance with ``file_meta``, such as one from :func:`dicom_dataset`.
    path : pathlib.Path
        Where to write it; missing parent folders are created.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def encode(ds: Dataset) -> bytes:
    """Return ``ds`` as the bytes of a DICOM file (preamble and file meta), as a C-STORE has it.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        An instance with ``file_meta``, such as one from :func:`dicom_dataset`.

    Returns
    -------
    bytes
        The encoded file.
    """
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


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
    """Return a complete little instance of a chest study with random 16-bit pixels.

    Parameters
    ----------
    study_uid, series_uid, sop_uid : str or None
        The instance's UIDs; fresh ones for series and SOP instance when ``None``.
    modality, patient_id : str, optional
        ``Modality`` (DX and CR images are PA views) and ``PatientID``.
    size, seed, series_number, instance_number : int, optional
        Rows and columns, seed of the random pixels, ``SeriesNumber`` and ``InstanceNumber``.

    Returns
    -------
    pydicom.dataset.Dataset
        The instance, with ``file_meta`` set.
    """
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


def make_study(
    folder: Path, *, modality: str = "CT", series: int = 3, per_series: int = 2, size: int = 16
) -> tuple[str, list[Path]]:
    """Write one study of ``series`` series x ``per_series`` instances of :func:`make_dataset`.

    Parameters
    ----------
    folder : pathlib.Path
        Where the files go (``s{series}_i{instance}.dcm``).
    modality : str, optional
        ``Modality`` of every instance.
    series, per_series, size : int, optional
        How many series, how many instances in each, and the rows and columns of each image.

    Returns
    -------
    tuple of (str, list of pathlib.Path)
        The study's UID and the files written.
    """
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
            files.append(write_dicom_file(ds, folder / f"s{s}_i{i}.dcm"))
    return study_uid, files


def chest_dataset(
    rows: int = 48,
    columns: int = 40,
    *,
    seed: int = 0,
    photometric: str = "MONOCHROME2",
    bits_stored: int = 12,
) -> Dataset:
    """Return a small CR chest PA image of seeded random pixels, ready to write.

    Parameters
    ----------
    rows, columns, seed : int, optional
        The image's size and the seed of its random pixels.
    photometric : str, optional
        ``PhotometricInterpretation``.
    bits_stored : int, optional
        ``BitsStored``; the pixels are drawn below ``2**bits_stored``.

    Returns
    -------
    pydicom.dataset.Dataset
        The instance, with ``file_meta`` set.
    """
    return dicom_dataset(
        random_pixels(rows, columns, seed=seed, bits_stored=bits_stored),
        modality="CR",
        patient_id="TEST",
        body_part="CHEST",
        view_position="PA",
        photometric=photometric,
        bits_stored=bits_stored,
    )
