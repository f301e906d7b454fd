"""A reference receiver for the ingest benchmark: pynetdicom alone, storing nothing.

It runs ``processes`` copies of the gateway's own AE (:func:`dicom_gateway.scp.build_ae`: the
same SOP classes, transfer syntaxes, PDU size and ``TCP_NODELAY``) on one port with
``SO_REUSEPORT``, but its C-STORE handler only takes the received bytes
(``event.encoded_dataset``) and answers Success: no parsing, no hash, no file, no database.
What it reaches is what pynetdicom itself allows on this machine, the ceiling of any receiver
built on it. It is a benchmark reference, never a listener to use: it acknowledges what it has
not stored.

Run: ``python -m benchmarks.pynetdicom_noop --port 11113 --processes 2`` (stop it with SIGTERM).

``--run-loop-delay S`` measures one of pynetdicom's knobs: how long its DUL reactor sleeps
between polls when nothing happened (``DULServiceProvider._run_loop_delay``, 1 ms by default,
a private attribute). It is set here, on each association of this reference receiver only, to
show what the knob is worth; the gateway never sets it (no patching of pynetdicom in the
product). The association reactor's own 1 ms sleep is hard-coded and cannot be set at all.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pynetdicom import evt
from pynetdicom.events import Event

from dicom_gateway.scp import ReusePortListenerServer, build_ae
from dicom_gateway.settings import GatewaySettings

logger = logging.getLogger(__name__)


class _Counter:
    """C-STOREs answered by this process (handlers run in one thread per association)."""

    def __init__(self) -> None:
        self.value = 0
        self.lock = threading.Lock()


def _take_and_acknowledge(event: Event, counter: _Counter) -> int:
    """Take the received bytes as the gateway does, keep nothing, answer Success."""
    event.encoded_dataset(include_meta=True)
    with counter.lock:
        counter.value += 1
    return 0x0000


def _set_run_loop_delay(event: Event, seconds: float) -> None:
    """Set this association's DUL reactor poll delay (a private pynetdicom attribute)."""
    event.assoc.dul._run_loop_delay = seconds


def serve(
    port: int,
    ready: Any = None,
    count_dir: Path | None = None,
    run_loop_delay: float | None = None,
) -> None:
    """Serve on ``127.0.0.1:port`` (``SO_REUSEPORT``) until SIGTERM or SIGINT.

    Parameters
    ----------
    port
        The TCP port, shared with the other processes.
    ready
        A :class:`multiprocessing.Event` set once the server is bound, or ``None``.
    count_dir
        Where to write ``count-PID``, the number of C-STOREs answered, when stopping.
    run_loop_delay
        Seconds the DUL reactor sleeps between idle polls; ``None``: pynetdicom's default.
    """
    counter = _Counter()
    settings = GatewaySettings(host="127.0.0.1", port=port)
    ae = build_ae(settings)
    handlers: list[Any] = [(evt.EVT_C_STORE, _take_and_acknowledge, [counter])]
    if run_loop_delay is not None:
        handlers.append((evt.EVT_CONN_OPEN, _set_run_loop_delay, [run_loop_delay]))
    server = ae.make_server(
        ("127.0.0.1", port),
        evt_handlers=handlers,
        server_class=ReusePortListenerServer,
    )
    ae._servers.append(server)  # as AE.start_server does: server.shutdown() removes it
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    if ready is not None:
        ready.set()
    stop.wait()
    # The count first: the senders are done when the benchmark stops this receiver, and a
    # shutdown that outlasts the parent's wait (it aborts what is still open) lost the count.
    if count_dir is not None:
        with counter.lock:
            (count_dir / f"count-{os.getpid()}").write_text(str(counter.value))
    server.shutdown()


def main(argv: Sequence[str] | None = None) -> int:
    """Start the processes and wait for them (SIGTERM to the group stops them all).

    Parameters
    ----------
    argv
        Command-line arguments (``--port``, ``--processes``, ``--count-dir``,
        ``--run-loop-delay``).

    Returns
    -------
    int
        The exit status.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("-j", "--processes", type=int, default=1)
    parser.add_argument("--count-dir", type=Path, default=None)
    parser.add_argument(
        "--run-loop-delay", type=float, default=None, help="DUL reactor idle poll delay, s"
    )
    args = parser.parse_args(argv)
    ctx = multiprocessing.get_context("fork")
    children = []
    for _ in range(max(args.processes, 1)):
        ready = ctx.Event()
        child = ctx.Process(
            target=serve,
            args=(args.port, ready, args.count_dir, args.run_loop_delay),
            daemon=True,
        )
        child.start()
        if not ready.wait(60):
            raise TimeoutError("a pynetdicom reference process did not start")
        children.append(child)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
    for child in children:
        child.terminate()
    for child in children:
        child.join(10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
