"""The priority policy: configuration (YAML) and its evaluation by pure functions."""

from __future__ import annotations

from triage.policy.decide import (
    AIFinding,
    ClinicalPriority,
    Decision,
    StudyFacts,
    ai_priority,
    clinical_priority,
    decide,
)
from triage.policy.schema import (
    DEFAULT_POLICY_FILE,
    ClassSpec,
    Escalation,
    Policy,
    PolicyError,
    SiteDefaults,
    load_policy,
    parse_duration,
    parse_policy,
)
from triage.policy.waiting import escalate, escalated_at, ordering_deadline

__all__ = [
    "DEFAULT_POLICY_FILE",
    "AIFinding",
    "ClassSpec",
    "ClinicalPriority",
    "Decision",
    "Escalation",
    "Policy",
    "PolicyError",
    "SiteDefaults",
    "StudyFacts",
    "ai_priority",
    "clinical_priority",
    "decide",
    "escalate",
    "escalated_at",
    "load_policy",
    "ordering_deadline",
    "parse_duration",
    "parse_policy",
]
