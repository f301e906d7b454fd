"""``triage models benchmark`` and ``triage models calibrate``: a model on a public dataset copy.

The engine is :mod:`models.benchmarking`; numpy, ONNX Runtime, pydicom and the statistics are
imported inside the commands so that the command tree stays light.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from triage.cli.app import config_from
from triage.cli.models_cmd import models_app
from triage.cli.options import ConfigOption, DataDirOption, ModelsDirOption

if TYPE_CHECKING:
    from models.benchmarking import BenchmarkOptions, Scored
    from models.registry import ModelRegistry, RegisteredModel

__all__ = ["benchmark", "calibrate"]

logger = logging.getLogger(__name__)

ModelArg = Annotated[str, typer.Argument(help="NAME or NAME@VERSION (newest version if omitted).")]
DatasetArg = Annotated[
    Path, typer.Argument(help="The dataset's folder as released (holding its labels files).")
]
LayoutOption = Annotated[
    str,
    typer.Option("--layout", help="nih, chexpert, mimic, rsna, siim, vindr, padchest or generic."),
]
SplitOption = Annotated[
    str,
    typer.Option("--split", help="official (the evaluation split), all, or a split's name."),
]
UncertaintyOption = Annotated[
    str,
    typer.Option("--uncertainty", help="Uncertain labels: ignore, negative or positive."),
]
LabelMapOption = Annotated[
    Path | None,
    typer.Option("--label-map", help="YAML label map (default: models/datasets/labels.yaml)."),
]
WorkersOption = Annotated[
    int, typer.Option("--workers", min=0, help="Decoding processes (0: in this process).")
]
BatchOption = Annotated[
    int | None,
    typer.Option("--batch-size", min=1, help="Images per inference call (default: settings)."),
]
SkipOption = Annotated[
    bool,
    typer.Option(
        "--skip-bad-images",
        help="Leave out images that are absent or unreadable (listed in left_out.csv and counted "
        "in the report) instead of stopping at the first.",
    ),
]


def _default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def _score(
    registry: ModelRegistry,
    model: RegisteredModel,
    dataset_dir: Path,
    options: BenchmarkOptions,
    cache_dir: Path,
) -> Scored:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from models.benchmarking import score_dataset

    loaded = registry.load(model.name, model.version)
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task(model.ref, total=None)
        return score_dataset(
            loaded,
            dataset_dir,
            options,
            cache_dir,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )


@models_app.command("benchmark")
def benchmark(
    ctx: typer.Context,
    ref: ModelArg,
    dataset_dir: DatasetArg,
    layout: LayoutOption,
    out: Annotated[Path, typer.Option("--out", help="Folder of the predictions and report.")],
    split: SplitOption = "official",
    uncertainty: UncertaintyOption = "ignore",
    label_map: LabelMapOption = None,
    workers: WorkersOption = _default_workers(),  # noqa: B008  (computed once, shown in --help)
    batch_size: BatchOption = None,
    skip_bad_images: SkipOption = False,
    replicates: Annotated[
        int, typer.Option("--replicates", min=1, help="Bootstrap replicates per AUROC.")
    ] = 2000,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of the bootstraps.")] = 0,
    models_dir: ModelsDirOption = None,
    data_dir: DataDirOption = None,
    config_file: ConfigOption = None,
) -> None:
    """Run a model over a dataset copy; write predictions.csv, report.json and report.html.

    Scores are cached by image sha256 in OUT/cache: a rerun scores only the images missing.
    """
    from models.benchmarking import BenchmarkOptions
    from models.benchmarking.outputs import build_report, write_left_out, write_predictions
    from models.registry import ModelRegistry

    options = BenchmarkOptions(
        layout=layout,
        split=split,
        uncertainty=uncertainty,
        label_map=label_map,
        workers=workers,
        batch_size=batch_size,
        skip_bad_images=skip_bad_images,
    )
    registry = ModelRegistry(config_from(ctx).models)
    try:
        model = registry.resolve(ref)
        scored = _score(registry, model, dataset_dir, options, out / "cache")
    finally:
        registry.close()
    write_predictions(scored, dataset_dir, out / "predictions.csv")
    write_left_out(scored, dataset_dir, out / "left_out.csv")
    report = build_report(
        scored, model.card, dataset_dir, options, seed=seed, replicates=replicates
    )
    json_path, html_path = report.write(out)
    typer.echo(
        f"{model.ref} on {dataset_dir} ({layout}, split {split}): {len(scored.records)} images, "
        f"{scored.computed} scored, {scored.cached} from the cache"
    )
    _echo_left_out(scored, out / "left_out.csv")
    for label in report.labels:
        value = label.auroc.value
        auroc = "undefined" if value is None else f"{value:.4f}"
        typer.echo(f"  {label.name}: n={label.n} positives={label.n_positive} AUROC {auroc}")
    if report.throughput is not None:
        tp = report.throughput
        share = "" if tp.share_of_bare is None else f" ({tp.share_of_bare:.2f} of bare ORT)"
        typer.echo(f"  throughput {tp.images_per_s:.1f} images/s{share}")
    typer.echo(f"wrote {out / 'predictions.csv'}, {out / 'left_out.csv'}, {json_path}, {html_path}")


def _echo_left_out(scored: Scored, listed: Path | None) -> None:
    if not scored.left_out:
        return
    absent = sum(item.reason == "absent" for item in scored.left_out)
    where = f": see {listed}" if listed is not None else ""
    typer.echo(
        f"  left out {len(scored.left_out)} images ({absent} absent, "
        f"{len(scored.left_out) - absent} unreadable){where}"
    )


@models_app.command("calibrate")
def calibrate(
    ctx: typer.Context,
    ref: ModelArg,
    dataset_dir: DatasetArg,
    layout: LayoutOption,
    target_sensitivity: Annotated[
        float,
        typer.Option("--target-sensitivity", min=0.0, max=1.0, help="Sensitivity to reach."),
    ],
    split: SplitOption = "official",
    uncertainty: UncertaintyOption = "ignore",
    label_map: LabelMapOption = None,
    version: Annotated[
        str | None,
        typer.Option("--version", help="The new version (default: the last number bumped)."),
    ] = None,
    cache: Annotated[
        Path | None,
        typer.Option("--cache", help="Predictions cache folder (e.g. a benchmark's OUT/cache)."),
    ] = None,
    workers: WorkersOption = _default_workers(),  # noqa: B008  (computed once, shown in --help)
    batch_size: BatchOption = None,
    skip_bad_images: SkipOption = False,
    models_dir: ModelsDirOption = None,
    data_dir: DataDirOption = None,
    config_file: ConfigOption = None,
) -> None:
    """Write a new card version (status shadow) whose thresholds reach a target sensitivity.

    The thresholds are chosen on the split's labelled images; each records its source (dataset,
    split, images, date, target) in the card.
    """
    import tempfile

    from models.benchmarking import BenchmarkOptions
    from models.benchmarking.calibrate import calibrate_card, write_calibrated
    from models.registry import ModelRegistry

    options = BenchmarkOptions(
        layout=layout,
        split=split,
        uncertainty=uncertainty,
        label_map=label_map,
        workers=workers,
        batch_size=batch_size,
        skip_bad_images=skip_bad_images,
    )
    registry = ModelRegistry(config_from(ctx).models)
    try:
        model = registry.resolve(ref)
        with tempfile.TemporaryDirectory(prefix="triage-calibrate-") as scratch:
            cache_dir = cache if cache is not None else Path(scratch)
            scored = _score(registry, model, dataset_dir, options, cache_dir)
    finally:
        registry.close()
    result = calibrate_card(
        model.card,
        scored,
        target_sensitivity,
        dataset=dataset_dir.resolve().name,
        options=options,
        version=version,
    )
    directory = write_calibrated(result, model.directory, registry.models_dir)
    _echo_left_out(scored, None)
    typer.echo(f"wrote {result.card.ref} (status shadow) to {directory}")
    for name, (old, new) in result.changes.items():
        shown = "kept (no positives)" if new is None else f"{new:.6g}"
        typer.echo(f"  {name}: threshold {old:.6g} -> {shown}")
