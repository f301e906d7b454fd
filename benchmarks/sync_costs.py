"""What each durable step of storing an instance waits for, on the archive's filesystem.

Before a C-STORE is answered Success the listener makes the instance's file durable (``syncfs``
of the archive's filesystem, as :meth:`worklist.archive.Archive.make_durable` does) and commits
its rows (SQLite in WAL mode with ``synchronous=FULL``: an fsync of the WAL at commit). Orthanc
fsyncs its file and commits its index with ``synchronous=NORMAL`` (no fsync at commit). This
benchmark times those steps alone, in interleaved rounds in one run, so that the design question
"one sync for file and row instead of two" can be answered with this machine's numbers:

* a commit of one small row in WAL mode, ``synchronous=FULL`` against ``NORMAL``;
* writing one instance-sized file and making it durable with ``syncfs`` against ``fsync`` of the
  file and of its directory.

Run: ``python -m benchmarks.sync_costs --dir PATH`` (``PATH`` on the archive's filesystem;
default a temporary folder under the current directory), ``--n 200``, ``--size-kib 512``.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from worklist.durability import fsync_dir, load_syncfs, syncfs

__all__ = ["main"]


def _commits(folder: Path, mode: str, n: int) -> list[float]:
    """Milliseconds of each of ``n`` one-row commits in WAL mode at ``synchronous=mode``."""
    path = folder / f"commits-{mode.lower()}.db"
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={mode}")
        conn.execute("CREATE TABLE IF NOT EXISTS t (x BLOB)")
        times = []
        for _ in range(n):
            began = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO t VALUES (?)", (os.urandom(200),))
            conn.execute("COMMIT")
            times.append((time.perf_counter() - began) * 1000)
        return times
    finally:
        conn.close()


def _files(folder: Path, size: int, n: int, durable: Callable[[Path], None]) -> list[float]:
    """Milliseconds of writing each of ``n`` files of ``size`` bytes and making it durable."""
    data = os.urandom(size)
    times = []
    for i in range(n):
        path = folder / f"f{i}.dcm"
        began = time.perf_counter()
        with path.open("wb") as out:
            out.write(data)
        durable(path)
        times.append((time.perf_counter() - began) * 1000)
        path.unlink()
    return times


def _fsync_file_and_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_dir(path.parent)


def main(argv: Sequence[str] | None = None) -> int:
    """Time the durable steps; print the mean and median of each and their ratios.

    Parameters
    ----------
    argv
        Command-line arguments (``--dir``, ``--n``, ``--size-kib``, ``--rounds``).

    Returns
    -------
    int
        0; 2 when the folder's filesystem cannot be synced with ``syncfs``.
    """
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--dir", type=Path, default=None, help="a folder on the archive's fs")
    parser.add_argument("--n", type=int, default=200, help="operations per round and kind")
    parser.add_argument("--size-kib", type=int, default=512, help="instance size (512x512 CT)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    func = load_syncfs()
    if func is None:
        print("syncfs(2) is not available here")
        return 2
    base = args.dir if args.dir is not None else Path.cwd()
    base.mkdir(parents=True, exist_ok=True)
    results: dict[str, list[float]] = {}
    kinds: dict[str, Callable[[Path], list[float]]] = {
        "commit FULL": lambda d: _commits(d, "FULL", args.n),
        "commit NORMAL": lambda d: _commits(d, "NORMAL", args.n),
        "file + syncfs": lambda d: _files(
            d, args.size_kib * 1024, args.n, lambda p: syncfs(func, p.parent)
        ),
        "file + fsync": lambda d: _files(d, args.size_kib * 1024, args.n, _fsync_file_and_dir),
    }
    with tempfile.TemporaryDirectory(prefix="sync-costs-", dir=base) as tmp:
        for _ in range(args.rounds):  # interleaved: the machine's load hits every kind alike
            for name, run in kinds.items():
                results.setdefault(name, []).extend(run(Path(tmp)))
    print(f"{args.rounds} rounds x {args.n} on {base} ({args.size_kib} KiB files)")
    for name, times in results.items():
        print(f"  {name:14s} mean {statistics.fmean(times):7.3f} ms, "
              f"median {statistics.median(times):7.3f} ms")  # fmt: skip
    mean = {name: statistics.fmean(times) for name, times in results.items()}
    saved = mean["commit FULL"] - mean["commit NORMAL"]
    per_instance = mean["file + syncfs"] + mean["commit FULL"]
    print(
        f"one sync instead of two (commit NORMAL, then syncfs) would save {saved:.3f} ms of the "
        f"{per_instance:.3f} ms these steps take per instance ({saved / per_instance:.1%})"
    )
    print(
        f"fsync of file and directory / syncfs: {mean['file + fsync'] / mean['file + syncfs']:.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
