"""A stop signal sent to the whole process group does not kill a child that is still starting.

Seen in the chaos test's CI run: SIGTERM to a gateway's process group while its listener child
was importing killed the child; the gateway then waited 60 s for it and exited with status 2.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time

from worklist.children import ignore_stop_signals, stop_signals_blocked


def _slow_child(seconds: float) -> None:
    time.sleep(seconds)  # as if importing its modules on a loaded machine
    ignore_stop_signals()
    time.sleep(0.2)  # a signal that arrived while starting was discarded, not delivered now


def _signalled_while_starting(blocked: bool) -> int | None:
    ctx = multiprocessing.get_context("spawn")
    child = ctx.Process(target=_slow_child, args=(1.0,))
    if blocked:
        with stop_signals_blocked():
            child.start()
    else:
        child.start()
    assert child.pid is not None
    time.sleep(0.2)
    os.kill(child.pid, signal.SIGTERM)
    child.join(timeout=30)
    return child.exitcode


def test_a_child_started_with_stop_signals_blocked_survives_sigterm_while_starting() -> None:
    assert _signalled_while_starting(blocked=True) == 0


def test_without_blocking_the_same_signal_kills_it() -> None:
    # The control: the test above would pass for nothing if SIGTERM could not kill this child.
    assert _signalled_while_starting(blocked=False) == -signal.SIGTERM


def test_the_parent_mask_is_restored_after_starting() -> None:
    before = signal.pthread_sigmask(signal.SIG_BLOCK, set())
    with stop_signals_blocked():
        assert signal.SIGTERM in signal.pthread_sigmask(signal.SIG_BLOCK, set())
    assert signal.pthread_sigmask(signal.SIG_BLOCK, set()) == before
