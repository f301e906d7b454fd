"""``triage models train-demo``: train the synthetic demo model and write it with its card."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from triage.cli.app import config_from
from triage.cli.models_cmd import models_app

__all__ = ["train_demo_command"]

logger = logging.getLogger(__name__)


@models_app.command("train-demo")
def train_demo_command(
    ctx: typer.Context,
    out: Annotated[
        Path, typer.Option("--out", help="Models directory to write the demo model into.")
    ] = Path("models/bundled"),
    n_train: Annotated[int, typer.Option("--n-train", min=64, help="Training phantoms.")] = 3000,
    n_val: Annotated[
        int, typer.Option("--n-val", min=32, help="Validation phantoms (thresholds).")
    ] = 400,
    n_test: Annotated[
        int, typer.Option("--n-test", min=32, help="Held-out test phantoms (AUROC).")
    ] = 400,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of data and weights.")] = 0,
    epochs: Annotated[int, typer.Option("--epochs", min=1, help="Training epochs.")] = 10,
    threads: Annotated[int, typer.Option("--threads", min=1, help="torch CPU threads.")] = 2,
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="Processes generating phantoms.")
    ] = 2,
) -> None:
    """Train the demo model on synthetic phantoms (CPU, a few minutes) and export it to ONNX.

    Writes OUT/chest-phantom-demo/1.0.0/{card.yaml, model.onnx}. Needs the training extra
    (torch, MONAI, scikit-learn). SYNTHETIC DEMO, NOT FOR CLINICAL USE.
    """
    from models.demo.build import DemoTrainingConfig, train_demo

    config_from(ctx)
    config = DemoTrainingConfig(
        out_dir=out,
        n_train=n_train,
        n_val=n_val,
        n_test=n_test,
        seed=seed,
        epochs=epochs,
        threads=threads,
        workers=workers,
    )
    card = train_demo(config, report=typer.echo)
    typer.echo(f"demo model written: {card}")
