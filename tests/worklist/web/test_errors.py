"""Domain errors get their HTTP status from their meaning class alone, in one handler.

The unit tests check the mapping and that every domain error carries at most one meaning; the
others go through real routes of a real app, for the JSON API and for the pages.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from models.errors import (
    MEANINGS,
    CardError,
    Conflict,
    Forbidden,
    InferenceError,
    InferenceTimeout,
    IntegrityError,
    Invalid,
    InvalidOutput,
    ModelError,
    ModelNotFoundError,
    ModelRefError,
    NotFound,
    PreprocessError,
    RegistryStateError,
    TriageError,
    Unavailable,
    meaning_of,
)
from tests.builders.store import PASSWORD, add_users, seed_study
from tests.builders.web import login, make_app
from worklist.accounts.tokens import TokenNotFoundError, issue_token
from worklist.accounts.users import (
    DuplicateUserError,
    InactiveUserError,
    InvalidUserError,
    UserError,
    UserNotFoundError,
    add_user,
)
from worklist.archive import ArchiveFullError, InvalidUIDError
from worklist.db.engine import Database
from worklist.domain import StoreError, StoreUnavailableError
from worklist.ingest.header import UndecodableInstanceError
from worklist.reading.actions import (
    ActionError,
    ConflictError,
    InvalidActionError,
    NotAllowedError,
    StudyNotFoundError,
)
from worklist.reading.keyimage import KeyImageNotFoundError, UnreadableKeyImageError
from worklist.reading.modelinfo import ModelStatusError, ModelsUnavailableError
from worklist.web.errors import OTHER_STATUS, status_for

EXPECTED_STATUS: dict[type[TriageError], int] = {
    NotFound: 404,
    Conflict: 409,
    Forbidden: 403,
    Invalid: 422,
    Unavailable: 503,
}

# Every module that defines a domain error, so that the walk below sees all of them.
ERROR_MODULES = (
    "models.errors",
    "models.phantoms.core",
    "worklist.domain",
    "worklist.archive",
    "worklist.ingest.header",
    "worklist.accounts.users",
    "worklist.accounts.tokens",
    "worklist.reading.actions",
    "worklist.reading.keyimage",
    "worklist.reading.modelinfo",
    "triage.routing",
    "triage.policy.schema",
    "triage.settings_load",
    "dicom_gateway.service",
    "dicom_gateway.scu",
)

MEANING_OF = {
    CardError: Invalid,
    IntegrityError: Invalid,
    ModelNotFoundError: NotFound,
    ModelRefError: Invalid,
    RegistryStateError: Unavailable,
    PreprocessError: Invalid,
    InferenceError: Unavailable,
    InferenceTimeout: Unavailable,
    InvalidOutput: Unavailable,
    StoreUnavailableError: Unavailable,
    InvalidUIDError: Invalid,
    ArchiveFullError: Unavailable,
    UndecodableInstanceError: Invalid,
    UserNotFoundError: NotFound,
    DuplicateUserError: Conflict,
    InactiveUserError: Conflict,
    InvalidUserError: Invalid,
    TokenNotFoundError: NotFound,
    StudyNotFoundError: NotFound,
    ConflictError: Conflict,
    NotAllowedError: Forbidden,
    InvalidActionError: Invalid,
    KeyImageNotFoundError: NotFound,
    UnreadableKeyImageError: Invalid,
    ModelsUnavailableError: Unavailable,
    ModelStatusError: Invalid,
}


def _all_subclasses(klass: type[TriageError]) -> Iterator[type[TriageError]]:
    for sub in klass.__subclasses__():
        yield sub
        yield from _all_subclasses(sub)


# -- the mapping --------------------------------------------------------------------------------


@pytest.mark.parametrize("meaning", MEANINGS, ids=lambda m: m.__name__)
def test_handler_maps_each_meaning_to_its_status(meaning: type[TriageError]) -> None:
    family = type("FamilyError", (TriageError,), {})  # a package's base, without a meaning
    concrete = type("ConcreteError", (family, meaning), {})
    assert status_for(meaning("x")) == EXPECTED_STATUS[meaning]
    assert status_for(concrete("x")) == EXPECTED_STATUS[meaning]
    assert meaning_of(concrete("x")) is meaning
    assert status_for(family("x")) == OTHER_STATUS == 400


def test_an_error_without_a_meaning_is_a_400() -> None:
    assert meaning_of(TriageError("x")) is None
    assert status_for(TriageError("x")) == 400
    assert status_for(UserError("x")) == status_for(ActionError("x")) == 400
    assert meaning_of(ValueError("not ours")) is None


@pytest.mark.parametrize("error", list(MEANING_OF), ids=lambda e: e.__name__)
def test_domain_errors_carry_their_meaning(error: type[TriageError]) -> None:
    assert meaning_of(error("x")) is MEANING_OF[error]


def test_every_domain_error_carries_at_most_one_meaning() -> None:
    for module in ERROR_MODULES:
        importlib.import_module(module)
    seen = set(_all_subclasses(TriageError))
    assert set(MEANING_OF) <= seen
    for error in seen:
        meanings = [m for m in MEANINGS if issubclass(error, m)]
        if error not in MEANINGS:
            assert len(meanings) <= 1, f"{error.__qualname__} means {meanings}"
    families = (TriageError, ModelError, StoreError, UserError, ActionError)
    assert all(meaning_of(f("x")) is None for f in families)


# -- through a real app -------------------------------------------------------------------------


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_handler_answers_json_under_api_and_a_page_elsewhere(
    sqlite_db: Database, tmp_path: Path
) -> None:
    add_users(sqlite_db)
    raised: dict[str, type[TriageError]] = {m.__name__: m for m in (*MEANINGS, TriageError)}

    def boom(name: str) -> None:
        raise raised[name](f"{name} happened")

    with make_app(sqlite_db, tmp_path) as (app, _):
        app.add_api_route("/api/v1/_raise/{name}", boom)
        app.add_api_route("/_raise/{name}", boom)
        with TestClient(app) as client:
            for name, meaning in raised.items():
                want = EXPECTED_STATUS.get(meaning, 400)
                api = client.get(f"/api/v1/_raise/{name}")
                assert (api.status_code, api.json()) == (want, {"detail": f"{name} happened"})
                page = client.get(f"/_raise/{name}")
                assert page.status_code == want
                assert page.headers["content-type"].startswith("text/html")
                assert f"{name} happened" in page.text and f"<h1>{want}</h1>" in page.text


def test_api_statuses_by_meaning(sqlite_db: Database, tmp_path: Path) -> None:
    tokens = add_users(sqlite_db)
    with sqlite_db.write() as session:
        add_user(session, "other", PASSWORD, "radiologist")
        other = _auth(issue_token(session, "other").secret)
    rad, admin = _auth(tokens["radiologist"]), _auth(tokens["admin"])
    uid = seed_study(sqlite_db, tmp_path / "archive", crossed=True)
    base = f"/api/v1/studies/{uid}"
    with make_app(sqlite_db, tmp_path) as (app, _), TestClient(app) as client:
        unknown = client.post("/api/v1/studies/1.2.3.999/claim", headers=rad)
        assert (unknown.status_code, unknown.json()) == (404, {"detail": "no study 1.2.3.999"})
        assert client.post(f"{base}/claim", headers=rad).status_code == 200
        taken = client.post(f"{base}/claim", headers=other)
        assert taken.status_code == 409 and "radiologist" in taken.json()["detail"]
        # Releasing someone else's claim is for admins: a reader is refused by the domain.
        refused = client.post(f"{base}/release", headers=other)
        assert refused.status_code == 403 and "claimed by radiologist" in refused.json()["detail"]
        bogus = client.post(f"{base}/feedback", headers=rad, json={"kind": "bogus"})
        assert bogus.status_code == 422 and "not 'bogus'" in bogus.json()["detail"]
        users = "/api/v1/admin/users"
        blank = client.post(users, headers=admin, json={**_new_user(), "username": " "})
        assert blank.status_code == 422 and "1 to 64" in blank.json()["detail"]
        assert client.post(users, headers=admin, json=_new_user()).status_code == 201
        again = client.post(users, headers=admin, json=_new_user())
        assert again.status_code == 409 and "already exists" in again.json()["detail"]
        nobody = client.post(f"{users}/nobody/deactivate", headers=admin)
        assert nobody.status_code == 404 and nobody.json() == {"detail": "no user 'nobody'"}
        app.state.audit.flush()


def _new_user() -> dict[str, str]:
    return {"username": "newrad", "password": "longenough", "role": "radiologist"}


def test_model_routes_statuses(sqlite_db: Database, tmp_path: Path) -> None:
    tokens = add_users(sqlite_db)
    ml = _auth(tokens["ml_engineer"])
    with make_app(sqlite_db, tmp_path) as (app, _), TestClient(app) as client:
        assert client.get("/api/v1/admin/models", headers=ml).json() == []
        url = "/api/v1/admin/models/{}/status"
        missing = client.post(url.format("nope"), headers=ml, json={"status": "disabled"})
        assert missing.status_code == 404 and "no model named 'nope'" in missing.json()["detail"]
        bad_ref = client.post(url.format("nope@"), headers=ml, json={"status": "disabled"})
        assert bad_ref.status_code == 422 and "bad model reference" in bad_ref.json()["detail"]
        # A registry whose state file is not valid cannot be read: 503, and the page says why.
        (tmp_path / "models").mkdir()
        (tmp_path / "models" / "state.json").write_text("{not json", encoding="utf-8")
        down = client.get("/api/v1/admin/models", headers=ml)
        assert down.status_code == 503
        assert "the model registry cannot be read" in down.json()["detail"]
        login(client, "ml_engineer")
        page = client.get("/admin/models")
        assert page.status_code == 200 and "the model registry cannot be read" in page.text


def test_pages_show_not_found_as_an_error_page_and_other_refusals_on_the_form(
    sqlite_db: Database, tmp_path: Path
) -> None:
    add_users(sqlite_db)
    archive = tmp_path / "archive"
    uid = seed_study(sqlite_db, archive, crossed=True)
    with make_app(sqlite_db, tmp_path) as (app, _), TestClient(app) as client:
        csrf = login(client, "radiologist")
        gone = client.post(
            "/studies/1.2.3.999/claim", data={"csrf_token": csrf}, follow_redirects=False
        )
        assert gone.status_code == 404 and "no study 1.2.3.999" in gone.text
        assert "<h1>404</h1>" in gone.text
        bogus = client.post(
            f"/studies/{uid}/feedback",
            data={"kind": "bogus", "csrf_token": csrf},
            follow_redirects=False,
        )
        assert bogus.status_code == 303 and "Feedback+not+saved" in bogus.headers["location"]
        # Key images: a file gone from the archive is 404; one that is not DICOM is 422.
        (path,) = archive.glob(f"{uid}/*.dcm")
        path.write_bytes(b"not DICOM at all" * 16)
        assert client.get(f"/studies/{uid}/key-image.png").status_code == 422
        path.unlink()
        assert client.get(f"/studies/{uid}/key-image.png").status_code == 404
        app.state.audit.flush()
