"""Every route of the app x every role (and no login) against the access table in README.md."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.routing import Mount, Route

from tests.builders.store import PASSWORD, ROLES, add_users, seed_study
from tests.builders.web import csrf_of, make_app
from worklist.db.engine import Database

README = Path(__file__).resolve().parents[3] / "README.md"
COLUMNS = (*ROLES, "anonymous")
PATIENT = "SECRET^PATIENTNAME"


def access_table() -> dict[tuple[str, str], dict[str, str]]:
    """Parse the route x role table from the README's web section."""
    text = README.read_text()
    section = text[text.index("<!-- section:web -->") : text.index("<!-- /section:web -->")]
    table: dict[tuple[str, str], dict[str, str]] = {}
    header: list[str] = []
    for line in section.splitlines():
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


def test_access_table_matches_every_route(db: Database, tmp_path: Path) -> None:
    tokens = add_users(db)
    uid = seed_study(db, tmp_path / "archive", crossed=True, heatmap=True, name=PATIENT)
    table = access_table()
    with make_app(db, tmp_path) as (app, _):
        routes = sorted(set(app_routes(app)), key=_order)
        missing = [r for r in routes if r not in table]
        assert not missing, f"routes missing from the README access table: {missing}"
        stale = [r for r in table if r not in routes]
        assert not stale, f"README lists routes the app does not have: {stale}"
        params = {
            "{study_instance_uid}": uid,
            "{username}": "nobody",
            "{name}": "no-such-model",
        }
        failures: list[str] = []
        for who in COLUMNS:
            with TestClient(app) as client:
                login_page = client.get("/login")
                csrf = csrf_of(login_page.text)
                if who != "anonymous":
                    form = {"username": who, "password": PASSWORD, "csrf_token": csrf}
                    landed = client.post("/login", data=form)
                    assert landed.status_code == 200, landed.text
                    csrf = csrf_of(landed.text)
                for method, template in routes:
                    path = template
                    for name, value in params.items():
                        path = path.replace(name, value)
                    if path == "/static":
                        path = "/static/app.css"
                    expected = table[(method, template)][who]
                    is_api = path.startswith("/api/")
                    headers: dict[str, str] = {}
                    kwargs: dict[str, Any] = {"follow_redirects": False}
                    body = _body(path)
                    if path == "/login":
                        body = {"username": "radiologist", "password": PASSWORD}
                    if is_api:
                        if who != "anonymous":
                            headers["Authorization"] = f"Bearer {tokens[who]}"
                        if method != "GET":
                            kwargs["json"] = body
                    elif method != "GET":
                        kwargs["data"] = {**body, "csrf_token": csrf}
                    resp = client.request(method, path, headers=headers, **kwargs)
                    code = resp.status_code
                    location = resp.headers.get("location", "")
                    to_login = code == 303 and location.startswith("/login?next=")
                    ok = {
                        "yes": (code not in (401, 403) and not to_login and code < 500)
                        or (code == 503 and "registry" in resp.text),
                        "403": code == 403,
                        "401": code == 401,
                        "login": to_login,
                    }.get(expected)
                    if ok is None:
                        failures.append(f"{method} {template}: unknown table value {expected!r}")
                    elif not ok:
                        failures.append(f"{who} {method} {path}: expected {expected}, got {code}")
                    if path in ("/login", "/logout") and method == "POST":
                        csrf = csrf_of(client.get("/login").text)  # the session changed
                    if expected != "yes":
                        assert PATIENT not in resp.text, f"{who} {method} {path} leaked data"
        app.state.audit.flush()
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("role", ["radiologist", "admin"])
def test_table_parser_sees_roles(role: str) -> None:
    table = access_table()
    assert table[("GET", "/")][role] == "yes"
    assert table[("GET", "/")]["radiographer"] == "403"
    assert table[("GET", "/api/v1/studies")]["anonymous"] == "401"
