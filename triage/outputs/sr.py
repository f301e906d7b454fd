"""The AI result as a DICOM Structured Report: a TID 1500 Measurement Report (highdicom).

One Comprehensive 3D SR per model run (IHE AI Results):

- observation context: the model as a device observer (its UID, name, creator);
- one TID 1501 measurement group per label and scored image: the finding type (the card's
  SNOMED CT concept), a tracking identifier and UID, the source image, TID 4019 algorithm
  identification (name, version; the parameters name the label, its threshold and the sha256 of
  the ONNX file), the probability as a unitless measurement ``(1, UCUM, "no units")`` and a
  qualitative evaluation of the finding: Present when the probability crossed the card's
  threshold, else Absent;
- the image library and the referenced evidence: the images the model scored;
- Predecessor Documents Sequence: the SR of the previous triage of the study by the same model.

The SR goes into its own series of the study, whose Series Description says it is AI decision
support, not a diagnosis.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import highdicom as hd
from highdicom.sr import CodedConcept
from pydicom import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

from triage.outputs.runs import DISCLAIMER, MANUFACTURER, ModelRun

if TYPE_CHECKING:  # the worker imports this package: no import back at run time
    from triage.worker.inference import FindingRecord

__all__ = [
    "PROBABILITY",
    "SR_SERIES_DESCRIPTION",
    "SR_SERIES_NUMBER",
    "SROptions",
    "algorithm_parameters",
    "build_sr",
]

logger = logging.getLogger(__name__)

PROBABILITY = codes.DCM.Probability
"""The concept name of the probability measurement (DCM 122157)."""

SR_SERIES_NUMBER = 9901
SR_SERIES_DESCRIPTION = f"AI findings (SR) - {DISCLAIMER}"


@dataclass(frozen=True)
class SROptions:
    """Where one SR goes and what it replaces."""

    series_uid: str
    sop_uid: str
    instance_number: int
    predecessor: Dataset | None = None
    """The previous SR of this model for this study (its header is enough), if any."""
    institution_name: str | None = None


def algorithm_parameters(record: FindingRecord) -> list[str]:
    """Return the TID 4019 Algorithm Parameters of one finding (``key=value`` texts)."""
    return [
        f"label={record.label}",
        f"threshold={record.threshold!r}",
        f"onnx_sha256={record.model_sha256}",
    ]


def _concept(record: FindingRecord) -> CodedConcept:
    meaning = record.concept_meaning or record.label
    if record.concept_code and record.concept_scheme:
        return CodedConcept(record.concept_code, record.concept_scheme, meaning)
    # A card always has a concept; a label without one is named in the project's own scheme.
    return CodedConcept(record.label, "99ICSTRIAGE", meaning)


def _group(
    record: FindingRecord, classes: dict[str, str], number: int, report_uid: str
) -> hd.sr.MeasurementsAndQualitativeEvaluations:
    algorithm = hd.sr.AlgorithmIdentification(
        name=record.model_name,
        version=record.model_version,
        parameters=algorithm_parameters(record),
    )
    concept = _concept(record)
    tracking = hd.sr.TrackingIdentifier(
        uid=generate_uid(entropy_srcs=[report_uid, record.label, record.sop_instance_uid]),
        identifier=f"{record.label} #{number}",
    )
    source = hd.sr.SourceImageForMeasurementGroup(
        referenced_sop_class_uid=classes[record.sop_instance_uid],
        referenced_sop_instance_uid=record.sop_instance_uid,
    )
    probability = hd.sr.Measurement(
        name=PROBABILITY,
        value=float(record.probability),
        unit=codes.UCUM.NoUnits,
        algorithm_id=algorithm,
    )
    presence = codes.SCT.Present if record.crossed else codes.SCT.Absent
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=tracking,
        finding_type=concept,
        algorithm_id=algorithm,
        measurements=[probability],
        qualitative_evaluations=[hd.sr.QualitativeEvaluation(name=concept, value=presence)],
        source_images=[source],
    )


def build_sr(
    run: ModelRun, evidence: Sequence[Dataset], options: SROptions
) -> hd.sr.Comprehensive3DSR:
    """Build the TID 1500 SR of one model run.

    Parameters
    ----------
    run
        The model's findings on the study.
    evidence
        The images the model scored (headers are enough; pixels are not read). The first
        gives the patient and study modules.
    options
        The SR's series, instance and predecessor.

    Returns
    -------
    highdicom.sr.Comprehensive3DSR
        The SR, ready to encode.

    Raises
    ------
    ValueError
        If the run has no findings or a finding's image is not among ``evidence``.
    """
    if not run.findings:
        raise ValueError(f"model {run.ref} has no findings to report")
    classes = {str(ds.SOPInstanceUID): str(ds.SOPClassUID) for ds in evidence}
    missing = [uid for uid in run.source_uids if uid not in classes]
    if missing:
        raise ValueError(f"images {missing} scored by {run.ref} are not in the evidence")
    used = [ds for ds in evidence if str(ds.SOPInstanceUID) in run.source_uids]
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=run.uid,
            name=run.name,
            manufacturer_name=run.creator,
            model_name=run.ref,
        ),
    )

    def report(library: Sequence[Dataset] | None) -> hd.sr.MeasurementReport:
        groups = [
            _group(record, classes, number, options.sop_uid)
            for number, record in enumerate(run.findings, start=1)
        ]
        return hd.sr.MeasurementReport(
            observation_context=hd.sr.ObservationContext(observer_device_context=observer),
            procedure_reported=codes.SCT.ImagingProcedure,
            imaging_measurements=groups,
            referenced_images=library,
        )

    try:
        content = report(used)
    except (AttributeError, KeyError, IndexError, TypeError, ValueError) as exc:
        # highdicom describes each image by its orientation and spacing (TID 1602-1604); an
        # image without them is still referenced by its group and the evidence.
        logger.warning("%s: SR without an image library: %s", run.ref, exc)
        content = report(None)
    predecessors = [options.predecessor] if options.predecessor is not None else None
    return hd.sr.Comprehensive3DSR(
        evidence=used,
        content=content,
        series_instance_uid=options.series_uid,
        series_number=SR_SERIES_NUMBER,
        sop_instance_uid=options.sop_uid,
        instance_number=options.instance_number,
        manufacturer=MANUFACTURER,
        is_complete=True,
        is_final=False,
        is_verified=False,
        institution_name=options.institution_name,
        previous_versions=predecessors,
        series_description=SR_SERIES_DESCRIPTION,
    )
