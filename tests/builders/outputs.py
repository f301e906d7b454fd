"""The AI's DICOM outputs as the tests read them back: the validators, dsrdump, srread.

- :func:`dciodvfy_errors`: the ``Error`` lines of David Clunie's ``dciodvfy`` (Debian
  ``dicom3tools``) for one file.
- :func:`dsrdump`: DCMTK's ``dsrdump`` of an SR.
- :func:`pixelmed_sr_validation`: PixelMed's ``DicomSRValidator`` (Debian ``pixelmed-apps``) of
  an SR: the IOD and its root template (TID 1500).
- :func:`read_sr`: an SR read back with :func:`highdicom.sr.srread`, one :class:`SRGroup` per
  TID 1501 measurement group.
- :func:`output_rows`: the study's instances of one SOP class, as the store records them.
- :func:`send_phantoms`: phantom studies recorded as the gateway records them, then completed.
"""

from __future__ import annotations

import copy
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import highdicom as hd
import pytest
from pydicom import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid
from sqlalchemy import select

from dicom_gateway.assembler import Assembler
from dicom_gateway.settings import GatewaySettings
from models.phantoms import generate_phantom
from tests.builders.peers import dcmtk
from tests.builders.store import store_instance
from worklist.archive import Archive
from worklist.db.engine import Database
from worklist.db.schema import Instance, Series, Study
from worklist.db.types import utcnow
from worklist.ingest.recorder import Ingestor

__all__ = [
    "SRGroup",
    "dciodvfy_errors",
    "dsrdump",
    "output_rows",
    "pixelmed_sr_validation",
    "read_sr",
    "send_phantoms",
]


def _tool(name: str, package: str) -> str:
    for folder in os.get_exec_path():
        candidate = Path(folder) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    pytest.fail(f"{name} ({package}) is not installed: run scripts/install-system-deps.sh")


def dciodvfy_errors(path: Path) -> list[str]:
    """Run ``dciodvfy`` on a file and return its ``Error`` lines (warnings are left out).

    Parameters
    ----------
    path : pathlib.Path
        A DICOM Part 10 file.

    Returns
    -------
    list of str
        The errors; empty when the object is valid for its IOD.
    """
    proc = subprocess.run(
        [_tool("dciodvfy", "dicom3tools"), str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    lines = (proc.stdout + proc.stderr).splitlines()
    return [line for line in lines if line.startswith("Error")]


def dsrdump(path: Path) -> subprocess.CompletedProcess[str]:
    """Run DCMTK's ``dsrdump`` on an SR file and return the finished process."""
    return subprocess.run(
        [dcmtk("dsrdump"), str(path)], capture_output=True, text=True, timeout=60, check=False
    )


PIXELMED_JAR = Path("/usr/share/java/pixelmed.jar")
"""Where Debian's ``libpixelmed-java`` puts PixelMed."""


def pixelmed_sr_validation(path: Path) -> str:
    """Run PixelMed's ``DicomSRValidator`` on an SR and return what it printed.

    Debian's ``DicomSRValidator`` script runs it on a JDK whose XML processor refuses PixelMed's
    large XPath expressions (``JAXP0801003``); the JDK's own limits are lifted for this run.

    Parameters
    ----------
    path : pathlib.Path
        The SR file.

    Returns
    -------
    str
        The validator's output: ``Error:`` and ``Warning:`` lines and the steps it completed.
    """
    java = _tool("java", "pixelmed-apps")
    if not PIXELMED_JAR.is_file():
        pytest.fail(
            f"{PIXELMED_JAR} (pixelmed-apps) is missing: run scripts/install-system-deps.sh"
        )
    limits = ("xpathExprOpLimit", "xpathExprGrpLimit", "xpathTotalOpLimit")
    proc = subprocess.run(
        [
            java,
            *(f"-Djdk.xml.{name}=0" for name in limits),
            "-cp",
            str(PIXELMED_JAR),
            "com.pixelmed.validate.DicomSRValidator",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    return proc.stdout + proc.stderr


@dataclass(frozen=True)
class SRGroup:
    """One TID 1501 measurement group of an SR, as read back."""

    finding: tuple[str, str]
    """The finding type as ``(scheme, code)``."""
    probability: float
    present: bool
    algorithm: tuple[str, str]
    """The probability's algorithm name and version."""
    parameters: tuple[str, ...]
    sources: tuple[str, ...]
    """The SOP Instance UIDs of the group's source images."""
    tracking_uid: str


def _algorithm(measurement: hd.sr.Measurement) -> dict[str, list[str]]:
    """Return the TID 4019 TEXT modifiers of a measurement: code value -> texts."""
    out: dict[str, list[str]] = {}
    for item in measurement[0].ContentSequence:
        if item.ValueType == "TEXT":
            code = str(item.ConceptNameCodeSequence[0].CodeValue)
            out.setdefault(code, []).append(str(item.TextValue))
    return out


def read_sr(path: Path) -> tuple[hd.sr.Comprehensive3DSR, list[SRGroup]]:
    """Read an SR with :func:`highdicom.sr.srread` and return it with its measurement groups.

    Parameters
    ----------
    path : pathlib.Path
        The SR file.

    Returns
    -------
    tuple
        The SR and one :class:`SRGroup` per measurement group.
    """
    sr = hd.sr.srread(path)
    assert isinstance(sr, hd.sr.Comprehensive3DSR)
    report = sr.content
    assert isinstance(report, hd.sr.MeasurementReport)
    groups = []
    for group in report.get_image_measurement_groups():
        (measurement,) = group.get_measurements(name=codes.DCM.Probability)
        (evaluation,) = group.get_qualitative_evaluations()
        value = evaluation.value
        assert value in (codes.SCT.Present, codes.SCT.Absent), value
        algorithm = _algorithm(measurement)
        finding = group.finding_type
        assert finding is not None
        groups.append(
            SRGroup(
                finding=(finding.scheme_designator, finding.value),
                probability=float(measurement.value),
                present=value == codes.SCT.Present,
                algorithm=(
                    algorithm[codes.DCM.AlgorithmName.value][0],
                    algorithm[codes.DCM.AlgorithmVersion.value][0],
                ),
                parameters=tuple(algorithm.get(codes.DCM.AlgorithmParameters.value, [])),
                sources=tuple(str(src.referenced_sop_instance_uid) for src in group.source_images),
                tracking_uid=str(group.tracking_uid),
            )
        )
    return sr, groups


def output_rows(db: Database, study_uid: str, sop_class_uid: str) -> list[tuple[Instance, Series]]:
    """Return a study's instances of one SOP class with their series, oldest first.

    Parameters
    ----------
    db : worklist.db.engine.Database
        The store.
    study_uid : str
        The Study Instance UID.
    sop_class_uid : str
        The SOP Class UID (Comprehensive 3D SR, Secondary Capture...).

    Returns
    -------
    list of (Instance, Series)
        Detached rows.
    """
    with db.read() as s:
        rows = s.execute(
            select(Instance, Series)
            .join(Series, Instance.series_id == Series.id)
            .join(Study, Instance.study_id == Study.id)
            .where(Study.study_instance_uid == study_uid, Instance.sop_class_uid == sop_class_uid)
            .order_by(Instance.id)
        ).all()
        s.expunge_all()
        return [(inst, series) for inst, series in rows]


def send_phantoms(
    db: Database,
    archive: Path,
    seeds: Sequence[int],
    *,
    modality: str = "DX",
    extra_of: Dataset | None = None,
) -> list[Dataset]:
    """Record phantoms through the Ingestor, as the gateway does, and complete their studies.

    Parameters
    ----------
    db : worklist.db.engine.Database
        The store.
    archive : pathlib.Path
        The archive folder.
    seeds : sequence of int
        One 128x128 phantom (with a pneumothorax) per seed, each its own study.
    modality : str, optional
        ``DX`` or ``CR``.
    extra_of : pydicom.dataset.Dataset or None, optional
        Also send a second image of this instance's study and series (a new SOP Instance UID):
        it reopens that study, which is completed and triaged again.

    Returns
    -------
    list of pydicom.dataset.Dataset
        The instances sent, in order.
    """
    ingestor = Ingestor(db, Archive(archive))
    sent = [
        generate_phantom(seed, ["pneumothorax"], size=128, modality=modality).dataset
        for seed in seeds
    ]
    if extra_of is not None:
        extra = copy.deepcopy(extra_of)
        extra.SOPInstanceUID = extra.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        extra.InstanceNumber = 2
        sent.append(extra)
    for ds in sent:
        store_instance(ingestor, ds, calling_aet="CDC_A")
    Assembler(db, GatewaySettings()).run_once(utcnow() + timedelta(hours=1))
    return sent
