"""``triage conformance``: the DICOM conformance statement, generated from the code."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from triage.cli.app import app, config_from

__all__ = ["conformance"]

logger = logging.getLogger(__name__)


@app.command("conformance")
def conformance(
    ctx: typer.Context,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Markdown file to write (default: standard output)."),
    ] = None,
    defaults: Annotated[
        bool,
        typer.Option(
            "--defaults",
            help="Describe the built-in default settings, ignoring the TOML file and TRIAGE_* "
            "variables (docs/conformance.md is written this way).",
        ),
    ] = False,
) -> None:
    """Print the DICOM conformance statement of the listener (AE, statuses, SOP classes).

    It is generated from the AE the listener builds and the effective gateway settings:
    ``triage conformance --defaults --out docs/conformance.md`` regenerates the project's.
    """
    from dicom_gateway.statement import built_in_defaults, render_statement

    config = config_from(ctx)
    text = render_statement(built_in_defaults() if defaults else config.gateway)
    if out is None:
        typer.echo(text, nl=False)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {out}", err=True)
