"""One factory for the small synthetic DICOM instances the tests build (no real patient data).

The helpers of each test package (``tests/dicom_gateway/synth.py``, ``tests/models/builders.py``,
``tests/triage/builders.py``, ``tests/worklist/web/support.py``) are thin wrappers over
:func:`dicom_dataset` and :func:`write_dicom_file`: they choose the pixels and the attributes
their tests depend on; the file meta, the identifying UIDs and the image pixel module are made
here, once.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

CR_STORAGE = UID("1.2.840.10008.5.1.4.1.1.1")
"""Computed Radiography Image Storage."""

SOP_CLASS: dict[str, UID] = {
    "CT": UID("1.2.840.10008.5.1.4.1.1.2"),
    "DX": UID("1.2.840.10008.5.1.4.1.1.1.1"),
    "CR": CR_STORAGE,
    "MR": UID("1.2.840.10008.5.1.4.1.1.4"),
}
"""The storage SOP class used for each modality when none is given."""


def random_pixels(
    rows: int, columns: int | None = None, *, seed: int = 0, bits_stored: int = 12
) -> NDArray[np.uint16]:
    """Return seeded uniform random unsigned pixels, ``rows`` x ``columns``.

    Parameters
    ----------
    rows : int
        Number of rows.
    columns : int or None, optional
        Number of columns; ``None`` (the default) makes a square image of ``rows``.
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
    modality : str, optional
        ``Modality``; also picks the SOP class from :data:`SOP_CLASS` when ``sop_class_uid`` is
        not given.
    sop_class_uid : str or None, optional
        ``SOPClassUID`` and ``MediaStorageSOPClassUID``.
    sop_uid, study_uid, series_uid : str or None, optional
        ``SOPInstanceUID`` (also ``MediaStorageSOPInstanceUID``), ``StudyInstanceUID`` and
        ``SeriesInstanceUID``; each is a fresh :func:`pydicom.uid.generate_uid` when ``None``
        or empty.
    patient_id, patient_name : str or None, optional
        ``PatientID`` and ``PatientName``; left out when ``None``.
    body_part, view_position : str or None, optional
        ``BodyPartExamined`` and ``ViewPosition``; left out when ``None``.
    size : int, optional
        Rows and columns of the random image made when ``pixels`` is ``None``.
    seed : int, optional
        Seed of the random image made when ``pixels`` is ``None``.
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
