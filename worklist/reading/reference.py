"""Reference scores of a monitored model: ``reference_predictions.csv`` beside its card.

The file is a benchmark's ``predictions.csv`` (``triage models benchmark``) copied into
``models_dir/<name>/<version>/``; its ``<label>_score`` columns are the reference score
distribution of each label (blank cells and values that are not finite numbers skipped, other
columns ignored). A file is parsed once per
version of it (path, modification time and size) and kept in memory.
"""

from __future__ import annotations

import csv
import functools
import logging
import math
from collections import defaultdict
from pathlib import Path

from models.errors import Invalid
from models.settings import ModelsSettings

__all__ = [
    "REFERENCE_FILE",
    "MonitoringRefError",
    "ReferenceFileError",
    "load_reference",
    "split_ref",
]

logger = logging.getLogger(__name__)

REFERENCE_FILE = "reference_predictions.csv"
"""The reference scores beside a model's card: a benchmark's ``predictions.csv``."""


class MonitoringRefError(Invalid):
    """A model is named other than ``NAME@VERSION``."""


class ReferenceFileError(Invalid):
    """A model's reference file cannot be read or holds no scores."""


def split_ref(ref: str) -> tuple[str, str]:
    """Return ``(name, version)`` of ``NAME@VERSION``; :class:`MonitoringRefError` otherwise."""
    name, sep, version = ref.partition("@")
    if not sep or not name or not version:
        raise MonitoringRefError(f"a monitored model is NAME@VERSION, not {ref!r}")
    return name, version


def _safe_part(part: str) -> bool:
    return bool(part) and Path(part).name == part and not part.startswith(".")


def load_reference(models: ModelsSettings, ref: str) -> dict[str, list[float]] | None:
    """Return the reference scores per label from ``reference_predictions.csv``, if any.

    Parameters
    ----------
    models : models.settings.ModelsSettings
        Where the models live.
    ref : str
        ``NAME@VERSION``.

    Returns
    -------
    dict of str to list of float, or None
        Scores per label (from the ``<label>_score`` columns); ``None`` without the file.

    Raises
    ------
    ReferenceFileError
        The file cannot be read, or has no ``<label>_score`` column.
    """
    name, version = split_ref(ref)
    if not (_safe_part(name) and _safe_part(version)):
        return None
    path = models.models_dir / name / version / REFERENCE_FILE
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ReferenceFileError(f"{path}: {exc}") from exc
    cached = _read_reference(str(path), stat.st_mtime_ns, stat.st_size)
    return {label: list(values) for label, values in cached.items()}


@functools.lru_cache(maxsize=16)
def _read_reference(path: str, mtime_ns: int, size: int) -> dict[str, tuple[float, ...]]:
    """Read a reference file once per version of it (its path, mtime and size)."""
    scores: dict[str, list[float]] = defaultdict(list)
    try:
        with Path(path).open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            columns = [c for c in reader.fieldnames or () if c.endswith("_score")]
            for row in reader:
                for column in columns:
                    cell = (row.get(column) or "").strip()
                    if not cell:
                        continue
                    try:
                        value = float(cell)
                    except ValueError:
                        value = math.nan
                    if math.isfinite(value):
                        scores[column.removesuffix("_score")].append(value)
                    else:
                        logger.warning("%s: %s is not a score: %r", path, column, cell)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ReferenceFileError(f"{path} cannot be read: {exc}") from exc
    if not columns:
        raise ReferenceFileError(f"{path} has no <label>_score column")
    return {label: tuple(values) for label, values in scores.items()}
