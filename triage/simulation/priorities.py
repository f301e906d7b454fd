"""Each simulated study's class under each policy, decided by the project's own policy.

The simulation does not re-implement the priority rules: every distinct combination of referral
priority, site and flagged labels is put once through :func:`triage.policy.decide` (so AI never
lowers the referral's class, shadow rules and site defaults hold as in production), and the
escalation by waiting is read from :func:`triage.policy.escalate`.

Policies:

- ``fifo``: the class the referral gives (clinical priority), then due time and arrival: the
  list without AI.
- ``ai``: the policy's base class (the more urgent of the clinical priority and the categories
  of the labels the model flags), then due time and arrival; no escalation by waiting.
- ``ai_capped``: as ``ai``, plus the policy's escalation by waiting up to each class's cap
  (``escalation`` in the policy file), as the worker's sweep applies it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import numpy as np

from triage.policy import AIFinding, Policy, StudyFacts, decide, escalate
from triage.simulation.behaviour import LabelSpec
from triage.simulation.engine import EscalationSteps
from worklist.domain import Priority

__all__ = ["Priorities", "escalation_steps", "study_priorities"]

logger = logging.getLogger(__name__)

_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
IntArray = np.ndarray[Any, np.dtype[np.int8]]


class Priorities:
    """The clinical and base class (rank 1..3) of each study, and the due-time targets."""

    def __init__(self, clinical: IntArray, base: IntArray, targets_min: dict[int, float]):
        self.clinical = clinical
        self.base = base
        self.targets_min = targets_min

    def due(self, arrival: np.ndarray[Any, Any], ranks: IntArray) -> np.ndarray[Any, Any]:
        """Return arrival plus the target of each study's class (minutes)."""
        table = np.asarray([0.0, *(self.targets_min[r] for r in (1, 2, 3))])
        return np.asarray(arrival + table[ranks], dtype=np.float64)


def _findings(labels: tuple[LabelSpec, ...], mask: int) -> tuple[AIFinding, ...]:
    return tuple(
        AIFinding(
            label=lab.name,
            probability=1.0 if mask >> j & 1 else 0.0,
            threshold=lab.threshold,
            crossed=bool(mask >> j & 1),
            category=lab.category,
            model_name="simulated",
            model_version="1",
        )
        for j, lab in enumerate(labels)
    )


def study_priorities(
    policy: Policy,
    labels: tuple[LabelSpec, ...],
    sites: tuple[str, ...],
    referrals: tuple[str, ...],
    source: np.ndarray[Any, Any],
    referral: np.ndarray[Any, Any],
    crossed: np.ndarray[Any, Any],
) -> Priorities:
    """Decide each study's clinical class and base class with :func:`triage.policy.decide`.

    Parameters
    ----------
    policy
        The project's policy.
    labels
        The model's labels (thresholds and categories).
    sites
        Per source, the site (calling AE) its studies come from.
    referrals
        The referral priority names that ``referral`` indexes.
    source, referral
        Per study, the indices of its source and referral priority.
    crossed
        Per study and label, whether the model flagged it.

    Returns
    -------
    Priorities
        Clinical and base ranks per study, and each class's target in minutes.
    """
    n_labels = crossed.shape[1]
    mask = (crossed.astype(np.int64) << np.arange(n_labels, dtype=np.int64)).sum(axis=1)
    key = (source.astype(np.int64) * len(referrals) + referral) << n_labels | mask
    unique, inverse = np.unique(key, return_inverse=True)
    clinical = np.empty(len(unique), dtype=np.int8)
    base = np.empty(len(unique), dtype=np.int8)
    for u, k in enumerate(unique.tolist()):
        combo, bits = divmod(k, 1 << n_labels)
        src, ref = divmod(combo, len(referrals))
        facts = StudyFacts(
            arrived_at=_EPOCH,
            referral_priority=referrals[ref],
            site=sites[src],
            findings=_findings(labels, bits),
        )
        decision = decide(policy, facts, _EPOCH)
        clinical[u] = decision.clinical.priority.rank
        base[u] = decision.base_priority.rank
    targets = {p.rank: policy.target(p).total_seconds() / 60.0 for p in Priority}
    return Priorities(clinical[inverse], base[inverse], targets)


def escalation_steps(policy: Policy) -> EscalationSteps:
    """Read the policy's escalation by waiting as ages (minutes) at which each class rises.

    Parameters
    ----------
    policy
        The project's policy.

    Returns
    -------
    EscalationSteps
        Per base class P1..P3, ``(age_min, rank)`` steps in ascending age: from that age on the
        study is in class ``rank``. Empty where the class does not escalate.
    """
    steps: list[tuple[tuple[float, int], ...]] = []
    for base in sorted(Priority, key=lambda p: p.rank):
        found: list[tuple[float, int]] = []
        now = _EPOCH
        while True:
            current, _, next_at = escalate(policy, base, _EPOCH, now)
            if current is not base:
                found.append(((now - _EPOCH).total_seconds() / 60.0, current.rank))
            if next_at is None:
                break
            now = next_at
        steps.append(tuple(found))
    return tuple(steps)
