"""The FHIR read API (``/fhir``): Bundles of searches, reads, OperationOutcomes, roles, audit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.device import Device
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.imagingstudy import ImagingStudy
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.resource import Resource

from models.card import ModelStatus, load_card
from tests.builders.audit import audit_events
from tests.builders.cards import card
from tests.builders.fhir import add_ai_study, findings_of
from tests.builders.onnx import write_worker_model
from tests.builders.store import add_study, add_users
from tests.builders.web import login, make_app
from tests.builders.worker import drain, load, worker_factory
from worklist.db.engine import Database

CARD = card("chest", "3.0.1", sha256="d" * 64)
PROBS = (0.9, 0.1, 0.6, 0.3, 0.05)
FHIR_JSON = "application/fhir+json"


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _get(client: TestClient, path: str, model: type[Resource], **kw: Any) -> dict[str, Any]:
    """GET ``path`` (200 expected); parse the body with the R4B class; return it as JSON."""
    resp = client.get(path, **kw)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith(FHIR_JSON)
    model.model_validate_json(resp.content)
    doc: dict[str, Any] = resp.json()
    return doc


def _outcome(client: TestClient, path: str, code: int, **kw: Any) -> dict[str, Any]:
    resp = client.get(path, **kw)
    assert resp.status_code == code, resp.text
    assert resp.headers["content-type"].startswith(FHIR_JSON)
    OperationOutcome.model_validate_json(resp.content)
    doc: dict[str, Any] = resp.json()
    assert doc["issue"][0]["severity"] == "error"
    return doc


def test_searches_return_the_right_bundles(db: Database, tmp_path: Path) -> None:
    tokens = add_users(db)
    mine = [add_ai_study(db, CARD, PROBS, patient_id="MRN-1") for _ in range(2)]
    other = add_ai_study(db, CARD, PROBS, patient_id="MRN-2")
    with make_app(db, tmp_path) as (app, _), TestClient(app) as client:
        auth = _auth(tokens["radiologist"])
        for param in ("patient.identifier", "subject:identifier"):
            bundle = _get(client, f"/fhir/DiagnosticReport?{param}=MRN-1", Bundle, headers=auth)
            assert (bundle["type"], bundle["total"]) == ("searchset", 2)
            studies = {e["resource"]["imagingStudy"][0]["reference"] for e in bundle["entry"]}
            assert studies == {f"ImagingStudy/{u}" for u in mine}
        by_study = _get(client, f"/fhir/DiagnosticReport?study={other}", Bundle, headers=auth)
        report = by_study["entry"][0]["resource"]
        assert by_study["total"] == 1 and report["subject"]["identifier"]["value"] == "MRN-2"
        assert (
            by_study["entry"][0]["fullUrl"]
            == f"http://testserver/fhir/DiagnosticReport/{report['id']}"
        )
        read = _get(
            client, f"/fhir/DiagnosticReport/{report['id']}", DiagnosticReport, headers=auth
        )
        assert read == report

        rows = findings_of(db, other)
        obs = _get(client, f"/fhir/Observation?study=urn:oid:{other}", Bundle, headers=auth)
        assert [e["resource"]["id"] for e in obs["entry"]] == [str(r.id) for r in rows]
        assert report["result"] == [{"reference": f"Observation/{r.id}"} for r in rows]
        query = f"study={other}&_include=DiagnosticReport:result"
        both = _get(client, f"/fhir/DiagnosticReport?{query}", Bundle, headers=auth)
        modes = [(e["search"]["mode"], e["resource"]["resourceType"]) for e in both["entry"]]
        assert modes == [("match", "DiagnosticReport")] + [("include", "Observation")] * len(rows)
        assert both["total"] == 1
        assert [e["resource"] for e in both["entry"][1:]] == [e["resource"] for e in obs["entry"]]
        one = _get(client, f"/fhir/Observation/{rows[0].id}", Observation, headers=auth)
        assert one["component"][0]["valueQuantity"]["value"] == pytest.approx(rows[0].probability)

        query = f"identifier=urn:dicom:uid|urn:oid:{other}"
        studies_bundle = _get(client, f"/fhir/ImagingStudy?{query}", Bundle, headers=auth)
        assert [e["resource"]["id"] for e in studies_bundle["entry"]] == [other]
        study = _get(client, f"/fhir/ImagingStudy/{other}", ImagingStudy, headers=auth)
        assert study["numberOfInstances"] == 4

        device = _get(client, f"/fhir/{one['device']['reference']}", Device, headers=auth)
        assert device["version"] == [{"value": "3.0.1"}]
        none = _get(client, "/fhir/Observation?patient.identifier=NOBODY", Bundle, headers=auth)
        assert none["total"] == 0 and "entry" not in none


def test_errors_are_operation_outcomes(db: Database, tmp_path: Path) -> None:
    tokens = add_users(db)
    add_ai_study(db, CARD, PROBS, patient_id="MRN-9", patient_name="HIDDEN^NAME")
    with make_app(db, tmp_path) as (app, _), TestClient(app) as client:
        auth = _auth(tokens["ml_engineer"])
        for path in (
            "/fhir/DiagnosticReport/1-0000000000000000",
            "/fhir/Observation/999999",
            "/fhir/Observation/" + "9" * 30,
            "/fhir/ImagingStudy/1.2.3.4",
            f"/fhir/Device/{'e' * 64}",
        ):
            assert _outcome(client, path, 404, headers=auth)["issue"][0]["code"] == "not-found"
        for path in (
            "/fhir/DiagnosticReport",
            "/fhir/Observation?study=DROP TABLE",
            "/fhir/ImagingStudy?identifier=urn:x|1.2.3",
            "/fhir/DiagnosticReport?patient.identifier=MRN-9&_count=many",
            "/fhir/Observation?patient.identifier=MRN-9&_include=DiagnosticReport:result",
        ):
            assert _outcome(client, path, 400, headers=auth)["issue"][0]["code"] == "invalid"
        path = "/fhir/DiagnosticReport?patient.identifier=MRN-9"
        anonymous = client.get(path)
        assert anonymous.status_code == 401 and "HIDDEN" not in anonymous.text
        assert anonymous.headers["www-authenticate"] == "Bearer"
        _outcome(client, path, 401)
        refused = _outcome(client, path, 403, headers=_auth(tokens["radiographer"]))
        assert "HIDDEN" not in str(refused)
        for path in ("/fhir/Patient", "/fhir/Patient/1"):
            assert "Patient" in _outcome(client, path, 404)["issue"][0]["diagnostics"]
        statement = _get(client, "/fhir/metadata", CapabilityStatement)
        types = {r["type"] for r in statement["rest"][0]["resource"]}
        assert types == {"DiagnosticReport", "Observation", "ImagingStudy", "Device"}


def test_session_reads_and_every_read_is_audited(db: Database, tmp_path: Path) -> None:
    add_users(db)
    uids = [add_ai_study(db, CARD, PROBS, patient_id="MRN-5") for _ in range(2)]
    with make_app(db, tmp_path) as (app, _), TestClient(app) as client:
        login(client, "radiologist")
        bundle = _get(client, "/fhir/Observation?patient.identifier=MRN-5", Bundle)
        assert bundle["total"] == 2 * len(CARD.outputs.labels)
        _get(client, f"/fhir/ImagingStudy/{uids[0]}", ImagingStudy)
        _get(client, "/fhir/ImagingStudy?patient.identifier=NOBODY", Bundle)
        _get(client, f"/fhir/Device/{CARD.identity.sha256}", Device)
        app.state.audit.flush()
    searches = audit_events(db, "fhir.search")
    assert sorted(e.study_instance_uid for e in searches) == sorted([*uids, ""])
    assert all(e.actor == "radiologist" and e.category == "audit" for e in searches)
    found = [e for e in searches if e.study_instance_uid]
    assert all(e.details["type"] == "Observation" for e in found)
    assert all(e.details["query"] == {"patient.identifier": "MRN-5"} for e in found)
    assert all(e.details["via"] == "session" for e in searches)
    reads = audit_events(db, "fhir.read")
    assert [(e.study_instance_uid, e.details["type"]) for e in reads] == [(uids[0], "ImagingStudy")]


def test_results_of_a_real_triage_equal_findings_and_card(db: Database, tmp_path: Path) -> None:
    tokens = add_users(db)
    archive = tmp_path / "archive"
    archive.mkdir()
    directory = write_worker_model(tmp_path / "models", "fhirtest", n_labels=2, version="4.2")
    _, uid = add_study(db, archive, brights=(0.9, 0.2))
    worker = worker_factory(archive)(db, [(load(directory), ModelStatus.ENABLED)])
    assert drain(worker) == 1
    model = load_card(directory)
    rows = findings_of(db, uid)
    assert len(rows) == 2 * len(model.outputs.labels)  # one per label and image
    with make_app(db, tmp_path) as (app, _), TestClient(app) as client:
        auth = _auth(tokens["admin"])
        bundle = _get(client, f"/fhir/Observation?study={uid}", Bundle, headers=auth)
        observations = {e["resource"]["id"]: e["resource"] for e in bundle["entry"]}
        assert set(observations) == {str(r.id) for r in rows}
        for row in rows:
            obs = observations[str(row.id)]
            presence = "Present" if row.crossed else "Absent"
            assert obs["valueCodeableConcept"]["text"] == presence
            probability, threshold = (c["valueQuantity"]["value"] for c in obs["component"])
            assert probability == pytest.approx(row.probability, abs=1e-6)
            assert threshold == pytest.approx(row.threshold)
            label = next(x for x in model.outputs.labels if x.name == row.label)
            assert obs["code"]["coding"][0]["code"] == label.concept.code
            assert obs["device"]["reference"] == f"Device/{model.identity.sha256}"
        assert {o["valueCodeableConcept"]["text"] for o in observations.values()} == {
            "Present",
            "Absent",
        }
        device = _get(client, f"/fhir/Device/{model.identity.sha256}", Device, headers=auth)
        assert device["version"] == [{"value": model.identity.version}]
        assert device["deviceName"][0]["name"] == model.identity.name
        reports = _get(client, f"/fhir/DiagnosticReport?study={uid}", Bundle, headers=auth)
        assert reports["total"] == 1
