"""Every route of the app x every role (and no login) against the access table in docs/web.md."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.routing import Mount, Route

from tests.builders import REPO
from tests.builders.store import PASSWORD, ROLES, add_users, seed_study
from tests.builders.web import csrf_of, make_app
from worklist.db.engine import Database

if TYPE_CHECKING:
    from httpx2 import Response  # what starlette's TestClient returns

WEB_DOC = REPO / "docs" / "web.md"
COLUMNS = (*ROLES, "anonymous")
PATIENT = "SECRET^PATIENTNAME"
Table = dict[tuple[str, str], dict[str, str]]


def access_table() -> Table:
    """Parse the route x role table of docs/web.md (the only table with method and path)."""
    table: Table = {}
    header: list[str] = []
    for line in WEB_DOC.read_text(encoding="utf-8").splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if cells[:2] == ["method", "path"]:
            header = cells
            continue
        if header and len(cells) == len(header) and cells[0] in {"GET", "POST", "PUT", "DELETE"}:
            table[(cells[0], cells[1])] = dict(zip(header[2:], cells[2:], strict=True))
    assert header[2:] == list(COLUMNS), header
    return table


def app_routes(app: FastAPI) -> Iterator[tuple[str, str]]:
    """Yield (method, path) of every route, including those of included routers and mounts."""

    def walk(routes: list[Any]) -> Iterator[tuple[str, str]]:
        for route in routes:
            if isinstance(route, Mount):
                yield "GET", route.path
            elif isinstance(route, Route) or hasattr(route, "methods"):
                for method in sorted(route.methods or ()):
                    if method != "HEAD":
                        yield method, route.path
            elif hasattr(route, "effective_candidates"):  # FastAPI's included routers
                yield from walk(route.effective_candidates())
            else:
                raise AssertionError(f"unknown kind of route {route!r}")

    yield from walk(list(app.routes))


BODIES: dict[str, dict[str, Any]] = {
    "/feedback": {"kind": "agree"},
    "/clinical-priority": {"clinical_priority": "P2"},
    "/api/v1/admin/users": {"username": "made", "password": "long-enough", "role": "radiologist"},
    "/admin/users": {"username": "made2", "password": "long-enough", "role": "radiologist"},
    "/status": {"status": "shadow"},
}


def _body(path: str) -> dict[str, Any]:
    for suffix, body in BODIES.items():
        if path.endswith(suffix):
            return dict(body)
    return {}


def _order(key: tuple[str, str]) -> tuple[int, str, str]:
    # Log out, then in, last: they change the session (and its CSRF token).
    method, path = key
    return ({"/logout": 1, "/login": 2}.get(path, 0), path, method)


def _check_same_routes(routes: list[tuple[str, str]], table: Table) -> None:
    missing = [r for r in routes if r not in table]
    assert not missing, f"routes missing from the access table in docs/web.md: {missing}"
    stale = [r for r in table if r not in routes]
    assert not stale, f"docs/web.md lists routes the app does not have: {stale}"


def _concrete(template: str, uid: str) -> str:
    """Fill a route's path parameters: the seeded study, a user and a model that do not exist."""
    params = {
        "{study_instance_uid}": uid,
        "{username}": "nobody",
        "{name}": "no-such-model",
        "{model}": "no-such-model@1.0",
        "{id}": uid,  # FHIR: the ImagingStudy of the seeded study; no such other resource
        "{job_id}": "999999",
    }
    path = template
    for name, value in params.items():
        path = path.replace(name, value)
    return "/static/app.css" if path == "/static" else path


def _log_in(client: TestClient, who: str) -> str:
    """Log ``who`` in (unless anonymous); return the CSRF token of the session."""
    csrf = csrf_of(client.get("/login").text)
    if who == "anonymous":
        return csrf
    form = {"username": who, "password": PASSWORD, "csrf_token": csrf}
    landed = client.post("/login", data=form)
    assert landed.status_code == 200, landed.text
    return csrf_of(landed.text)


def _call(
    client: TestClient, who: str, method: str, path: str, csrf: str, tokens: dict[str, str]
) -> Response:
    headers: dict[str, str] = {}
    kwargs: dict[str, Any] = {"follow_redirects": False}
    body = _body(path)
    if path == "/login":
        body = {"username": "radiologist", "password": PASSWORD}
    if path.startswith(("/api/", "/dicom-web/")):
        if who != "anonymous":
            headers["Authorization"] = f"Bearer {tokens[who]}"
        if method != "GET":
            kwargs["json"] = body
    elif method != "GET":
        kwargs["data"] = {**body, "csrf_token": csrf}
    return client.request(method, path, headers=headers, **kwargs)


def _meets(expected: str, resp: Response) -> bool | None:
    """Whether the answer is what the table says; None for a value the table should not hold."""
    code = resp.status_code
    to_login = code == 303 and resp.headers.get("location", "").startswith("/login?next=")
    return {
        "yes": (code not in (401, 403) and not to_login and code < 500)
        or (code == 503 and "registry" in resp.text),
        "403": code == 403,
        "401": code == 401,
        "login": to_login,
    }.get(expected)


def _failures_of(
    app: FastAPI,
    who: str,
    routes: list[tuple[str, str]],
    table: Table,
    uid: str,
    tokens: dict[str, str],
) -> list[str]:
    """Call every route as ``who``; return what differed from the table."""
    failures: list[str] = []
    with TestClient(app) as client:
        csrf = _log_in(client, who)
        for method, template in routes:
            path = _concrete(template, uid)
            expected = table[(method, template)][who]
            resp = _call(client, who, method, path, csrf, tokens)
            ok = _meets(expected, resp)
            if ok is None:
                failures.append(f"{method} {template}: unknown table value {expected!r}")
            elif not ok:
                failures.append(
                    f"{who} {method} {path}: expected {expected}, got {resp.status_code}"
                )
            if path in ("/login", "/logout") and method == "POST":
                csrf = csrf_of(client.get("/login").text)  # the session changed
            if expected != "yes":
                assert PATIENT not in resp.text, f"{who} {method} {path} leaked data"
    return failures


def test_access_table_matches_every_route(db: Database, tmp_path: Path) -> None:
    tokens = add_users(db)
    uid = seed_study(db, tmp_path / "archive", crossed=True, heatmap=True, name=PATIENT)
    table = access_table()
    with make_app(db, tmp_path) as (app, _):
        routes = sorted(set(app_routes(app)), key=_order)
        _check_same_routes(routes, table)
        failures: list[str] = []
        for who in COLUMNS:
            failures += _failures_of(app, who, routes, table, uid, tokens)
        app.state.audit.flush()
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("role", ["radiologist", "admin"])
def test_table_parser_sees_roles(role: str) -> None:
    table = access_table()
    assert table[("GET", "/")][role] == "yes"
    assert table[("GET", "/")]["radiographer"] == "403"
    assert table[("GET", "/api/v1/studies")]["anonymous"] == "401"
