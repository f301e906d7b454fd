"""``triage simulate``: what a model would do to the reporting list's waiting times."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

import typer

from triage.cli.app import app, config_from

__all__ = ["simulate"]

logger = logging.getLogger(__name__)

# numpy, SimPy, scipy and matplotlib load inside the command: `triage --help` must stay light.


@app.command("simulate")
def simulate(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="Folder for the JSON, event log and plots.")],
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="Simulation settings (YAML); default: the documented "
            "assumptions of triage/simulation/defaults.py.",
        ),
    ] = None,
    predictions: Annotated[
        Path | None,
        typer.Option(
            "--predictions",
            help="A benchmark's predictions.csv (rows are resampled with their true labels).",
        ),
    ] = None,
    sensitivity: Annotated[
        float | None,
        typer.Option("--sensitivity", min=0.0, max=1.0, help="Every label's sensitivity."),
    ] = None,
    specificity: Annotated[
        float | None,
        typer.Option("--specificity", min=0.0, max=1.0, help="Every label's specificity."),
    ] = None,
    days: Annotated[int | None, typer.Option("--days", min=1, help="Days of arrivals.")] = None,
    replications: Annotated[
        int | None, typer.Option("--replications", min=1, help="Independent replications.")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", min=0, help="Seed of the run.")] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", min=1, help="Processes over replications.")
    ] = None,
    policy: Annotated[
        Path | None,
        typer.Option("--policy", help="Priority policy file (default: the bundled one)."),
    ] = None,
    grid: Annotated[
        bool | None,
        typer.Option("--grid/--no-grid", help="Also sweep sensitivity x load (default: on)."),
    ] = None,
    roster: Annotated[
        str | None,
        typer.Option(
            "--roster",
            help="A bundled roster in place of the scenario's: network (the default: someone "
            "reports at every hour) or day-only (nobody 22:00-08:00).",
        ),
    ] = None,
) -> None:
    """Simulate the reporting list under FIFO, AI and AI with the escalation cap."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from triage.simulation import load_settings, run_simulation
    from triage.simulation.plots import write_plots
    from triage.simulation.report import (
        headline,
        report_document,
        write_event_log,
        write_json,
    )

    config_from(ctx)
    if (sensitivity is None) != (specificity is None):
        raise typer.BadParameter("give --sensitivity and --specificity together")
    if predictions is not None and sensitivity is not None:
        raise typer.BadParameter("give --predictions or --sensitivity/--specificity, not both")
    settings = load_settings(
        config,
        replications=replications,
        seed=seed,
        workers=workers,
        policy_file=policy,
        grid=None if grid is None else {"enabled": grid},
        roster=roster,
        model={"predictions": predictions, "sensitivity": sensitivity, "specificity": specificity},
    )
    if days is not None:
        warmup = min(settings.warmup_days, days - 1)
        if warmup != settings.warmup_days:
            logger.warning("warm-up shortened to %d days for a %d-day run", warmup, days)
        settings = settings.with_changes(days=days, warmup_days=warmup)
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        transient=True,
    ) as bar:
        main = bar.add_task("replications", total=settings.replications)
        cells = settings.grid
        sweep = bar.add_task(
            "sensitivity x load",
            total=len(cells.sensitivities) * len(cells.loads) * cells.replications,
            visible=cells.enabled,
        )
        outcome = run_simulation(
            settings,
            progress=lambda done: bar.update(main, completed=done),
            grid_progress=lambda done: bar.update(sweep, completed=done),
        )
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Any] = {"json": "simulation.json"}
    digest = write_event_log(outcome, out / "events.csv")
    if digest is not None:
        files["events"] = "events.csv"
        files["events_sha256"] = digest
    files["plots"] = [p.name for p in write_plots(outcome, out)]
    write_json(report_document(outcome, files), out / "simulation.json")
    for line in headline(outcome):
        typer.echo(line)
    typer.echo(f"wrote {out / 'simulation.json'}, {', '.join(files['plots'])} to {out}")
