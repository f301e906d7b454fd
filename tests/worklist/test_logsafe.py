"""Control characters from peers never reach a log line raw (issue 13 defect 9)."""

from __future__ import annotations

import io
import logging
import logging.config
from collections.abc import Iterator

import pytest
import uvicorn.config

from worklist.logsafe import EscapeControls, escape_controls, protect, uvicorn_log_config


def _logged(emit: object) -> str:
    out = io.StringIO()
    handler = protect(logging.StreamHandler(out))
    protect(handler)  # idempotent
    assert sum(isinstance(f, EscapeControls) for f in handler.filters) == 1
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    log = logging.getLogger("tests.logsafe")
    log.addHandler(handler)
    log.propagate = False
    try:
        assert callable(emit)
        emit(log)
    finally:
        log.removeHandler(handler)
        log.propagate = True
    return out.getvalue()


def test_escape_controls() -> None:
    assert escape_controls("A\nFORGED LINE") == "A\\nFORGED LINE"
    assert escape_controls("1.2\x00\x1b[31m\x7f\x85\u2028") == "1.2\\x00\\x1b[31m\\x7f\\x85\\u2028"
    assert escape_controls("plain 1.2.3 é") == "plain 1.2.3 é"


def test_a_forged_line_stays_in_its_record() -> None:
    text = _logged(lambda log: log.warning("association from %s rejected", "A\nFORGED LINE"))
    assert text.splitlines() == ["WARNING tests.logsafe: association from A\\nFORGED LINE rejected"]


def test_nul_bytes_and_tracebacks_are_escaped() -> None:
    def emit(log: logging.Logger) -> None:
        try:
            raise ValueError("UID 1.2\x00\nERROR forged")
        except ValueError:
            log.exception("storing %s failed", "1.2\x00.3")

    lines = _logged(emit).splitlines()
    assert lines[0] == "ERROR tests.logsafe: storing 1.2\\x00.3 failed"
    assert all(line.startswith("    ") for line in lines[1:]), lines
    assert "\x00" not in "".join(lines)
    # A newline in an exception message cannot start a record: it stays indented.
    assert lines[-2:] == ["    ValueError: UID 1.2\\x00", "    ERROR forged"]


UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")


@pytest.fixture
def uvicorn_loggers() -> Iterator[None]:
    """Restore uvicorn's loggers after a test reconfigures them."""
    loggers = [logging.getLogger(n) for n in UVICORN_LOGGERS]
    saved = [(lg.handlers[:], lg.propagate, lg.level, lg.disabled) for lg in loggers]
    try:
        yield
    finally:
        for lg, (handlers, propagate, level, disabled) in zip(loggers, saved, strict=True):
            lg.handlers, lg.propagate, lg.level, lg.disabled = handlers, propagate, level, disabled


@pytest.mark.usefixtures("uvicorn_loggers")
def test_uvicorn_records_reach_the_protected_root_handler() -> None:
    """uvicorn's default configuration gives its loggers raw handlers; ours routes them to root."""
    out = io.StringIO()
    handler = protect(logging.StreamHandler(out))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        logging.config.dictConfig(uvicorn.config.LOGGING_CONFIG)  # as uvicorn would by default
        logging.config.dictConfig(uvicorn_log_config())  # the web app's, in the CLI's process
        logging.getLogger("uvicorn.error").error("bad request from %s", "a\nFORGED LINE")
    finally:
        root.removeHandler(handler)
    assert out.getvalue() == "bad request from a\\nFORGED LINE\n"
