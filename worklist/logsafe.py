r"""Log lines that a peer cannot forge: control characters in every record are escaped.

Text that a sender controls (a calling AE title, a UID, a user name, an exception message about
them) reaches log records as arguments. A newline in it would start a forged log line, a NUL or
an ANSI escape would garble a terminal or a log shipper. :class:`EscapeControls` is a
:class:`logging.Filter` put on the process's handlers (:func:`protect`): it formats each record's
message once, escapes every C0/C1 control character (and DEL, U+2028, U+2029) as ``\xNN`` or
``\n``, and indents the lines of a traceback so that none of them can pass for a record of its
own. Being on the handler, it covers every logger of the process, pynetdicom's included, with no
change at each call site.

uvicorn configures logging itself (``logging.config.dictConfig``) in every process it starts,
giving its own loggers handlers of their own that do not propagate: :func:`uvicorn_log_config`
is the configuration the web app hands it instead, in which uvicorn's loggers propagate to the
root logger and, in the worker processes of ``triage web --workers N``, the root logger gets the
same protected stderr handler as the command line's.
"""

from __future__ import annotations

import logging
import re
import traceback
from typing import Any

__all__ = [
    "LOG_FORMAT",
    "QUIET_LOGGERS",
    "EscapeControls",
    "escape_controls",
    "protect",
    "uvicorn_log_config",
]

logger = logging.getLogger(__name__)

LOG_FORMAT = "%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s"
"""One line per record: the format of every process's stderr handler."""

QUIET_LOGGERS = ("pynetdicom", "alembic", "sqlalchemy")
"""Loggers held at WARNING or above whatever the level (their INFO is per operation)."""

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def escape_controls(text: str) -> str:
    r"""Return ``text`` with every control character written as an escape (one line always).

    Parameters
    ----------
    text
        Any text, e.g. a calling AE title as received.

    Returns
    -------
    str
        The text, printable: ``"A\nB"`` for ``"A<newline>B"``, ``"\x00"`` for NUL.
    """
    return _CONTROL.sub(_escape, text)


def _indented(text: str) -> str:
    """Return a traceback with its control characters escaped, each line indented."""
    return "\n".join("    " + escape_controls(line) for line in text.split("\n"))


class EscapeControls(logging.Filter):
    """Escape control characters in each record (message, traceback, stack); keep every record.

    The record's message is formatted here (``msg % args``) and stored back with no arguments,
    so every formatter after it sees the escaped text. A record passes once: a second handler
    with the filter leaves it as it is.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Escape the record in place and let it through."""
        if getattr(record, "_controls_escaped", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: let the handler report it as usual
            return True
        record.msg, record.args = escape_controls(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if record.exc_text:
            record.exc_text = _indented(record.exc_text)
        if record.stack_info:
            record.stack_info = _indented(record.stack_info)
        record._controls_escaped = True
        return True


def protect(handler: logging.Handler) -> logging.Handler:
    """Add :class:`EscapeControls` to ``handler`` (once) and return it.

    Parameters
    ----------
    handler
        A handler of the process (the CLI's stderr handler, a listener process's).

    Returns
    -------
    logging.Handler
        The same handler.
    """
    if not any(isinstance(f, EscapeControls) for f in handler.filters):
        handler.addFilter(EscapeControls())
    return handler


def uvicorn_log_config(level: str | None = None) -> dict[str, Any]:
    """Return the ``log_config`` for uvicorn: its loggers propagate to a protected root handler.

    uvicorn's default configuration gives its loggers (``uvicorn``, ``uvicorn.error``,
    ``uvicorn.access``) stream handlers of their own, without :class:`EscapeControls`, and a
    worker process of ``uvicorn --workers N`` starts with an unconfigured root logger, so that
    the app's records there reach stderr raw (Python's last-resort handler).

    Parameters
    ----------
    level
        ``None``: leave the root logger as the process configured it (the web app served in
        the command line's own process, whose root handler is already protected). A level name
        such as ``"INFO"``: also give the root logger a stderr handler with
        :data:`LOG_FORMAT` and :class:`EscapeControls`, at that level (each worker process).

    Returns
    -------
    dict
        A :func:`logging.config.dictConfig` configuration.
    """
    config: dict[str, Any] = {
        "version": 1,
        "disable_existing_loggers": False,
        "loggers": {
            name: {"handlers": [], "propagate": True}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")
        },
    }
    if level is None:
        return config
    config["filters"] = {"escape_controls": {"()": f"{__name__}.EscapeControls"}}
    config["formatters"] = {"line": {"format": LOG_FORMAT}}
    config["handlers"] = {
        "stderr": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stderr",
            "formatter": "line",
            "filters": ["escape_controls"],
        }
    }
    config["root"] = {"level": level.upper(), "handlers": ["stderr"]}
    quiet = max(logging.WARNING, logging.getLevelNamesMapping().get(level.upper(), 0))
    for name in QUIET_LOGGERS:
        config["loggers"][name] = {"level": quiet}
    return config
