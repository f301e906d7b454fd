"""Child processes that a stop signal to the whole process group does not kill half-started.

A service (``triage gateway``, ``triage serve``) starts child processes with the ``spawn``
method; a process manager (systemd, the chaos test, a terminal's Ctrl-C) sends SIGTERM or SIGINT
to the whole process group. A child that has not yet reached its own ``signal.signal`` call
(importing its modules takes seconds on a loaded machine) dies of that signal with the default
action, and a parent waiting for it to report ready waits for nothing.

So the parent starts children with the stop signals *blocked* (:func:`stop_signals_blocked`): a
blocked signal mask is inherited across ``fork`` and ``exec``, so the child's interpreter starts
with them blocked too, and the child's first act (:func:`ignore_stop_signals`) sets them to be
ignored and unblocks them; a signal that arrived meanwhile was pending and is discarded. The
parent's own copy of the signal stays pending while it is blocked and is handled when it is
unblocked (or at once by another thread of the parent): nothing is lost. CPython protects its
own ``multiprocessing`` resource tracker the same way (bpo-33613), and that is why the tracker
is started first: launching it unblocks both signals in the calling thread when it is done.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing import resource_tracker

__all__ = ["STOP_SIGNALS", "ignore_stop_signals", "stop_signals_blocked"]

STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})
"""The signals with which a process manager or a terminal stops a service."""


@contextmanager
def stop_signals_blocked() -> Iterator[None]:
    """Block SIGTERM and SIGINT in this thread while child processes are started in it.

    Yields
    ------
    None
        Start the children inside the ``with`` block.
    """
    resource_tracker.ensure_running()  # launching it later would unblock the signals below
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def ignore_stop_signals() -> None:
    """In a child: ignore SIGTERM and SIGINT from now on, and unblock them.

    The parent stops its children itself (closing a pipe), also when the signal reached the
    whole process group.
    """
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
