"""DCMTK's Query/Retrieve peers: findscu, movescu, getscu and a storescp move destination.

Each runs against ``127.0.0.1:port`` calling the listener's default AE title; responses and
received instances are read back as files, never parsed from the tools' text output.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import Comprehensive3DSRStorage, generate_uid
from pynetdicom.dsutils import split_dataset

from tests.builders.dicom import dicom_dataset, write_dicom_file
from tests.builders.peers import dcmtk, wait_for_port

__all__ = [
    "QRStudy",
    "dataset_bytes",
    "findscu",
    "getscu",
    "movescu",
    "qr_studies",
    "received",
    "storescp",
]

CALLED = "ICS_TRIAGE"

_PIXEL_MODULE = (
    "PixelData",
    "Rows",
    "Columns",
    "BitsAllocated",
    "BitsStored",
    "HighBit",
    "PixelRepresentation",
    "SamplesPerPixel",
    "PhotometricInterpretation",
)


@dataclass
class QRStudy:
    """One study written by :func:`qr_studies`."""

    uid: str
    patient_name: str
    study_date: str
    series: dict[str, str] = field(default_factory=dict)
    """Series Instance UID to modality."""
    files: dict[str, Path] = field(default_factory=dict)
    """SOP Instance UID to the file written."""
    sop_classes: dict[str, str] = field(default_factory=dict)
    """SOP Instance UID to SOP Class UID."""


def _write(folder: Path, study: QRStudy, modality: str, count: int, *, sr: bool = False) -> None:
    series_uid = generate_uid()
    study.series[series_uid] = modality
    for number in range(1, count + 1):
        ds = dicom_dataset(
            modality=modality,
            sop_class_uid=Comprehensive3DSRStorage if sr else None,
            study_uid=study.uid,
            series_uid=series_uid,
            patient_id=f"PID-{study.patient_name.split('^')[0].upper()}",
            patient_name=study.patient_name,
            body_part="CHEST",
            seed=len(study.files),
            StudyDate=study.study_date,
            StudyTime="101500",
            AccessionNumber=f"ACC{study.study_date}",
            SeriesNumber=len(study.series),
            InstanceNumber=number,
            SeriesDescription="AI decision support, not a diagnosis"
            if sr
            else f"{modality} series",
        )
        if sr:
            for keyword in _PIXEL_MODULE:
                delattr(ds, keyword)
        uid = str(ds.SOPInstanceUID)
        study.files[uid] = write_dicom_file(ds, folder / f"{uid}.dcm")
        study.sop_classes[uid] = str(ds.SOPClassUID)


def qr_studies(folder: Path) -> dict[str, QRStudy]:
    """Write three studies to query and retrieve; return them by name.

    - ``doe_jane``: ``Doe^Jane``, 2026-01-05, two CT series of two images and an SR series
      of one Comprehensive 3D SR (the AI result's place in a study);
    - ``smith``: ``Smith^John``, 2025-12-20, one CR image;
    - ``doe_john``: ``DOE^JOHN``, 2026-02-10, one MR image.

    Parameters
    ----------
    folder : pathlib.Path
        Where the files go.

    Returns
    -------
    dict of str to QRStudy
        The studies.
    """
    folder.mkdir(parents=True, exist_ok=True)
    jane = QRStudy(generate_uid(), "Doe^Jane", "20260105")
    _write(folder, jane, "CT", 2)
    _write(folder, jane, "CT", 2)
    _write(folder, jane, "SR", 1, sr=True)
    smith = QRStudy(generate_uid(), "Smith^John", "20251220")
    _write(folder, smith, "CR", 1)
    john = QRStudy(generate_uid(), "DOE^JOHN", "20260210")
    _write(folder, john, "MR", 1)
    return {"doe_jane": jane, "smith": smith, "doe_john": john}


def _keys(level: str, keys: dict[str, str]) -> list[str]:
    args = ["-k", f"QueryRetrieveLevel={level}"]
    for key, value in keys.items():
        args += ["-k", f"{key}={value}" if value else key]
    return args


def findscu(port: int, level: str, keys: dict[str, str], out: Path) -> list[Dataset]:
    """Run a Study Root C-FIND with DCMTK's findscu; return the responses, in order.

    Parameters
    ----------
    port : int
        The SCP's port.
    level : str
        ``STUDY``, ``SERIES`` or ``IMAGE``.
    keys : dict of str to str
        Keyword (or ``(gggg,eeee)``) to value; ``""`` asks for the key with universal matching.
    out : pathlib.Path
        An empty folder for the response files.

    Returns
    -------
    list of pydicom.dataset.Dataset
        The pending responses' identifiers.
    """
    out.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [
            dcmtk("findscu"),
            "-S",
            "-aec",
            CALLED,
            "-to",
            "20",
            "-X",
            "-od",
            str(out),
            *_keys(level, keys),
            "127.0.0.1",
            str(port),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return [dcmread(path) for path in sorted(out.glob("rsp*.dcm"))]


def movescu(
    port: int, destination: str, level: str, keys: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """Run a Study Root C-MOVE to ``destination`` with DCMTK's movescu (verbose output).

    Parameters
    ----------
    port : int
        The SCP's port.
    destination : str
        The move destination's AE title.
    level : str
        The retrieve level.
    keys : dict of str to str
        The identifier's keys, as for :func:`findscu`.

    Returns
    -------
    subprocess.CompletedProcess
        Its exit code and output.
    """
    return subprocess.run(
        [
            dcmtk("movescu"),
            "-v",
            "-S",
            "-aec",
            CALLED,
            "-aem",
            destination,
            "-to",
            "20",
            *_keys(level, keys),
            "127.0.0.1",
            str(port),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def getscu(
    port: int, level: str, keys: dict[str, str], out: Path
) -> subprocess.CompletedProcess[str]:
    """Run a Study Root C-GET with DCMTK's getscu, writing what it receives as received.

    Parameters
    ----------
    port : int
        The SCP's port.
    level : str
        The retrieve level.
    keys : dict of str to str
        The identifier's keys, as for :func:`findscu`.
    out : pathlib.Path
        The folder the instances go to (bit-preserving).

    Returns
    -------
    subprocess.CompletedProcess
        Its exit code and output.
    """
    out.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [
            dcmtk("getscu"),
            "-v",
            "-S",
            "+B",
            "-aec",
            CALLED,
            "-to",
            "20",
            "-od",
            str(out),
            *_keys(level, keys),
            "127.0.0.1",
            str(port),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


@contextlib.contextmanager
def storescp(port: int, aet: str, out: Path) -> Iterator[Path]:
    """Run DCMTK's storescp as AE ``aet`` on ``port``, writing instances as received.

    Parameters
    ----------
    port : int
        The port it listens on.
    aet : str
        Its AE title.
    out : pathlib.Path
        The folder the instances go to (created; bit-preserving).

    Yields
    ------
    pathlib.Path
        ``out``; the storescp stops afterwards.
    """
    out.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [dcmtk("storescp"), "-aet", aet, "+B", "-od", str(out), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield out
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def dataset_bytes(path: Path) -> bytes:
    """Return a DICOM file's encoded dataset: its bytes after the file meta information."""
    _, offset = split_dataset(path)
    return path.read_bytes()[offset:]


def received(folder: Path) -> dict[str, bytes]:
    """Return the instances in ``folder`` by SOP Instance UID: their encoded datasets."""
    found: dict[str, bytes] = {}
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        uid = str(dcmread(path, stop_before_pixels=True).SOPInstanceUID)
        found[uid] = dataset_bytes(path)
    return found
