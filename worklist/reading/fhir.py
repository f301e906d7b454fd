"""The AI's results as FHIR R4 resources (validated by ``fhir.resources``' R4B models).

Built from the store's rows, never from files:

* ``ImagingStudy`` (id: the Study Instance UID): the study, its series and instances, each with
  its DICOM UID; the study's identifier is ``urn:dicom:uid`` | ``urn:oid:<uid>``.
* ``Device`` (id: the sha256 of the model's ONNX file): the model as IHE AIR / DICOM TID 4019
  names it (creator, name, version, UID) and the sha256, as an identifier and a property.
* ``Observation`` (id: the finding's row id): one per finding, coded with the card's concept,
  valued Present or Absent (crossed the card's threshold or not), the probability and the
  threshold as components, ``device`` pointing to the model.
* ``DiagnosticReport`` (id: ``<study row id>-<first 16 hex of the model's sha256>``): one per
  study and model, ``preliminary``, whose conclusion says that the AI is decision support, not a
  diagnosis (DESIGN rule 6).

The patient is a logical reference (``subject.identifier``): the store keeps the DICOM Patient
ID without its issuer, so the identifier carries no ``system``. Findings of models in shadow mode
are never shown (as on the pages).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fhir.resources.R4B.device import Device
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.imagingstudy import ImagingStudy
from fhir.resources.R4B.observation import Observation
from pydicom.sr.codedict import codes

from models.card import Identity
from worklist.db.schema import Finding, Instance, Series, Study
from worklist.reading.fhir_terms import (
    DCM_SYSTEM,
    LOCAL_LABEL_SYSTEM,
    SHA256_SYSTEM,
    V2_0203,
    coding,
    dicom_uid,
    instant,
    number,
    patient_reference,
    study_datetime,
)

__all__ = [
    "CONCLUSION",
    "ModelIdentity",
    "device",
    "diagnostic_report",
    "imaging_study",
    "observation",
    "report_id",
]

logger = logging.getLogger(__name__)

CONCLUSION = (
    "AI decision support, not a diagnosis: the findings of an AI model, to be confirmed by a "
    "qualified reader."
)
"""How every report's conclusion begins (DESIGN rule 6)."""

_CATEGORY_IMAGING = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "imaging",
            "display": "Imaging",
        }
    ]
}
_CATEGORY_RADIOLOGY = {
    "coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "RAD"},
    ]
}
_REPORT_CODE = {
    "coding": [
        {"system": "http://loinc.org", "code": "18748-4", "display": "Diagnostic imaging study"}
    ],
    "text": "AI triage result",
}


@dataclass(frozen=True)
class ModelIdentity:
    """The identity of a model as every finding carries it (IHE AIR, TID 4019, sha256)."""

    name: str
    version: str
    sha256: str
    uid: str = ""
    creator: str = ""

    @classmethod
    def of_finding(cls, finding: Finding) -> ModelIdentity:
        """Return the identity of the model that made a finding."""
        return cls(
            name=finding.model_name,
            version=finding.model_version,
            sha256=finding.model_sha256,
            uid=finding.model_uid,
            creator=finding.model_creator,
        )

    @classmethod
    def of_card(cls, identity: Identity) -> ModelIdentity:
        """Return the identity a model card gives (its ``identity`` block)."""
        return cls(
            name=identity.name,
            version=identity.version,
            sha256=identity.sha256,
            uid=identity.uid,
            creator=identity.creator,
        )


def imaging_study(
    study: Study, series: Sequence[Series], instances: Sequence[Instance]
) -> ImagingStudy:
    """Return the study as an ``ImagingStudy`` (id: its Study Instance UID).

    Parameters
    ----------
    study
        The study row.
    series
        Its series rows.
    instances
        Its instance rows (each in one of ``series``).

    Returns
    -------
    ImagingStudy
        Validated; ``numberOfSeries`` and ``numberOfInstances`` count the rows given.
    """
    by_series: dict[int, list[Instance]] = {s.id: [] for s in series}
    for instance in instances:
        by_series.setdefault(instance.series_id, []).append(instance)
    series_docs = []
    for row in series:
        members = by_series[row.id]
        doc: dict[str, Any] = {
            "uid": row.series_instance_uid,
            "modality": {"system": DCM_SYSTEM, "code": row.modality or "OT"},
            "numberOfInstances": len(members),
            "instance": [
                {
                    "uid": inst.sop_instance_uid,
                    "sopClass": {
                        "system": "urn:ietf:rfc:3986",
                        "code": f"urn:oid:{inst.sop_class_uid}",
                    },
                    "number": number(inst.instance_number),
                }
                for inst in members
            ],
        }
        if number(row.series_number) is not None:
            doc["number"] = number(row.series_number)
        if row.series_description:
            doc["description"] = row.series_description
        if row.body_part:
            doc["bodySite"] = {"display": row.body_part}
        series_docs.append(doc)
    identifiers: list[dict[str, Any]] = [dicom_uid(study.study_instance_uid)]
    if study.accession_number:
        identifiers.append(
            {
                "type": {"coding": [{"system": V2_0203, "code": "ACSN"}]},
                "value": study.accession_number,
            }
        )
    modalities = sorted(
        {m for m in study.modalities.split("\\") if m} | {s.modality for s in series if s.modality}
    )
    return ImagingStudy.model_validate(
        {
            "resourceType": "ImagingStudy",
            "id": study.study_instance_uid,
            "identifier": identifiers,
            "status": "available",
            "modality": [{"system": DCM_SYSTEM, "code": m} for m in modalities] or None,
            "subject": patient_reference(study),
            "started": study_datetime(study),
            "numberOfSeries": len(series),
            "numberOfInstances": len(instances),
            "description": study.study_description or None,
            "series": series_docs or None,
        }
    )


def device(model: ModelIdentity) -> Device:
    """Return the model as a ``Device`` (id: the sha256 of its ONNX file).

    Parameters
    ----------
    model
        The model's identity (of a finding or of its card).

    Returns
    -------
    Device
        Validated: name, version, creator as manufacturer, the model's DICOM UID and sha256 as
        identifiers, the sha256 again as a property.
    """
    identifiers: list[dict[str, Any]] = [{"system": SHA256_SYSTEM, "value": model.sha256}]
    if model.uid:
        identifiers.insert(0, dicom_uid(model.uid))
    return Device.model_validate(
        {
            "resourceType": "Device",
            "id": model.sha256,
            "identifier": identifiers,
            "manufacturer": model.creator or None,
            "deviceName": [
                {"name": model.name, "type": "model-name"},
                {"name": f"{model.name} {model.version}", "type": "user-friendly-name"},
            ],
            "type": {"text": "AI model (ONNX), decision support"},
            "version": [{"value": model.version}],
            "property": [
                {
                    "type": {"text": "sha256 of the ONNX file"},
                    "valueCode": [{"text": model.sha256}],
                }
            ],
            "note": [{"text": "AI decision support, not a diagnosis."}],
        }
    )


def _concept(finding: Finding) -> dict[str, Any]:
    meaning = finding.concept_meaning or finding.label
    if finding.concept_code and finding.concept_scheme:
        code = coding(finding.concept_scheme, finding.concept_code, meaning)
    else:
        code = {"system": LOCAL_LABEL_SYSTEM, "code": finding.label, "display": meaning}
    return {"coding": [code], "text": meaning}


def _code(code: Any) -> dict[str, Any]:
    """Return a pydicom ``Code`` as a CodeableConcept."""
    return {"coding": [coding(code.scheme_designator, code.value, code.meaning)]}


def _fraction(label: str, value: float) -> dict[str, Any]:
    return {
        "code": {"text": label},
        "valueQuantity": {
            "value": round(float(value), 6),
            "unit": "1",
            "system": "http://unitsofmeasure.org",
            "code": "1",
        },
    }


def observation(study: Study, finding: Finding) -> Observation:
    """Return one finding as an ``Observation`` (id: the finding's row id).

    Parameters
    ----------
    study
        The finding's study.
    finding
        The finding row.

    Returns
    -------
    Observation
        Validated: ``preliminary``, coded with the card's concept, valued Present or Absent,
        the probability and the threshold as components, ``device`` the model.
    """
    probability = _fraction("Probability", finding.probability)
    probability["code"] = {**_code(codes.DCM.Probability), "text": "Probability"}
    value = codes.SCT.Present if finding.crossed else codes.SCT.Absent
    model = ModelIdentity.of_finding(finding)
    return Observation.model_validate(
        {
            "resourceType": "Observation",
            "id": str(finding.id),
            "status": "preliminary",
            "category": [_CATEGORY_IMAGING],
            "code": _concept(finding),
            "subject": patient_reference(study),
            "effectiveDateTime": study_datetime(study),
            "issued": instant(finding.created_at),
            "valueCodeableConcept": {**_code(value), "text": value.meaning},
            "device": {
                "reference": f"Device/{model.sha256}",
                "display": f"{model.name} {model.version}",
            },
            "derivedFrom": [{"reference": f"ImagingStudy/{study.study_instance_uid}"}],
            "component": [probability, _fraction("Threshold (model card)", finding.threshold)],
            "note": [
                {
                    "text": f"AI decision support, not a diagnosis. Label {finding.label!r} of "
                    f"{model.name} {model.version} on SOP instance {finding.sop_instance_uid}."
                }
            ],
        }
    )


def report_id(study: Study, sha256: str) -> str:
    """Return the id of the report of one model on one study."""
    return f"{study.id}-{sha256[:16]}"


def diagnostic_report(study: Study, findings: Sequence[Finding]) -> DiagnosticReport:
    """Return one model's findings on a study as a ``DiagnosticReport``.

    Parameters
    ----------
    study
        The study row.
    findings
        The findings of one model (one sha256) on it; at least one.

    Returns
    -------
    DiagnosticReport
        Validated: ``preliminary``, its Observations as ``result``, the study as
        ``imagingStudy``, a conclusion beginning with :data:`CONCLUSION` that names the labels
        that crossed their thresholds, whose concepts are the ``conclusionCode``.
    """
    model = ModelIdentity.of_finding(findings[0])
    crossed = [f for f in findings if f.crossed]
    named = ", ".join(f"{f.concept_meaning or f.label} ({f.probability:.2f})" for f in crossed)
    outcome = f"above threshold: {named}." if crossed else "no finding above its threshold."
    return DiagnosticReport.model_validate(
        {
            "resourceType": "DiagnosticReport",
            "id": report_id(study, model.sha256),
            "status": "preliminary",
            "category": [_CATEGORY_RADIOLOGY],
            "code": {**_REPORT_CODE, "text": f"AI triage result of {model.name} {model.version}"},
            "subject": patient_reference(study),
            "effectiveDateTime": study_datetime(study),
            "issued": instant(max(f.created_at for f in findings)),
            "imagingStudy": [{"reference": f"ImagingStudy/{study.study_instance_uid}"}],
            "result": [{"reference": f"Observation/{f.id}"} for f in findings],
            "conclusion": f"{CONCLUSION} Model {model.name} {model.version}: {outcome}",
            "conclusionCode": [_concept(f) for f in crossed] or None,
        }
    )
