"""Small scenarios for the simulation's tests: queues from queueing theory, short runs."""

from __future__ import annotations

from typing import Any

from triage.policy import Policy, parse_policy
from triage.simulation.priorities import escalation_steps
from triage.simulation.runner import Scenario, prepare
from triage.simulation.settings import SimulationSettings

ALWAYS = {"name": "r", "start": "00:00", "end": "24:00"}
"""A roster line: on duty around the clock, every day."""


def queue_settings(
    arrivals_per_min: float,
    mean_read_min: float,
    *,
    readers: int = 1,
    days: int = 100,
    distribution: str = "exponential",
    referral_mix: dict[str, float] | None = None,
    seed: int = 0,
    sensitivity: float = 0.9,
    specificity: float = 0.9,
    **extra: Any,
) -> SimulationSettings:
    """A single source of Poisson arrivals (flat over hours and weekdays), readers 24/7."""
    return SimulationSettings.model_validate(
        {
            "days": days,
            "warmup_days": 2,
            "drain_days": 3,
            "replications": 1,
            "seed": seed,
            "sources": [
                {
                    "name": "Q",
                    "daily_volume": arrivals_per_min * 1440.0,
                    "referral_mix": referral_mix or {"ROUTINE": 1.0},
                }
            ],
            "roster": [{**ALWAYS, "readers": readers}],
            "read_time": {"distribution": distribution, "mean_min": mean_read_min},
            "model": {"sensitivity": sensitivity, "specificity": specificity},
            "grid": {"enabled": False},
            **extra,
        }
    )


def with_policy(settings: SimulationSettings, policy: Policy) -> Scenario:
    """Prepare ``settings`` with ``policy`` in place of the bundled policy file."""
    scenario = prepare(settings)
    return Scenario(
        settings, policy, scenario.behaviour, scenario.reader_names, escalation_steps(policy)
    )


def capped_policy() -> Policy:
    """Equal 4 h targets; P3 rises to P2 after 2 h, P2 to P1 after 1 h: all reach P1 by 3 h."""
    return parse_policy(
        {
            "version": 1,
            "classes": {
                "P1": {"label": "urgent", "target": "4h"},
                "P2": {"label": "soon", "target": "4h"},
                "P3": {"label": "routine", "target": "4h"},
            },
            "referral": {"STAT": "P1", "HIGH": "P2", "ROUTINE": "P3"},
            "escalation": {"P3": {"after": 0.5, "max": "P1"}, "P2": {"after": 0.25, "max": "P1"}},
        }
    )
