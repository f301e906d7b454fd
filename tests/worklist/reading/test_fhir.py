"""FHIR resources of the AI's results, parsed back with fhir.resources' R4B models, and searches."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.device import Device
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.imagingstudy import ImagingStudy
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.resource import Resource

from tests.builders.cards import card
from tests.builders.fhir import add_ai_study, findings_of
from worklist.db.engine import Database
from worklist.reading import fhir, fhir_search
from worklist.reading.fhir_search import FhirNotFoundError, FhirSearchError, SearchCriteria
from worklist.reading.fhir_terms import DCM_SYSTEM, SHA256_SYSTEM

CARD = card("chest", "2.1.0", sha256="c0ffee" + "0" * 58)
SHADOW = card("shadowy", "0.1", sha256="5" * 64)
PROBS = (0.91, 0.2, 0.75, 0.05, 0.5)  # thresholds are 0.5: crossed, not, crossed, not, crossed


def _round_trip(resource: Resource, model: type[Resource]) -> Resource:
    """Serialise as the API does and parse the JSON back with the R4B class."""
    parsed = model.model_validate_json(resource.model_dump_json(by_alias=True, exclude_none=True))
    assert parsed.get_resource_type() == model.get_resource_type()
    return parsed


def _json(resource: Resource) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(resource.model_dump_json(by_alias=True, exclude_none=True))
    return doc


def test_observations_carry_the_findings_values(sqlite_db: Database) -> None:
    uid = add_ai_study(sqlite_db, CARD, PROBS)
    with sqlite_db.read() as session:
        found = fhir_search.find_observations(session, SearchCriteria(study_uid=uid))
    rows = findings_of(sqlite_db, uid)
    assert len(found.resources) == len(rows) == len(CARD.outputs.labels)
    for resource, row, label in zip(found.resources, rows, CARD.outputs.labels, strict=True):
        obs = _json(_round_trip(resource, Observation))
        assert obs["id"] == str(row.id)
        assert obs["status"] == "preliminary"
        assert obs["code"] == {
            "coding": [
                {
                    "system": "http://snomed.info/sct",
                    "code": label.concept.code,
                    "display": label.concept.meaning,
                }
            ],
            "text": label.concept.meaning,
        }
        value = obs["valueCodeableConcept"]
        assert isinstance(value, dict)
        expected = ("52101004", "Present") if row.crossed else ("272519000", "Absent")
        assert (value["coding"][0]["code"], value["text"]) == expected
        components = obs["component"]
        assert isinstance(components, list)
        assert components[0]["code"]["coding"][0]["code"] == "122157"  # DCM Probability
        assert components[0]["valueQuantity"]["value"] == pytest.approx(row.probability)
        assert components[1]["valueQuantity"]["value"] == pytest.approx(label.threshold)
        assert obs["device"] == {
            "reference": f"Device/{CARD.identity.sha256}",
            "display": "chest 2.1.0",
        }
        assert obs["derivedFrom"] == [{"reference": f"ImagingStudy/{uid}"}]
    assert [r.crossed for r in rows] == [p >= 0.5 for p in PROBS]


def test_device_is_the_model_card(sqlite_db: Database) -> None:
    add_ai_study(sqlite_db, CARD, PROBS)
    with sqlite_db.read() as session:
        found = fhir_search.find_device(session, CARD.identity.sha256)
    doc = _json(_round_trip(found.resources[0], Device))
    assert doc == _json(fhir.device(fhir.ModelIdentity.of_card(CARD.identity)))
    assert doc["id"] == CARD.identity.sha256
    assert doc["version"] == [{"value": CARD.identity.version}]
    assert {"name": CARD.identity.name, "type": "model-name"} in doc["deviceName"]
    assert doc["manufacturer"] == CARD.identity.creator
    assert {"system": "urn:dicom:uid", "value": f"urn:oid:{CARD.identity.uid}"} in doc["identifier"]
    assert {"system": SHA256_SYSTEM, "value": CARD.identity.sha256} in doc["identifier"]
    assert doc["property"][0]["valueCode"] == [{"text": CARD.identity.sha256}]


def test_report_is_preliminary_decision_support(sqlite_db: Database) -> None:
    uid = add_ai_study(sqlite_db, CARD, PROBS, shadow=SHADOW)
    with sqlite_db.read() as session:
        found = fhir_search.find_reports(session, SearchCriteria(study_uid=uid))
    assert len(found.resources) == 1, "one report per model; the shadow model's is not shown"
    doc = _json(_round_trip(found.resources[0], DiagnosticReport))
    rows = findings_of(sqlite_db, uid)
    assert doc["status"] == "preliminary"
    conclusion = doc["conclusion"]
    assert isinstance(conclusion, str)
    assert conclusion.startswith(fhir.CONCLUSION)
    assert "decision support, not a diagnosis" in conclusion
    crossed = [r for r in rows if r.crossed]
    for row in rows:
        assert (row.concept_meaning in conclusion) == row.crossed
    assert [c["coding"][0]["code"] for c in doc["conclusionCode"]] == [
        r.concept_code for r in crossed
    ]
    assert doc["result"] == [{"reference": f"Observation/{r.id}"} for r in rows]
    assert doc["imagingStudy"] == [{"reference": f"ImagingStudy/{uid}"}]
    assert doc["subject"]["identifier"]["value"] == "PAT-1"
    assert doc["effectiveDateTime"] == "2026-12-01"  # local time has no offset: the date
    with sqlite_db.read() as session:
        again = fhir_search.read_report(session, str(doc["id"]))
    assert _json(again.resources[0]) == doc


def test_imaging_study_lists_series_and_instances(sqlite_db: Database) -> None:
    uid = add_ai_study(sqlite_db, CARD, PROBS, n_series=2, per_series=3)
    with sqlite_db.read() as session:
        found = fhir_search.read_imaging_study(session, uid)
    doc = _json(_round_trip(found.resources[0], ImagingStudy))
    assert doc["id"] == uid
    assert {"system": "urn:dicom:uid", "value": f"urn:oid:{uid}"} in doc["identifier"]
    assert (doc["numberOfSeries"], doc["numberOfInstances"]) == (2, 6)
    assert doc["modality"] == [{"system": DCM_SYSTEM, "code": "CR"}]
    series = doc["series"]
    assert isinstance(series, list)
    assert [s["number"] for s in series] == [1, 2]
    assert all(s["numberOfInstances"] == 3 and len(s["instance"]) == 3 for s in series)
    assert series[0]["instance"][0]["sopClass"]["code"] == "urn:oid:1.2.840.10008.5.1.4.1.1.1"


def test_search_by_patient_identifier(sqlite_db: Database) -> None:
    first = add_ai_study(sqlite_db, CARD, PROBS, patient_id="P-7", received_min_ago=30)
    second = add_ai_study(sqlite_db, CARD, PROBS, patient_id="P-7", received_min_ago=5)
    add_ai_study(sqlite_db, CARD, PROBS, patient_id="P-8")
    for query in ("P-7", "|P-7"):
        criteria = fhir_search.criteria_from("DiagnosticReport", {"patient.identifier": query})
        with sqlite_db.read() as session:
            found = fhir_search.find_reports(session, criteria)
        assert found.study_uids == [second, first]  # newest first
        refs = [_json(r)["imagingStudy"] for r in found.resources]
        assert refs == [[{"reference": f"ImagingStudy/{u}"}] for u in (second, first)]
    criteria = fhir_search.criteria_from("Observation", {"subject:identifier": "urn:x:mrn|P-7"})
    with sqlite_db.read() as session:
        assert fhir_search.find_observations(session, criteria).resources == []


def test_searchset_bundle(sqlite_db: Database) -> None:
    uid = add_ai_study(sqlite_db, CARD, PROBS)
    criteria = fhir_search.criteria_from(
        "ImagingStudy", {"identifier": f"urn:dicom:uid|urn:oid:{uid}"}
    )
    with sqlite_db.read() as session:
        found = fhir_search.find_imaging_studies(session, criteria)
    bundle = fhir_search.searchset("http://h/fhir", "http://h/fhir/ImagingStudy?x", found.resources)
    doc = _json(_round_trip(bundle, Bundle))
    assert (doc["type"], doc["total"]) == ("searchset", 1)
    entry = doc["entry"][0]
    assert entry["fullUrl"] == f"http://h/fhir/ImagingStudy/{uid}"
    assert entry["search"] == {"mode": "match"}
    statement = fhir_search.capability_statement("http://h/fhir", "1", "2026-12-02")
    assert _json(_round_trip(statement, CapabilityStatement))["fhirVersion"] == "4.3.0"


@pytest.mark.parametrize(
    ("resource_type", "params"),
    [
        ("DiagnosticReport", {}),
        ("DiagnosticReport", {"category": "RAD"}),
        ("Observation", {"patient.identifier": ""}),
        ("Observation", {"study": "not-a-uid"}),
        ("ImagingStudy", {"identifier": "urn:x:other|urn:oid:1.2.3"}),
        ("ImagingStudy", {"identifier": "urn:oid:1.2.3", "_count": "0"}),
    ],
)
def test_bad_searches_are_refused(resource_type: str, params: dict[str, str]) -> None:
    with pytest.raises(FhirSearchError):
        fhir_search.criteria_from(resource_type, params)


def test_unknown_ids_are_not_found(sqlite_db: Database) -> None:
    uid = add_ai_study(sqlite_db, CARD, PROBS, shadow=SHADOW)
    shadow_row = findings_of(sqlite_db, uid, shadow=True)[0]
    with sqlite_db.read() as session:
        for read, rid in [
            (fhir_search.read_report, "1-" + "f" * 16),
            (fhir_search.read_report, "junk"),
            (fhir_search.read_observation, str(shadow_row.id)),
            (fhir_search.read_observation, "x"),
            (fhir_search.read_observation, "9" * 30),
            (fhir_search.read_report, "9" * 30 + "-" + "f" * 16),
            (fhir_search.read_imaging_study, "1.2.3"),
            (fhir_search.find_device, "0" * 64),
        ]:
            with pytest.raises(FhirNotFoundError):
                read(session, rid)
