"""Worklist load: many readers on a large store, served by uvicorn on loopback.

Fills a fresh store with ``--studies`` triaged studies (bulk inserts, one or two findings each),
serves the web app with uvicorn (``--workers`` processes, default 1) in a subprocess on
127.0.0.1, and runs ``--clients`` concurrent clients for ``--seconds``. Each client loops: the
first worklist page through the JSON API (``GET /api/v1/studies``), or a study page
(``GET /studies/{uid}``, HTML, audited), half and half, with a logged-in session cookie.

Two drivers:

* ``--driver wrk`` (closed loop, no pause): ``wrk`` (C, one thread by default) with a small Lua
  script that picks the paths at random; it costs the machine little, so the latency is the
  server's. Needs ``wrk`` on the PATH (``apt-get install -y wrk``).
* ``--driver httpx`` (default; for ``--think-ms``, clients that pause like people): asyncio +
  httpx, the clients split over ``--client-procs`` processes (uvloop when installed), so that
  one busy client event loop does not add its own queueing to the latency.

Prints p50, p95, p99 and max latency (per kind with httpx), throughput, errors and the server's
CPU time per request. Not a test. Example::

    python -m benchmarks.worklist_load --backend sqlite --driver wrk --studies 100000 --clients 50
    python -m benchmarks.worklist_load --backend postgres --think-ms 1000   # people-like pauses

PostgreSQL runs in a throwaway server (``tests.builders.peers.postgres_server``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import multiprocessing
import os
import random
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from benchmarks.proc_cpu import cpu_s, print_cpu, process_tree
from benchmarks.worklist_fill import PASSWORD, fill
from benchmarks.worklist_wrk import run_wrk
from models.settings import ModelsSettings
from worklist.db.engine import Database
from worklist.settings import WorklistSettings

logger = logging.getLogger(__name__)


def app_factory() -> FastAPI:
    """Build the app from ``TRIAGE_WORKLIST_*`` variables (for ``uvicorn --factory``)."""
    from worklist.web.app import create_app

    return create_app(WorklistSettings(), ModelsSettings())


async def _login(client: httpx.AsyncClient) -> None:
    page = await client.get("/login")
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found
    form = {"username": "loadrad", "password": PASSWORD, "csrf_token": found.group(1)}
    resp = await client.post("/login", data=form)
    if resp.status_code != 303:
        raise RuntimeError(f"login failed: {resp.status_code}")


async def _client(
    client: httpx.AsyncClient,
    uids: list[str],
    until: float,
    out: dict[str, list[float]],
    errors: list[str],
    think_s: float,
) -> None:
    rng = random.Random()
    if think_s > 0:  # people do not all click at the same instant
        await asyncio.sleep(rng.uniform(0, 2 * think_s))
    while time.perf_counter() < until:
        if rng.random() < 0.5:
            kind, url = "api_worklist", "/api/v1/studies"
        else:
            kind, url = "study_page", f"/studies/{rng.choice(uids)}"
        start = time.perf_counter()
        try:
            resp = await client.get(url)
            elapsed = time.perf_counter() - start
            if resp.status_code != 200:
                errors.append(f"{kind} {resp.status_code}")
                continue
        except httpx.HTTPError as exc:
            errors.append(f"{kind} {type(exc).__name__}")
            continue
        out[kind].append(elapsed)
        if think_s > 0:
            await asyncio.sleep(rng.uniform(0, 2 * think_s))


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def _session_cookie(base: str) -> str:
    """Log in once and return the ``Cookie`` header value of the session."""
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        await _login(client)
        return "; ".join(f"{k}={v}" for k, v in client.cookies.items())


async def _clients(
    base: str,
    cookie: str,
    uids: list[str],
    n: int,
    start_at: float,
    seconds: float,
    think_s: float,
) -> tuple[dict[str, list[float]], list[str]]:
    out: dict[str, list[float]] = {"api_worklist": [], "study_page": []}
    errors: list[str] = []
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    headers = {"Cookie": cookie}
    pool = [
        httpx.AsyncClient(base_url=base, limits=limits, timeout=30, headers=headers)
        for _ in range(n)
    ]
    try:
        for client in pool:  # open the connections before the clock starts
            await client.get("/api/v1/health")
        await asyncio.sleep(max(0.0, start_at - time.time()))
        until = time.perf_counter() + seconds
        await asyncio.gather(*(_client(c, uids, until, out, errors, think_s) for c in pool))
    finally:
        for client in pool:
            await client.aclose()
    return out, errors


def _client_proc(args: tuple[str, str, list[str], int, float, float, float]) -> Any:
    """One client process of the httpx driver (uvloop when installed)."""
    runner: Any = asyncio.run
    with contextlib.suppress(ImportError):
        import uvloop

        runner = uvloop.run
    return runner(_clients(*args))


def _run_httpx(
    base: str,
    cookie: str,
    uids: list[str],
    clients: int,
    procs: int,
    seconds: float,
    think_s: float,
    pids: list[int],
) -> None:
    procs = max(1, min(procs, clients))
    share = [clients // procs + (1 if i < clients % procs else 0) for i in range(procs)]
    start_at = time.time() + 2.0 + 0.02 * clients  # every process connected by then
    jobs = [(base, cookie, uids, k, start_at, seconds, think_s) for k in share]
    with multiprocessing.get_context("spawn").Pool(procs) as pool:
        pending = pool.map_async(_client_proc, jobs)
        time.sleep(max(0.0, start_at - time.time()))
        cpu0 = cpu_s(pids)
        results = pending.get(timeout=seconds + 120)
        cpu = cpu_s(pids) - cpu0
    out: dict[str, list[float]] = {"api_worklist": [], "study_page": []}
    errors: list[str] = []
    for part, errs in results:
        for kind, values in part.items():
            out[kind] += values
        errors += errs
    every = out["api_worklist"] + out["study_page"]
    print(f"{'kind':<14}{'n':>8}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for kind, values in (*out.items(), ("all", every)):
        print(
            f"{kind:<14}{len(values):>8}{_pct(values, 0.5):>10.1f}{_pct(values, 0.95):>10.1f}"
            f"{_pct(values, 0.99):>10.1f}{(max(values) * 1000 if values else 0):>10.1f}"
        )
    print(f"throughput: {len(every) / seconds:.0f} requests/s; errors: {len(errors)}")
    if errors:
        print("first errors:", sorted(set(errors))[:5])
    if every:
        print(f"mean: {statistics.mean(every) * 1000:.1f} ms")
        print_cpu(cpu, seconds, len(every))


@contextlib.contextmanager
def _server(env: dict[str, str], workers: int, extra: list[str]) -> Iterator[tuple[str, int]]:
    from tests.builders.peers import free_port, wait_for_port

    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "benchmarks.worklist_load:app_factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        "--no-access-log",
        *extra,
    ]
    proc = subprocess.Popen(cmd, env={**os.environ, **env})
    try:
        wait_for_port(port, timeout=60)
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextlib.contextmanager
def _store(backend: str, root: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{root / 'triage.db'}"
        return
    from tests.builders.peers import postgres_server

    with postgres_server() as url:
        yield url


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--studies", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--driver", choices=["httpx", "wrk"], default="httpx")
    parser.add_argument("--wrk-threads", type=int, default=1, help="wrk threads")
    parser.add_argument(
        "--client-procs", type=int, default=2, help="client processes of the httpx driver"
    )
    parser.add_argument(
        "--uvicorn-args",
        default="",
        help="more uvicorn options, e.g. '--http h11 --loop asyncio' (default: uvicorn's auto)",
    )
    parser.add_argument(
        "--think-ms",
        type=float,
        default=0.0,
        help="mean pause of a client between requests (0: closed loop, as fast as possible)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    root = Path(tempfile.mkdtemp(prefix="worklist-load-"))
    try:
        with _store(args.backend, root) as url:
            db = Database(url)
            start = time.perf_counter()
            uids = fill(db, args.studies)
            db.dispose()
            print(
                f"{args.backend}: {args.studies} studies filled in "
                f"{time.perf_counter() - start:.1f} s; {args.clients} clients, "
                f"{args.seconds:.0f} s, driver {args.driver}, think {args.think_ms:.0f} ms, "
                f"{args.workers} uvicorn worker(s) {args.uvicorn_args}, {os.cpu_count()} CPUs, "
                f"load average {os.getloadavg()[0]:.1f}"
            )
            env = {
                "TRIAGE_WORKLIST_DATABASE_URL": url,
                "TRIAGE_WORKLIST_DATA_DIR": str(root / "data"),
                "TRIAGE_WORKLIST_WEB_LOGIN_MAX_FAILURES": "1000",
            }
            with _server(env, args.workers, shlex.split(args.uvicorn_args)) as (base, pid):
                time.sleep(1.0)  # let every worker start
                pids = process_tree(pid)
                cookie = asyncio.run(_session_cookie(base))
                if args.driver == "wrk":
                    if args.think_ms:
                        raise SystemExit("--driver wrk is closed loop: no --think-ms")
                    run_wrk(
                        base, cookie, uids, args.clients, args.wrk_threads, args.seconds, pids, root
                    )
                else:
                    _run_httpx(
                        base,
                        cookie,
                        uids,
                        args.clients,
                        args.client_procs,
                        args.seconds,
                        args.think_ms / 1000,
                        pids,
                    )
                print(f"load average after: {os.getloadavg()[0]:.1f}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
