"""An outage of the store is logged once when it starts and once when it ends; bugs each time."""

from __future__ import annotations

import logging
import sqlite3

import pytest

from worklist.db.outage import OutageLog


def test_an_outage_is_one_line_and_its_end_another(caplog: pytest.LogCaptureFixture) -> None:
    log = OutageLog(logging.getLogger("test.outage"), "the poller")
    with caplog.at_level(logging.INFO, logger="test.outage"):
        for _ in range(5):
            log.failed(sqlite3.OperationalError("database is locked"))
        log.succeeded()
        log.succeeded()
        log.failed(ValueError("a bug"))
        log.failed(ValueError("a bug"))
    lines = [(r.levelname, r.getMessage(), r.exc_info is not None) for r in caplog.records]
    assert lines == [
        ("WARNING", "store unavailable (OperationalError: database is locked); the poller retries",
         False),
        ("INFO", "store available again; the poller goes on", False),
        ("ERROR", "the poller failed; retrying", True),
        ("ERROR", "the poller failed; retrying", True),
    ]  # fmt: skip
