"""Waiting-list simulation benchmark: 28 simulated days x 50 replications (goal: under 60 s).

It times, in one process and on the same scenario (the documented defaults, a model with
sensitivity and specificity 0.97, no sensitivity x load grid):

* **all policies**: FIFO, AI and AI with the escalation cap on every replication's studies
  (what ``triage simulate`` runs), including the summary over replications;
* **FIFO only**: the same replications with FIFO alone;

and prints both times, the ratio all/FIFO (about 3 when the three policies cost alike and
drawing the studies is cheap) and studies simulated per second. Replications run in
``--workers`` processes (default 2, the machine the goal is set for).

Run: ``python -m benchmarks.simulate`` (``--days``, ``--replications``, ``--workers``,
``--json`` for one JSON line).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from typing import Any

from triage.simulation.experiment import run_simulation
from triage.simulation.settings import SimulationSettings

logger = logging.getLogger(__name__)

GOAL_S = 60.0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--replications", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="Print one JSON line.")
    return parser.parse_args(argv)


def timed(settings: SimulationSettings) -> tuple[float, int]:
    """Run the simulation; return the wall time and the number of study-runs simulated."""
    start = time.perf_counter()
    outcome = run_simulation(settings)
    elapsed = time.perf_counter() - start
    runs = sum(len(rep.studies) * len(rep.runs) for rep in outcome.replications)
    return elapsed, runs


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; return 0 when it met the goal, 1 otherwise."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    settings = SimulationSettings.model_validate(
        {
            "days": args.days,
            "warmup_days": min(7, args.days - 1),
            "replications": args.replications,
            "workers": args.workers,
            "seed": args.seed,
            "grid": {"enabled": False},
            "model": {"sensitivity": 0.97, "specificity": 0.97},
        }
    )
    all_s, all_runs = timed(settings)
    fifo_s, fifo_runs = timed(settings.with_changes(policies=("fifo",)))
    result: dict[str, Any] = {
        "days": args.days,
        "replications": args.replications,
        "workers": args.workers,
        "all_policies_s": round(all_s, 2),
        "fifo_only_s": round(fifo_s, 2),
        "ratio_all_to_fifo": round(all_s / fifo_s, 2),
        "study_runs_per_s": round(all_runs / all_s),
        "goal_s": GOAL_S,
        "met": all_s < GOAL_S,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{args.days} days x {args.replications} replications, {args.workers} workers: "
            f"all policies {all_s:.1f} s ({result['study_runs_per_s']:,} study-runs/s), "
            f"FIFO only {fifo_s:.1f} s ({fifo_runs / fifo_s:,.0f}/s), ratio {all_s / fifo_s:.2f}; "
            f"goal < {GOAL_S:.0f} s: {'met' if result['met'] else 'NOT met'}"
        )
    return 0 if result["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
