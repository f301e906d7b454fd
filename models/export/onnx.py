"""Export a PyTorch or MONAI network to ONNX, check it against PyTorch, write its card.

torch and monai are imported inside the functions that need them, never at module import: the
runtime path (registry, runtime, preprocessing) must work without them.

The exported graph has a dynamic batch axis. The parity check runs PyTorch and ONNX Runtime on
the same random inputs at several batch sizes; the largest absolute difference is returned (and
recorded in the card's ``evaluation.parity_max_abs_diff``) and an export above the tolerance
fails and leaves no file behind.
"""

from __future__ import annotations

import contextlib
import json
import logging
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnxruntime as ort

from models.errors import ExportError
from models.export.card import ExportResult, card_skeleton, write_card_skeleton
from models.export.card import chw as chw_of
from models.integrity import sha256_file

if TYPE_CHECKING:
    import torch

__all__ = [
    "DEFAULT_TOLERANCE",
    "ExportResult",
    "card_skeleton",
    "export_to_onnx",
    "load_network",
    "write_card_skeleton",
]

logger = logging.getLogger(__name__)

DEFAULT_TOLERANCE = 1e-4
"""Largest absolute difference between PyTorch and ONNX Runtime an export may show."""


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporter's deprecation chatter (it is torch's, not ours)."""
    with warnings.catch_warnings():
        for category in (FutureWarning, DeprecationWarning, UserWarning):
            warnings.simplefilter("ignore", category)
        yield


def _as_numpy_outputs(result: Any) -> list[np.ndarray[Any, Any]]:
    import torch

    items = result if isinstance(result, list | tuple) else [result]
    if not all(isinstance(item, torch.Tensor) for item in items):
        raise ExportError("the network must return a tensor or a tuple of tensors")
    return [item.detach().cpu().numpy() for item in items]


def _export(
    module: torch.nn.Module,
    example: torch.Tensor,
    out_path: Path,
    input_name: str,
    output_names: Sequence[str],
    opset: int,
) -> None:
    import torch

    names = list(output_names)
    with _quiet_exporter():
        if isinstance(module, torch.jit.ScriptModule):
            # torch.export cannot trace TorchScript; the TorchScript exporter can.
            axes = {name: {0: "batch"} for name in [input_name, *names]}
            torch.onnx.export(
                module,
                (example,),
                str(out_path),
                input_names=[input_name],
                output_names=names,
                dynamic_axes=axes,
                opset_version=opset,
                dynamo=False,
            )
            return
        batch = torch.export.Dim("batch", min=1, max=65536)
        program = torch.onnx.export(
            module,
            (example,),
            input_names=[input_name],
            output_names=names,
            dynamic_shapes=({0: batch},),
            opset_version=opset,
            dynamo=True,
            external_data=False,
            verbose=False,
        )
        if program is None:
            raise ExportError("torch.onnx.export returned no program")
        program.save(str(out_path), external_data=False)


def export_to_onnx(
    module: torch.nn.Module,
    out_path: Path | str,
    input_shape: Sequence[int],
    input_name: str = "image",
    output_names: Sequence[str] = ("logits",),
    *,
    opset: int = 18,
    tolerance: float = DEFAULT_TOLERANCE,
    parity_batches: Sequence[int] = (1, 3),
    seed: int = 0,
) -> ExportResult:
    """Export a network to ONNX with a dynamic batch axis and check parity with PyTorch.

    Parameters
    ----------
    module
        A ``torch.nn.Module`` (exported through ``torch.export``) or a TorchScript module. It
        is put in eval mode.
    out_path
        The ONNX file to write (one file, weights included).
    input_shape
        ``(C, H, W)``, or ``(N, C, H, W)`` whose ``N`` is ignored.
    input_name
        The graph's input name (the card's ``input.name``).
    output_names
        Names of the network's outputs in order (probabilities first, then a heatmap).
    opset
        ONNX opset version.
    tolerance
        Largest acceptable absolute difference between PyTorch and ONNX Runtime outputs.
    parity_batches
        Batch sizes of the random inputs of the parity check (more than one size exercises the
        dynamic batch axis).
    seed
        Seed of the random inputs.

    Returns
    -------
    ExportResult
        The file, its sha256, and the largest difference seen.

    Raises
    ------
    ExportError
        If export fails, the outputs differ in number or shape, or the difference exceeds
        ``tolerance`` (the file is then removed).
    """
    import torch

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    chw = chw_of(input_shape)
    module = module.eval()
    generator = torch.Generator().manual_seed(seed)
    example = torch.randn((2, *chw), generator=generator)
    try:
        _export(module, example, out_path, input_name, output_names, opset)
    except ExportError:
        raise
    except Exception as exc:  # the exporters raise many types
        raise ExportError(f"cannot export the network to ONNX: {exc}") from exc
    try:
        max_diff = _parity(module, out_path, chw, input_name, output_names, parity_batches, seed)
        if not max_diff <= tolerance:
            raise ExportError(
                f"parity check failed: ONNX Runtime differs from PyTorch by up to {max_diff:.3g} "
                f"(tolerance {tolerance:g})"
            )
    except BaseException:
        out_path.unlink(missing_ok=True)
        raise
    digest = sha256_file(out_path)
    logger.info("exported %s (sha256 %s, parity max abs diff %.3g)", out_path, digest, max_diff)
    return ExportResult(
        path=out_path, sha256=digest, max_abs_diff=max_diff, output_names=tuple(output_names)
    )


def _parity(
    module: torch.nn.Module,
    path: Path,
    chw: tuple[int, int, int],
    input_name: str,
    output_names: Sequence[str],
    batches: Sequence[int],
    seed: int,
) -> float:
    import torch

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    graph_outputs = [o.name for o in session.get_outputs()]
    if graph_outputs != list(output_names):
        raise ExportError(f"the graph's outputs are {graph_outputs}, not {list(output_names)}")
    rng = np.random.default_rng(seed + 1)
    worst = 0.0
    for n in batches:
        x = rng.standard_normal((n, *chw)).astype(np.float32)
        with torch.no_grad():
            expected = _as_numpy_outputs(module(torch.from_numpy(x)))
        actual = session.run(list(output_names), {input_name: x})
        if len(expected) != len(actual):
            raise ExportError(f"PyTorch gives {len(expected)} outputs, ONNX {len(actual)}")
        for name, want, have in zip(output_names, expected, actual, strict=True):
            if want.shape != have.shape:
                raise ExportError(
                    f"output {name!r}: PyTorch shape {list(want.shape)}, ONNX {list(have.shape)}"
                )
            worst = max(worst, float(np.max(np.abs(want.astype(np.float64) - have))))
    return worst


def load_network(
    *,
    monai: str | None = None,
    args: str | dict[str, Any] | None = None,
    weights: Path | None = None,
    torchscript: Path | None = None,
    checkpoint: Path | None = None,
) -> torch.nn.Module:
    """Build or load the network to export.

    Exactly one source: a MONAI network by class name and keyword arguments (optionally with a
    ``state_dict`` file), a TorchScript file, or a whole pickled ``nn.Module`` checkpoint (only
    load checkpoints you trust: unpickling runs code).

    Parameters
    ----------
    monai
        Class name in :mod:`monai.networks.nets`, e.g. ``"DenseNet121"``.
    args
        Keyword arguments of that class, as JSON text or a mapping.
    weights
        A ``state_dict`` saved by ``torch.save`` for the MONAI network.
    torchscript
        A ``torch.jit.save`` file.
    checkpoint
        A ``torch.save(module)`` file.

    Returns
    -------
    torch.nn.Module
        The network, in eval mode.

    Raises
    ------
    ExportError
        If the sources are not exactly one, the class is unknown, or loading fails.
    """
    import torch

    chosen = [s for s in (monai, torchscript, checkpoint) if s is not None]
    if len(chosen) != 1:
        raise ExportError("give exactly one of --monai, --torchscript, --checkpoint")
    try:
        if monai is not None:
            from monai.networks import nets

            factory = getattr(nets, monai, None)
            if factory is None or not callable(factory):
                raise ExportError(f"monai.networks.nets has no network {monai!r}")
            kwargs = json.loads(args) if isinstance(args, str) else dict(args or {})
            if not isinstance(kwargs, dict):
                raise ExportError("--args must be a JSON object")
            module: torch.nn.Module = factory(**kwargs)
            if weights is not None:
                state = torch.load(weights, map_location="cpu", weights_only=True)
                module.load_state_dict(state)
        elif torchscript is not None:
            module = torch.jit.load(str(torchscript), map_location="cpu")  # type: ignore[no-untyped-call]
        else:
            assert checkpoint is not None
            module = torch.load(checkpoint, map_location="cpu", weights_only=False)
            if not isinstance(module, torch.nn.Module):
                raise ExportError(f"{checkpoint} holds a {type(module).__name__}, not a module")
    except ExportError:
        raise
    except Exception as exc:
        raise ExportError(f"cannot build or load the network: {exc}") from exc
    return module.eval()
