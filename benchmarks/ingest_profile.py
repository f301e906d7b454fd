"""Profile of the listener's storage path per instance, without the network (cProfile).

It runs what :func:`dicom_gateway.handlers.handle_store` does after pynetdicom has received an
instance: the header check (:func:`~worklist.ingest.header.parse_instance`) and
:meth:`~worklist.ingest.recorder.Ingestor.store` (durable file, committed rows), for N synthetic
CT instances received to files as a listener process receives them, on one thread, under
cProfile. It prints the CPU milliseconds per instance and the functions that take most of it;
pynetdicom's own share is what :mod:`benchmarks.pynetdicom_noop` costs in
:mod:`benchmarks.ingest`.

Run: ``python -m benchmarks.ingest_profile --n 400`` (``--db-url`` for PostgreSQL,
``--group-commit`` for the batched path, ``--top 25`` for a longer list).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.ingest import make_instances
from dicom_gateway.receiving import read_instance
from worklist.archive import Archive
from worklist.db.engine import Database
from worklist.ingest.header import parse_instance
from worklist.ingest.recorder import Ingestor

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Profile the storage path; return the exit status."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--db-url", default=None)
    parser.add_argument("--group-commit", action="store_true")
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="ingest-profile-"))
    files = make_instances(work / "in", args.n)
    archive = Archive(work / "archive")
    receiving = archive.root / ".receiving"
    receiving.mkdir()
    db = Database(args.db_url or f"sqlite:///{work / 'triage.db'}")
    ingestor = Ingestor(db, archive, group_commit=args.group_commit)
    profile = cProfile.Profile()
    cpu = time.process_time()
    wall = time.perf_counter()
    for i, source in enumerate(files):
        received = receiving / f"r{i}.dcm"  # as pynetdicom leaves it in a listener process
        shutil.copyfile(source, received)
        profile.enable()
        data = read_instance(received, 0)
        header, _ = parse_instance(data)
        ingestor.store(data, header, calling_aet="PROFILE", received=received)
        profile.disable()
    cpu = time.process_time() - cpu
    wall = time.perf_counter() - wall
    ingestor.close()
    db.dispose()
    print(f"{args.n} instances: {1000 * cpu / args.n:.2f} CPU ms/inst (copying the inputs too),")
    print(f"{args.n / wall:.0f} inst/s on one thread, group commit {args.group_commit}")
    stats = pstats.Stats(profile)
    stats.sort_stats("cumulative").print_stats(args.top)
    stats.sort_stats("tottime").print_stats(args.top)
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
