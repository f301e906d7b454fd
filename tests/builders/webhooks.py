"""A webhook receiver on a loopback port (``http.server`` in a thread) for the webhook tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Received:
    """One request the receiver answered: its headers, its body and the status it got."""

    path: str
    headers: dict[str, str]
    body: bytes
    status: int


@dataclass
class Receiver:
    """What a running receiver saw; ``url`` is where to POST."""

    url: str
    statuses: list[int]
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def delivered(self) -> list[Received]:
        """Return the requests that were answered with a 2xx status."""
        with self.lock:
            return [r for r in self.requests if 200 <= r.status < 300]


@contextmanager
def webhook_receiver(fail_first: Sequence[int] = ()) -> Iterator[Receiver]:
    """Serve a receiver on ``127.0.0.1`` (a free port) until the block ends.

    Parameters
    ----------
    fail_first : sequence of int, optional
        The statuses of the first requests (such as ``(500, 500)``); later ones get 204.

    Yields
    ------
    Receiver
        Its URL and the requests it received, in order.
    """
    state = Receiver(url="", statuses=list(fail_first))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with state.lock:
                status = state.statuses.pop(0) if state.statuses else 204
                headers = {k.lower(): v for k, v in self.headers.items()}
                state.requests.append(Received(self.path, headers, body, status))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            """Stay quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/triage"
    thread = threading.Thread(target=server.serve_forever, name="webhook-receiver", daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
