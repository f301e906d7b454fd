"""A discrete-event simulation of the ICS reporting list: what a model does to waiting times.

``triage simulate`` runs it. Studies arrive by hour and weekday from several sources with
referral priorities; radiologists read them following their rosters; the list is ordered by the
project's own priority policy (:mod:`triage.policy`) under three policies: FIFO (the referral's
class only), AI-prioritised, and AI-prioritised with the policy's escalation by waiting. The
model's behaviour comes from a benchmark's ``predictions.csv`` or from sensitivity and
specificity. Importing this package loads numpy and SimPy; the command imports it lazily.
"""

from __future__ import annotations

from triage.simulation.behaviour import Behaviour, LabelSpec, load_behaviour, read_predictions
from triage.simulation.engine import QueueResult, simulate_queue
from triage.simulation.experiment import GOAL, Outcome, run_simulation
from triage.simulation.runner import Replication, Scenario, prepare, run_replication
from triage.simulation.settings import (
    POLICIES,
    ModelSettings,
    ReadTime,
    Shift,
    SimulationError,
    SimulationSettings,
    Source,
    load_settings,
)

__all__ = [
    "GOAL",
    "POLICIES",
    "Behaviour",
    "LabelSpec",
    "ModelSettings",
    "Outcome",
    "QueueResult",
    "ReadTime",
    "Replication",
    "Scenario",
    "Shift",
    "SimulationError",
    "SimulationSettings",
    "Source",
    "load_behaviour",
    "load_settings",
    "prepare",
    "read_predictions",
    "run_replication",
    "run_simulation",
    "simulate_queue",
]
