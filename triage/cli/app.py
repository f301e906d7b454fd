"""The root ``triage`` Typer application and what every subcommand shares."""

from __future__ import annotations

import importlib.metadata
import logging
import signal
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer

from models.errors import TriageError
from triage.cli.options import CONFIG_PARAM, SETTING_PARAMS, ConfigOption
from triage.settings import AppConfig
from triage.settings_load import load_config
from worklist.logsafe import LOG_FORMAT, QUIET_LOGGERS, protect

__all__ = [
    "DISTRIBUTION",
    "CliState",
    "app",
    "config_from",
    "package_version",
    "setup_logging",
    "stop_on_signals",
]

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
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        protect(handler)  # peer data (AE titles, UIDs, user names) cannot forge lines
        handler._triage = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level.upper())
    for noisy in QUIET_LOGGERS:
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


def _config_path(ctx: typer.Context, state: CliState) -> Path | None:
    """Return the settings file named by ``--config`` before or after the subcommand."""
    given: Path | None = ctx.params.get(CONFIG_PARAM)
    if given is not None and state.config_path is not None and given != state.config_path:
        raise typer.BadParameter(
            f"given twice, as {state.config_path} before the subcommand and as {given} "
            "after it; give one",
            ctx=ctx,
            param_hint="--config",
        )
    return given if given is not None else state.config_path


def config_from(ctx: typer.Context, **overrides: dict[str, Any]) -> AppConfig:
    """Load the effective configuration for a subcommand and set up logging.

    The shared options of :mod:`triage.cli.options` that the subcommand declares (``--config``,
    ``--data-dir``, ``--models-dir``) are read from ``ctx.params``; precedence is
    :data:`~triage.cli.options.PRECEDENCE`.

    Parameters
    ----------
    ctx
        The subcommand's Typer context (its parameters, and the root's ``--config`` and
        ``--log-level``).
    **overrides
        Per-section values given as other options of the subcommand (``None``: not given).

    Returns
    -------
    AppConfig
        The composed settings.

    Raises
    ------
    typer.BadParameter
        If ``--config`` is given both before and after the subcommand, naming different files.
    """
    state = ctx.find_object(CliState) or CliState()
    merged: dict[str, dict[str, Any]] = {k: dict(v) for k, v in overrides.items()}
    for param, (section, name) in SETTING_PARAMS.items():
        value = ctx.params.get(param)
        if value is not None:
            merged.setdefault(section, {})[name] = value
    if state.log_level:
        merged.setdefault("triage", {})["log_level"] = state.log_level
    config = load_config(_config_path(ctx, state), merged)
    setup_logging(config.triage.log_level)
    return config


DISTRIBUTION = "ics-triage"
"""The distribution (``[project] name`` in pyproject.toml) whose metadata holds the version."""


def package_version() -> str:
    """Return the installed version of :data:`DISTRIBUTION`, from its package metadata.

    Returns
    -------
    str
        The version, e.g. ``"0.1.0"``.

    Raises
    ------
    TriageError
        If the distribution is not installed (the code runs from a bare source tree).
    """
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError as exc:
        raise TriageError(
            f"the {DISTRIBUTION} distribution is not installed, so it has no version "
            "(pip install -e . installs it)"
        ) from exc


def _print_version(value: bool) -> None:
    """Print ``triage VERSION`` and stop, for the eager ``--version`` option."""
    if value:
        typer.echo(f"triage {package_version()}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    config_file: ConfigOption = None,
    log_level: Annotated[
        str | None, typer.Option("--log-level", help="DEBUG, INFO, WARNING, ERROR.")
    ] = None,
    _version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            expose_value=False,
            help="Print the package version and exit.",
        ),
    ] = False,
) -> None:
    """Run the triage pipeline's commands."""
    ctx.obj = CliState(config_path=config_file, log_level=log_level)
