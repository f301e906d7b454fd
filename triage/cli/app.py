"""The root ``triage`` Typer application and what every subcommand shares."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer

from triage.settings import AppConfig
from triage.settings_load import load_config

__all__ = ["CliState", "app", "config_from", "setup_logging", "stop_on_signals"]

logger = logging.getLogger(__name__)

app = typer.Typer(
    name="triage",
    help="AI triage pipeline for diagnostic imaging: DICOM ingest, models, a shared worklist.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@dataclass
class CliState:
    """Options given before the subcommand."""

    config_path: Path | None = None
    log_level: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class _CurrentStderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler writing to whatever ``sys.stderr`` is when each record is emitted.

    A plain :class:`logging.StreamHandler` keeps the stream it was created with; when that is
    replaced and closed (a test's captured stderr, a redirected console), records from threads
    that outlive it end in "Logging error" tracebacks instead of the current stderr.
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        """The current ``sys.stderr``."""
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        """Ignore :class:`~logging.StreamHandler`'s assignment: the stream is always current."""


def setup_logging(level: str) -> None:
    """Configure the root logger once: one line per record on stderr.

    Parameters
    ----------
    level
        A :mod:`logging` level name such as ``"INFO"``.
    """
    root = logging.getLogger()
    if not any(getattr(h, "_triage", False) for h in root.handlers):
        handler = _CurrentStderrHandler()
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s")
        )
        handler._triage = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level.upper())
    for noisy in ("pynetdicom", "alembic", "sqlalchemy"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def stop_on_signals() -> threading.Event:
    """Return an event that SIGTERM and SIGINT (Ctrl-C) set, for a clean stop of a service.

    Returns
    -------
    threading.Event
        Set once either signal arrives.
    """
    stop = threading.Event()

    def _stop(signum: int, _frame: FrameType | None) -> None:
        logger.info("%s received: stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    return stop


def config_from(ctx: typer.Context, **overrides: dict[str, Any]) -> AppConfig:
    """Load the effective configuration for a subcommand and set up logging.

    Parameters
    ----------
    ctx
        The Typer context (carries ``--config`` and ``--log-level``).
    **overrides
        Per-section values given as options of the subcommand.

    Returns
    -------
    AppConfig
        The composed settings.
    """
    state = ctx.find_object(CliState) or CliState()
    merged: dict[str, dict[str, Any]] = {k: dict(v) for k, v in overrides.items()}
    if state.log_level:
        merged.setdefault("triage", {})["log_level"] = state.log_level
    config = load_config(state.config_path, merged)
    setup_logging(config.triage.log_level)
    return config


@app.callback()
def _root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="TOML settings file (default: $TRIAGE_CONFIG)."),
    ] = None,
    log_level: Annotated[
        str | None, typer.Option("--log-level", help="DEBUG, INFO, WARNING, ERROR.")
    ] = None,
) -> None:
    """Run the triage pipeline's commands."""
    ctx.obj = CliState(config_path=config, log_level=log_level)
