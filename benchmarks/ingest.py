"""Ingest benchmark: our gateway against Orthanc, DCMTK and pynetdicom, interleaved in one run.

The same N synthetic 512 x 512 16-bit CT instances (about 0.5 MB each) are sent with 1 and
with 4 parallel DCMTK ``storescu`` processes (``TCP_NODELAY=1`` in their environment) to four
receivers (:mod:`benchmarks.ingest_receivers`), each started fresh for its run:

* **ours**: ``python -m triage gateway`` (one listener process per core on one port; SQLite
  store, or PostgreSQL with ``--db postgres`` (a throwaway server with fsync on) or
  ``--db-url``; every instance fsynced and committed before Success);
* **orthanc**: Debian's Orthanc with its own config (``SyncStorageArea`` true: it fsyncs its
  files; SQLite index) and ``TCP_NODELAY=1`` in its environment;
* **dcmtk**: ``storescp --fork`` writing each instance to disk (no fsync);
* **pynetdicom**: the gateway's own AE in as many processes, whose handler stores nothing
  (:mod:`benchmarks.pynetdicom_noop`): the ceiling of any receiver built on pynetdicom here.

The receivers are interleaved: each round runs every receiver once per sender count, the order
rotating from round to round, so that a neighbour's load on a shared machine falls on all of
them alike. Each run prints instances per second, the CPU time of the receiver's processes per
instance (Linux ``/proc``, reaped children included) and their resident memory (sum over the
process tree, sampled every 0.25 s: start, peak, end); each round prints the ratios of ours to
every other receiver, and the end the range of each figure over the rounds. Every receiver must
have stored every instance, or the run fails. Benchmarks are not tests.

Run: ``python -m benchmarks.ingest --n 400 --rounds 3`` (``--db postgres`` for PostgreSQL;
``--receivers ours --senders 4 --rounds 1 --n 10000`` for the memory of a long ingest).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from benchmarks.ingest_receivers import (
    AE_TITLE,
    Dcmtk,
    OrthancReceiver,
    Ours,
    PynetdicomNoop,
    Receiver,
    group_cpu_s,
    tree_rss_bytes,
)
from tests.builders.peers import dcmtk, fresh_postgres_db, postgres_server

__all__ = ["KNOB_RECEIVERS", "RECEIVERS", "Run", "main", "make_instances", "run_one", "send"]

RECEIVERS = ("ours", "orthanc", "dcmtk", "pynetdicom")
KNOB_RECEIVERS = ("pyn-dul",)
"""Receivers measured only when named in ``--receivers``: pynetdicom with one knob set."""


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
            [dcmtk("storescu"), "-R", "-aec", AE_TITLE, "127.0.0.1", str(port)]
            + [str(f) for f in chunk],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for chunk in chunks
    ]
    errors = [p.communicate()[1].decode()[-500:] for p in procs]  # closes every pipe
    failed = [error for p, error in zip(procs, errors, strict=True) if p.returncode != 0]
    elapsed = time.perf_counter() - start
    if failed:
        raise RuntimeError(f"storescu failed: {failed}")
    return elapsed


@dataclass(frozen=True)
class Run:
    """One receiver's run: rate, CPU and resident memory of its processes."""

    receiver: str
    senders: int
    seconds: float
    cpu_s: float
    n: int
    rss_mb: tuple[float, float, float]  # start, peak, end
    stored: int

    @property
    def rate(self) -> float:
        """Instances per second."""
        return self.n / self.seconds

    @property
    def cpu_ms(self) -> float:
        """CPU milliseconds per instance (every process of the receiver)."""
        return 1000 * self.cpu_s / self.n


class _RssSampler:
    """Sample the resident memory of a process tree every ``every_s`` in a thread."""

    def __init__(self, pid: int, every_s: float = 0.25) -> None:
        self.pid, self.every_s = pid, every_s
        self.samples: list[int] = [tree_rss_bytes(pid)]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.samples.append(tree_rss_bytes(self.pid))

    def stop(self) -> tuple[float, float, float]:
        self._stop.set()
        self._thread.join()
        self.samples.append(tree_rss_bytes(self.pid))
        mb = [s / 2**20 for s in self.samples]
        return mb[0], max(mb), mb[-1]


def _evidence(receiver: Receiver) -> str:
    """Describe what a receiver left in its folder (names, its log's tail) before removal."""
    names = sorted(p.name for p in receiver.work.iterdir()) if receiver.work.is_dir() else []
    log = receiver.work / "log"
    tail = log.read_text(errors="replace")[-1500:] if log.is_file() else ""
    code = None if receiver.proc is None else receiver.proc.returncode
    return f"exit status {code}, files {names[:20]}, log tail: {tail!r}"


def run_one(receiver: Receiver, files: list[Path], senders: int) -> Run:
    """Start ``receiver``, send ``files``, stop it, check it stored every one."""
    try:
        receiver.start()
        cpu = group_cpu_s(receiver.pid)
        sampler = _RssSampler(receiver.pid)
        elapsed = send(receiver.port, files, senders)
        time.sleep(0.2)  # let storescp reap its last children
        cpu = group_cpu_s(receiver.pid) - cpu
        rss = sampler.stop()
    finally:
        receiver.stop()
    stored = receiver.stored()
    evidence = "" if stored == len(files) else _evidence(receiver)
    receiver.cleanup()
    if stored != len(files):
        raise RuntimeError(f"{receiver.name} stored {stored} of {len(files)}; {evidence}")
    return Run(receiver.name, senders, elapsed, cpu, len(files), rss, stored)


def _receiver(name: str, work: Path, args: argparse.Namespace, db_url: str | None) -> Receiver:
    processes = args.processes or os.cpu_count() or 1
    if name == "ours":
        return Ours(work, processes=processes, db_url=db_url, group_commit=args.group_commit)
    if name == "orthanc":
        return OrthancReceiver(work)
    if name == "dcmtk":
        return Dcmtk(work)
    if name == "pyn-dul":
        return PynetdicomNoop(work, processes=processes, run_loop_delay=args.run_loop_delay)
    return PynetdicomNoop(work, processes=processes)


def _range(values: list[float], digits: int) -> str:
    low, high = min(values), max(values)
    if len(values) == 1 or round(low, digits) == round(high, digits):
        return f"{low:.{digits}f}"
    return f"{low:.{digits}f}-{high:.{digits}f}"


def _ratios(runs: dict[str, Run]) -> dict[str, float]:
    ours = runs.get("ours")
    if ours is None:
        return {}
    return {f"ours/{name}": ours.rate / run.rate for name, run in runs.items() if name != "ours"}


def print_summary(rounds: list[dict[int, dict[str, Run]]], senders: list[int]) -> None:
    """Print each receiver's range over the rounds, and the range of every ratio."""
    print("\nsummary over", len(rounds), "round(s): min-max")
    for count in senders:
        per_round = [r[count] for r in rounds]
        for name in per_round[0]:
            runs = [r[name] for r in per_round]
            print(
                f"  {count} sender(s) {name:>10}: {_range([r.rate for r in runs], 0):>9} inst/s"
                f"  {_range([r.cpu_ms for r in runs], 2):>10} CPU ms/inst"
                f"  RSS peak {_range([r.rss_mb[1] for r in runs], 0)} MB"
            )
        ratios = [_ratios(r) for r in per_round]
        for key in ratios[0]:
            print(f"  {count} sender(s) {key:>18}: {_range([r[key] for r in ratios], 2)}")


@contextmanager
def _database(args: argparse.Namespace) -> Iterator[Callable[[], str | None]]:
    """Yield a function that returns a fresh database URL for each run of ours."""
    if args.db_url:
        yield lambda: args.db_url
    elif args.db == "postgres":
        with postgres_server(durable=True) as server:
            yield lambda: fresh_postgres_db(server)
    else:
        yield lambda: None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark (see the module's docstring); return the exit status."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--n", type=int, default=400, help="instances per run")
    parser.add_argument("--senders", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument(
        "--receivers", nargs="+", default=list(RECEIVERS), choices=RECEIVERS + KNOB_RECEIVERS
    )
    parser.add_argument(
        "--run-loop-delay",
        type=float,
        default=0.0001,
        help="pyn-dul: the pynetdicom no-op with its DUL reactor's idle poll delay set to this "
        "(pynetdicom's default: 0.001 s)",
    )
    parser.add_argument("--processes", type=int, default=0, help="listener processes (0: cores)")
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--db-url", default=None, help="our store (an empty PostgreSQL db)")
    parser.add_argument(
        "--group-commit",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="our group commit (one sync + one transaction per batch of concurrent instances)",
    )
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="write every run here")
    args = parser.parse_args(argv)
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="ingest-bench-"))
    files = make_instances(work / "in", args.n)
    size_mb = sum(f.stat().st_size for f in files) / 1e6
    print(
        f"{args.n} CT instances 512x512x16 bit ({size_mb:.0f} MB), cores: {os.cpu_count()}, "
        f"our store: {'--db-url' if args.db_url else args.db}, receivers interleaved"
    )
    print(f"{'round':>5} {'senders':>7} {'receiver':>10} {'inst/s':>8} {'CPU ms/inst':>11}"
          f" {'RSS MB start/peak/end':>22}")  # fmt: skip
    rounds: list[dict[int, dict[str, Run]]] = []
    with _database(args) as new_db:
        for number in range(args.rounds):
            this: dict[int, dict[str, Run]] = {}
            for count in args.senders:
                shift = (number + len(this)) % len(args.receivers)
                order = args.receivers[shift:] + args.receivers[:shift]  # round-robin
                runs: dict[str, Run] = {}
                for i, name in enumerate(order):
                    url = new_db() if name == "ours" else None
                    run = run_one(_receiver(name, work / f"r{number}-{i}", args, url), files, count)
                    runs[name] = run
                    rss = "/".join(f"{v:.0f}" for v in run.rss_mb)
                    print(f"{number + 1:>5} {count:>7} {name:>10} {run.rate:>8.1f}"
                          f" {run.cpu_ms:>11.2f} {rss:>22}", flush=True)  # fmt: skip
                ratios = "  ".join(f"{k} {v:.2f}" for k, v in _ratios(runs).items())
                print(f"{'':>5} {count:>7} {'ratios':>10}  {ratios}", flush=True)
                this[count] = {name: runs[name] for name in args.receivers}
            rounds.append(this)
    print_summary(rounds, args.senders)
    if args.json:
        runs_json = [
            {**asdict(run), "round": number + 1, "rate": run.rate, "cpu_ms": run.cpu_ms}
            for number, this in enumerate(rounds)
            for by_name in this.values()
            for run in by_name.values()
        ]
        args.json.write_text(json.dumps({"n": args.n, "db": args.db, "runs": runs_json}, indent=1))
    print("pynetdicom: pynetdicom alone, storing nothing (benchmarks.pynetdicom_noop)")
    if "pyn-dul" in args.receivers:
        print(f"pyn-dul: the same with its DUL reactor's idle poll delay {args.run_loop_delay} s")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
