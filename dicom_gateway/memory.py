"""The listener's memory cap: a byte budget per listener process, from ``max_memory_bytes``.

``max_memory_bytes`` bounds the resident memory of the whole listener: the process that starts
it (``triage gateway``, ``triage serve``) and its listener processes together (one at least), or,
in the tests only, the process of an in-process listener. Listener processes receive datasets
to files (:func:`dicom_gateway.receiving.use_receive_dir`), so what a peer sends costs disk, not
memory, until the C-STORE handler reads it; the handler then
reserves what reading, parsing and storing it will hold (:data:`COST_FACTOR` times its size, and
as much again for a deflated dataset once inflated) from its process's :class:`MemoryBudget`
*before* reading a byte. An instance whose reservation cannot fit is refused with
``0xA700`` Out of Resources and the reason; one that would fit once other instances are done
waits for them a little first (:data:`WAIT_S`).

The budget of one process is its share of the cap (:func:`process_share`) less the resident
memory the process already had once it was listening (imports, pynetdicom, the store engine).
As a second line, a listener process whose resident memory is above its share closes new
connections at accept (logged) until it is back under it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from worklist.ingest.header import InstanceTooLargeError

__all__ = [
    "COST_FACTOR",
    "MIN_SHARE_BYTES",
    "SLACK_FRACTION",
    "WAIT_S",
    "MemoryBudget",
    "budget_for_process",
    "plan_processes",
    "process_share",
    "resident_bytes",
]

logger = logging.getLogger(__name__)

COST_FACTOR = 3
"""Bytes of memory reading, parsing and storing one received byte may take at once (the file's
bytes, pydicom's copy of its values, the archive write's buffer)."""

MIN_SHARE_BYTES = 256 * 1024 * 1024
"""The least share of the cap a listener process may have (its imports alone take ~100 MiB)."""

SLACK_FRACTION = 8
"""1/8 of the cap is kept for what the budget does not count (threads, PDUs in flight, logs)."""

WAIT_S = 5.0
"""How long an instance waits for others to give their reservations back before 0xA700."""

_PAGE = os.sysconf("SC_PAGE_SIZE")


def resident_bytes(pid: int | None = None) -> int:
    """Return the resident memory of a process (this one by default), from ``/proc``.

    Parameters
    ----------
    pid
        The process; ``None``: this one.

    Returns
    -------
    int
        Its resident set size in bytes (0 if it is gone).
    """
    try:
        statm = Path(f"/proc/{pid or 'self'}/statm").read_text(encoding="ascii")
        return int(statm.split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0


def process_share(cap: int, processes: int, parent_bytes: int) -> int:
    """Return the share of ``cap`` one listener process may hold resident.

    Parameters
    ----------
    cap
        ``max_memory_bytes``: the whole listener's cap.
    processes
        Listener processes.
    parent_bytes
        Resident memory of the process that starts the listener processes (``triage gateway``
        or ``triage serve``), counted once against the cap; 0 for the tests' in-process
        listener (its own process is the listener).

    Returns
    -------
    int
        Bytes; may be below :data:`MIN_SHARE_BYTES` (the caller refuses to start then).
    """
    usable = cap - cap // SLACK_FRACTION
    return max(0, usable - parent_bytes) // max(1, processes)


def plan_processes(
    cap: int, requested: int, cpus: int, *, in_process: bool = False
) -> tuple[int, int]:
    """Return how many listener processes to start, and each one's share of ``cap``.

    Parameters
    ----------
    cap
        ``max_memory_bytes``.
    requested
        The ``processes`` setting: 0 means one per core (``cpus``), but no more than leave each
        :data:`MIN_SHARE_BYTES`.
    cpus
        One per core: the number of cores.
    in_process
        The tests' in-process listener: one, in the calling process, with the whole cap.

    Returns
    -------
    tuple of (int, int)
        Processes, and the share of each (of the calling process when ``in_process``).

    Raises
    ------
    ValueError
        If the processes (one at least) would have less than :data:`MIN_SHARE_BYTES` each.
    """
    if in_process:
        return 1, process_share(cap, 1, 0)
    parent = resident_bytes()  # the gateway's own process, counted once against the cap
    processes = requested or cpus
    if requested == 0:
        fit = process_share(cap, 1, parent) // MIN_SHARE_BYTES
        processes = max(1, min(processes, fit))
    share = process_share(cap, processes, parent)
    if share < MIN_SHARE_BYTES:
        raise ValueError(
            f"max_memory_bytes {cap} leaves {share} bytes to each of {processes} listener "
            f"process(es) beside this process's {parent} (each needs {MIN_SHARE_BYTES}); "
            "raise it or lower processes"
        )
    return processes, share


def budget_for_process(share: int, floor: int = 0) -> MemoryBudget:
    """Return this process's budget: its ``share`` less what it holds now (at least ``floor``).

    Parameters
    ----------
    share
        The process's share of ``max_memory_bytes`` (:func:`plan_processes`).
    floor
        The least budget (an in-process listener shares its process with other parts).

    Returns
    -------
    MemoryBudget
        The budget; below ``floor`` is logged.
    """
    held = resident_bytes()
    if share - held < floor:
        logger.warning(
            "this process already holds %d bytes of its %d share of max_memory_bytes; the "
            "listener keeps a budget of %d for instances",
            held,
            share,
            floor,
        )
    return MemoryBudget(max(floor, share - held))


@dataclass
class MemoryBudget:
    """Bytes one listener process may still hold for instances being stored (a byte semaphore).

    Parameters
    ----------
    capacity
        Bytes available to instances (the process's share less its resident memory at start).
    wait_s
        How long :meth:`reserve` waits for other instances' reservations to come back.
    """

    capacity: int
    wait_s: float = WAIT_S

    def __post_init__(self) -> None:
        self._used = 0
        self._cond = threading.Condition()

    @property
    def used(self) -> int:
        """Bytes reserved now."""
        with self._cond:
            return self._used

    def largest_instance(self) -> int:
        """Return the largest instance (as received) whose reservation can ever fit."""
        return max(0, self.capacity // COST_FACTOR)

    @contextmanager
    def reserve(self, nbytes: int, what: str) -> Iterator[int]:
        """Hold ``nbytes`` of the budget for the ``with`` block; yield what is left beside it.

        Parameters
        ----------
        nbytes
            Bytes to hold.
        what
            The instance, for the refusal's reason.

        Yields
        ------
        int
            Bytes of the budget neither held by this reservation nor by others (what a later
            :meth:`extend` may take).

        Raises
        ------
        InstanceTooLargeError
            If ``nbytes`` is more than the whole budget, or more than is free after
            :attr:`wait_s` (0xA700 Out of Resources).
        """
        if nbytes > self.capacity:
            raise InstanceTooLargeError(
                f"{what} needs {nbytes} bytes of memory, more than the listener's budget of "
                f"{self.capacity} (max_memory_bytes)"
            )
        deadline = time.monotonic() + self.wait_s
        with self._cond:
            while self._used + nbytes > self.capacity:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise InstanceTooLargeError(
                        f"{what} needs {nbytes} bytes of memory; {self.capacity - self._used} of "
                        f"the listener's {self.capacity} are free now (max_memory_bytes)"
                    )
                self._cond.wait(left)
            self._used += nbytes
            free = self.capacity - self._used
        try:
            yield free
        finally:
            self.give_back(nbytes)

    def extend(self, nbytes: int) -> int:
        """Take up to ``nbytes`` more at once, without waiting; return how many were taken.

        The caller gives them back with :meth:`give_back` (a deflated dataset's inflation).
        """
        with self._cond:
            taken = max(0, min(nbytes, self.capacity - self._used))
            self._used += taken
            return taken

    def give_back(self, nbytes: int) -> None:
        """Return bytes taken with :meth:`extend`."""
        with self._cond:
            self._used -= nbytes
            self._cond.notify_all()
