"""The one ``triage`` command; every subcommand is reachable through :func:`main`."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

import click
import typer

from models.errors import TriageError
from triage.cli import config_cmd  # noqa: F401  (registers subcommands)
from triage.cli import models_cmd  # noqa: F401
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
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return int(exc.exit_code)
    except click.exceptions.Abort:
        typer.echo("aborted", err=True)
        return 1
    except TriageError as exc:
        typer.echo(f"error: {exc}", err=True)
        return 2
    return result if isinstance(result, int) else 0


def entrypoint() -> None:
    """Console-script entry point: exit with :func:`main`'s status."""
    sys.exit(main())
