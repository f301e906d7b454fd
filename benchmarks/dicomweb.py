"""DICOMweb: our ``/dicom-web`` against Orthanc's DICOMweb plugin, same archive, same run.

Builds ``--instances`` synthetic CR instances (``--per-study`` per study, ``--size`` pixels
square, 16 bits), stores them in both servers with STOW-RS (one request per study), then measures
with the same Python clients (threads with one HTTP session each):

* QIDO-RS ``/studies`` with OHIF's study-list query (``limit=101``, ``includefield``): p50 and
  p99 latency, one client;
* WADO-RS instance retrieve (a random instance, ``application/dicom``): MB/s with 1 and 8 clients;
* WADO-RS frames (``frames/1`` as native pixels, Explicit VR Little Endian): frames/s with 1 and
  8 clients.

Our server runs as ``triage web`` (one uvicorn process, SQLite) in a subprocess; Orthanc 1.10 with
the 1.7 plugin (Debian) from ``tests.builders.orthanc``. The goal is ours >= 1.0x Orthanc on each
figure. Not a test. Example::

    python -m benchmarks.dicomweb --instances 2000 --json dicomweb.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import requests
from pydicom.uid import generate_uid

from tests.builders.dicom import encode, make_dataset
from tests.builders.dicomweb import encode_multipart
from tests.builders.orthanc_dicomweb import orthanc_dicomweb
from tests.builders.peers import free_port, wait_for_port
from worklist.accounts.tokens import issue_token
from worklist.accounts.users import add_user
from worklist.db.engine import Database
from worklist.domain import Role
from worklist.settings import WorklistSettings

NATIVE = 'multipart/related; type="application/octet-stream"; transfer-syntax=1.2.840.10008.1.2.1'
DICOM = 'multipart/related; type="application/dicom"; transfer-syntax=*'
QIDO = "/studies?limit=101&offset=0&fuzzymatching=false&includefield=00081030&includefield=00080060"


@dataclass
class Figures:
    """One server's figures."""

    stow_instances_per_s: float = 0.0
    qido_p50_ms: float = 0.0
    qido_p99_ms: float = 0.0
    retrieve_mb_per_s: dict[int, float] = field(default_factory=dict)
    frames_per_s: dict[int, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Target:
    """A DICOMweb root and the headers every request carries."""

    root: str
    headers: dict[str, str]


def build(instances: int, per_study: int, size: int) -> list[tuple[str, list[bytes], list[str]]]:
    """Return studies as ``(study UID, encoded instances, SOP paths under the study)``."""
    studies: list[tuple[str, list[bytes], list[str]]] = []
    for s in range(0, instances, per_study):
        study = generate_uid()
        series = generate_uid()
        data, paths = [], []
        for i in range(min(per_study, instances - s)):
            ds = make_dataset(
                study_uid=study, series_uid=series, modality="CR", size=size, seed=s + i
            )
            data.append(encode(ds))
            paths.append(f"/series/{series}/instances/{ds.SOPInstanceUID}")
        studies.append((study, data, paths))
    return studies


def stow(target: Target, studies: list[tuple[str, list[bytes], list[str]]]) -> float:
    """Store every study (one request each); return instances per second."""
    start = time.perf_counter()
    count = 0
    with requests.Session() as http:
        for _, data, _ in studies:
            body, content_type = encode_multipart(data)
            headers = {**target.headers, "Content-Type": content_type}
            resp = http.post(f"{target.root}/studies", data=body, headers=headers, timeout=120)
            resp.raise_for_status()
            count += len(data)
    return count / (time.perf_counter() - start)


def _timed(target: Target, paths: list[str], accept: str, clients: int) -> tuple[list[float], int]:
    """GET the paths split over ``clients`` threads; return latencies (s) and bytes received."""
    latencies: list[float] = []
    received = [0]
    lock = threading.Lock()

    def work(mine: list[str]) -> None:
        with requests.Session() as http:
            headers = {**target.headers, "Accept": accept}
            for path in mine:
                start = time.perf_counter()
                resp = http.get(target.root + path, headers=headers, timeout=120)
                resp.raise_for_status()
                took = time.perf_counter() - start
                with lock:
                    latencies.append(took)
                    received[0] += len(resp.content)

    threads = [threading.Thread(target=work, args=(paths[i::clients],)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, received[0]


def _rates(target: Target, paths: list[str], accept: str, clients: int) -> tuple[float, float]:
    """Return (requests/s, MB/s) of GETting ``paths`` with ``clients`` threads."""
    start = time.perf_counter()
    latencies, size = _timed(target, paths, accept, clients)
    took = time.perf_counter() - start
    return len(latencies) / took, size / 1e6 / took


def measure(
    target: Target, studies: list[tuple[str, list[bytes], list[str]]], requests_n: int, seed: int
) -> Figures:
    """Measure QIDO latency, retrieve MB/s and frames/s (1 and 8 clients) on one server."""
    rng = random.Random(seed)
    instances = [f"/studies/{s}{p}" for s, _, paths in studies for p in paths]
    figures = Figures()
    _timed(target, [QIDO] * 3 + rng.sample(instances, min(3, len(instances))), DICOM, 1)  # warm
    latencies, _ = _timed(target, [QIDO] * requests_n, "application/dicom+json", 1)
    cuts = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
    figures.qido_p50_ms, figures.qido_p99_ms = cuts[49] * 1000, cuts[98] * 1000
    for clients in (1, 8):
        chosen = [rng.choice(instances) for _ in range(requests_n)]
        figures.retrieve_mb_per_s[clients] = _rates(target, chosen, DICOM, clients)[1]
        frames = [f"{p}/frames/1" for p in chosen]
        figures.frames_per_s[clients] = _rates(target, frames, NATIVE, clients)[0]
    return figures


@contextlib.contextmanager
def our_server(folder: Path) -> Iterator[Target]:
    """Serve ``triage web`` on a fresh SQLite store in a subprocess; yield its root and token."""
    settings = WorklistSettings(data_dir=folder / "data")
    db = Database(settings.effective_database_url)
    with db.write() as session:
        add_user(session, "bench", "bench-password-1", Role.ADMIN)
        token = issue_token(session, "bench").secret
    db.dispose()
    port = free_port()
    env = {
        **os.environ,
        "TRIAGE_WORKLIST_DATA_DIR": str(folder / "data"),
        "TRIAGE_MODELS_MODELS_DIR": str(folder / "models"),
    }
    env.pop("TRIAGE_CONFIG", None)
    command = [sys.executable, "-m", "triage", "web", "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(command, cwd=folder, env=env, start_new_session=True)
    try:
        wait_for_port(port, 60)
        yield Target(f"http://127.0.0.1:{port}/dicom-web", {"Authorization": f"Bearer {token}"})
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def run(
    instances: int, per_study: int, size: int, requests_n: int, seed: int = 0
) -> dict[str, Figures]:
    """Run the whole comparison; return the figures of ``ours`` and ``orthanc``."""
    studies = build(instances, per_study, size)
    results: dict[str, Figures] = {}
    with tempfile.TemporaryDirectory(prefix="dicomweb-bench-") as tmp:
        folder = Path(tmp)
        with our_server(folder / "ours") as ours, orthanc_dicomweb(folder / "orthanc") as orthanc:
            for name, target in (("ours", ours), ("orthanc", Target(orthanc, {}))):
                stow_rate = stow(target, studies)
                results[name] = measure(target, studies, requests_n, seed)
                results[name].stow_instances_per_s = stow_rate
    return results


def report(results: dict[str, Figures]) -> None:
    """Print the figures side by side with our ratio to Orthanc."""
    ours, theirs = results["ours"], results["orthanc"]
    rows = [
        ("STOW-RS instances/s", ours.stow_instances_per_s, theirs.stow_instances_per_s, True),
        ("QIDO /studies p50 ms", ours.qido_p50_ms, theirs.qido_p50_ms, False),
        ("QIDO /studies p99 ms", ours.qido_p99_ms, theirs.qido_p99_ms, False),
    ]
    for clients in (1, 8):
        rows.append(
            (
                f"retrieve MB/s, {clients} client(s)",
                ours.retrieve_mb_per_s[clients],
                theirs.retrieve_mb_per_s[clients],
                True,
            )
        )
        rows.append(
            (
                f"frames/s, {clients} client(s)",
                ours.frames_per_s[clients],
                theirs.frames_per_s[clients],
                True,
            )
        )
    print(f"{'figure':32} {'ours':>10} {'orthanc':>10} {'ours/orthanc':>13}")
    for name, a, b, higher_better in rows:
        ratio = (a / b if higher_better else b / a) if a and b else 0.0
        print(f"{name:32} {a:10.2f} {b:10.2f} {ratio:12.2f}x")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.dicomweb",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--instances", type=int, default=2000, help="Instances in the archive.")
    parser.add_argument("--per-study", type=int, default=4, help="Instances per study.")
    parser.add_argument("--size", type=int, default=256, help="Rows and columns of each image.")
    parser.add_argument("--requests", type=int, default=200, help="Requests per measurement.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="Also write the figures as JSON.")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the figures; return 0."""
    args = parse_args(argv)
    results = run(args.instances, args.per_study, args.size, args.requests, args.seed)
    report(results)
    if args.json:
        record = {name: asdict(figures) for name, figures in results.items()}
        args.json.write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
