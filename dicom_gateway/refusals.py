"""Refusals logged at a bounded rate per peer address, so that one peer cannot flood the log.

Every refusal the listener logs (a rejected association, a connection closed at accept or by a
deadline, a TLS handshake refused, a refused C-STORE) first asks :meth:`RefusalLog.allow` with
the peer's address. The first ``per_window`` refusals of one address in a window of
``window_s`` seconds are logged in full (and recorded in the store where they are recorded at
all); the rest are only counted, and once the window is over one line says how many were left
out: ``N more refusals from ADDRESS suppressed in the last 60 s``. An attacker refused a
thousand times a second thus costs a few dozen lines a minute, and other peers' lines stay
visible among them.

The summaries come from :meth:`RefusalLog.flush`, which the listener's watchdog thread calls a
few times a second, and from :meth:`RefusalLog.allow` when the same address comes back later.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["RefusalLog", "peer_host"]

logger = logging.getLogger(__name__)


def peer_host(peer: str) -> str:
    """Return the address of ``"host:port"`` (IPv6 too: the port follows the last colon)."""
    return peer.rsplit(":", 1)[0]


@dataclass
class _Window:
    started: float
    logged: int = 0
    suppressed: int = 0


class RefusalLog:
    """Count refusals per peer address and say which may be logged in full.

    Parameters
    ----------
    per_window
        Refusals of one address logged in full per window.
    window_s
        The window, in seconds.
    clock
        Monotonic clock (tests may pass their own).
    """

    def __init__(
        self, per_window: int, window_s: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.per_window = per_window
        self.window_s = window_s
        self.clock = clock
        self._windows: dict[str, _Window] = {}
        self._lock = threading.Lock()

    def allow(self, host: str) -> bool:
        """Count one refusal of ``host``; ``True`` if it may be logged (and recorded) in full.

        Parameters
        ----------
        host
            The peer's address (without its port).

        Returns
        -------
        bool
            ``False`` once the address has had ``per_window`` refusals in this window.
        """
        now = self.clock()
        with self._lock:
            window = self._windows.get(host)
            if window is not None and now - window.started >= self.window_s:
                self._summarise(host, window)
                window = None
            if window is None:
                window = self._windows[host] = _Window(started=now)
            if window.logged < self.per_window:
                window.logged += 1
                return True
            window.suppressed += 1
            return False

    def suppressing(self, host: str) -> bool:
        """Whether a refusal of ``host`` now would be only counted (it is not counted here)."""
        with self._lock:
            window = self._windows.get(host)
            return (
                window is not None
                and self.clock() - window.started < self.window_s
                and window.logged >= self.per_window
            )

    def flush(self) -> int:
        """Log the summary of every window that is over; return how many lines were logged."""
        now = self.clock()
        lines = 0
        with self._lock:
            for host, window in list(self._windows.items()):
                if now - window.started >= self.window_s:
                    lines += self._summarise(host, window)
                    del self._windows[host]
        return lines

    def _summarise(self, host: str, window: _Window) -> int:
        if not window.suppressed:
            return 0
        logger.warning(
            "%d more refusals from %s suppressed in the last %g s",
            window.suppressed,
            host,
            self.window_s,
        )
        return 1
