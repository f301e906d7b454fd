"""``triage phantoms``: generate synthetic chest radiograph phantoms (not for clinical use)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from models.phantoms.names import FINDINGS, LAYOUTS, PRIORITIES
from triage.cli.app import app, config_from

__all__ = ["generate", "phantoms_app"]

logger = logging.getLogger(__name__)

phantoms_app = typer.Typer(
    help="Synthetic chest radiograph phantoms (DICOM; SYNTHETIC, NOT FOR CLINICAL USE).",
    no_args_is_help=True,
)
app.add_typer(phantoms_app, name="phantoms")


@phantoms_app.command("generate")
def generate(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="Directory to write into.")],
    n: Annotated[int, typer.Option("--n", min=0, help="Number of images.")] = 16,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of the set.")] = 0,
    layout: Annotated[
        str, typer.Option("--layout", help=f"Dataset layout: {', '.join(LAYOUTS)}.")
    ] = "generic",
    finding: Annotated[
        list[str] | None,
        typer.Option(
            "--finding",
            help=f"Draw this finding in every image (repeatable; {', '.join(FINDINGS)}, or "
            "'none' for normal images). Default: drawn at random per image.",
        ),
    ] = None,
    priority: Annotated[
        str,
        typer.Option("--priority", help=f"Requested Procedure Priority: {', '.join(PRIORITIES)}."),
    ] = "ROUTINE",
    size: Annotated[
        int | None,
        typer.Option("--size", min=32, help="Square matrix size; default drawn in 384..1024."),
    ] = None,
) -> None:
    """Write N phantoms and their labels in our layout or a public dataset's (see --layout)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from models.phantoms import write_dataset

    config_from(ctx)
    findings: list[str] | None = None
    if finding:
        findings = [f for f in finding if f.lower() != "none"]
    if layout not in LAYOUTS:
        raise typer.BadParameter(f"must be one of {', '.join(LAYOUTS)}", param_hint="--layout")
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task("phantoms", total=n)
        labels = write_dataset(
            out,
            n,
            seed,
            layout,
            findings=findings,
            priority=priority.upper(),
            size=size,
            progress=lambda done: bar.update(task, completed=done),
        )
    typer.echo(f"wrote {n} phantoms ({layout}) to {out}; labels: {labels}")
