"""Choose a model's thresholds on a dataset split for a target sensitivity: a new card version.

The new version is a copy of the model's directory (its ONNX file unchanged) whose card has a
bumped version, a new UID, status ``shadow``, and, for each label the split has positives for,
the highest threshold whose sensitivity on the split is at least the target
(:func:`models.evaluation.operating_points.threshold_for_sensitivity`) with a
:class:`~models.card.ThresholdSource` saying where it came from. A label without positives in the
split keeps its threshold and has no source.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from packaging.version import InvalidVersion, Version

from models.benchmarking.run import BenchmarkOptions, Scored
from models.card import CARD_FILE, Label, ModelCard, ModelStatus, ThresholdSource, dump_card
from models.errors import BenchmarkError, ModelVersionExistsError

__all__ = ["Calibration", "bump_version", "calibrate_card", "write_calibrated"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Calibration:
    """The calibrated card and, per label, the old and new thresholds (``None``: unchanged)."""

    card: ModelCard
    changes: dict[str, tuple[float, float | None]]


def bump_version(version: str) -> str:
    """Return the next version: the last number of a PEP 440 release bumped (``1.0.0``: ``1.0.1``).

    Parameters
    ----------
    version
        The model's version.

    Returns
    -------
    str
        The next version.

    Raises
    ------
    BenchmarkError
        If ``version`` is not a PEP 440 version (pass the new version explicitly then).
    """
    try:
        release = list(Version(version).release)
    except InvalidVersion as exc:
        raise BenchmarkError(
            f"version {version!r} is not a PEP 440 version; pass the new version (--version)"
        ) from exc
    release[-1] += 1
    return ".".join(str(part) for part in release)


def calibrate_card(
    card: ModelCard,
    scored: Scored,
    target: float,
    *,
    dataset: str,
    options: BenchmarkOptions,
    version: str | None = None,
    date: dt.date | None = None,
) -> Calibration:
    """Return a copy of ``card`` whose thresholds give ``target`` sensitivity on ``scored``.

    Parameters
    ----------
    card
        The model's card.
    scored
        Its scores on the calibration split.
    target
        The target sensitivity, in (0, 1].
    dataset
        The dataset's name, recorded in each threshold's source.
    options
        The layout and split, recorded too.
    version
        The new version; ``None`` bumps the card's (:func:`bump_version`).
    date
        The calibration date; ``None`` is today (UTC).

    Returns
    -------
    Calibration
        The new card (status shadow) and the changes.
    """
    from pydicom.uid import generate_uid

    from models.evaluation.operating_points import threshold_for_sensitivity

    if not 0.0 < target <= 1.0:
        raise BenchmarkError(f"target sensitivity must be in (0, 1], got {target}")
    new_version = version or bump_version(card.identity.version)
    day = (date or dt.datetime.now(dt.UTC).date()).isoformat()
    labels: list[Label] = []
    changes: dict[str, tuple[float, float | None]] = {}
    for label in card.outputs.labels:
        if label.name not in scored.labels:
            labels.append(label)
            continue
        truth = [r.labels.get(label.name) for r in scored.records]
        known = np.array([t is not None for t in truth])
        y = np.array([t or 0 for t in truth], dtype=np.int8)[known]
        s = scored.scores[label.name][known]
        chosen = threshold_for_sensitivity(y, s, target)
        changes[label.name] = (label.threshold, chosen)
        if chosen is None:
            logger.warning("%s: no positives in the split; threshold kept", label.name)
            labels.append(label)
            continue
        positive = s >= chosen
        n_pos = int(y.sum())
        n_neg = int(y.size) - n_pos
        source = ThresholdSource(
            method="target_sensitivity",
            target_sensitivity=target,
            sensitivity=float(np.count_nonzero(positive & (y == 1)) / n_pos),
            specificity=float(np.count_nonzero(~positive & (y == 0)) / n_neg) if n_neg else None,
            dataset=dataset,
            layout=options.layout,
            split=options.split,
            n=int(y.size),
            n_positive=n_pos,
            date=day,
            from_version=card.identity.version,
            n_left_out=len(scored.left_out),
        )
        labels.append(label.model_copy(update={"threshold": chosen, "threshold_source": source}))
    identity = card.identity.model_copy(
        update={
            "version": new_version,
            "uid": generate_uid(entropy_srcs=[card.identity.uid, new_version]),
        }
    )
    outputs = card.outputs.model_copy(update={"labels": tuple(labels)})
    data = card.model_dump(mode="json")
    data.update(
        identity=identity.model_dump(mode="json"),
        outputs=outputs.model_dump(mode="json"),
        status=ModelStatus.SHADOW.value,
    )
    return Calibration(card=ModelCard.model_validate(data), changes=changes)


def write_calibrated(calibration: Calibration, source_dir: Path, models_dir: Path) -> Path:
    """Copy the model's directory to ``models_dir/NAME/NEW_VERSION`` with the calibrated card.

    Parameters
    ----------
    calibration
        The calibrated card.
    source_dir
        The model version's directory that was calibrated.
    models_dir
        The models folder.

    Returns
    -------
    pathlib.Path
        The new version's directory.

    Raises
    ------
    ModelVersionExistsError
        If that version already exists.
    """
    ident = calibration.card.identity
    target = models_dir / ident.name / ident.version
    if target.exists():
        raise ModelVersionExistsError(
            f"{target} already exists: {ident.name}@{ident.version} is taken; pass --version"
        )
    shutil.copytree(source_dir, target)
    dump_card(calibration.card, target / CARD_FILE)
    logger.info("wrote %s@%s (shadow) to %s", ident.name, ident.version, target)
    return target
