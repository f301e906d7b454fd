"""``python -m triage``."""

from __future__ import annotations

from triage.cli import entrypoint

entrypoint()
