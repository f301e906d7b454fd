"""Time to SR: from the start of a ``storescu`` send to the AI's SR present in a PACS (Orthanc).

Starts Orthanc (Debian ``orthanc``) on loopback ports as the receiving PACS, and ``triage serve``
(SQLite, the bundled demo model) configured to export each triaged study's TID 1500 SR there
(``TRIAGE_TRIAGE_EXPORTS``). Sends N chest phantoms, one study per association, with DCMTK
``storescu``, and polls both our API (the study's priority) and Orthanc's REST API (a series of
modality SR in the study). Prints p50 and p95 of the time to priority and the time to SR, and
the time to SR's p50 against the 2 s goal. Not a test.

    python -m benchmarks.time_to_sr --n 10
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from models.phantoms import FINDINGS, generate_phantom
from tests.builders.orthanc import ORTHANC_AET, orthanc
from tests.builders.peers import dcmtk, free_port, wait_for_port

__all__ = ["GOAL_S", "main"]

GOAL_S = 2.0
"""The goal for the time to SR's median, in seconds, on the 2-core machine."""


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


def _phantoms(root: Path, n: int, seed: int) -> list[tuple[Path, str]]:
    files: list[tuple[Path, str]] = []
    for i in range(n):
        findings = [] if i % 2 == 0 else [FINDINGS[i % len(FINDINGS)]]
        phantom = generate_phantom(seed * 1000 + i, findings, size=512)
        path = root / f"p{i:04d}.dcm"
        phantom.dataset.save_as(path, enforce_file_format=True)
        files.append((path, str(phantom.dataset.StudyInstanceUID)))
    return files


def _sr_in_pacs(pacs: httpx.Client, uid: str) -> bool:
    query = {"Level": "Series", "Query": {"StudyInstanceUID": uid, "Modality": "SR"}}
    r = pacs.post("/tools/find", json=query)
    return r.status_code == 200 and bool(r.json())


def _measure(
    files: list[tuple[Path, str]],
    dicom_port: int,
    api: httpx.Client,
    pacs: httpx.Client,
    timeout: float,
) -> dict[str, list[float]]:
    """Send each study and time its priority and its SR in the PACS (from the send's start)."""
    storescu = dcmtk("storescu")
    out: dict[str, list[float]] = {"send": [], "priority": [], "sr": []}
    for path, uid in files:
        t0 = time.perf_counter()
        subprocess.run(
            [storescu, "-aec", "ICS_TRIAGE", "-aet", "BENCH", "127.0.0.1", str(dicom_port),
             str(path)],
            check=True, env={**os.environ, "TCP_NODELAY": "1"},
        )  # fmt: skip
        out["send"].append(time.perf_counter() - t0)
        priority: float | None = None
        while time.perf_counter() - t0 < timeout:
            if priority is None:
                r = api.get(f"/api/v1/studies/{uid}")
                if r.status_code == 200 and r.json().get("state") == "triaged":
                    priority = time.perf_counter() - t0
                    out["priority"].append(priority)
            if priority is not None and _sr_in_pacs(pacs, uid):
                out["sr"].append(time.perf_counter() - t0)
                break
            time.sleep(0.01)
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return 0 when every study's SR reached the PACS in time."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10, help="Studies to send (one per association).")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=60.0, help="Per-study limit (s).")
    parser.add_argument("--json", type=Path, default=None, help="Also write the figures here.")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="ttsr-") as tmp:
        root = Path(tmp)
        data = root / "var"
        files = _phantoms(root, args.n, args.seed)
        with orthanc(root / "pacs") as server:
            destination = {
                "name": "pacs", "ae_title": ORTHANC_AET, "host": "127.0.0.1",
                "port": server.dicom_port, "send": ["sr"], "first_delay_s": 0.5,
            }  # fmt: skip
            env = {
                **os.environ,
                "TRIAGE_WORKLIST_DATA_DIR": str(data),
                "TRIAGE_TRIAGE_EXPORTS": json.dumps([destination]),
            }
            _triage(env, "users", "add", "bench", "--role", "radiologist", "--password-stdin",
                    stdin="bench-pass\n")  # fmt: skip
            token = _triage(env, "users", "token", "bench").strip().splitlines()[-1]
            dicom_port, http_port = free_port(), free_port()
            log = (root / "serve.log").open("w")
            proc = subprocess.Popen(
                [sys.executable, "-m", "triage", "serve", "--data-dir", str(data),
                 "--dicom-port", str(dicom_port), "--http-port", str(http_port)],
                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
            try:
                wait_for_port(dicom_port, 60)
                wait_for_port(http_port, 60)
                headers = {"Authorization": f"Bearer {token}"}
                with (
                    httpx.Client(base_url=f"http://127.0.0.1:{http_port}", headers=headers,
                                 timeout=10) as api,
                    httpx.Client(base_url=server.url, timeout=10) as pacs,
                ):  # fmt: skip
                    times = _measure(files, dicom_port, api, pacs, args.timeout)
            finally:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=30)
                log.close()
    return _report(times, args.n, args.json)


def _report(times: dict[str, list[float]], n: int, json_path: Path | None) -> int:
    missing = n - len(times["sr"])
    print(f"studies sent: {len(times['send'])}, triaged: {len(times['priority'])}, "
          f"SR in the PACS: {len(times['sr'])}, not in time: {missing}")  # fmt: skip
    figures: dict[str, float] = {}
    for key, name in (("send", "send alone"), ("priority", "time to priority"),
                      ("sr", "time to SR")):  # fmt: skip
        if times[key]:
            p50, p95 = _pct(times[key], 50) * 1000, _pct(times[key], 95) * 1000
            figures[f"{key}_p50_ms"], figures[f"{key}_p95_ms"] = p50, p95
            print(f"{name:<17} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms")
    if times["sr"]:
        ratio = _pct(times["sr"], 50) / GOAL_S
        figures["sr_p50_over_goal"] = ratio
        verdict = "met" if ratio <= 1.0 else "NOT met"
        print(f"goal: time to SR p50 <= {GOAL_S * 1000:.0f} ms -> {ratio:.2f} of it, {verdict}")
    if json_path is not None:
        json_path.write_text(json.dumps({"n": n, "missing": missing, **figures}, indent=2))
    return 0 if missing == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
