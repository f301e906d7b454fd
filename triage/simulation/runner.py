"""Replications: draw a replication's studies once, run every policy on them, in parallel.

Every policy of a replication sees the same studies (common random numbers), so the difference
between policies is the policies' and not the draw's. Replication ``r`` draws from
``numpy.random.default_rng([seed, r])`` (a grid cell ``c`` from ``[seed, r, c + 1]``): the
results do not depend on how many processes run them or in which order they finish.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from triage.policy import Policy, load_policy
from triage.simulation.behaviour import Behaviour, load_behaviour
from triage.simulation.engine import EscalationSteps, simulate_queue
from triage.simulation.priorities import escalation_steps, study_priorities
from triage.simulation.settings import PolicyName, SimulationSettings
from triage.simulation.workload import Studies, draw_studies, reader_intervals, referral_names

__all__ = [
    "PolicyRun",
    "Replication",
    "Scenario",
    "pool_size",
    "prepare",
    "run_many",
    "run_replication",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PolicyRun:
    """One policy's run of one replication: each study's read start, end, reader and class."""

    start: np.ndarray[Any, np.dtype[np.float64]]
    end: np.ndarray[Any, np.dtype[np.float64]]
    reader: np.ndarray[Any, np.dtype[np.int32]]
    rank: np.ndarray[Any, np.dtype[np.int8]]


@dataclass(frozen=True)
class Replication:
    """One replication: its studies, their clinical class, and each policy's run."""

    index: int
    days: int
    load: float
    studies: Studies
    clinical: np.ndarray[Any, np.dtype[np.int8]]
    runs: dict[str, PolicyRun] = field(default_factory=dict)


@dataclass(frozen=True)
class Scenario:
    """The settings resolved once: policy, model behaviour, readers, escalation steps."""

    settings: SimulationSettings
    policy: Policy
    behaviour: Behaviour
    reader_names: tuple[str, ...]
    steps: EscalationSteps


def prepare(settings: SimulationSettings, behaviour: Behaviour | None = None) -> Scenario:
    """Resolve the settings: read the policy file and the model's behaviour.

    Parameters
    ----------
    settings
        The scenario's settings.
    behaviour
        The model's behaviour; ``None`` builds it from ``settings.model``.

    Returns
    -------
    Scenario
        What every replication needs.
    """
    policy = load_policy(settings.policy_file)
    behaviour = behaviour or load_behaviour(settings.model)
    names, _ = reader_intervals(settings.roster, 1, settings.start_weekday)
    return Scenario(settings, policy, behaviour, names, escalation_steps(policy))


def run_replication(
    scenario: Scenario,
    index: int,
    *,
    days: int | None = None,
    load: float | None = None,
    behaviour: Behaviour | None = None,
    sensitivity: float | None = None,
    policies: Iterable[PolicyName] | None = None,
    stream: int = 0,
) -> Replication:
    """Draw one replication's studies and run each policy on them.

    Parameters
    ----------
    scenario
        The prepared scenario.
    index
        The replication's number (its seed is ``[seed, index]``, or ``[seed, index, stream]``).
    days, load, behaviour
        Overrides of the scenario's (the grid's cells use them).
    sensitivity
        Every label's sensitivity (specificity and prevalence kept), for the grid.
    policies
        Which policies (default: the settings').
    stream
        0 for the main replications, ``c + 1`` for grid cell ``c``.

    Returns
    -------
    Replication
        The studies and each policy's run.
    """
    settings = scenario.settings
    days = settings.days if days is None else days
    load = settings.load if load is None else load
    behaviour = behaviour or scenario.behaviour
    if sensitivity is not None:
        behaviour = behaviour.with_sensitivity(sensitivity)
    entropy = [settings.seed, index] if stream == 0 else [settings.seed, index, stream]
    rng = np.random.default_rng(entropy)
    studies = draw_studies(settings, behaviour, rng, days=days, load=load)
    referrals = referral_names(settings)
    sites = tuple(s.site or s.name for s in settings.sources)
    with_ai = study_priorities(
        scenario.policy,
        behaviour.labels,
        sites,
        referrals,
        studies.source,
        studies.referral,
        studies.crossed,
    )
    until = (days + settings.drain_days) * 1440.0
    _, intervals = reader_intervals(
        settings.roster, days + settings.drain_days + 1, settings.start_weekday
    )
    runs: dict[str, PolicyRun] = {}
    for name in policies or settings.policies:
        ranks = with_ai.clinical if name == "fifo" else with_ai.base
        result = simulate_queue(
            studies.arrival,
            studies.read,
            ranks,
            with_ai.due(studies.arrival, ranks),
            intervals,
            until,
            scenario.steps if name == "ai_capped" else None,
        )
        runs[name] = PolicyRun(result.start, result.end, result.reader, ranks)
    return Replication(index, days, load, studies, with_ai.clinical, runs)


_WORKER_SCENARIO: Scenario | None = None


def _init_worker(scenario: Scenario) -> None:
    global _WORKER_SCENARIO  # one scenario per worker process
    _WORKER_SCENARIO = scenario


def _in_worker(index: int, kwargs: dict[str, Any]) -> Replication:
    assert _WORKER_SCENARIO is not None
    return run_replication(_WORKER_SCENARIO, index, **kwargs)


Task = tuple[int, dict[str, Any]]


def run_many(
    scenario: Scenario,
    tasks: list[Task],
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
) -> list[Replication]:
    """Run replications, in worker processes when ``workers > 1``.

    Parameters
    ----------
    scenario
        The prepared scenario.
    tasks
        ``(index, keyword arguments of run_replication)`` per replication.
    workers
        Processes (1 runs here, in this process).
    progress
        Called with the number finished after each one.

    Returns
    -------
    list of Replication
        In the order of ``tasks``.
    """
    results: list[Replication | None] = [None] * len(tasks)
    workers = pool_size(workers, len(tasks))
    if workers <= 1:
        for k, (index, kwargs) in enumerate(tasks):
            results[k] = run_replication(scenario, index, **kwargs)
            if progress:
                progress(k + 1)
    else:
        for k, rep in _pooled(scenario, tasks, workers):
            results[k] = rep
            if progress:
                progress(sum(r is not None for r in results))
    return [r for r in results if r is not None]


def pool_size(workers: int, tasks: int, cpus: int | None = None) -> int:
    """Return how many processes to run ``tasks`` replications in: never more than the CPUs.

    The replications are CPU-bound: processes beyond the CPUs only add memory (each imports
    numpy, SimPy and the scenario) and switching. Asking for more is logged.

    Parameters
    ----------
    workers
        Processes asked for (``--workers``, ``workers:``).
    tasks
        Replications to run.
    cpus
        CPUs usable (default: this process's CPU affinity).

    Returns
    -------
    int
        At least 1.
    """
    usable = cpus if cpus is not None else len(os.sched_getaffinity(0))
    size = max(1, min(workers, tasks, usable))
    if workers > usable:
        logger.warning(
            "%d worker processes asked for, %d CPUs usable: using %d", workers, usable, size
        )
    return size


def _pooled(scenario: Scenario, tasks: list[Task], workers: int) -> Iterator[tuple[int, Any]]:
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context,
        initializer=_init_worker,
        initargs=(scenario,),
    ) as pool:
        futures: dict[Future[Replication], int] = {
            pool.submit(_in_worker, index, kwargs): k for k, (index, kwargs) in enumerate(tasks)
        }
        for future in as_completed(futures):
            yield futures[future], future.result()
