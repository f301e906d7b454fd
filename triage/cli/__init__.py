"""The one ``triage`` command; every subcommand is reachable through :func:`main`."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

import typer

from models.errors import TriageError
from triage.cli import (
    benchmark_cmd,  # noqa: F401  (registers subcommands)
    config_cmd,  # noqa: F401
    conformance_cmd,  # noqa: F401
    demo_cmd,  # noqa: F401
    dicom_cmd,  # noqa: F401
    models_cmd,  # noqa: F401
    phantoms_cmd,  # noqa: F401
    serve_cmd,  # noqa: F401
    simulate_cmd,  # noqa: F401
    users_cmd,  # noqa: F401
    web_cmd,  # noqa: F401
    worker_cmd,  # noqa: F401
)
from triage.cli.app import app

__all__ = ["app", "entrypoint", "main"]

logger = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``triage`` command line.

    Parameters
    ----------
    argv
        Arguments without the program name; ``None`` reads ``sys.argv``.

    Returns
    -------
    int
        The exit status: 0 on success, 1 for a failed operation, 2 for bad usage or settings.
    """
    command = typer.main.get_command(app)
    args = list(argv) if argv is not None else sys.argv[1:]
    try:
        result = command.main(args=args, prog_name="triage", standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        return 1
    except typer.TyperException as exc:  # usage errors and the like (Typer's vendored Click)
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            typer.echo(f"error: {exc.format_message()}", err=True)
        return int(exc.exit_code)
    except TriageError as exc:
        typer.echo(f"error: {exc}", err=True)
        return 2
    return result if isinstance(result, int) else 0


def entrypoint() -> None:
    """Console-script entry point: exit with :func:`main`'s status."""
    sys.exit(main())
