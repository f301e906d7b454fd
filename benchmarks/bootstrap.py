"""Bootstrap benchmark: the vectorised patient-clustered AUROC bootstrap against scikit-learn.

On synthetic scores (``--images`` predictions of ``--patients`` patients, prevalence
``--prevalence``), in one run, it times

* **vectorised**: :func:`models.evaluation.auroc.bootstrap_replicates`, all ``--replicates``
  replicates (goal: 100,000 predictions x 2,000 replicates in under 30 s on 2 cores);
* **reference**: scikit-learn's ``roc_auc_score`` called once per replicate with the drawn
  patients' counts as sample weights, on the first ``--reference-replicates`` replicates only
  (it is slow), its time per replicate scaled to all replicates;

and prints seconds per replicate for both, the ratio reference/vectorised (how many times
faster the vectorised path is) and the largest difference between the two paths' AUROCs on the
replicates both computed (the same generator state gives the same draws, so they must agree to
rounding).

Run: ``python -m benchmarks.bootstrap`` (the goal's sizes), or smaller, e.g. ``--images 20000
--replicates 500``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from sklearn.metrics import roc_auc_score

from models.evaluation.auroc import bootstrap_replicates

GOAL_S = 30.0
"""The issue's goal for 100,000 predictions x 2,000 replicates."""


@dataclass(frozen=True)
class Result:
    """One run of the benchmark."""

    images: int
    patients: int
    replicates: int
    reference_replicates: int
    vectorised_s: float
    reference_s_per_replicate: float
    ratio: float
    max_abs_diff: float

    @property
    def vectorised_s_per_replicate(self) -> float:
        """Seconds per replicate of the vectorised path."""
        return self.vectorised_s / self.replicates


def synthetic(
    images: int, patients: int, prevalence: float, seed: int
) -> tuple[NDArray[np.int8], NDArray[np.float64], NDArray[np.intp]]:
    """Labels, scores (AUROC about 0.8) and patient codes ``0 .. P-1`` of synthetic images."""
    rng = np.random.default_rng(seed)
    # Every patient has at least one image; the rest are spread at random.
    owner = np.concatenate([np.arange(patients), rng.integers(0, patients, images - patients)])
    y = (rng.random(images) < prevalence).astype(np.int8)
    scores = 1.0 / (1.0 + np.exp(-(rng.normal(size=images) + 1.2 * y - 1.0)))
    return y, scores, owner.astype(np.intp)


def reference_replicates(
    y: NDArray[np.int8],
    scores: NDArray[np.float64],
    patients: NDArray[np.intp],
    replicates: int,
    rng: np.random.Generator,
) -> NDArray[np.float64]:
    """Compute the same replicates one by one with scikit-learn (drawn counts as weights)."""
    n_patients = int(patients.max()) + 1
    out = np.empty(replicates)
    for r in range(replicates):
        drawn = rng.integers(0, n_patients, size=n_patients)
        weights = np.bincount(drawn, minlength=n_patients)[patients]
        chosen = weights > 0
        if np.unique(y[chosen]).size < 2:
            out[r] = np.nan
            continue
        out[r] = roc_auc_score(y[chosen], scores[chosen], sample_weight=weights[chosen])
    return out


def run(
    images: int,
    patients: int,
    replicates: int,
    reference_replicates_n: int,
    prevalence: float = 0.2,
    seed: int = 0,
) -> Result:
    """Time both paths on one synthetic data set and compare their replicates."""
    y, scores, owner = synthetic(images, patients, prevalence, seed)
    started = time.perf_counter()
    fast = bootstrap_replicates(y, scores, owner, replicates, np.random.default_rng([seed, 1]))
    vectorised_s = time.perf_counter() - started
    k = min(reference_replicates_n, replicates)
    started = time.perf_counter()
    slow = reference_replicates(y, scores, owner, k, np.random.default_rng([seed, 1]))
    reference_s = (time.perf_counter() - started) / max(k, 1)
    both = np.isfinite(fast[:k]) & np.isfinite(slow)
    diff = float(np.max(np.abs(fast[:k][both] - slow[both]))) if both.any() else 0.0
    return Result(
        images=images,
        patients=patients,
        replicates=replicates,
        reference_replicates=k,
        vectorised_s=vectorised_s,
        reference_s_per_replicate=reference_s,
        ratio=reference_s * replicates / vectorised_s,
        max_abs_diff=diff,
    )


def report(result: Result) -> None:
    print(
        f"{result.images} predictions of {result.patients} patients, "
        f"{result.replicates} replicates",
        flush=True,
    )
    print(
        f"vectorised: {result.vectorised_s:7.2f} s "
        f"({result.vectorised_s_per_replicate * 1000:8.3f} ms per replicate)"
    )
    print(
        f"reference:  {result.reference_s_per_replicate * result.replicates:7.2f} s "
        f"({result.reference_s_per_replicate * 1000:8.3f} ms per replicate, scikit-learn, "
        f"measured on {result.reference_replicates} replicates)"
    )
    print(f"ratio reference/vectorised: {result.ratio:.1f}x")
    print(f"largest |difference| of the replicates both computed: {result.max_abs_diff:.2e}")
    if result.images >= 100_000 and result.replicates >= 2_000:
        verdict = "met" if result.vectorised_s < GOAL_S else "NOT met"
        print(f"goal (< {GOAL_S:.0f} s for 100,000 x 2,000): {verdict}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bootstrap",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--images", type=int, default=100_000, help="Predictions.")
    parser.add_argument("--patients", type=int, default=30_000, help="Patients (clusters).")
    parser.add_argument("--replicates", type=int, default=2_000, help="Bootstrap replicates.")
    parser.add_argument(
        "--reference-replicates",
        type=int,
        default=20,
        help="Replicates timed with scikit-learn (its time is scaled to --replicates).",
    )
    parser.add_argument("--prevalence", type=float, default=0.2, help="Share of positives.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="Also write the result as JSON.")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; return 0, or 1 when the two paths disagree."""
    args = parse_args(argv)
    if not 1 <= args.patients <= args.images:
        print("need 1 <= --patients <= --images", file=sys.stderr)
        return 2
    result = run(
        args.images,
        args.patients,
        args.replicates,
        args.reference_replicates,
        args.prevalence,
        args.seed,
    )
    report(result)
    if args.json:
        record = {**asdict(result), "vectorised_s_per_replicate": result.vectorised_s_per_replicate}
        args.json.write_text(json.dumps(record, indent=2) + "\n")
    return 0 if result.max_abs_diff < 1e-9 else 1


if __name__ == "__main__":
    sys.exit(main())
