"""Which errors mean "the store cannot be reached now" (logged as one line, refused 0xA700)."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from dicom_gateway.handlers import _status_of
from dicom_gateway.statuses import OUT_OF_RESOURCES
from worklist.db.outage import outage_reason, store_down
from worklist.domain import StoreUnavailableError

DOWN = [
    StoreUnavailableError("cannot reach the store"),
    OperationalError("SELECT 1", {}, Exception("server closed the connection")),
    # Raised unwrapped by statements run on the driver's own cursor (seen in the chaos test:
    # "the connection is closed" answered 0x0110 instead of 0xA700).
    psycopg.OperationalError("the connection is closed"),
    sqlite3.OperationalError("database is locked"),
]


@pytest.mark.parametrize("exc", DOWN, ids=lambda e: type(e).__module__ + "." + type(e).__name__)
def test_store_down_errors_are_out_of_resources(exc: Exception) -> None:
    assert store_down(exc)
    assert _status_of(exc) == OUT_OF_RESOURCES
    assert "\n" not in outage_reason(exc)


def test_other_errors_are_not_store_down() -> None:
    bug = IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed"))
    assert not store_down(bug) and _status_of(bug) is None
    assert not store_down(ValueError("a bug")) and _status_of(ValueError("x")) is None


def test_the_reason_is_one_line_without_the_sql() -> None:
    exc = OperationalError(
        "SELECT secret FROM t WHERE x = %(x)s", {"x": 1}, Exception("gone\nmore")
    )
    assert outage_reason(exc) == "Exception: gone"
