"""The triage worker: claim jobs, run the models, apply the policy, write the worklist."""

from __future__ import annotations

from triage.worker.loop import Worker, WorkerOptions, default_owner
from triage.worker.pool import ActiveModel, ModelPool, RunnableModel
from triage.worker.service import build_worker, options_from, run_worker

__all__ = [
    "ActiveModel",
    "ModelPool",
    "RunnableModel",
    "Worker",
    "WorkerOptions",
    "build_worker",
    "default_owner",
    "options_from",
    "run_worker",
]
