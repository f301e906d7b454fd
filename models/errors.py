"""The project's one root error.

It lives in :mod:`models` because that package is the bottom of the import order, so every other
package can subclass it without an upward import.
"""

from __future__ import annotations

__all__ = ["TriageError"]


class TriageError(Exception):
    """Base class of every error raised by the project's domain code."""
