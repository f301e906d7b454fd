"""Ingest benchmark: our gateway against DCMTK ``storescp --fork``, both fed by DCMTK storescu.

The same N synthetic 512 x 512 16-bit CT instances (about 0.5 MB each) are sent with 1 and
with 4 parallel ``storescu`` processes (``TCP_NODELAY=1`` in their environment) to

* **ours**: ``python -m triage gateway`` (several listener processes on one port, SQLite
  store; every instance durable on disk and recorded before Success; group commit on unless
  ``--no-group-commit``), a fresh data directory per run;
* **dcmtk**: ``storescp --fork`` writing each instance to disk (no fsync);
* **pynetdicom**: the gateway's own AE in as many processes, whose handler stores nothing
  (:mod:`benchmarks.pynetdicom_noop`): the ceiling of any receiver built on pynetdicom here.

It prints instances per second for each, the ratio ours/DCMTK (goal: at least 1.0), the ratio
ours/pynetdicom (how much of pynetdicom's own ceiling the storage path leaves), and the CPU time
each receiver's process group spent per instance while receiving (Linux ``/proc``).
Benchmarks are not tests. Run: ``python -m benchmarks.ingest --n 500``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

ROOT = Path(__file__).resolve().parents[1]
AE_TITLE = "ICS_TRIAGE"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on port {port}")


def group_cpu_s(pgid: int) -> float:
    """CPU seconds (user + system, with reaped children) of every live process in a group."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after the name: state ppid pgrp ...
            total += sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
    return total / os.sysconf("SC_CLK_TCK")


def make_instances(folder: Path, n: int) -> list[Path]:
    """Write ``n`` synthetic 512x512 16-bit CT instances of one study (3 series)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    study = generate_uid()
    series = [generate_uid() for _ in range(3)]
    files = []
    for i in range(n):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
        ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID = study
        ds.SeriesInstanceUID = series[i % 3]
        ds.PatientID = "BENCH001"
        ds.PatientName = "Benchmark^Synthetic"
        ds.Modality = "CT"
        ds.SeriesNumber = i % 3 + 1
        ds.InstanceNumber = i + 1
        ds.Rows = ds.Columns = 512
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = 16
        ds.BitsStored = 12
        ds.HighBit = 11
        ds.PixelRepresentation = 0
        ds.PixelData = rng.integers(0, 4096, (512, 512), dtype=np.uint16).tobytes()
        path = folder / f"ct{i:05d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        files.append(path)
    return files


def send(port: int, files: list[Path], senders: int) -> float:
    """Send ``files`` split over ``senders`` storescu processes; return the wall time."""
    env = dict(os.environ, TCP_NODELAY="1")
    chunks = [files[i::senders] for i in range(senders)]
    start = time.perf_counter()
    procs = [
        subprocess.Popen(
            ["storescu", "-R", "-aec", AE_TITLE, "127.0.0.1", str(port), *map(str, chunk)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for chunk in chunks
    ]
    failed = [p.communicate()[1].decode()[-500:] for p in procs if p.wait() != 0]
    elapsed = time.perf_counter() - start
    if failed:
        raise RuntimeError(f"storescu failed: {failed}")
    return elapsed


def run_ours(
    files: list[Path], senders: int, work: Path, processes: int, group_commit: bool = True
) -> tuple[float, float]:
    data = work / f"ours-{senders}"
    port = _free_port()
    log = (work / f"ours-{senders}.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "triage",
            "--log-level",
            "WARNING",
            "gateway",
            "--port",
            str(port),
            "--data-dir",
            str(data),
            "--processes",
            str(processes),
        ],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=dict(
            os.environ,
            TRIAGE_WORKLIST_MIN_FREE_BYTES="0",
            TRIAGE_GATEWAY_GROUP_COMMIT="true" if group_commit else "false",
        ),
    )
    try:
        _wait_port(port)
        time.sleep(1.0)  # let every listener process bind
        cpu = group_cpu_s(proc.pid)
        elapsed = send(port, files, senders)
        cpu = group_cpu_s(proc.pid) - cpu
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        log.close()
    with sqlite3.connect(data / "triage.db") as conn:
        stored = conn.execute("SELECT COUNT(*) FROM instances").fetchone()[0]
    if stored != len(files):
        raise RuntimeError(f"ours stored {stored} of {len(files)}")
    shutil.rmtree(data)
    return elapsed, cpu


def run_noop(files: list[Path], senders: int, processes: int) -> tuple[float, float]:
    """Send to pynetdicom alone (:mod:`benchmarks.pynetdicom_noop`): nothing is stored."""
    port = _free_port()
    count = str(processes or os.cpu_count() or 1)
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.pynetdicom_noop", "--port", str(port), "-j", count],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait_port(port)
        time.sleep(1.0)  # let every process bind
        cpu = group_cpu_s(proc.pid)
        elapsed = send(port, files, senders)
        cpu = group_cpu_s(proc.pid) - cpu
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)
    return elapsed, cpu


def run_dcmtk(files: list[Path], senders: int, work: Path) -> tuple[float, float]:
    out = work / f"dcmtk-{senders}"
    out.mkdir()
    port = _free_port()
    proc = subprocess.Popen(
        ["storescp", "--fork", "-aet", AE_TITLE, "-od", str(out), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env=dict(os.environ, TCP_NODELAY="1"),  # DCMTK reads it on both sides
    )
    try:
        _wait_port(port)
        cpu = group_cpu_s(proc.pid)
        elapsed = send(port, files, senders)
        time.sleep(0.2)  # let storescp reap its last children
        cpu = group_cpu_s(proc.pid) - cpu
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)
    stored = sum(1 for _ in out.iterdir())
    if stored != len(files):
        raise RuntimeError(f"storescp stored {stored} of {len(files)}")
    shutil.rmtree(out)
    return elapsed, cpu


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=500, help="instances per run")
    parser.add_argument("--senders", type=int, nargs="+", default=[1, 4])
    parser.add_argument(
        "--processes", type=int, default=0, help="our listener processes (0: cores)"
    )
    parser.add_argument(
        "--group-commit",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="our group commit (one sync + one transaction per batch of concurrent instances)",
    )
    parser.add_argument("--work-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    for tool in ("storescu", "storescp"):
        if shutil.which(tool) is None:
            print(f"{tool} not found: install DCMTK (scripts/install-system-deps.sh)")
            return 2
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="ingest-bench-"))
    files = make_instances(work / "in", args.n)
    size_mb = sum(f.stat().st_size for f in files) / 1e6
    print(f"{args.n} CT instances 512x512x16 bit ({size_mb:.0f} MB), cores: {os.cpu_count()}")
    print(f"group commit: {'on' if args.group_commit else 'off'}")
    print(f"{'':>7} {'instances/s':^27} {'ratio':^27} {'CPU ms/instance':^24}")
    print(
        f"{'senders':>7} {'ours':>7} {'dcmtk':>7} {'pynetd.':>11} {'ours/dcmtk':>12}"
        f" {'ours/pynetd.':>14} {'ours':>7} {'dcmtk':>7} {'pynetd.':>8}"
    )
    for senders in args.senders:
        dcmtk_s, dcmtk_cpu = run_dcmtk(files, senders, work)
        ours_s, ours_cpu = run_ours(files, senders, work, args.processes, args.group_commit)
        noop_s, noop_cpu = run_noop(files, senders, args.processes)
        ours, dcmtk, noop = args.n / ours_s, args.n / dcmtk_s, args.n / noop_s
        cpu = [1000 * c / args.n for c in (ours_cpu, dcmtk_cpu, noop_cpu)]
        print(
            f"{senders:>7} {ours:>7.1f} {dcmtk:>7.1f} {noop:>11.1f} {ours / dcmtk:>12.2f}"
            f" {ours / noop:>14.2f} {cpu[0]:>7.1f} {cpu[1]:>7.2f} {cpu[2]:>8.1f}"
        )
    print("pynetd.: pynetdicom alone, storing nothing (benchmarks.pynetdicom_noop)")
    shutil.rmtree(work / "in")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
