"""``triage models``: list, inspect, validate, enable/disable, run and export models."""

from __future__ import annotations

import logging

import typer

from triage.cli.app import app

__all__ = ["models_app"]

logger = logging.getLogger(__name__)

models_app = typer.Typer(
    help="Model cards, the model registry, scoring DICOM files and ONNX export.",
    no_args_is_help=True,
)
app.add_typer(models_app, name="models")
