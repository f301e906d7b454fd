"""Evaluate the priority policy: pure functions from a study's facts to a priority and reasons.

Order of reasoning (``../shared/DESIGN.md``, rules that protect patients):

1. Clinical priority: set through the API, else the referral mapped by the policy, else the
   site's default, else the global default.
2. AI: each crossed threshold of an enabled (non-shadow) model argues for its label's card
   category. The most urgent of the clinical priority and these is the study's *base* class;
   AI never lowers the clinical priority. Shadow findings never count.
3. Waiting: the study moves one class up after waiting a fraction of its class's target, at most
   to the cap for its base class.

The list orders a class by ``order_at``: the due time, or, for a study that waiting raised, the
moment it entered its current class if that came first (:func:`ordering_deadline`). A study
raised by waiting has waited as long as the policy allows, so it counts as due from then: it goes
before the studies of its new class that are not yet overdue, and after those overdue earlier.

Each step adds a JSON-able explanation entry naming its ``rule``; AI entries name the finding,
probability, threshold and model ``name@version``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from triage.policy.schema import Policy
from triage.policy.waiting import escalation_state, human_duration, ordering_deadline
from worklist.domain import Priority

__all__ = [
    "AIFinding",
    "ClinicalPriority",
    "Decision",
    "StudyFacts",
    "ai_priority",
    "clinical_priority",
    "decide",
]

logger = logging.getLogger(__name__)

Entry = dict[str, Any]


@dataclass(frozen=True)
class AIFinding:
    """One label's result from one model on one image, as the policy sees it."""

    label: str
    probability: float
    threshold: float
    crossed: bool
    category: Priority
    model_name: str
    model_version: str
    shadow: bool = False
    sop_instance_uid: str = ""

    @property
    def model_ref(self) -> str:
        """The model reference ``name@version``."""
        return f"{self.model_name}@{self.model_version}"


@dataclass(frozen=True)
class StudyFacts:
    """Everything the policy needs to know about one study.

    Parameters
    ----------
    arrived_at
        When the study was received (aware UTC); waiting and ``due_at`` count from here.
    referral_priority
        The raw DICOM value as received (``""`` when absent).
    site
        The sending site (calling AE title).
    api_priority
        A clinical priority set through the API, which wins over the referral.
    findings
        The study's AI findings (every label, crossed or not; shadow ones included).
    ai_available
        ``False`` when the AI failed or no model applies.
    ai_reason
        Why the AI is not available.
    """

    arrived_at: datetime
    referral_priority: str = ""
    site: str = ""
    api_priority: Priority | None = None
    findings: tuple[AIFinding, ...] = ()
    ai_available: bool = True
    ai_reason: str = ""


@dataclass(frozen=True)
class ClinicalPriority:
    """The clinical priority, where it came from (``api``/``referral``/``default``) and why."""

    priority: Priority
    source: str
    entry: Entry


@dataclass(frozen=True)
class Decision:
    """The policy's verdict on a study.

    ``due_at`` is ``arrived_at`` plus the target of the base class (escalation by waiting does
    not move the deadline). ``order_at`` is the deadline the list orders the study's class by:
    ``due_at``, or the moment waiting raised the study into ``priority`` if that came first
    (:func:`ordering_deadline`). ``next_escalation_at`` is when waiting would next raise the
    study, ``None`` when it cannot rise further.
    """

    priority: Priority
    clinical: ClinicalPriority
    base_priority: Priority
    due_at: datetime
    next_escalation_at: datetime | None
    order_at: datetime
    explanation: list[Entry] = field(default_factory=list)


def clinical_priority(
    policy: Policy,
    referral_priority: str = "",
    site: str = "",
    api_priority: Priority | None = None,
) -> ClinicalPriority:
    """Work out the clinical priority of a study.

    Parameters
    ----------
    policy
        The policy.
    referral_priority
        The raw DICOM referral priority (e.g. ``"STAT"``), ``""`` when absent.
    site
        The sending site (calling AE title).
    api_priority
        A priority set through the API; it wins.

    Returns
    -------
    ClinicalPriority
        The class, its source and an explanation entry.
    """
    if api_priority is not None:
        return ClinicalPriority(
            api_priority,
            "api",
            {
                "rule": "api",
                "priority": str(api_priority),
                "text": f"Clinical priority {policy.describe(api_priority)} set through the API",
            },
        )
    raw = referral_priority.strip()
    mapped = policy.referral.get(raw.upper()) if raw else None
    if mapped is not None:
        return ClinicalPriority(
            mapped,
            "referral",
            {
                "rule": "referral",
                "priority": str(mapped),
                "value": raw,
                "text": f"Referral priority {raw} maps to {policy.describe(mapped)}",
            },
        )
    default, from_site = policy.site_defaults.for_site(site)
    unknown = f" (referral priority {raw!r} is not in the policy's mapping)" if raw else ""
    if from_site:
        entry: Entry = {
            "rule": "site_default",
            "priority": str(default),
            "site": site,
            "text": f"No usable referral priority; site {site} defaults to "
            f"{policy.describe(default)}{unknown}",
        }
    else:
        entry = {
            "rule": "global_default",
            "priority": str(default),
            "text": f"No usable referral priority; default {policy.describe(default)}{unknown}",
        }
    if raw:
        entry["value"] = raw
    return ClinicalPriority(default, "default", entry)


def ai_priority(
    policy: Policy, findings: Iterable[AIFinding], clinical: Priority
) -> tuple[Priority | None, list[Entry]]:
    """Return the most urgent category argued by crossed, non-shadow findings, with reasons.

    Several images with the same model and label give one entry, with the highest probability.

    Parameters
    ----------
    policy
        The policy (for class names).
    findings
        The study's findings.
    clinical
        The clinical priority (for the entry's ``effect``).

    Returns
    -------
    tuple
        The most urgent category (``None`` when nothing crossed) and one entry per model label.
    """
    best: dict[tuple[str, str], AIFinding] = {}
    for f in findings:
        if f.shadow or not f.crossed:
            continue
        key = (f.model_ref, f.label)
        if key not in best or f.probability > best[key].probability:
            best[key] = f
    entries: list[Entry] = []
    top: Priority | None = None
    ordered = sorted(best.values(), key=lambda f: (f.category.rank, -f.probability, f.label))
    for f in ordered:
        top = f.category if top is None else top.more_urgent(f.category)
        raises = f.category.rank < clinical.rank
        effect = (
            f"raises the study above its clinical priority {clinical}"
            if raises
            else f"does not lower the clinical priority {clinical}"
            if f.category.rank > clinical.rank
            else f"agrees with the clinical priority {clinical}"
        )
        entries.append(
            {
                "rule": "ai_finding",
                "priority": str(f.category),
                "finding": f.label,
                "probability": round(float(f.probability), 4),
                "threshold": round(float(f.threshold), 4),
                "model": f.model_ref,
                "sop_instance_uid": f.sop_instance_uid,
                "text": f"AI finding {f.label} (probability {f.probability:.2f} >= threshold "
                f"{f.threshold:.2f}) by model {f.model_ref} maps to "
                f"{policy.describe(f.category)}; {effect}",
            }
        )
    return top, entries


def decide(policy: Policy, facts: StudyFacts, now: datetime) -> Decision:
    """Apply the whole policy to one study.

    Parameters
    ----------
    policy
        The policy.
    facts
        The study's referral, site, API priority, findings and AI availability.
    now
        The time of evaluation (aware UTC).

    Returns
    -------
    Decision
        Priority, clinical priority, base class, due time, next escalation and explanation.
    """
    clinical = clinical_priority(policy, facts.referral_priority, facts.site, facts.api_priority)
    explanation: list[Entry] = [clinical.entry]
    top, ai_entries = ai_priority(policy, facts.findings, clinical.priority)
    explanation.extend(ai_entries)
    if not facts.ai_available:
        explanation.append(
            {
                "rule": "ai_not_available",
                "priority": str(clinical.priority),
                "reason": facts.ai_reason,
                "text": f"AI not available: {facts.ai_reason or 'no reason given'}"
                + ("" if ai_entries else f"; clinical priority {clinical.priority} kept"),
            }
        )
    elif top is None:
        models = sorted({f.model_ref for f in facts.findings if not f.shadow})
        explanation.append(
            {
                "rule": "ai_no_finding",
                "priority": str(clinical.priority),
                "models": models,
                "text": "AI found nothing above its thresholds"
                + (f" (models {', '.join(models)})" if models else ""),
            }
        )
    base = clinical.priority if top is None else clinical.priority.more_urgent(top)
    priority, steps, next_at, raised = escalation_state(policy, base, facts.arrived_at, now)
    explanation.extend(steps)
    due_at = facts.arrived_at + policy.target(base)
    order_at = ordering_deadline(due_at, raised)
    result: Entry = {
        "rule": "result",
        "priority": str(priority),
        "due_at": due_at.isoformat(),
        "text": f"Priority {policy.describe(priority)}; target "
        f"{human_duration(policy.target(base))} for {base}, due {due_at:%Y-%m-%d %H:%M} UTC",
    }
    if order_at != due_at:
        result["order_at"] = order_at.isoformat()
        result["text"] += (
            f"; raised by waiting, so listed in {priority} as due since "
            f"{order_at:%Y-%m-%d %H:%M} UTC"
        )
    explanation.append(result)
    return Decision(priority, clinical, base, due_at, next_at, order_at, explanation)
