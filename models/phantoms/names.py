"""The names a phantom can be asked for: findings, priorities and dataset layouts.

Plain constants with no dependencies, so that a command line can list them in its help text
without importing numpy, pydicom and PIL. :mod:`models.phantoms` and the generator's modules
re-export them.
"""

from __future__ import annotations

__all__ = ["FINDINGS", "LAYOUTS", "PRIORITIES"]

FINDINGS: tuple[str, ...] = (
    "pneumothorax",
    "pleural_effusion",
    "nodule_mass",
    "cardiomegaly",
    "consolidation",
)
"""The finding labels, in the order of the demo model's card."""

PRIORITIES: tuple[str, ...] = ("STAT", "HIGH", "ROUTINE", "MEDIUM", "LOW")
"""Values of Requested Procedure Priority (0040,1003)."""

LAYOUTS: tuple[str, ...] = (
    "generic",
    "nih",
    "rsna",
    "chexpert",
    "mimic",
    "siim",
    "vindr",
    "padchest",
)
"""The dataset layouts :func:`models.phantoms.write_dataset` writes."""
