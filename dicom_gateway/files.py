"""Expanding the files and folders a user named into the files to send (see :mod:`.scu`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Collected", "collect_files"]


@dataclass(frozen=True)
class Collected:
    """The files to send, from the files and folders a user named."""

    files: list[Path]
    """Files named as such, and the files found in each folder (sorted), in the order given."""
    found: frozenset[Path]
    """Those of :attr:`files` found by walking a folder (skipped if they are not DICOM)."""
    hidden: list[Path] = field(default_factory=list)
    """Hidden files found in folders (a name, or a folder below the one named, starting with
    ``.``): never read, never sent."""
    missing: list[Path] = field(default_factory=list)
    """Paths named that do not exist."""


def _is_hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def collect_files(paths: Iterable[Path]) -> Collected:
    """Expand folders recursively into their files (sorted); keep files as given.

    Parameters
    ----------
    paths
        Files and folders, as the user named them.

    Returns
    -------
    Collected
        The files to send, which of them were found in folders, the hidden files found in
        folders and the paths that do not exist.
    """
    files: list[Path] = []
    found: set[Path] = set()
    hidden: list[Path] = []
    missing: list[Path] = []
    for path in paths:
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                if _is_hidden(child, path):
                    hidden.append(child)
                else:
                    files.append(child)
                    found.add(child)
        elif path.exists():
            files.append(path)
        else:
            missing.append(path)
    return Collected(files, frozenset(found), hidden, missing)
