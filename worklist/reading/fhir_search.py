"""FHIR reads and searches over the store: criteria, queries, searchset Bundles, capabilities.

Searches (every criterion given must hold):

* by patient: ``patient.identifier``, ``subject.identifier``, ``patient:identifier`` or
  ``subject:identifier`` = ``value``, ``|value`` or ``system|value`` (a token). The store keeps
  the Patient ID without its issuer, so a token with a system matches nothing (FHIR's token
  rule), and ``value`` and ``|value`` match the Patient ID exactly.
* by study: ``study`` (DiagnosticReport, Observation) = a Study Instance UID, ``urn:oid:<uid>``
  or ``ImagingStudy/<uid>``; ``identifier`` (ImagingStudy) = ``urn:dicom:uid|urn:oid:<uid>``
  (the system may be left out); ``_id`` (ImagingStudy) = the UID.

A search without one of these is refused (400): the read API does not list every result.
``_count`` (1 to :data:`MAX_COUNT`) bounds the studies a search returns (newest first).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.imagingstudy import ImagingStudy
from fhir.resources.R4B.resource import Resource
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.errors import Invalid, NotFound, TriageError
from worklist.db.schema import Finding, Instance, Series, Study
from worklist.reading import fhir
from worklist.reading.fhir_terms import DICOM_UID_SYSTEM, row_id
from worklist.reading.queries import findings_for, study_by_uid

__all__ = [
    "DEFAULT_COUNT",
    "INCLUDE_RESULTS",
    "MAX_COUNT",
    "PATIENT_PARAMS",
    "FhirError",
    "FhirNotFoundError",
    "FhirSearchError",
    "Found",
    "SearchCriteria",
    "capability_statement",
    "criteria_from",
    "find_device",
    "find_imaging_studies",
    "find_observations",
    "find_reports",
    "read_imaging_study",
    "read_observation",
    "read_report",
    "searchset",
]

logger = logging.getLogger(__name__)

PATIENT_PARAMS = (
    "patient.identifier",
    "subject.identifier",
    "patient:identifier",
    "subject:identifier",
)
"""The search parameters that name a patient by identifier."""

DEFAULT_COUNT = 50
MAX_COUNT = 500
INCLUDE_RESULTS = ("DiagnosticReport", "DiagnosticReport:result")
"""The one ``_include`` served: a report search's Observations, in the same Bundle."""


class FhirError(TriageError):
    """A FHIR request the store cannot answer."""


class FhirNotFoundError(FhirError, NotFound):
    """No resource of this type has this id."""


class FhirSearchError(FhirError, Invalid):
    """A search's parameters are missing or malformed (HTTP 400 under ``/fhir``)."""


@dataclass(frozen=True)
class SearchCriteria:
    """What a search asks for: a patient's ID, a study's UID, how many studies at most."""

    patient_id: str | None = None
    study_uid: str | None = None
    count: int = DEFAULT_COUNT
    include_results: bool = False


@dataclass
class Found:
    """What a read or search found: the resources and the studies (for the audit)."""

    resources: list[Resource] = field(default_factory=list)
    study_uids: list[str] = field(default_factory=list)
    included: list[Resource] = field(default_factory=list)


def _token(value: str) -> tuple[str | None, str]:
    if "|" in value:
        system, _, code = value.partition("|")
        return system, code
    return None, value


def _uid(value: str) -> str:
    uid = value.removeprefix("ImagingStudy/").removeprefix("urn:oid:")
    if not uid or len(uid) > 64 or not all(c.isdigit() or c == "." for c in uid):
        raise FhirSearchError(f"not a DICOM UID: {value!r}")
    return uid


def _patient_id(params: Mapping[str, str]) -> str | None:
    patient_id: str | None = None
    for name in PATIENT_PARAMS:
        if name in params:
            system, value = _token(params[name])
            if not value:
                raise FhirSearchError(f"{name} needs a value")
            patient_id = value if not system else ""
    return patient_id


def _study_uid(resource_type: str, params: Mapping[str, str]) -> str | None:
    if resource_type != "ImagingStudy":
        return _uid(params["study"]) if "study" in params else None
    study_uid: str | None = None
    if "identifier" in params:
        system, value = _token(params["identifier"])
        if system not in (None, "", DICOM_UID_SYSTEM):
            raise FhirSearchError(f"identifier: only the system {DICOM_UID_SYSTEM}")
        study_uid = _uid(value)
    if "_id" in params:
        study_uid = _uid(params["_id"])
    return study_uid


def criteria_from(resource_type: str, params: Mapping[str, str]) -> SearchCriteria:
    """Read a search's criteria from its query parameters (others are ignored, as FHIR allows).

    Parameters
    ----------
    resource_type
        ``DiagnosticReport``, ``Observation`` or ``ImagingStudy``.
    params
        The query parameters (one value each).

    Returns
    -------
    SearchCriteria
        The criteria; ``patient_id`` is ``""`` for a token whose system cannot match.

    Raises
    ------
    FhirSearchError
        No patient or study criterion, an empty or malformed value, a bad ``_count``.
    """
    patient_id = _patient_id(params)
    study_uid = _study_uid(resource_type, params)
    if patient_id is None and study_uid is None:
        names = [*PATIENT_PARAMS, "identifier" if resource_type == "ImagingStudy" else "study"]
        raise FhirSearchError(f"a {resource_type} search needs one of: {', '.join(names)}")
    raw = params.get("_count", str(DEFAULT_COUNT))
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_COUNT:
        raise FhirSearchError(f"_count is a whole number from 1 to {MAX_COUNT}")
    include = params.get("_include")
    if include is not None and (resource_type, include) != INCLUDE_RESULTS:
        raise FhirSearchError("the only _include is DiagnosticReport:result, on DiagnosticReport")
    return SearchCriteria(
        patient_id=patient_id,
        study_uid=study_uid,
        count=int(raw),
        include_results=include is not None,
    )


def _studies(session: Session, criteria: SearchCriteria) -> list[Study]:
    if criteria.patient_id == "":
        return []
    query = select(Study)
    if criteria.patient_id is not None:
        query = query.where(Study.patient_id == criteria.patient_id)
    if criteria.study_uid is not None:
        query = query.where(Study.study_instance_uid == criteria.study_uid)
    query = query.order_by(Study.first_received_at.desc(), Study.id.desc()).limit(criteria.count)
    return list(session.scalars(query))


def _by_model(findings: Sequence[Finding]) -> dict[str, list[Finding]]:
    grouped: dict[str, list[Finding]] = {}
    for finding in sorted(findings, key=lambda f: f.id):
        grouped.setdefault(finding.model_sha256, []).append(finding)
    return grouped


def find_reports(session: Session, criteria: SearchCriteria) -> Found:
    """Return the DiagnosticReports (one per study and model) that match."""
    studies = _studies(session, criteria)
    findings = findings_for(session, [s.id for s in studies])
    found = Found(study_uids=[s.study_instance_uid for s in studies])
    for study in studies:
        for group in _by_model(findings[study.id]).values():
            found.resources.append(fhir.diagnostic_report(study, group))
            if criteria.include_results:
                found.included += [fhir.observation(study, f) for f in group]
    return found


def find_observations(session: Session, criteria: SearchCriteria) -> Found:
    """Return the Observations (one per finding) that match."""
    studies = _studies(session, criteria)
    findings = findings_for(session, [s.id for s in studies])
    found = Found(study_uids=[s.study_instance_uid for s in studies])
    for study in studies:
        for finding in sorted(findings[study.id], key=lambda f: f.id):
            found.resources.append(fhir.observation(study, finding))
    return found


def _imaging_study(session: Session, study: Study) -> ImagingStudy:
    series = session.scalars(select(Series).where(Series.study_id == study.id).order_by(Series.id))
    instances = session.scalars(
        select(Instance).where(Instance.study_id == study.id).order_by(Instance.id)
    )
    return fhir.imaging_study(study, list(series), list(instances))


def find_imaging_studies(session: Session, criteria: SearchCriteria) -> Found:
    """Return the ImagingStudies that match."""
    studies = _studies(session, criteria)
    return Found(
        resources=[_imaging_study(session, s) for s in studies],
        study_uids=[s.study_instance_uid for s in studies],
    )


def read_imaging_study(session: Session, resource_id: str) -> Found:
    """Return the ImagingStudy of this id (a Study Instance UID)."""
    study = study_by_uid(session, resource_id)
    if study is None:
        raise FhirNotFoundError(f"no ImagingStudy/{resource_id}")
    return Found([_imaging_study(session, study)], [study.study_instance_uid])


def read_report(session: Session, resource_id: str) -> Found:
    """Return the DiagnosticReport of this id (``<study row id>-<sha256 prefix>``)."""
    number, _, prefix = resource_id.partition("-")
    key = row_id(number)
    study = session.get(Study, key) if key is not None and len(prefix) == 16 else None
    if study is not None:
        for sha, group in _by_model(findings_for(session, [study.id])[study.id]).items():
            if sha.startswith(prefix):
                return Found([fhir.diagnostic_report(study, group)], [study.study_instance_uid])
    raise FhirNotFoundError(f"no DiagnosticReport/{resource_id}")


def read_observation(session: Session, resource_id: str) -> Found:
    """Return the Observation of this id (a finding's row id; shadow findings are not found)."""
    key = row_id(resource_id)
    finding = session.get(Finding, key) if key is not None else None
    if finding is None or finding.shadow:
        raise FhirNotFoundError(f"no Observation/{resource_id}")
    study = finding.study
    return Found([fhir.observation(study, finding)], [study.study_instance_uid])


def find_device(session: Session, resource_id: str) -> Found:
    """Return the Device of this id (the sha256 of a model that made a finding in the store)."""
    finding = session.scalars(
        select(Finding).where(Finding.model_sha256 == resource_id.lower()).limit(1)
    ).first()
    if finding is None:
        raise FhirNotFoundError(f"no Device/{resource_id}")
    return Found([fhir.device(fhir.ModelIdentity.of_finding(finding))])


def searchset(
    base: str, self_url: str, resources: Sequence[Resource], included: Sequence[Resource] = ()
) -> Bundle:
    """Return a searchset Bundle of the resources that match, then of those included.

    Parameters
    ----------
    base
        The FHIR base URL (``http://host/fhir``), for each entry's ``fullUrl``.
    self_url
        The search's own URL.
    resources
        What matched (``total`` counts them).
    included
        What ``_include`` added (``search.mode`` include).
    """
    entries = [
        {
            "fullUrl": f"{base}/{r.get_resource_type()}/{r.id}",
            "resource": r,
            "search": {"mode": mode},
        }
        for mode, group in (("match", resources), ("include", included))
        for r in group
    ]
    return Bundle.model_validate(
        {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(resources),
            "link": [{"relation": "self", "url": self_url}],
            "entry": entries or None,
        }
    )


def _params(*extra: tuple[str, str, str]) -> list[dict[str, str]]:
    patient = [
        {"name": name, "type": "token", "documentation": "The patient's DICOM Patient ID."}
        for name in PATIENT_PARAMS
    ]
    more = [{"name": n, "type": t, "documentation": d} for n, t, d in extra]
    count = {"name": "_count", "type": "number", "documentation": f"At most {MAX_COUNT} studies."}
    return [*patient, *more, count]


def capability_statement(base: str, version: str, date: str) -> CapabilityStatement:
    """Return the server's CapabilityStatement (``/fhir/metadata``).

    Parameters
    ----------
    base
        The FHIR base URL.
    version
        The software's version.
    date
        When the statement was made (a FHIR dateTime).
    """
    study = ("study", "token", "Study Instance UID (also urn:oid:<uid>, ImagingStudy/<uid>).")
    searches = {
        "DiagnosticReport": _params(study),
        "Observation": _params(study),
        "ImagingStudy": _params(
            ("identifier", "token", "urn:dicom:uid|urn:oid:<Study Instance UID>"),
            ("_id", "token", "The Study Instance UID."),
        ),
    }
    resources: list[dict[str, Any]] = [
        {
            "type": name,
            "interaction": [{"code": "read"}, {"code": "search-type"}],
            "searchInclude": [INCLUDE_RESULTS[1]] if name == INCLUDE_RESULTS[0] else None,
            "searchParam": params,
        }
        for name, params in searches.items()
    ]
    resources.append({"type": "Device", "interaction": [{"code": "read"}]})
    return CapabilityStatement.model_validate(
        {
            "resourceType": "CapabilityStatement",
            "status": "active",
            "date": date,
            "kind": "instance",
            "software": {"name": "ICS triage worklist", "version": version},
            "implementation": {
                "description": "AI triage results (decision support, not a diagnosis), read only",
                "url": base,
            },
            "fhirVersion": "4.3.0",
            "format": ["json"],
            "rest": [
                {
                    "mode": "server",
                    "security": {
                        "description": "A session cookie or Authorization: Bearer <API token>; "
                        "radiologists, admins and ML engineers."
                    },
                    "resource": resources,
                }
            ],
        }
    )
