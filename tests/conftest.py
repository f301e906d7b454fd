"""Fixtures shared by every test package: stores on SQLite and PostgreSQL, gateways."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests.builders.gateway import GatewayFactory, gateways
from tests.builders.peers import fresh_postgres_db, postgres_server
from worklist.db.engine import Database

# Hypothesis (the fuzz tests, schemathesis): reproducible in CI, longer on demand.
# ``ci`` (the default): derandomized (the same examples every run), no example database.
# ``HYPOTHESIS_PROFILE=long``: random examples, fifty times as many
# (tests.builders.fuzz.examples), failures kept in .hypothesis/ and replayed first.
settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "long",
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server for the whole session (started on a loopback port, then stopped)."""
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of an empty database, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'triage.db'}"
    server: str = request.getfixturevalue("postgres_url")
    return fresh_postgres_db(server)


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    """A migrated store on SQLite and on PostgreSQL."""
    database = Database(db_url)
    yield database
    database.dispose()


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    """A migrated store on SQLite only (for tests that are not about the backend)."""
    database = Database(f"sqlite:///{tmp_path / 'triage.db'}")
    yield database
    database.dispose()


@pytest.fixture
def clean_cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty directory (returned), with no ``TRIAGE_*`` variable and no triage.toml.

    A ``triage`` command run under it finds its settings only where the test points it.
    """
    for name in list(os.environ):
        if name.startswith("TRIAGE_"):
            monkeypatch.delenv(name)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


@pytest.fixture
def gateway_factory(tmp_path: Path) -> Iterator[GatewayFactory]:
    """Start gateways (in-process, port 0) with settings overrides; stop them afterwards."""
    with gateways(tmp_path) as start:
        yield start
