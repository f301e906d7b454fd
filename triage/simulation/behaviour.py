"""The model as the simulation sees it: which findings a study has, and which the model flags.

Two ways to give it:

- **Rates**: per label a prevalence, a sensitivity and a specificity; truth and flags are drawn
  independently per label.
- **Predictions**: a benchmark's ``predictions.csv``. Each simulated study is one row drawn at
  random (with replacement) with its true labels and its scores; a label is flagged when its
  score reaches the label's threshold (the card's, or ``thresholds`` in the settings). With
  ``reweight_predictions`` the rows are weighted (raking over the labels) so that each label's
  prevalence is the settings' one; otherwise the file's prevalence stays.

The ``predictions.csv`` format: one row per image; for each label ``L`` of the card, a truth
column ``L`` (or ``L_true``) holding 1 or 0 (``true``/``false`` accepted), and a score column
``L_score`` in [0, 1]. Other columns (image, patient, ...) are ignored. A row whose truth is
blank or ``-1`` (uncertain) for a used label is left out; a card label without both columns is
not modelled (a warning says so).
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from models.card import load_card
from models.errors import CardError
from models.settings import ModelsSettings
from triage.simulation.settings import ModelSettings, SimulationError
from worklist.domain import Priority

__all__ = ["Behaviour", "LabelSpec", "load_behaviour", "read_predictions"]

logger = logging.getLogger(__name__)

BoolArray = np.ndarray[Any, np.dtype[np.bool_]]
FloatArray = np.ndarray[Any, np.dtype[np.float64]]
_TRUE = {"1", "1.0", "true", "yes"}
_FALSE = {"0", "0.0", "false", "no"}
_UNKNOWN = {"", "-1", "-1.0", "nan", "na", "uncertain"}


@dataclass(frozen=True)
class LabelSpec:
    """One label as the policy sees it: its name, threshold and the class it argues for."""

    name: str
    threshold: float
    category: Priority


_Columns = list[tuple[LabelSpec, str, str]]
"""Per label in the file: the label, its truth column and its score column."""


@dataclass(frozen=True)
class Behaviour:
    """Draws truth and threshold crossings for simulated studies.

    ``sensitivity``, ``specificity`` and ``prevalence`` are per label; for predictions they are
    measured on the (weighted) rows at the thresholds.
    """

    labels: tuple[LabelSpec, ...]
    kind: str
    sensitivity: FloatArray
    specificity: FloatArray
    prevalence: FloatArray
    source: str = ""
    truth_rows: BoolArray | None = field(default=None, repr=False)
    crossed_rows: BoolArray | None = field(default=None, repr=False)
    weights: FloatArray | None = field(default=None, repr=False)

    def draw(self, rng: np.random.Generator, n: int) -> tuple[BoolArray, BoolArray]:
        """Draw truth and flags for ``n`` studies.

        Parameters
        ----------
        rng
            The random generator.
        n
            How many studies.

        Returns
        -------
        tuple
            ``truth`` and ``crossed``, boolean ``[n, labels]``.
        """
        if self.truth_rows is not None and self.crossed_rows is not None:
            rows = rng.choice(len(self.truth_rows), size=n, p=self.weights)
            return self.truth_rows[rows], self.crossed_rows[rows]
        shape = (n, len(self.labels))
        truth = rng.random(shape) < self.prevalence
        u = rng.random(shape)
        crossed = np.where(truth, u < self.sensitivity, u >= self.specificity)
        return truth, crossed

    def with_sensitivity(self, sensitivity: float) -> Behaviour:
        """Return rates with every label's sensitivity set, specificity and prevalence kept."""
        return replace(
            self,
            kind="rates",
            sensitivity=np.full(len(self.labels), sensitivity),
            truth_rows=None,
            crossed_rows=None,
            weights=None,
        )

    def describe(self) -> dict[str, Any]:
        """Return a JSON-able description (kind, source, per-label figures)."""
        return {
            "kind": self.kind,
            "source": self.source,
            "rows": None if self.truth_rows is None else len(self.truth_rows),
            "labels": [
                {
                    "name": lab.name,
                    "category": str(lab.category),
                    "threshold": lab.threshold,
                    "prevalence": round(float(self.prevalence[i]), 6),
                    "sensitivity": round(float(self.sensitivity[i]), 6),
                    "specificity": round(float(self.specificity[i]), 6),
                }
                for i, lab in enumerate(self.labels)
            ],
        }


def _per_label(value: float | dict[str, float], names: tuple[str, ...], what: str) -> FloatArray:
    if isinstance(value, dict):
        missing = [n for n in names if n not in value]
        if missing:
            raise SimulationError(f"model.{what}: no value for {', '.join(missing)}")
        return np.asarray([value[n] for n in names], dtype=np.float64)
    return np.full(len(names), float(value))


def _card_labels(model: ModelSettings) -> tuple[tuple[LabelSpec, ...], str]:
    path = model.card
    if path is None:
        path = ModelsSettings().models_dir / "chest-phantom-demo" / "1.0.0" / "card.yaml"
    try:
        card = load_card(path)
    except CardError as exc:
        raise SimulationError(f"model.card: {exc}") from exc
    labels = tuple(
        LabelSpec(lab.name, model.thresholds.get(lab.name, lab.threshold), Priority(lab.category))
        for lab in card.outputs.labels
    )
    return labels, card.ref


def read_predictions(
    path: Path, labels: tuple[LabelSpec, ...]
) -> tuple[tuple[LabelSpec, ...], BoolArray, FloatArray]:
    """Read a ``predictions.csv`` (format in the module docstring).

    Parameters
    ----------
    path
        The file.
    labels
        The card's labels.

    Returns
    -------
    tuple
        The labels found in the file, truth ``[rows, labels]`` and scores ``[rows, labels]``.

    Raises
    ------
    SimulationError
        If the file cannot be read, has none of the labels, or holds a value that is not a
        truth or a score.
    """
    header, rows = _read_csv(path)
    used = _label_columns(path, header, labels)
    truth: list[list[bool]] = []
    scores: list[list[float]] = []
    for line, row in enumerate(rows, start=2):
        parsed = _parse_row(path, line, row, used)
        if parsed is not None:
            truth.append(parsed[0])
            scores.append(parsed[1])
    dropped = len(rows) - len(truth)
    if dropped:
        logger.warning("%s: %d rows with an uncertain or blank truth left out", path, dropped)
    if not truth:
        raise SimulationError(f"{path}: no usable rows")
    return (
        tuple(lab for lab, _, _ in used),
        np.asarray(truth, dtype=np.bool_),
        np.asarray(scores, dtype=np.float64),
    )


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """Return the file's header (stripped) and its rows."""
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip() for h in reader.fieldnames or []]
            return header, list(reader)
    except OSError as exc:
        raise SimulationError(f"{path}: cannot read: {exc.strerror or exc}") from exc


def _label_columns(path: Path, header: list[str], labels: tuple[LabelSpec, ...]) -> _Columns:
    """Find each label's truth and score columns; a label without both is warned of and left out."""
    used: _Columns = []
    for lab in labels:
        truth_col = next((c for c in (lab.name, f"{lab.name}_true") if c in header), None)
        score_col = f"{lab.name}_score"
        if truth_col and score_col in header:
            used.append((lab, truth_col, score_col))
        else:
            logger.warning("%s: no columns for label %s: not modelled", path, lab.name)
    if not used:
        wanted = ", ".join(f"{lab.name} + {lab.name}_score" for lab in labels)
        raise SimulationError(f"{path}: none of the card's labels has its columns ({wanted})")
    return used


def _parse_row(
    path: Path, line: int, row: dict[str, str], used: _Columns
) -> tuple[list[bool], list[float]] | None:
    """Return one row's truth and scores, or ``None`` when a truth is uncertain or blank."""
    row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
    values = [row[t].lower() for _, t, _ in used]
    if any(v in _UNKNOWN for v in values):
        return None
    bad = [v for v in values if v not in _TRUE | _FALSE]
    if bad:
        raise SimulationError(f"{path}:{line}: truth {bad[0]!r} is not 1/0")
    try:
        score = [float(row[s]) for _, _, s in used]
    except ValueError as exc:
        raise SimulationError(f"{path}:{line}: a score is not a number: {exc}") from exc
    return [v in _TRUE for v in values], score


def _rake(truth: BoolArray, targets: FloatArray) -> FloatArray:
    """Weights of the rows that give each label the target prevalence (iterative fitting)."""
    w = np.ones(len(truth))
    for _ in range(500):
        worst = 0.0
        for j, p in enumerate(targets):
            pos = truth[:, j]
            current = w[pos].sum() / w.sum()
            worst = max(worst, abs(current - p))
            if 0.0 < current < 1.0:
                w[pos] *= p / current
                w[~pos] *= (1.0 - p) / (1.0 - current)
        if worst < 1e-9:
            break
    return np.asarray(w / w.sum(), dtype=np.float64)


def _measured(truth: BoolArray, crossed: BoolArray, w: FloatArray) -> tuple[FloatArray, ...]:
    pos = (w[:, None] * truth).sum(axis=0)
    neg = (w[:, None] * ~truth).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        sens = (w[:, None] * (truth & crossed)).sum(axis=0) / pos
        spec = (w[:, None] * (~truth & ~crossed)).sum(axis=0) / neg
    return sens, spec, pos / w.sum()


def load_behaviour(model: ModelSettings) -> Behaviour:
    """Build the model's behaviour from the settings.

    Parameters
    ----------
    model
        The model section of the settings.

    Returns
    -------
    Behaviour
        The behaviour, by rates or by resampled predictions.

    Raises
    ------
    SimulationError
        If neither predictions nor rates are given, or they do not fit the card.
    """
    labels, card_ref = _card_labels(model)
    names = tuple(lab.name for lab in labels)
    if model.predictions is None:
        if model.sensitivity is None or model.specificity is None:
            raise SimulationError(
                "no model behaviour: give --predictions or --sensitivity and --specificity"
            )
        prevalence = _per_label(model.prevalence, names, "prevalence")
        return Behaviour(
            labels=labels,
            kind="rates",
            sensitivity=_per_label(model.sensitivity, names, "sensitivity"),
            specificity=_per_label(model.specificity, names, "specificity"),
            prevalence=prevalence,
            source=card_ref,
        )
    used, truth, scores = read_predictions(model.predictions, labels)
    crossed = scores >= np.asarray([lab.threshold for lab in used])
    weights = np.full(len(truth), 1.0 / len(truth))
    if model.reweight_predictions:
        targets = _per_label(model.prevalence, tuple(lab.name for lab in used), "prevalence")
        present = truth.any(axis=0) & (~truth).any(axis=0)
        if not present.all():
            raise SimulationError(
                f"{model.predictions}: cannot reweight to the settings' prevalence: a label has "
                "no positive or no negative row (set model.reweight_predictions: false)"
            )
        weights = _rake(truth, targets)
    sens, spec, prev = _measured(truth, crossed, weights)
    return Behaviour(
        labels=used,
        kind="predictions",
        sensitivity=sens,
        specificity=spec,
        prevalence=prev,
        source=f"{model.predictions} ({card_ref})",
        truth_rows=truth,
        crossed_rows=crossed,
        weights=weights,
    )
