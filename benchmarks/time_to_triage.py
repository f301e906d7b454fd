"""Time to triage: from the start of a ``storescu`` send to the priority readable from the API.

Starts ``triage serve`` (SQLite, the bundled demo model) in a subprocess on loopback ports, sends
N chest phantoms one study per association with DCMTK ``storescu``, and polls
``GET /api/v1/studies/{uid}`` until the study is triaged. Prints p50 and p95 of the time to
triage beside the time the send alone takes. Not a test.

    python -m benchmarks.time_to_triage --n 30
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from models.phantoms import FINDINGS, generate_phantom
from tests.builders.peers import free_port, wait_for_port


def _triage(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "triage", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return done.stdout


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=30, help="Studies to send (one per association).")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=60.0, help="Per-study limit (s).")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="ttt-") as tmp:
        root = Path(tmp)
        data = root / "var"
        env = {**os.environ, "TRIAGE_WORKLIST_DATA_DIR": str(data)}
        _triage(
            env,
            "users",
            "add",
            "bench",
            "--role",
            "radiologist",
            "--password-stdin",
            stdin="bench-pass\n",
        )
        token = _triage(env, "users", "token", "bench").strip().splitlines()[-1]
        files: list[tuple[Path, str]] = []
        for i in range(args.n):
            findings = [] if i % 2 == 0 else [FINDINGS[i % len(FINDINGS)]]
            phantom = generate_phantom(args.seed * 1000 + i, findings, size=512)
            path = root / f"p{i:04d}.dcm"
            phantom.dataset.save_as(path, enforce_file_format=True)
            files.append((path, str(phantom.dataset.StudyInstanceUID)))
        dicom_port, http_port = free_port(), free_port()
        log = (root / "serve.log").open("w")
        proc = subprocess.Popen(
            [sys.executable, "-m", "triage", "serve", "--data-dir", str(data),
             "--dicom-port", str(dicom_port), "--http-port", str(http_port)],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        sends: list[float] = []
        totals: list[float] = []
        failures = 0
        try:
            wait_for_port(dicom_port, 60)
            wait_for_port(http_port, 60)
            client = httpx.Client(
                base_url=f"http://127.0.0.1:{http_port}",
                headers={"Authorization": f"Bearer {token}"},
                timeout=10,
            )
            for path, uid in files:
                t0 = time.perf_counter()
                subprocess.run(
                    ["storescu", "-aec", "ICS_TRIAGE", "-aet", "BENCH", "127.0.0.1",
                     str(dicom_port), str(path)],
                    check=True, env={**os.environ, "TCP_NODELAY": "1"},
                )  # fmt: skip
                sends.append(time.perf_counter() - t0)
                while True:
                    r = client.get(f"/api/v1/studies/{uid}")
                    if r.status_code == 200 and r.json().get("state") == "triaged":
                        totals.append(time.perf_counter() - t0)
                        break
                    if time.perf_counter() - t0 > args.timeout:
                        failures += 1
                        break
                    time.sleep(0.01)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
            log.close()
    print(f"studies sent: {len(sends)}, triaged: {len(totals)}, not triaged in time: {failures}")
    if totals:
        for name, values in (("send alone", sends), ("time to triage", totals)):
            p50, p95 = _pct(values, 50) * 1000, _pct(values, 95) * 1000
            print(f"{name:<15} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms")
        print(f"time to triage mean {statistics.mean(totals) * 1000:.1f} ms")
        print(f"goal: p50 <= 1000 ms -> {'met' if _pct(totals, 50) <= 1.0 else 'NOT met'}")
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
