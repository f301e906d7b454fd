"""``triage models``: list, inspect, validate, enable/disable, run and export models."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from models.card_blocks import Activation, ModelStatus
from models.errors import ExportError, ModelError
from triage.cli.app import app, config_from
from triage.cli.options import ConfigOption, DataDirOption, ModelsDirOption

if TYPE_CHECKING:
    from collections.abc import Sequence

    from models.registry import ModelRegistry, RegisteredModel
    from models.runtime import LoadedModel

# numpy, pydicom, ONNX Runtime and the registry are imported inside the commands that use them,
# so that ``triage --help`` and the other subcommands do not pay for them.

__all__ = ["models_app"]

logger = logging.getLogger(__name__)

models_app = typer.Typer(
    help="Model cards, the model registry, scoring DICOM files and ONNX export.",
    no_args_is_help=True,
)
app.add_typer(models_app, name="models")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _registry(ctx: typer.Context) -> ModelRegistry:
    from models.registry import ModelRegistry

    return ModelRegistry(config_from(ctx).models)


def _summary(model: RegisteredModel) -> dict[str, Any]:
    card = model.card
    return {
        "ref": model.ref,
        "name": model.name,
        "version": model.version,
        "status": str(model.status),
        "task": str(card.task),
        "modalities": list(card.applies_to.modalities),
        "labels": list(card.label_names),
        "sha256": card.identity.sha256,
        "directory": str(model.directory),
    }


@models_app.command("list")
def list_models(
    ctx: typer.Context,
    as_json: JsonOption = False,
    models_dir: ModelsDirOption = None,
    data_dir: DataDirOption = None,
    config_file: ConfigOption = None,
) -> None:
    """List every model under models_dir with its status; report cards that are invalid."""
    registry = _registry(ctx)
    models = registry.models()
    if as_json:
        payload = {
            "models_dir": str(registry.models_dir),
            "models": [_summary(m) for m in models],
            "problems": [{"path": str(p.path), "error": p.message} for p in registry.problems],
        }
        typer.echo(json.dumps(payload, indent=2))
        return
    if not models:
        typer.echo(f"no models in {registry.models_dir}")
    else:
        rows = [("MODEL", "STATUS", "MODALITIES", "LABELS", "SHA256")]
        for m in models:
            labels = ",".join(m.card.label_names)
            rows.append(
                (
                    m.ref,
                    str(m.status),
                    ",".join(m.card.applies_to.modalities),
                    labels,
                    m.card.identity.sha256[:12],
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
        for row in rows:
            cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
            typer.echo("  ".join([*cells, row[-1]]))
    for problem in registry.problems:
        typer.echo(f"invalid: {problem.message}", err=True)


@models_app.command("show")
def show(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME or NAME@VERSION (newest version if omitted).")],
    as_json: JsonOption = False,
    models_dir: ModelsDirOption = None,
    data_dir: DataDirOption = None,
    config_file: ConfigOption = None,
) -> None:
    """Print a model's card, its effective status and where it lives."""
    import yaml

    model = _registry(ctx).resolve(ref)
    card = model.card.model_dump(mode="json")
    if as_json:
        payload = {"status": str(model.status), "directory": str(model.directory), "card": card}
        typer.echo(json.dumps(payload, indent=2))
        return
    typer.echo(f"# {model.ref}: status {model.status} (card says {model.card.status})")
    typer.echo(f"# directory: {model.directory}")
    typer.echo(yaml.safe_dump(card, sort_keys=False, allow_unicode=True).rstrip())


@models_app.command("validate")
def validate(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="A card.yaml, or the directory holding it.")],
    config_file: ConfigOption = None,
) -> None:
    """Validate a card, its ONNX file's sha256, and that the graph runs as the card says."""
    import numpy as np

    from models.card import load_card
    from models.runtime import LoadedModel

    settings = config_from(ctx).models
    card_path = path / "card.yaml" if path.is_dir() else path
    try:
        card = load_card(card_path)
        model = LoadedModel(card, card_path.parent, settings)
        try:
            n = card.input.fixed_batch or 2
            model.predict(np.zeros((n, *card.input.shape[1:]), dtype=np.float32))
        finally:
            model.close()
    except ModelError as exc:
        typer.echo(f"invalid: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"ok: {card.ref} ({card_path}; sha256 {card.identity.sha256[:12]}; "
        f"{len(card.outputs.labels)} labels; ran on {model.provider})"
    )


def _set_status(ctx: typer.Context, ref: str, status: ModelStatus) -> None:
    registry = _registry(ctx)
    model = registry.resolve(ref)
    updated = registry.set_status(model.name, model.version, status)
    typer.echo(f"{updated.ref}: {updated.status} (state file {registry.state_file})")


RefArgument = Annotated[str, typer.Argument(help="NAME or NAME@VERSION (newest if omitted).")]


@models_app.command("enable")
def enable(
    ctx: typer.Context,
    ref: RefArgument,
    models_dir: ModelsDirOption = None,
    data_dir: DataDirOption = None,
    config_file: ConfigOption = None,
) -> None:
    """Enable a model: it runs and its findings can raise priorities."""
    _set_status(ctx, ref, ModelStatus.ENABLED)


@models_app.command("disable")
def disable(
    ctx: typer.Context,
    ref: RefArgument,
    models_dir: ModelsDirOption = None,
    data_dir: DataDirOption = None,
    config_file: ConfigOption = None,
) -> None:
    """Disable a model: it does not run."""
    _set_status(ctx, ref, ModelStatus.DISABLED)


@models_app.command("shadow")
def shadow(
    ctx: typer.Context,
    ref: RefArgument,
    models_dir: ModelsDirOption = None,
    data_dir: DataDirOption = None,
    config_file: ConfigOption = None,
) -> None:
    """Put a model in shadow mode: it runs and records findings that change no priority."""
    _set_status(ctx, ref, ModelStatus.SHADOW)


def _score_chunk(model: LoadedModel, files: Sequence[Path]) -> tuple[list[dict[str, Any]], bool]:
    """Score some files; return one JSON-ready record per file and whether all succeeded."""
    import numpy as np
    import pydicom
    from pydicom.errors import InvalidDicomError

    records: list[dict[str, Any]] = [{"file": str(f), "model": model.card.ref} for f in files]
    tensors: list[np.ndarray[Any, Any]] = []
    scored: list[int] = []
    ok = True
    applies = model.card.applies_to
    for i, file in enumerate(files):
        try:
            ds = pydicom.dcmread(file)
            tensors.append(model.preprocess(ds))
        except Exception as exc:  # any unreadable file becomes its own error line
            if not isinstance(exc, OSError | InvalidDicomError | ModelError):
                logger.debug("cannot score %s", file, exc_info=True)
            records[i]["error"] = f"{type(exc).__name__}: {exc}"
            ok = False
            continue
        records[i]["sop_instance_uid"] = str(ds.get("SOPInstanceUID", "")) or None
        records[i]["applies"] = applies.matches(
            ds.get("Modality"),
            ds.get("BodyPartExamined"),
            ds.get("ViewPosition"),
            ds.get("SOPClassUID"),
        )
        scored.append(i)
    if tensors:
        try:
            results = model.postprocess(model.predict(np.stack(tensors)))
        except ModelError as exc:
            for i in scored:
                records[i]["error"] = f"{type(exc).__name__}: {exc}"
            return records, False
        for i, result in zip(scored, results, strict=True):
            records[i]["probabilities"] = {r.label: r.probability for r in result.labels}
            records[i]["thresholds"] = {r.label: r.threshold for r in result.labels}
            records[i]["crossed"] = [r.label for r in result.crossed]
            records[i]["category"] = result.category
    return records, ok


@models_app.command("run")
def run(
    ctx: typer.Context,
    ref: RefArgument,
    files: Annotated[list[Path], typer.Argument(help="DICOM files to score.")],
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", min=1, help="Images per inference call.")
    ] = None,
    models_dir: ModelsDirOption = None,
    data_dir: DataDirOption = None,
    config_file: ConfigOption = None,
) -> None:
    """Score DICOM files: one JSON line per file (probabilities, thresholds crossed).

    An unreadable file gives a line with "error" and the command exits with status 1.
    """
    from models.registry import ModelRegistry

    settings = config_from(ctx).models
    registry = ModelRegistry(settings)
    model = registry.load(ref)
    size = batch_size or settings.batch_size
    all_ok = True
    try:
        for start in range(0, len(files), size):
            records, ok = _score_chunk(model, files[start : start + size])
            all_ok = all_ok and ok
            for record in records:
                typer.echo(json.dumps(record))
    finally:
        registry.close()
    if not all_ok:
        raise typer.Exit(1)


@models_app.command("export")
def export(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", help="Model name (directory name).")],
    version: Annotated[str, typer.Option("--version", help="Model version.")] = "0.1.0",
    monai: Annotated[
        str | None, typer.Option("--monai", help="A monai.networks.nets class, e.g. DenseNet121.")
    ] = None,
    args: Annotated[str, typer.Option("--args", help="JSON keyword arguments.")] = "{}",
    weights: Annotated[
        Path | None, typer.Option("--weights", help="state_dict for the MONAI network.")
    ] = None,
    torchscript: Annotated[
        Path | None, typer.Option("--torchscript", help="A TorchScript file.")
    ] = None,
    checkpoint: Annotated[
        Path | None, typer.Option("--checkpoint", help="A pickled nn.Module (trusted only).")
    ] = None,
    input_size: Annotated[
        tuple[int, int], typer.Option("--input-size", help="Height and width.")
    ] = (224, 224),
    channels: Annotated[int, typer.Option("--channels", help="Input channels (1 or 3).")] = 1,
    labels: Annotated[
        str | None, typer.Option("--labels", help="Comma-separated label names, in order.")
    ] = None,
    activation: Annotated[
        Activation, typer.Option("--activation", help="Activation of the probabilities.")
    ] = Activation.SIGMOID,
    outputs: Annotated[
        str, typer.Option("--outputs", help="Comma-separated output names (probabilities first).")
    ] = "logits",
    out: Annotated[
        Path | None, typer.Option("--out", help="Directory (default: models_dir/NAME/VERSION).")
    ] = None,
    tolerance: Annotated[
        float, typer.Option("--tolerance", help="Largest PyTorch/ONNX difference accepted.")
    ] = 1e-4,
    opset: Annotated[int, typer.Option("--opset", help="ONNX opset.")] = 18,
    models_dir: ModelsDirOption = None,
    config_file: ConfigOption = None,
) -> None:
    """Export a MONAI network or a PyTorch/TorchScript checkpoint to ONNX, with a card skeleton.

    Example: triage models export --name densenet --monai DenseNet121
    --args '{"spatial_dims":2,"in_channels":1,"out_channels":5}'
    """
    from models.export.onnx import card_skeleton, export_to_onnx, load_network, write_card_skeleton

    settings = config_from(ctx).models
    target = out if out is not None else settings.models_dir / name / version
    module = load_network(
        monai=monai, args=args, weights=weights, torchscript=torchscript, checkpoint=checkpoint
    )
    shape = (channels, *input_size)
    output_names = [o.strip() for o in outputs.split(",") if o.strip()]
    result = export_to_onnx(
        module,
        target / "model.onnx",
        shape,
        output_names=output_names,
        opset=opset,
        tolerance=tolerance,
    )
    n_labels = _label_count(result.path)
    names = [s.strip() for s in labels.split(",")] if labels else []
    if not names:
        names = [f"label_{i}" for i in range(n_labels)]
    if len(names) != n_labels:
        typer.echo(
            f"error: --labels gives {len(names)} names but the network has {n_labels} outputs",
            err=True,
        )
        result.path.unlink(missing_ok=True)
        raise typer.Exit(2)
    card = card_skeleton(
        result,
        name=name,
        version=version,
        input_shape=shape,
        labels=names,
        activation=activation,
    )
    card_path = write_card_skeleton(card, target)
    typer.echo(
        json.dumps(
            {
                "onnx": str(result.path),
                "card": str(card_path),
                "sha256": result.sha256,
                "parity_max_abs_diff": result.max_abs_diff,
            }
        )
    )
    typer.echo(
        "edit the card (concepts, thresholds, categories, intended use) before enabling it",
        err=True,
    )


def _label_count(path: Path) -> int:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    shape = session.get_outputs()[0].shape
    if len(shape) != 2 or not isinstance(shape[1], int):
        raise ExportError(f"the probabilities output has shape {shape}; expected [N, L]")
    return int(shape[1])
