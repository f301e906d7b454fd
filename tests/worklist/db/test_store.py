from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from tests.builders.peers import free_port
from worklist.db.engine import Database
from worklist.db.schema import Base, Instance, Series, Study
from worklist.domain import StoreError, StoreUnavailableError


def test_migrations_match_the_models(db: Database) -> None:
    """The Alembic head creates exactly the schema the ORM models declare."""
    with db.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diffs == []


def test_migrate_is_idempotent(db_url: str) -> None:
    Database(db_url).dispose()
    again = Database(db_url)  # second open: nothing to do, no error
    with again.read() as s:
        assert s.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    again.dispose()


def test_sqlite_connection_settings(sqlite_db: Database) -> None:
    with sqlite_db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_unmigrated_store_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no schema"):
        Database(f"sqlite:///{tmp_path / 'empty.db'}", create=False)


def test_write_rolls_back_on_error_and_uids_are_unique(db: Database) -> None:
    with pytest.raises(RuntimeError), db.write() as s:
        s.add(Study(study_instance_uid="1.2.3"))
        s.flush()
        raise RuntimeError("boom")
    with db.read() as s:
        assert s.query(Study).count() == 0
    with db.write() as s:
        study = Study(study_instance_uid="1.2.3")
        s.add(study)
        s.flush()
        series = Series(study_id=study.id, series_instance_uid="1.2.3.4", modality="DX")
        s.add(series)
        s.flush()
        s.add(
            Instance(
                study_id=study.id,
                series_id=series.id,
                sop_instance_uid="1.2.3.4.5",
                sop_class_uid="1.2.840.10008.5.1.4.1.1.1.1",
                path="a/b/c.dcm",
                size_bytes=10,
                sha256="0" * 64,
            )
        )
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError), db.write() as s:
        s.add(Study(study_instance_uid="1.2.3"))
        s.flush()


def test_foreign_keys_are_enforced(db: Database) -> None:
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError), db.write() as s:
        s.add(Series(study_id=999, series_instance_uid="9.9"))
        s.flush()


def test_an_unreachable_store_is_named_without_its_password() -> None:
    port = free_port()  # nothing listens there
    url = f"postgresql+psycopg://triage:s3cret@127.0.0.1:{port}/triage"
    with pytest.raises(StoreUnavailableError, match="cannot reach the store") as caught:
        Database(url)
    assert f"127.0.0.1:{port}/triage" in str(caught.value)
    assert "s3cret" not in str(caught.value)
