"""``python -m triage``."""

from __future__ import annotations

from triage.cli import entrypoint

if __name__ == "__main__":  # spawned child processes re-import this module; they must not run it
    entrypoint()
