"""A short-lived cache of worklist pages, shared by every reader of one process.

Every open worklist polls the first page every few seconds; most of those polls ask the same
question within the same second. The cache keeps each answer for ``web_list_cache_s`` seconds
(0 disables it) and is emptied by every change made through this process (claim, release,
report, clinical priority), so a reader sees their own change at once and others' changes within
the TTL (changes made by other processes, such as a worker's new priority, also within the TTL).
Views are audited per request whether or not the page came from the cache.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

__all__ = ["ListCache"]

logger = logging.getLogger(__name__)

MAX_ENTRIES = 256


class ListCache:
    """Remember computed worklist pages for ``ttl_s`` seconds.

    Parameters
    ----------
    ttl_s
        How long an answer is reused; 0 turns the cache off.
    """

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._entries: dict[Hashable, tuple[float, Any]] = {}
        self._computing: set[Hashable] = set()
        self._generation = 0

    def get(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """Return the cached answer for ``key``, or compute, remember and return it.

        When an answer has expired and another thread is already computing its replacement,
        the expired answer is returned meanwhile (no stampede of identical queries).
        """
        if self.ttl_s <= 0:
            return compute()
        now = time.monotonic()
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None and (hit[0] > now or key in self._computing):
                return hit[1]
            self._computing.add(key)
            generation = self._generation
        try:
            value = compute()
        finally:
            with self._lock:
                self._computing.discard(key)
        with self._lock:
            if generation != self._generation:  # a change came in while computing
                return value
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[key] = (time.monotonic() + self.ttl_s, value)
        return value

    def clear(self) -> None:
        """Forget everything (after a change)."""
        with self._lock:
            self._entries.clear()
            self._generation += 1
