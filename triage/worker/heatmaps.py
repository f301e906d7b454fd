"""Heatmaps beside the archive: ``derived/<study>/<sop>/<model>@<version>[.<label>].npy``."""

from __future__ import annotations

import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["heatmap_relpath", "to_unit_range", "write_heatmap"]

logger = logging.getLogger(__name__)

_SAFE = re.compile(r"[^A-Za-z0-9._@+-]")


def heatmap_relpath(study_uid: str, sop_uid: str, model_ref: str, label: str | None = None) -> str:
    """Return the heatmap's path relative to the archive root.

    Parameters
    ----------
    study_uid, sop_uid
        The image's study and SOP instance UIDs.
    model_ref
        ``NAME@VERSION`` of the model.
    label
        The label, for models with several labels (one file per label); ``None`` for one file.

    Returns
    -------
    str
        A POSIX path such as ``derived/1.2/1.2.3/chest@1.0.npy``.
    """
    name = _SAFE.sub("_", model_ref)
    if label is not None:
        name = f"{name}.{_SAFE.sub('_', label)}"
    return f"derived/{_SAFE.sub('_', study_uid)}/{_SAFE.sub('_', sop_uid)}/{name}.npy"


def to_unit_range(heatmap: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Return a float32 copy in [0, 1]: kept as is when already there, else min-max scaled.

    Non-finite values become 0. A map outside [0, 1] (a model whose heatmap has no activation)
    is scaled by its own minimum and maximum; a flat one becomes all zeros.
    """
    data = np.nan_to_num(np.asarray(heatmap, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    if data.size == 0:
        return data
    lo, hi = float(data.min()), float(data.max())
    if lo >= 0.0 and hi <= 1.0:
        return data
    if hi > lo:
        return ((data - lo) / (hi - lo)).astype(np.float32)
    return np.zeros_like(data)


def write_heatmap(archive_dir: Path, relpath: str, heatmap: np.ndarray[Any, Any]) -> Path:
    """Write a heatmap durably as float32 in [0, 1] (temporary file, fsync, rename, fsync dir).

    Parameters
    ----------
    archive_dir
        The archive root.
    relpath
        From :func:`heatmap_relpath`.
    heatmap
        A 2-D array, brought into [0, 1] by :func:`to_unit_range`.

    Returns
    -------
    Path
        The file written.
    """
    target = archive_dir / relpath
    target.parent.mkdir(parents=True, exist_ok=True)
    data = to_unit_range(heatmap)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npy", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.save(fh, data, allow_pickle=False)
            fh.flush()
            os.fsync(fh.fileno())
        Path(tmp).replace(target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return target
