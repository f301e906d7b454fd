"""DICOM datasets for synthetic chest radiograph phantoms (DX and CR), built with pydicom."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import numpy as np
import pydicom
from numpy.typing import NDArray
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    ComputedRadiographyImageStorage,
    DigitalXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
    generate_uid,
)

from models.phantoms.names import PRIORITIES

__all__ = ["PRIORITIES", "SYNTHETIC_NOTICE", "DicomIdentity", "build_dataset", "phantom_uid"]

logger = logging.getLogger(__name__)

SYNTHETIC_NOTICE = "SYNTHETIC PHANTOM - NOT FOR CLINICAL USE"

_SOP_CLASSES: dict[str, UID] = {
    "DX": DigitalXRayImageStorageForPresentation,
    "CR": ComputedRadiographyImageStorage,
}


def phantom_uid(seed: int, what: str) -> UID:
    """Return a deterministic UID for one of a phantom's entities.

    Parameters
    ----------
    seed
        The phantom's seed.
    what
        ``"study"``, ``"series"``, ``"instance"`` or any other distinguishing word.

    Returns
    -------
    pydicom.uid.UID
        A UID under pydicom's root, derived from a SHA-512 of the seed and ``what``.
    """
    return generate_uid(entropy_srcs=["ics-triage-phantom", str(seed), what])


@dataclass(frozen=True)
class DicomIdentity:
    """The identifying and descriptive attributes of one phantom."""

    seed: int
    modality: str  # DX or CR
    view: str  # PA or AP
    priority: str
    patient_id: str
    patient_name: str
    patient_sex: str
    patient_age: int
    acquired: dt.datetime


def build_dataset(
    pixels: NDArray[np.uint16],
    *,
    identity: DicomIdentity,
    photometric: str,
    bits_stored: int,
    window: tuple[float, float],
    pixel_spacing: float,
    comments: str,
) -> Dataset:
    """Wrap phantom pixels in a DX or CR dataset with valid file meta.

    Parameters
    ----------
    pixels
        ``(rows, cols)`` stored values, ``0 .. 2**bits_stored - 1``.
    identity
        Patient, study and acquisition attributes.
    photometric
        ``"MONOCHROME1"`` or ``"MONOCHROME2"``.
    bits_stored
        12 to 16.
    window
        ``(center, width)`` of the VOI window in stored values.
    pixel_spacing
        Millimetres per pixel (square pixels).
    comments
        Image Comments text (the synthetic notice and what was drawn).

    Returns
    -------
    pydicom.dataset.Dataset
        Little-endian explicit VR, uncompressed; ``save_as(path, enforce_file_format=True)``
        writes a valid Part 10 file.
    """
    sop_class = _SOP_CLASSES[identity.modality]
    seed = identity.seed
    study_uid = phantom_uid(seed, "study")
    series_uid = phantom_uid(seed, "series")
    sop_uid = phantom_uid(seed, "instance")
    date = identity.acquired.strftime("%Y%m%d")
    time = identity.acquired.strftime("%H%M%S")
    acquired = identity.acquired
    birth = dt.date(acquired.year - identity.patient_age, acquired.month, min(acquired.day, 28))

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = f"PYDICOM {pydicom.__version__}"[:16]

    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = ds.AcquisitionDate = date
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = ds.AcquisitionTime = time
    ds.AccessionNumber = f"PH{seed % 10**14:014d}"
    ds.Modality = identity.modality
    ds.Manufacturer = "ICS Triage synthetic phantom"
    ds.InstitutionName = "SYNTHETIC"
    ds.ReferringPhysicianName = "SYNTHETIC^REFERRER"
    ds.StudyDescription = f"XR CHEST {identity.view} - {SYNTHETIC_NOTICE}"
    ds.SeriesDescription = f"CHEST {identity.view}"
    ds.PatientName = identity.patient_name
    ds.PatientID = identity.patient_id
    ds.PatientBirthDate = birth.strftime("%Y%m%d")
    ds.PatientSex = identity.patient_sex
    ds.PatientAge = f"{identity.patient_age:03d}Y"
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = "SYNTHETIC PHANTOM: generated, no real patient"
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = identity.view
    ds.PatientOrientation = ["L", "F"]
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = f"{seed % 10**16}"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.ImageComments = comments
    ds.BurnedInAnnotation = "NO"
    ds.LossyImageCompression = "00"

    request = Dataset()
    request.RequestedProcedureID = f"RP{seed % 10**14:014d}"
    request.ScheduledProcedureStepID = f"SP{seed % 10**14:014d}"
    request.RequestedProcedureDescription = "XR CHEST"
    request.RequestedProcedurePriority = identity.priority
    ds.RequestAttributesSequence = Sequence([request])

    rows, cols = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.Rows, ds.Columns = rows, cols
    ds.BitsAllocated = 16
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 0
    ds.RescaleIntercept = 0
    ds.RescaleSlope = 1
    ds.RescaleType = "US"
    ds.WindowCenter = round(window[0], 1)
    ds.WindowWidth = round(max(window[1], 1.0), 1)
    ds.VOILUTFunction = "LINEAR"
    ds.ImagerPixelSpacing = [round(pixel_spacing, 6)] * 2
    ds.PixelSpacing = [round(pixel_spacing, 6)] * 2
    if identity.modality == "DX":
        ds.PresentationIntentType = "FOR PRESENTATION"
        ds.PixelIntensityRelationship = "LOG"
        ds.PixelIntensityRelationshipSign = 1 if photometric == "MONOCHROME1" else -1
        ds.PresentationLUTShape = "INVERSE" if photometric == "MONOCHROME1" else "IDENTITY"
    ds.PixelData = np.ascontiguousarray(pixels, dtype="<u2").tobytes()
    ds["PixelData"].VR = "OW"
    return ds
