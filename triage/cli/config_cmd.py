"""``triage config``: inspect the effective settings."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from triage.cli.app import app, config_from
from triage.cli.options import ConfigOption, DataDirOption, ModelsDirOption

__all__ = ["show"]

config_app = typer.Typer(help="Inspect the effective configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")


@config_app.command("show")
def show(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of TOML.")] = False,
    data_dir: DataDirOption = None,
    models_dir: ModelsDirOption = None,
    config_file: ConfigOption = None,
) -> None:
    """Print the effective settings (precedence: see --config)."""
    config = config_from(ctx)
    sections = {
        "triage": config.triage.model_dump(mode="json"),
        "gateway": config.gateway.model_dump(mode="json"),
        "worklist": config.worklist.model_dump(mode="json"),
        "models": config.models.model_dump(mode="json"),
    }
    if as_json:
        typer.echo(json.dumps(sections, indent=2, sort_keys=True))
        return
    for name, values in sections.items():
        typer.echo(f"[{name}]")
        for key, value in values.items():
            if value is None:
                typer.echo(f"# {key} is unset")
            else:
                typer.echo(f"{key} = {json.dumps(value)}")
        typer.echo("")
