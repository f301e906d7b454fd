"""Tiny real ONNX models and model directories (built in memory with ``onnx.helper``).

Nothing is trained: :func:`classifier_onnx` and :func:`slow_onnx` have seeded random weights
(the runtime tests), :func:`build_onnx` makes models whose behaviour is chosen (a score equal to
the image's mean intensity, NaN, a hang, a run-time error: the worker tests).
:func:`write_model` lays a model out in a models directory with its card; :func:`cpu_settings`
and :func:`point_cli_at` run them on CPU, in the tests and through the ``triage`` command.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import yaml
from onnx import TensorProto, helper, numpy_helper

from models.settings import ModelsSettings
from tests.builders.cards import card_dict

OPSET = 17


def _model(graph: onnx.GraphProto) -> bytes:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


def classifier_onnx(
    n_labels: int = 5,
    size: int = 32,
    channels: int = 1,
    *,
    heatmap: bool = True,
    batch: str | int = "N",
    nan: bool = False,
    seed: int = 0,
) -> bytes:
    """Build a conv classifier: Conv 3x3 -> GlobalAveragePool -> logits; AveragePool -> heatmap.

    Parameters
    ----------
    n_labels, size, channels : int, optional
        The number of labels and the input's height, width and channels.
    heatmap : bool, optional
        Whether to add the ``heatmap`` output (``size // 4`` square).
    batch : str or int, optional
        The batch dimension: a symbol (dynamic) or a fixed size.
    nan : bool, optional
        Add NaN to the logits, as a broken model would.
    seed : int, optional
        Seed of the random weights.

    Returns
    -------
    bytes
        The serialised, checked model, input ``image`` and outputs ``logits``, ``heatmap``.
    """
    rng = np.random.default_rng(seed)
    weights = rng.standard_normal((n_labels, channels, 3, 3)).astype(np.float32) * 4
    bias = rng.standard_normal(n_labels).astype(np.float32)
    inits = [numpy_helper.from_array(weights, "W"), numpy_helper.from_array(bias, "B")]
    nodes = [
        helper.make_node("Conv", ["image", "W", "B"], ["conv"], pads=[1, 1, 1, 1]),
        helper.make_node("GlobalAveragePool", ["conv"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
    ]
    if nan:
        inits.append(numpy_helper.from_array(np.array([np.nan], dtype=np.float32), "NAN"))
        nodes.append(helper.make_node("Add", ["flat", "NAN"], ["logits"]))
    else:
        nodes.append(helper.make_node("Identity", ["flat"], ["logits"]))
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, n_labels])]
    if heatmap:
        nodes.append(
            helper.make_node(
                "AveragePool", ["conv"], ["heatmap"], kernel_shape=[4, 4], strides=[4, 4]
            )
        )
        outputs.append(
            helper.make_tensor_value_info(
                "heatmap", TensorProto.FLOAT, [batch, n_labels, size // 4, size // 4]
            )
        )
    graph = helper.make_graph(
        nodes,
        "classifier",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [batch, channels, size, size])],
        outputs,
        initializer=inits,
    )
    return _model(graph)


def slow_onnx(size: int = 384, steps: int = 200) -> bytes:
    """Build a graph that takes seconds: ``steps`` chained MatMuls on the input, one label.

    Every MatMul depends on the input, so nothing is folded at load time, and ONNX Runtime checks
    ``RunOptions.terminate`` between them.

    Parameters
    ----------
    size, steps : int, optional
        The input's height and width, and the number of MatMuls.

    Returns
    -------
    bytes
        The serialised, checked model, input ``image`` and output ``logits``.
    """
    eye = numpy_helper.from_array(np.eye(size, dtype=np.float32), "EYE")
    shape3 = numpy_helper.from_array(np.array([-1, size, size], dtype=np.int64), "S3")
    shape4 = numpy_helper.from_array(np.array([-1, 1, size, size], dtype=np.int64), "S4")
    nodes = [helper.make_node("Reshape", ["image", "S3"], ["m0"])]
    for i in range(steps):
        nodes.append(helper.make_node("MatMul", [f"m{i}", "EYE"], [f"m{i + 1}"]))
    nodes += [
        helper.make_node("Reshape", [f"m{steps}", "S4"], ["back"]),
        helper.make_node("GlobalAveragePool", ["back"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["logits"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "slow",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 1])],
        initializer=[eye, shape3, shape4],
    )
    return _model(graph)


def _mean_head(nodes: list[Any], x: str, n_labels: int) -> None:
    """probs[:, 0] = mean(x); probs[:, i>0] = 1 - mean(x)."""
    nodes.append(helper.make_node("ReduceMean", [x], ["m"], axes=[1, 2, 3], keepdims=0))
    nodes.append(helper.make_node("Unsqueeze", ["m", "ax1"], ["m1"]))
    cols = ["m1"]
    if n_labels > 1:
        nodes.append(helper.make_node("Sub", ["one", "m1"], ["inv"]))
        cols += ["inv"] * (n_labels - 1)
    nodes.append(helper.make_node("Concat", cols, ["probs"], axis=1))


def _corner(nodes: list[Any], inits: list[Any], x: str) -> str:
    """The top-left pixel only (``[N, C, 1, 1]``): the mean head then returns its value."""
    for name, value in (("c0", [0, 0]), ("c1", [1, 1]), ("c23", [2, 3])):
        inits.append(numpy_helper.from_array(np.array(value, dtype=np.int64), name))
    nodes.append(helper.make_node("Slice", [x, "c0", "c1", "c23"], ["corner"]))
    return "corner"


def _constant(nodes: list[Any], inits: list[Any], probs: str) -> str:
    """0.5 whatever the input (``probs * 0 + 0.5``)."""
    inits.append(numpy_helper.from_array(np.array(0.0, dtype=np.float32), "zero"))
    inits.append(numpy_helper.from_array(np.array(0.5, dtype=np.float32), "half"))
    nodes.append(helper.make_node("Mul", [probs, "zero"], ["z"]))
    nodes.append(helper.make_node("Add", ["z", "half"], ["probs_const"]))
    return "probs_const"


def build_onnx(
    kind: str,
    *,
    size: int = 16,
    n_labels: int = 1,
    heatmap: bool = True,
    slow_layers: int = 12,
    channels: int = 16,
    declared_size: int | None = None,
) -> bytes:
    """Build a model whose behaviour is chosen, with outputs ``p`` and ``heat``.

    Parameters
    ----------
    kind : str
        ``mean``: the first label's probability is the image's mean intensity, the others one
        minus it; ``corner``: the same of the top-left pixel alone; ``constant``: 0.5 whatever
        the image; ``nan``: NaN probabilities; ``slow``: ``slow_layers`` 5x5 convolutions of
        ``channels`` channels before the mean; ``raise``: fails at run time (a Reshape that
        does not fit).
    size, n_labels : int, optional
        The input's height and width, and the number of labels.
    heatmap : bool, optional
        Whether to add a heatmap output (the input image, once per label).
    slow_layers, channels : int, optional
        The depth and width of a ``slow`` model.
    declared_size : int or None, optional
        An input size to declare instead of ``size`` (refused when the model is loaded).

    Returns
    -------
    bytes
        The serialised, checked model.
    """
    d: int | str = declared_size or size
    if kind == "raise":  # symbolic size: loads fine, then a Reshape fails at run time
        d = "S"
    inputs = [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, d, d])]
    inits = [numpy_helper.from_array(np.array([1], dtype=np.int64), "ax1")]
    if n_labels > 1:
        inits.append(numpy_helper.from_array(np.array(1.0, dtype=np.float32), "one"))
    nodes: list[Any] = []
    x = "image"
    if kind == "corner":
        x = _corner(nodes, inits, x)
    if kind == "raise":
        inits.append(numpy_helper.from_array(np.array([0, 1, 8, 8], dtype=np.int64), "shape"))
        nodes.append(helper.make_node("Reshape", [x, "shape"], ["reshaped"]))
        x = "reshaped"
    if kind == "slow":
        rng = np.random.default_rng(0)
        c_in = 1
        for i in range(slow_layers):
            w = rng.normal(0, 0.05, size=(channels, c_in, 5, 5)).astype(np.float32)
            inits.append(numpy_helper.from_array(w, f"w{i}"))
            nodes.append(helper.make_node("Conv", [x, f"w{i}"], [f"c{i}"], pads=[2, 2, 2, 2]))
            x, c_in = f"c{i}", channels
        nodes.append(helper.make_node("ReduceMean", [x], ["cm"], axes=[1], keepdims=1))
        nodes.append(helper.make_node("Sigmoid", ["cm"], ["xs"]))
        x = "xs"
    _mean_head(nodes, x, n_labels)
    probs_out = "probs"
    if kind == "constant":
        probs_out = _constant(nodes, inits, probs_out)
    if kind == "nan":
        nodes.append(helper.make_node("Sub", ["probs", "probs"], ["z"]))
        nodes.append(helper.make_node("Div", ["z", "z"], ["probs_nan"]))
        probs_out = "probs_nan"
    nodes.append(helper.make_node("Identity", [probs_out], ["p"]))
    outputs = [helper.make_tensor_value_info("p", TensorProto.FLOAT, ["N", n_labels])]
    if heatmap:
        nodes.append(helper.make_node("Concat", ["image"] * n_labels, ["heat"], axis=1))
        outputs.append(
            helper.make_tensor_value_info("heat", TensorProto.FLOAT, ["N", n_labels, d, d])
        )
    return _model(helper.make_graph(nodes, f"test_{kind}", inputs, outputs, inits))


def write_model(
    models_dir: Path,
    onnx_bytes: bytes,
    card: Mapping[str, Any] | None = None,
    **card_kwargs: Any,
) -> Path:
    """Write ``models_dir/NAME/VERSION/{model.onnx,card.yaml}`` with the model's sha256.

    Parameters
    ----------
    models_dir : pathlib.Path
        The models directory.
    onnx_bytes : bytes
        The serialised model.
    card : mapping or None, optional
        The card as parsed YAML; ``None`` makes one with :func:`card_dict`.
    **card_kwargs : Any
        Arguments of :func:`card_dict` when ``card`` is ``None``.

    Returns
    -------
    pathlib.Path
        The model's directory.
    """
    data = dict(card) if card is not None else card_dict(**card_kwargs)
    identity = dict(data["identity"])
    identity["sha256"] = hashlib.sha256(onnx_bytes).hexdigest()
    data["identity"] = identity
    directory = models_dir / str(identity["name"]) / str(identity["version"])
    directory.mkdir(parents=True, exist_ok=True)
    (directory / identity["onnx_file"]).write_bytes(onnx_bytes)
    (directory / "card.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return directory


WORKER_LABELS = (("pneumothorax", 0.5, "P1"), ("nodule", 0.5, "P2"))
"""The labels of the :func:`build_onnx` models, in output order."""


def write_worker_model(
    models_dir: Path,
    name: str,
    kind: str = "mean",
    *,
    version: str = "1.0",
    status: str = "enabled",
    n_labels: int = 1,
    size: int = 16,
    heatmap: bool = True,
    modalities: tuple[str, ...] = ("CR", "DX"),
    **onnx_kw: Any,
) -> Path:
    """Write a :func:`build_onnx` model of ``kind`` and its card into ``models_dir``.

    Parameters
    ----------
    models_dir : pathlib.Path
        The models directory.
    name, kind, version, status : str, optional
        The model's name, its :func:`build_onnx` kind, version and status.
    n_labels, size : int, optional
        How many of :data:`WORKER_LABELS` it scores, and its input size.
    heatmap : bool, optional
        Whether it has a heatmap output.
    modalities : tuple of str, optional
        The modalities its card applies to (any body part).
    **onnx_kw : Any
        Further arguments of :func:`build_onnx`.

    Returns
    -------
    pathlib.Path
        The model's directory, ``models_dir/NAME/VERSION``.
    """
    data = build_onnx(kind, size=size, n_labels=n_labels, heatmap=heatmap, **onnx_kw)
    return write_model(
        models_dir,
        data,
        name=name,
        version=version,
        labels=WORKER_LABELS[:n_labels],
        size=size,
        heatmap=heatmap,
        outputs=("p", "heat"),
        activation="none",
        status=status,
        modalities=modalities,
        body_parts=(),
    )


def write_tiny_models(models_dir: Path) -> Path:
    """Write ``tiny@1.0.0`` and ``tiny@1.2.0`` (5 labels, 32x32, heatmap) into ``models_dir``.

    Parameters
    ----------
    models_dir : pathlib.Path
        The models directory (made if missing).

    Returns
    -------
    pathlib.Path
        ``models_dir``.
    """
    write_model(models_dir, classifier_onnx(seed=0), version="1.0.0")
    write_model(models_dir, classifier_onnx(seed=1), version="1.2.0")
    return models_dir


def cpu_settings(models_dir: Path, timeout_s: float = 30.0) -> ModelsSettings:
    """Return models settings for ``models_dir`` on CPU with one thread.

    Parameters
    ----------
    models_dir : pathlib.Path
        The models directory.
    timeout_s : float, optional
        The inference timeout.

    Returns
    -------
    models.settings.ModelsSettings
        The settings.
    """
    return ModelsSettings(
        models_dir=models_dir,
        providers=["CPUExecutionProvider"],
        intra_op_threads=1,
        inter_op_threads=1,
        timeout_s=timeout_s,
    )


def point_cli_at(models_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the ``triage`` command at ``models_dir`` (CPU, one thread), from its parent folder.

    Parameters
    ----------
    models_dir : pathlib.Path
        The models directory.
    monkeypatch : pytest.MonkeyPatch
        Sets the environment and the working folder for one test.

    Returns
    -------
    pathlib.Path
        ``models_dir``.
    """
    monkeypatch.setenv("TRIAGE_MODELS_MODELS_DIR", str(models_dir))
    monkeypatch.setenv("TRIAGE_MODELS_PROVIDERS", '["CPUExecutionProvider"]')
    monkeypatch.setenv("TRIAGE_MODELS_INTRA_OP_THREADS", "1")
    monkeypatch.delenv("TRIAGE_CONFIG", raising=False)
    monkeypatch.chdir(models_dir.parent)
    return models_dir
