"""The OpenAPI tells the truth: schemathesis finds no server error, no undocumented status and no
answer that breaks the schema on ``/api/v1``, ``/dicom-web`` and ``/fhir``, and the inputs it
once found stay as regression cases.

Bounded: a few examples per operation, derandomized, no example database (the ``ci`` Hypothesis
profile of tests/conftest.py), so the run is the same every time and takes seconds;
``HYPOTHESIS_PROFILE=long`` runs fifty times as many, random. Bodies the schema does not describe
as JSON (DICOMweb multipart, ``application/dicom+json``, FHIR resources) are checked for their
status only; their content is checked by the DICOMweb (dicomweb-client, Orthanc) and FHIR tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from tests.builders.fuzz import examples
from tests.builders.store import add_users, seed_study
from tests.builders.web import make_app
from worklist.db.engine import Database

pytestmark = pytest.mark.fuzz

CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
EXAMPLES_PER_OPERATION = 20


def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    sqlite_db: Database, tmp_path: Path
) -> None:
    tokens = add_users(sqlite_db)
    seed_study(sqlite_db, tmp_path / "archive", crossed=True, heatmap=False)
    headers = {"Authorization": f"Bearer {tokens['admin']}"}
    with make_app(sqlite_db, tmp_path) as (app, _):
        schema = schemathesis.openapi.from_asgi("/openapi.json", app).include(
            path_regex="^/(api/v1|dicom-web|fhir)/"
        )
        operations = []
        for result in schema.get_all_operations():
            assert isinstance(result, Ok), result.err()
            operations.append(result.ok())
        assert len(operations) >= 40
        failures: list[str] = []
        for operation in operations:

            @given(case=operation.as_strategy())
            @settings(  # derandomized, no database: the ci profile (tests/conftest.py)
                max_examples=examples(EXAMPLES_PER_OPERATION),
                deadline=None,
                suppress_health_check=list(HealthCheck),
            )
            def run(case: schemathesis.Case[Any]) -> None:
                response = case.call(headers=headers)
                case.validate_response(response, checks=CHECKS)

            try:
                run()
            except Exception as exc:  # gather every operation's failure, then report them all
                failures.append(f"{operation.label}: {exc}")
        assert not failures, "\n\n".join(failures)


@pytest.mark.parametrize(
    ("method", "path", "query", "body", "expected"),
    [
        # A domain Invalid error: 422 whose detail is a sentence (documented as such now).
        ("GET", "/api/v1/monitoring/models/{model}", None, None, 422),
        (
            "POST",
            "/api/v1/admin/users",
            None,
            {"username": "", "password": "longenough", "role": "radiologist"},
            422,
        ),
        # FastAPI's validation error: 422 whose detail is a list.
        ("GET", "/api/v1/admin/audit", {"page": "36893488147419103232"}, None, 422),
        # 401/403/404/409 were not documented.
        ("GET", "/api/v1/studies/{study_instance_uid}", None, None, 404),
        ("POST", "/api/v1/admin/exports/{job_id}/requeue", None, None, 404),
        # A server error schemathesis found: a job id beyond SQLite's integers (OverflowError).
        ("POST", "/api/v1/admin/exports/{job_id}/requeue", None, None, 422),
    ],
)
def test_answers_found_by_the_fuzzer_match_the_schema(
    sqlite_db: Database,
    tmp_path: Path,
    method: str,
    path: str,
    query: dict[str, str] | None,
    body: dict[str, str] | None,
    expected: int,
) -> None:
    tokens = add_users(sqlite_db)
    headers = {"Authorization": f"Bearer {tokens['admin']}"}
    job = "7" if expected == 404 else "9223372036854775808"
    params = {"model": "no-version", "study_instance_uid": "1.2.3", "job_id": job}
    with make_app(sqlite_db, tmp_path) as (app, _):
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        operation = schema[path][method]
        names = {p.name for p in operation.path_parameters}
        kwargs: dict[str, Any] = {"query": query}
        if names:
            kwargs["path_parameters"] = {k: v for k, v in params.items() if k in names}
        if body is not None:
            kwargs.update(body=body, media_type="application/json")
        case = operation.Case(**kwargs)
        response = case.call(headers=headers)
        assert response.status_code == expected, response.text
        case.validate_response(response, checks=CHECKS)


@pytest.mark.parametrize(("token_role", "expected"), [(None, 401), ("radiologist", 403)])
def test_refused_callers_get_documented_answers(
    sqlite_db: Database, tmp_path: Path, token_role: str | None, expected: int
) -> None:
    tokens = add_users(sqlite_db)
    headers = {"Authorization": f"Bearer {tokens[token_role]}"} if token_role else {}
    with make_app(sqlite_db, tmp_path) as (app, _):
        case = schemathesis.openapi.from_asgi("/openapi.json", app)["/api/v1/admin/users"][
            "GET"
        ].Case()
        response = case.call(headers=headers)
        assert response.status_code == expected
        case.validate_response(response, checks=CHECKS)


def test_allow_names_every_method_served_at_the_path(sqlite_db: Database, tmp_path: Path) -> None:
    tokens = add_users(sqlite_db)
    with make_app(sqlite_db, tmp_path) as (app, _), TestClient(app) as client:
        headers = {"Authorization": f"Bearer {tokens['admin']}"}
        resp = client.options("/api/v1/admin/users", headers=headers)
        assert resp.status_code == 405
        assert {m.strip() for m in resp.headers["allow"].split(",")} >= {"GET", "POST"}
        resp = client.delete("/api/v1/admin/users", headers=headers)
        assert {m.strip() for m in resp.headers["allow"].split(",")} >= {"GET", "POST"}
        resp = client.put("/api/v1/studies/1.2.3/claim", headers=headers)
        assert resp.headers["allow"] == "POST"
