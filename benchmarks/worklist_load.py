"""Worklist load: many readers on a large store, served by uvicorn on loopback.

Fills a fresh store with ``--studies`` triaged studies (bulk inserts, one or two findings each),
serves the web app with uvicorn (``--workers`` processes, default 1) in a subprocess on
127.0.0.1, and runs ``--clients`` concurrent clients (asyncio + httpx, in this process) for
``--seconds``. Each client logs in once, then loops: the first worklist page through the JSON API
(``GET /api/v1/studies``), or a study page (``GET /studies/{uid}``, HTML, audited), half and half.
Prints p50, p95, p99 and max latency per kind and overall, throughput and errors.

Not a test. Example::

    python -m benchmarks.worklist_load --backend sqlite --studies 100000 --clients 50 --seconds 20
    python -m benchmarks.worklist_load --backend postgres --studies 100000 --clients 50
    python -m benchmarks.worklist_load --think-ms 500   # clients that pause like people

PostgreSQL runs in a throwaway server (``tests.support.postgres_server``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import insert, text

from models.settings import ModelsSettings
from worklist.db.engine import Database
from worklist.db.schema import Finding, Study
from worklist.settings import WorklistSettings
from worklist.users import add_user

logger = logging.getLogger(__name__)

PASSWORD = "load-test-password"
CHUNK = 5000
TARGET_MIN = {"P1": 60, "P2": 24 * 60, "P3": 7 * 24 * 60}


def app_factory() -> FastAPI:
    """Build the app from ``TRIAGE_WORKLIST_*`` variables (for ``uvicorn --factory``)."""
    from worklist.web.app import create_app

    return create_app(WorklistSettings(), ModelsSettings())


def fill(db: Database, n: int, seed: int = 1) -> list[str]:
    """Insert ``n`` triaged studies with findings in bulk; return the UIDs of the 1000 first."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    uids: list[str] = []
    study_rows: list[dict[str, Any]] = []
    finding_rows: list[dict[str, Any]] = []
    fid = 0

    def flush() -> None:
        with db.write() as session:
            if study_rows:
                session.execute(insert(Study), study_rows)
            if finding_rows:
                session.execute(insert(Finding), finding_rows)
        study_rows.clear()
        finding_rows.clear()

    for i in range(1, n + 1):
        priority = rng.choices(["P1", "P2", "P3"], weights=[1, 2, 7])[0]
        status = rng.choices(["unread", "claimed", "reported"], weights=[16, 1, 3])[0]
        received = now - timedelta(minutes=rng.uniform(0, 14 * 24 * 60))
        uid = f"2.25.{seed}.{i}"
        if i <= 1000:
            uids.append(uid)
        study_rows.append(
            {
                "id": i,
                "study_instance_uid": uid,
                "patient_id": f"P{i:07d}",
                "patient_name": f"LOAD^PATIENT{i}",
                "accession_number": f"A{i:09d}",
                "study_description": "Chest PA",
                "modalities": rng.choice(["CR", "DX"]),
                "site": rng.choice(["CDC_NORTH", "CDC_SOUTH", "HUB"]),
                "clinical_priority": "P3",
                "priority": priority,
                "priority_explanation": [{"text": f"{priority} by load fill"}],
                "state": "triaged",
                "ai_status": "done",
                "read_status": status,
                "claimed_by": "someone" if status == "claimed" else None,
                "instance_count": 1,
                "first_received_at": received,
                "last_received_at": received,
                "completed_at": received,
                "triaged_at": received,
                "due_at": received + timedelta(minutes=TARGET_MIN[priority]),
            }
        )
        for label in rng.sample(["pneumothorax", "effusion", "nodule"], k=rng.randint(1, 2)):
            fid += 1
            p = rng.random()
            finding_rows.append(
                {
                    "id": fid,
                    "study_id": i,
                    "sop_instance_uid": f"{uid}.1",
                    "model_name": "demo-cxr",
                    "model_version": "1.0.0",
                    "model_sha256": "ab" * 32,
                    "label": label,
                    "probability": p,
                    "threshold": 0.5,
                    "crossed": p >= 0.5,
                    "category": "P1",
                    "shadow": False,
                    "heatmap_path": "",
                    "created_at": received,
                }
            )
        if len(study_rows) >= CHUNK:
            flush()
    flush()
    if not db.is_sqlite:  # explicit ids: move the sequences past them
        with db.write() as session:
            for table in ("studies", "findings"):
                session.execute(
                    text(f"SELECT setval('{table}_id_seq', (SELECT max(id) FROM {table}))")
                )
    with db.write() as session:
        add_user(session, "loadrad", PASSWORD, "radiologist")
        if not db.is_sqlite:
            session.execute(text("ANALYZE"))
    if db.is_sqlite:
        with db.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
    return uids


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


async def _load(
    base: str, uids: list[str], clients: int, seconds: float, think_s: float, pid: int
) -> None:
    out: dict[str, list[float]] = {"api_worklist": [], "study_page": []}
    errors: list[str] = []
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    pool = [httpx.AsyncClient(base_url=base, limits=limits, timeout=30) for _ in range(clients)]
    try:
        for client in pool:  # logins (argon2) before the clock starts
            await _login(client)
        cpu0 = _cpu_s(pid)
        until = time.perf_counter() + seconds
        await asyncio.gather(*(_client(c, uids, until, out, errors, think_s) for c in pool))
        cpu = _cpu_s(pid) - cpu0
    finally:
        for client in pool:
            await client.aclose()
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
        print(
            f"server process CPU: {cpu:.1f} s in {seconds:.0f} s, "
            f"{cpu / len(every) * 1000:.1f} ms per request (1 worker; 0 with more workers)"
        )


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process and its children that were waited for (Linux)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    ticks = os.sysconf("SC_CLK_TCK")
    return sum(int(f) for f in fields[11:15]) / ticks


@contextlib.contextmanager
def _server(env: dict[str, str], workers: int) -> Iterator[tuple[str, int]]:
    from tests.support import free_port, wait_for_port

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
    from tests.support import postgres_server

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
                f"{args.seconds:.0f} s, think {args.think_ms:.0f} ms, {args.workers} uvicorn "
                f"worker(s), {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
            )
            env = {
                "TRIAGE_WORKLIST_DATABASE_URL": url,
                "TRIAGE_WORKLIST_DATA_DIR": str(root / "data"),
                "TRIAGE_WORKLIST_WEB_LOGIN_MAX_FAILURES": "1000",
            }
            with _server(env, args.workers) as (base, pid):
                asyncio.run(
                    _load(base, uids, args.clients, args.seconds, args.think_ms / 1000, pid)
                )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
