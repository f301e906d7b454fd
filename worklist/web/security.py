"""Session secret, CSRF tokens, login rate limiter and query-string limits of the web app."""

from __future__ import annotations

import hmac
import json
import logging
import os
import secrets
import threading
import time
from collections import Counter, deque
from pathlib import Path
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from worklist.settings import WorklistSettings

__all__ = ["LoginLimiter", "QueryLimits", "new_csrf_token", "session_secret", "tokens_match"]

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


class QueryLimits:
    """Refuse (422) a request whose query string has too many parameters or repeats one too often.

    A list filter repeated thousands of times costs seconds of validation per request and starves
    every other request of the process; this ASGI middleware refuses such requests before any
    parsing by the app. The body is FastAPI's validation-error shape
    (``{"detail": [{"type", "loc", "msg", "input"}]}``), as for any other bad query parameter.

    Parameters
    ----------
    app
        The wrapped app.
    max_params
        Most parameters (``&``-separated fields) one query string may have.
    max_repeats
        Most times one parameter name may appear.
    """

    def __init__(self, app: ASGIApp, *, max_params: int, max_repeats: int) -> None:
        self.app = app
        self.max_params = max_params
        self.max_repeats = max_repeats

    def problem(self, query: bytes) -> tuple[str, str] | None:
        """Return ``(name, message)`` of what breaks the limits in ``query``, or ``None``."""
        if not query:
            return None
        if query.count(b"&") + 1 > self.max_params:  # cheap: before parsing anything
            return "", f"more than {self.max_params} query parameters"
        fields = parse_qsl(
            query.decode("latin-1"), keep_blank_values=True, max_num_fields=self.max_params
        )
        counts = Counter(name for name, _ in fields)
        for name, count in counts.items():
            if count > self.max_repeats:
                return name, f"{name!r} repeated {count} times (at most {self.max_repeats})"
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer 422 if the query string breaks the limits, else pass the request on."""
        if scope["type"] == "http":
            found = self.problem(scope.get("query_string", b""))
            if found is not None:
                name, message = found
                logger.info("%s %s: 422 %s", scope["method"], scope["path"], message)
                detail = [{"type": "too_many_values", "loc": ["query", name], "msg": message}]
                body = json.dumps({"detail": detail}).encode()
                headers = [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ]
                await send({"type": "http.response.start", "status": 422, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
