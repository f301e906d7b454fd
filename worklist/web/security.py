"""Session secret, CSRF tokens and the login rate limiter of the web app."""

from __future__ import annotations

import hmac
import logging
import os
import secrets
import threading
import time
from collections import deque
from pathlib import Path

from worklist.settings import WorklistSettings

__all__ = ["LoginLimiter", "new_csrf_token", "session_secret", "tokens_match"]

logger = logging.getLogger(__name__)

SECRET_FILE = "web_session_secret"


def session_secret(settings: WorklistSettings) -> str:
    """Return the key that signs session cookies.

    ``web_session_secret`` when set; otherwise a random key generated once and kept in
    ``data_dir/web_session_secret`` (mode 0600), so that every ``triage web`` process sharing the
    data directory accepts the same cookies and restarts do not log everybody out.
    """
    if settings.web_session_secret:
        return settings.web_session_secret
    path = Path(settings.data_dir) / SECRET_FILE
    if path.is_file():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secret)
    try:
        # Another process may have won the race: keep the first one.
        os.link(tmp, path)
    except FileExistsError:
        secret = path.read_text().strip()
    finally:
        tmp.unlink(missing_ok=True)
    logger.info("generated a session secret in %s", path)
    return secret


def new_csrf_token() -> str:
    """Return a fresh per-session CSRF token."""
    return secrets.token_urlsafe(32)


def tokens_match(expected: str | None, given: str | None) -> bool:
    """Compare two CSRF tokens in constant time; missing tokens never match."""
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


class LoginLimiter:
    """Count failed logins per key (username, client IP) in a sliding window.

    The count lives in the memory of one process: with several ``triage web`` processes, each
    allows ``max_failures`` (documented).

    Parameters
    ----------
    max_failures
        Failures allowed within ``window_s``; the next attempt is refused.
    window_s
        Length of the window in seconds.
    """

    def __init__(self, max_failures: int, window_s: float) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _prune(self, key: str, now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and times[0] <= now - self.window_s:
            times.popleft()
        return times

    def blocked(self, *keys: str) -> float:
        """Return seconds to wait if any key has used up its failures, else 0."""
        now = time.monotonic()
        wait = 0.0
        with self._lock:
            for key in keys:
                times = self._prune(key, now)
                if len(times) >= self.max_failures:
                    wait = max(wait, times[0] + self.window_s - now)
        return wait

    def failed(self, *keys: str) -> None:
        """Record one failure for every key."""
        now = time.monotonic()
        with self._lock:
            for key in keys:
                self._prune(key, now).append(now)

    def succeeded(self, *keys: str) -> None:
        """Forget the failures of these keys (the user got in)."""
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)
