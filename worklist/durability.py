"""Making written files durable: ``syncfs(2)`` where Linux has it, fsync of directories."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import cast

__all__ = ["fsync_dir", "load_syncfs", "make_dirs", "syncfs"]


def load_syncfs() -> Callable[[int], int] | None:
    """Return libc's ``syncfs(2)`` on Linux, else ``None`` (Python 3.11 has no os.syncfs)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        func = libc.syncfs
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_int]
    func.restype = ctypes.c_int
    return cast("Callable[[int], int]", func)


def fsync_dir(path: Path) -> None:
    """Fsync a directory, so that the entries created or renamed in it are durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def syncfs(func: Callable[[int], int], path: Path) -> None:
    """Flush the whole filesystem holding ``path`` with ``func`` (from :func:`load_syncfs`).

    Raises
    ------
    OSError
        With the errno ``syncfs(2)`` set.
    """
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if func(fd) != 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code))
    finally:
        os.close(fd)


def make_dirs(directory: Path) -> list[Path]:
    """Create ``directory`` and return the parents whose entries changed (to fsync).

    Each created directory's entry lives in its parent: those parents are what to fsync.
    """
    missing: list[Path] = []
    current = directory
    while not current.exists():
        missing.append(current)
        current = current.parent
    if not missing:
        return []
    directory.mkdir(parents=True, exist_ok=True)
    return [d.parent for d in reversed(missing)]
