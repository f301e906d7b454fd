"""What a model says: raw outputs checked and activated, then one result per image and label."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from models.card import Activation, Category, Concept, ModelCard
from models.errors import InvalidOutput

__all__ = [
    "ImageResult",
    "LabelResult",
    "Prediction",
    "ScoreResult",
    "activate",
    "check_finite",
    "make_prediction",
    "postprocess",
]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float32]
_CATEGORY_ORDER: dict[str, int] = {"P1": 0, "P2": 1, "P3": 2}


@dataclass(frozen=True)
class Prediction:
    """A model's outputs for a batch, after the card's activations.

    Attributes
    ----------
    probabilities
        ``[N, L]`` float32 in [0, 1], columns in label-index order.
    heatmaps
        ``[N, L, h, w]`` float32, or ``None`` when the card declares no heatmap output.
    inference_ms
        Wall time of the ONNX Runtime call(s).
    """

    probabilities: FloatArray
    heatmaps: FloatArray | None = None
    inference_ms: float = 0.0

    def __len__(self) -> int:
        return int(self.probabilities.shape[0])


@dataclass(frozen=True)
class LabelResult:
    """One label's score for one image, against the card's operating point."""

    label: str
    probability: float
    threshold: float
    crossed: bool
    category: Category
    concept: Concept


@dataclass(frozen=True)
class ImageResult:
    """Every label's result for one image, with the image's heatmaps when the model has them."""

    labels: tuple[LabelResult, ...]
    heatmap: FloatArray | None = field(default=None, compare=False)

    @property
    def crossed(self) -> tuple[LabelResult, ...]:
        """The labels whose probability reached their threshold."""
        return tuple(r for r in self.labels if r.crossed)

    @property
    def category(self) -> Category | None:
        """The most urgent category among the crossed labels (P1 before P2 before P3)."""
        crossed = self.crossed
        if not crossed:
            return None
        return min((r.category for r in crossed), key=_CATEGORY_ORDER.__getitem__)

    @property
    def probabilities(self) -> dict[str, float]:
        """Label name to probability."""
        return {r.label: r.probability for r in self.labels}


@dataclass(frozen=True)
class ScoreResult:
    """Results of :meth:`models.runtime.LoadedModel.score_datasets`, with each step's time."""

    results: list[ImageResult]
    preprocess_ms: float
    inference_ms: float
    postprocess_ms: float


def check_finite(name: str, values: npt.NDArray[np.generic]) -> None:
    """Raise :class:`InvalidOutput` if an output holds NaN or infinite values.

    Parameters
    ----------
    name
        The output's name, for the message.
    values
        The raw output.

    Raises
    ------
    InvalidOutput
        If any value is not finite.
    """
    finite = np.isfinite(values)
    if not finite.all():
        bad = int(values.size - np.count_nonzero(finite))
        raise InvalidOutput(
            f"output {name!r} has {bad} NaN or infinite value(s) of {values.size}; no score given"
        )


def activate(values: FloatArray, activation: Activation, axis: int = 1) -> FloatArray:
    """Apply an activation function in a numerically stable way.

    Parameters
    ----------
    values
        Raw outputs (logits).
    activation
        ``sigmoid`` (elementwise), ``softmax`` (along ``axis``) or ``none``.
    axis
        The label axis, for softmax.

    Returns
    -------
    numpy.ndarray
        float32 values.
    """
    x = values.astype(np.float32, copy=False)
    if activation is Activation.SIGMOID:
        # exp(-|x|) never overflows; both branches keep full relative precision.
        e = np.exp(-np.abs(x))
        out: FloatArray = np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(np.float32)
        return out
    if activation is Activation.SOFTMAX:
        shifted = x - x.max(axis=axis, keepdims=True)
        exp = np.exp(shifted)
        soft: FloatArray = exp / exp.sum(axis=axis, keepdims=True)
        return soft.astype(np.float32, copy=False)
    return x


def make_prediction(
    card: ModelCard,
    batch_size: int,
    probabilities: npt.NDArray[np.generic],
    heatmaps: npt.NDArray[np.generic] | None,
    inference_ms: float,
) -> Prediction:
    """Check raw outputs against the card and apply its activations.

    Parameters
    ----------
    card
        The model's card.
    batch_size
        The number of images that went in.
    probabilities
        The raw probabilities output, expected ``[N, L]``.
    heatmaps
        The raw heatmap output, expected ``[N, L, h, w]``, or ``None``.
    inference_ms
        Time the run took.

    Returns
    -------
    Prediction
        Activated, checked outputs.

    Raises
    ------
    InvalidOutput
        If a shape is wrong, a value is NaN or infinite, or a probability falls outside [0, 1].
    """
    n_labels = len(card.outputs.labels)
    spec = card.outputs.probabilities
    if probabilities.shape != (batch_size, n_labels):
        raise InvalidOutput(
            f"output {spec.name!r} has shape {list(probabilities.shape)}; "
            f"the card expects [{batch_size}, {n_labels}]"
        )
    check_finite(spec.name, probabilities)
    probs = activate(probabilities.astype(np.float32), spec.activation)
    if probs.min() < 0.0 or probs.max() > 1.0:
        raise InvalidOutput(
            f"output {spec.name!r} (activation {spec.activation.value}) is outside [0, 1]"
        )
    maps: FloatArray | None = None
    if heatmaps is not None and card.outputs.heatmap is not None:
        hspec = card.outputs.heatmap
        if heatmaps.ndim != 4 or heatmaps.shape[:2] != (batch_size, n_labels):
            raise InvalidOutput(
                f"output {hspec.name!r} has shape {list(heatmaps.shape)}; "
                f"the card expects [{batch_size}, {n_labels}, h, w]"
            )
        check_finite(hspec.name, heatmaps)
        maps = activate(heatmaps.astype(np.float32), hspec.activation)
    return Prediction(probabilities=probs, heatmaps=maps, inference_ms=inference_ms)


def postprocess(card: ModelCard, prediction: Prediction) -> list[ImageResult]:
    """Turn a prediction into one result per image, each label against its threshold.

    Parameters
    ----------
    card
        The model's card (labels, thresholds, categories, concepts).
    prediction
        The activated outputs.

    Returns
    -------
    list of ImageResult
        In batch order.
    """
    labels = card.outputs.labels
    results: list[ImageResult] = []
    for row in range(len(prediction)):
        scores: Sequence[float] = prediction.probabilities[row].tolist()
        label_results = tuple(
            LabelResult(
                label=label.name,
                probability=float(scores[label.index]),
                threshold=label.threshold,
                crossed=scores[label.index] >= label.threshold,
                category=label.category,
                concept=label.concept,
            )
            for label in labels
        )
        heatmap = prediction.heatmaps[row] if prediction.heatmaps is not None else None
        results.append(ImageResult(labels=label_results, heatmap=heatmap))
    return results
