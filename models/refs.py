"""Model references (``NAME[@VERSION]``) and version ordering."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

from models.errors import ModelRefError

__all__ = ["ModelRef", "version_key"]

logger = logging.getLogger(__name__)


def version_key(version: str) -> tuple[int, Version | None, str]:
    """Sort key for versions: valid (semantic / PEP 440) versions after invalid ones.

    Parameters
    ----------
    version
        A version string such as ``"1.10.0"``.

    Returns
    -------
    tuple
        Compares ``1.2.0 < 1.10.0`` and ``1.0.0rc1 < 1.0.0``.
    """
    try:
        return (1, Version(version), version)
    except InvalidVersion:
        return (0, None, version)


@dataclass(frozen=True)
class ModelRef:
    """A model reference, ``NAME`` or ``NAME@VERSION``."""

    name: str
    version: str | None = None

    @classmethod
    def parse(cls, text: str) -> ModelRef:
        """Parse ``NAME[@VERSION]``.

        Parameters
        ----------
        text
            The reference.

        Returns
        -------
        ModelRef
            The parsed reference.

        Raises
        ------
        ModelRefError
            If the name or the version is empty.
        """
        name, sep, version = text.strip().partition("@")
        if not name or (sep and not version):
            raise ModelRefError(f"bad model reference {text!r}; expected NAME or NAME@VERSION")
        return cls(name, version or None)

    def __str__(self) -> str:
        return self.name if self.version is None else f"{self.name}@{self.version}"
