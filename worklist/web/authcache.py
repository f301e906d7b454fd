"""A short-lived cache of who holds a session or an API token, shared by one process' requests.

Every request authenticates: without a cache that is a database round trip before any work
(a third of the CPU of a cached worklist page). The cache keeps the active user behind a session
user id or a token hash for ``ttl_s`` seconds (1 by default; 0 turns it off). It is emptied by
every user change made through this process (deactivation), so this process stops honouring a
deactivated user at once; other processes (another ``triage web`` worker, ``triage users`` on
the command line) within ``ttl_s``. Unknown or inactive users are never cached.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Hashable

from worklist.accounts.users import UserView

__all__ = ["AUTH_CACHE_S", "AuthCache"]

logger = logging.getLogger(__name__)

AUTH_CACHE_S = 1.0
MAX_ENTRIES = 4096


class AuthCache:
    """Remember active users by session user id or token hash for ``ttl_s`` seconds.

    Parameters
    ----------
    ttl_s
        How long a lookup is reused; 0 turns the cache off.
    """

    def __init__(self, ttl_s: float = AUTH_CACHE_S) -> None:
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._entries: dict[Hashable, tuple[float, UserView]] = {}
        self._generation = 0

    def get(self, key: Hashable) -> UserView | None:
        """Return the cached user for ``key``, or ``None`` when unknown or expired."""
        if self.ttl_s <= 0:
            return None
        with self._lock:
            hit = self._entries.get(key)
        if hit is None or hit[0] <= time.monotonic():
            return None
        return hit[1]

    def generation(self) -> int:
        """Return a number that changes with every :meth:`clear` (take it before a lookup)."""
        with self._lock:
            return self._generation

    def put(self, key: Hashable, user: UserView, generation: int) -> None:
        """Remember ``user`` unless the cache was cleared since ``generation`` was taken."""
        if self.ttl_s <= 0 or not user.active:
            return
        with self._lock:
            if generation != self._generation:
                return
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[key] = (time.monotonic() + self.ttl_s, user)

    def clear(self) -> None:
        """Forget everything (after a user change)."""
        with self._lock:
            self._entries.clear()
            self._generation += 1
