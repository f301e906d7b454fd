"""One whole simulation: the replications of the scenario, then the sensitivity x load grid.

The grid compares FIFO with AI prioritisation in every cell: each label's sensitivity is set to
the cell's (specificity and prevalence kept) and every source's volume is multiplied by the
cell's load, over ``grid.replications`` replications of ``grid.days`` days. With a model given
by predictions, the grid uses rates: each label's specificity and prevalence as measured on the
(reweighted) rows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from triage.simulation.behaviour import Behaviour
from triage.simulation.runner import Replication, Scenario, Task, prepare, run_many
from triage.simulation.settings import SimulationSettings
from triage.simulation.stats import summarise
from triage.simulation.workload import offered_load

__all__ = ["GOAL", "Outcome", "goal_met", "grid_tasks", "run_simulation", "summarise_grid"]

logger = logging.getLogger(__name__)

GOAL_SOONER_PCT = 60.0
GOAL_ROUTINE_GROWTH_PCT = 20.0
GOAL: dict[str, Any] = {
    "urgent_sooner_pct_at_least": GOAL_SOONER_PCT,
    "routine_max_growth_pct_at_most": GOAL_ROUTINE_GROWTH_PCT,
    "reference": "issue 12; Baltruschat et al., Eur Radiol 2021;31:3837-3845 "
    "(doi:10.1007/s00330-020-07480-7) simulated a university hospital's CXR list: "
    "pneumothorax 35.6 vs 80.1 min on average (56 % sooner), the maximum growing 45 % "
    "without and about 10 % with an upper limit on waiting",
}
"""The goal the command's output is held against; the goal is not a setting."""


def goal_met(sooner_pct: float | None, growth_pct: float | None) -> bool:
    """Return whether mean figures meet the goal (``GOAL``).

    Parameters
    ----------
    sooner_pct
        How much sooner urgent positives are reported than with FIFO (mean, %).
    growth_pct
        How much longer the longest routine wait is than with FIFO (mean, %).

    Returns
    -------
    bool
        ``True`` when both are known and within the goal.
    """
    return (
        sooner_pct is not None
        and growth_pct is not None
        and sooner_pct >= GOAL_SOONER_PCT
        and growth_pct <= GOAL_ROUTINE_GROWTH_PCT
    )


Progress = Callable[[int], None]


@dataclass(frozen=True)
class Outcome:
    """What a simulation produced: the replications, their summary and the grid."""

    scenario: Scenario
    replications: list[Replication]
    summary: dict[str, Any]
    grid: dict[str, Any] | None
    offered: dict[str, float]

    @property
    def settings(self) -> SimulationSettings:
        """The scenario's settings."""
        return self.scenario.settings

    def goal(self) -> dict[str, Any]:
        """Return the goal and, per policy, whether its mean figures meet it."""
        verdicts: dict[str, Any] = {}
        for name, figures in self.summary["comparison"].items():
            sooner = figures["urgent_sooner_pct"]["mean"]
            growth = figures["routine_max_growth_pct"]["mean"]
            verdicts[name] = {
                "urgent_sooner_pct": sooner,
                "routine_max_growth_pct": growth,
                "met": goal_met(sooner, growth),
            }
        return {**GOAL, "policies": verdicts}


def grid_tasks(settings: SimulationSettings) -> list[tuple[float, float, Task]]:
    """Return ``(sensitivity, load, task)`` for every replication of every grid cell."""
    grid = settings.grid
    out: list[tuple[float, float, Task]] = []
    cell = 0
    for sens in grid.sensitivities:
        for load in grid.loads:
            cell += 1
            for r in range(grid.replications):
                kwargs = {
                    "days": min(grid.days, settings.days),
                    "load": settings.load * load,
                    "sensitivity": sens,
                    "policies": ("fifo", "ai"),
                    "stream": cell,
                }
                out.append((sens, load, (r, kwargs)))
    return out


def summarise_grid(
    settings: SimulationSettings,
    cells: list[tuple[float, float, Replication]],
    scenario: Scenario,
) -> dict[str, Any]:
    """Summarise the grid: per sensitivity and load, AI against FIFO, with CIs and the goal.

    Parameters
    ----------
    settings
        The scenario's settings.
    cells
        ``(sensitivity, load, replication)`` for every grid replication.
    scenario
        The prepared scenario (label categories).

    Returns
    -------
    dict
        ``sensitivities``, ``loads``, ``utilisation`` (the offered load of each column: work
        over the roster's reading time), then tables whose rows are sensitivities and columns
        loads: ``urgent_sooner_pct`` and ``routine_max_growth_pct`` (each cell a
        :func:`~triage.simulation.stats.confidence`) and ``goal_met`` (booleans, from the means).
    """
    categories = [lab.category for lab in scenario.behaviour.labels]
    short = settings.with_changes(warmup_days=min(settings.warmup_days, settings.grid.days - 1))
    sooner: list[list[dict[str, Any]]] = []
    growth: list[list[dict[str, Any]]] = []
    met: list[list[bool]] = []
    for sens in settings.grid.sensitivities:
        comparisons = []
        for load in settings.grid.loads:
            reps = [rep for s, lo, rep in cells if s == sens and lo == load]
            comparisons.append(summarise(reps, short, categories)["comparison"]["ai"])
        sooner.append([c["urgent_sooner_pct"] for c in comparisons])
        growth.append([c["routine_max_growth_pct"] for c in comparisons])
        met.append(
            [
                goal_met(c["urgent_sooner_pct"]["mean"], c["routine_max_growth_pct"]["mean"])
                for c in comparisons
            ]
        )
    return {
        "sensitivities": list(settings.grid.sensitivities),
        "loads": list(settings.grid.loads),
        "utilisation": [
            offered_load(settings.with_changes(load=settings.load * load))["utilisation"]
            for load in settings.grid.loads
        ],
        "days": min(settings.grid.days, settings.days),
        "replications": settings.grid.replications,
        "urgent_sooner_pct": sooner,
        "routine_max_growth_pct": growth,
        "goal_met": met,
    }


def run_simulation(
    settings: SimulationSettings,
    behaviour: Behaviour | None = None,
    progress: Progress | None = None,
    grid_progress: Progress | None = None,
) -> Outcome:
    """Run the scenario's replications and, when enabled, the grid.

    Parameters
    ----------
    settings
        The scenario.
    behaviour
        The model's behaviour (default: from ``settings.model``).
    progress
        Called with the number of replications done.
    grid_progress
        Called with the number of grid replications done.

    Returns
    -------
    Outcome
        Replications, summary, grid and the offered load.
    """
    scenario = prepare(settings, behaviour)
    tasks: list[Task] = [(r, {}) for r in range(settings.replications)]
    reps = run_many(scenario, tasks, settings.workers, progress)
    categories = [lab.category for lab in scenario.behaviour.labels]
    summary = summarise(reps, settings, categories)
    grid = None
    if settings.grid.enabled:
        listed = grid_tasks(settings)
        done = run_many(scenario, [t for _, _, t in listed], settings.workers, grid_progress)
        cells = [(s, lo, rep) for (s, lo, _), rep in zip(listed, done, strict=True)]
        grid = summarise_grid(settings, cells, scenario)
    return Outcome(scenario, reps, summary, grid, offered_load(settings))
