"""Model evaluation inputs: a small synthetic cohort of per-image scores, truths and subgroups."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from models.evaluation.subgroups import age_bands


@dataclass(frozen=True)
class Cohort:
    """Per-image arrays as the benchmark command passes them to ``evaluate``."""

    predictions: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]
    patients: list[str]
    subgroups: dict[str, Sequence[str | None]]
    thresholds: dict[str, float]


def make_cohort(n: int = 600, seed: int = 0) -> Cohort:
    """Three labels: a useful one (with unknown truths), a constant-score one, a useless one."""
    rng = np.random.default_rng(seed)
    patients = [f"p{i // 3:05d}" for i in range(n)]
    effusion = (rng.random(n) < 0.3).astype(float)
    effusion[rng.random(n) < 0.1] = np.nan  # uncertain, ignored
    truth = np.nan_to_num(effusion)
    ages = rng.integers(5, 95, n).astype(float)
    ages[::17] = np.nan
    return Cohort(
        predictions={
            "Effusion": np.clip(rng.normal(0.3 + 0.4 * truth, 0.18), 0, 1),
            "Cardiomegaly": np.full(n, 0.25),
            "Nodule": rng.random(n),
        },
        labels={
            "Effusion": effusion,
            "Cardiomegaly": (rng.random(n) < 0.2).astype(float),
            "Nodule": (rng.random(n) < 0.05).astype(float),
        },
        patients=patients,
        subgroups={
            "sex": [str(s) if s != "?" else None for s in rng.choice(["F", "M", "?"], n)],
            "age_band": list(age_bands(ages.tolist())),
            "view": list(rng.choice(["PA", "AP"], n)),
            "site": ["site-1"] * (n - 20) + ["site-2"] * 20,
        },
        thresholds={"Effusion": 0.5, "Cardiomegaly": 0.3, "Nodule": 0.9},
    )
