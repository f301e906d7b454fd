"""What the DICOM outputs are made of: one model's findings on one study, and their UIDs.

A *model run* is what one enabled (non-shadow) model said about one study: a
:class:`~triage.worker.inference.FindingRecord` per label and scored image. Shadow models'
findings never leave the worklist, so they make no run. The SR and the key image of a run go
into series of their own whose Series Instance UIDs are derived from the study, the model and
the kind of output, so every re-triage by the same model adds to the same two series.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydicom import Dataset
from pydicom.uid import generate_uid

if TYPE_CHECKING:  # the worker imports this package: no import back at run time
    from triage.worker.inference import FindingRecord

__all__ = [
    "DISCLAIMER",
    "MANUFACTURER",
    "ModelRun",
    "key_finding",
    "model_runs",
    "output_series_uid",
    "with_type2",
]

DISCLAIMER = "AI decision support - not a diagnosis"
"""What every output says of itself (the patient safety rule 6)."""

MANUFACTURER = "ICS Triage"
"""The Manufacturer of the outputs (the software that wrote them; the model has its own)."""


TYPE2_KEYWORDS = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
)
"""Type 2 attributes of the Patient and General Study modules that the outputs copy."""


def with_type2(source: Dataset) -> Dataset:
    """Return a copy of an image's header with the copied Type 2 attributes present.

    A received image may leave out a Type 2 attribute (the gateway is lenient); an output that
    copies the patient and study modules must have it, empty when unknown.
    """
    ds = source.copy()
    for keyword in TYPE2_KEYWORDS:
        if keyword not in ds:
            setattr(ds, keyword, "")
    return ds


@dataclass(frozen=True)
class ModelRun:
    """One enabled model's findings on one study."""

    study_uid: str
    name: str
    version: str
    uid: str
    creator: str
    sha256: str
    findings: tuple[FindingRecord, ...]

    @property
    def ref(self) -> str:
        """The model reference ``NAME@VERSION``."""
        return f"{self.name}@{self.version}"

    @property
    def source_uids(self) -> tuple[str, ...]:
        """The SOP Instance UIDs the model scored, in first-seen order."""
        return tuple(dict.fromkeys(f.sop_instance_uid for f in self.findings))


def model_runs(study_uid: str, findings: Iterable[FindingRecord]) -> list[ModelRun]:
    """Group a study's findings by model, leaving out shadow models.

    Parameters
    ----------
    study_uid
        The study's Study Instance UID.
    findings
        The worker's findings for the study.

    Returns
    -------
    list of ModelRun
        One per enabled model that produced findings, ordered by model reference.
    """
    groups: dict[tuple[str, str], list[FindingRecord]] = {}
    for record in findings:
        if not record.shadow:
            groups.setdefault((record.model_name, record.model_version), []).append(record)
    runs = []
    for (name, version), records in sorted(groups.items()):
        first = records[0]
        runs.append(
            ModelRun(
                study_uid=study_uid,
                name=name,
                version=version,
                uid=first.model_uid,
                creator=first.model_creator,
                sha256=first.model_sha256,
                findings=tuple(records),
            )
        )
    return runs


def key_finding(findings: Sequence[FindingRecord]) -> FindingRecord:
    """Return the finding the key image shows.

    The most probable crossed finding with a heatmap; failing that the most probable crossed
    finding; failing that the most probable finding (the choice the reading room makes).

    Raises
    ------
    ValueError
        If ``findings`` is empty.
    """
    if not findings:
        raise ValueError("a model run without findings has no key image")
    crossed = [f for f in findings if f.crossed]
    for candidates in ([f for f in crossed if f.heatmap_path], crossed, list(findings)):
        if candidates:
            return max(candidates, key=lambda f: f.probability)
    raise AssertionError("unreachable")  # pragma: no cover


def output_series_uid(run: ModelRun, kind: str) -> str:
    """Return the Series Instance UID of a run's outputs of one kind (``"sr"``, ``"sc"``).

    Derived from the study, the model's UID and version and ``kind``, so it is the same for
    every triage of the study by this model.
    """
    return str(
        generate_uid(entropy_srcs=["ics-triage-outputs", run.study_uid, run.uid, run.ref, kind])
    )
